"""Snapshots of the main screens at 80x24 and 120x40 (pytest-textual-snapshot).

The fake conversation, the frozen critique and the store's fixed clock and ids make every
screen the same on every run. Update after an intended change with
``pytest tests/tui/test_snapshots.py --snapshot-update`` and review the SVGs.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import pytest
from textual.pilot import Pilot
from textual.widgets import TabbedContent

from assistant.tui.sessions import SessionStore

from .conftest import AppMaker
from .fakes import DATA, PLAN, REVISED_PLAN
from .helpers import send, settle, steady_cursors

SIZES = [pytest.param((80, 24), id="80x24"), pytest.param((120, 40), id="120x40")]
Snap = Callable[..., bool]


def critique_then(*keys: str, tab: str | None = None) -> Callable[[Pilot[None]], Awaitable[None]]:
    async def run_before(pilot: Pilot[None]) -> None:
        await send(pilot, PLAN)
        if tab is not None:
            pilot.app.query_one("#panel", TabbedContent).active = tab
        if keys:
            await pilot.press(*keys)
        await settle(pilot)
        await steady_cursors(pilot)
    return run_before


@pytest.mark.parametrize("size", SIZES)
def test_welcome(snap_compare: Snap, make_app: AppMaker, size: tuple[int, int]) -> None:
    async def run_before(pilot: Pilot[None]) -> None:
        await settle(pilot)
        await steady_cursors(pilot)
    assert snap_compare(make_app(), terminal_size=size, run_before=run_before)


@pytest.mark.parametrize("size", SIZES)
def test_after_a_critique(snap_compare: Snap, make_app: AppMaker, size: tuple[int, int]) -> None:
    assert snap_compare(make_app(), terminal_size=size, run_before=critique_then())


@pytest.mark.parametrize("size", SIZES)
def test_balance_panel(snap_compare: Snap, make_app: AppMaker, size: tuple[int, int]) -> None:
    # at 80 columns F2 swaps the conversation for the panel; at 120 the panel is already open
    keys = ("f2",) if size[0] < 110 else ()
    assert snap_compare(make_app(), terminal_size=size, run_before=critique_then(*keys))


@pytest.mark.parametrize("size", SIZES)
def test_findings_panel(snap_compare: Snap, make_app: AppMaker, size: tuple[int, int]) -> None:
    keys = ("f2",) if size[0] < 110 else ()
    assert snap_compare(make_app(), terminal_size=size, run_before=critique_then(*keys, tab="tab-findings"))


@pytest.mark.parametrize("size", SIZES)
def test_interventions_panel(snap_compare: Snap, make_app: AppMaker, size: tuple[int, int]) -> None:
    keys = ("f2",) if size[0] < 110 else ()
    assert snap_compare(make_app(), terminal_size=size,
                        run_before=critique_then(*keys, tab="tab-interventions"))


@pytest.mark.parametrize("size", SIZES)
def test_revised_plan_before_and_after(snap_compare: Snap, make_app: AppMaker, size: tuple[int, int]) -> None:
    async def run_before(pilot: Pilot[None]) -> None:
        await send(pilot, PLAN)
        await send(pilot, REVISED_PLAN)
        if size[0] < 110:
            await pilot.press("f2")
        await settle(pilot)
        await steady_cursors(pilot)
    assert snap_compare(make_app(), terminal_size=size, run_before=run_before)


@pytest.mark.parametrize("size", SIZES)
def test_sessions_screen(snap_compare: Snap, make_app: AppMaker, store: SessionStore,
                         size: tuple[int, int]) -> None:
    older = store.create("Torbay refresh 2026")
    store.add_message(older.id, "user", "We are merging two trusts.")

    async def run_before(pilot: Pilot[None]) -> None:
        await send(pilot, PLAN)
        await pilot.press("f3")
        await settle(pilot)
        await steady_cursors(pilot)
    assert snap_compare(make_app(), terminal_size=size, run_before=run_before)


@pytest.mark.parametrize("size", SIZES)
def test_help_screen(snap_compare: Snap, make_app: AppMaker, size: tuple[int, int]) -> None:
    async def run_before(pilot: Pilot[None]) -> None:
        await pilot.press("f1")
        await settle(pilot)
        await steady_cursors(pilot)
    assert snap_compare(make_app(), terminal_size=size, run_before=run_before)


@pytest.mark.parametrize("size", SIZES)
def test_open_plan_prompt(snap_compare: Snap, make_app: AppMaker, size: tuple[int, int],
                          monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(DATA)

    async def run_before(pilot: Pilot[None]) -> None:
        await pilot.press("ctrl+o")
        await pilot.press(*"plan")
        await settle(pilot)
        await steady_cursors(pilot)
    assert snap_compare(make_app(), terminal_size=size, run_before=run_before)
