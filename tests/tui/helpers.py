"""Pilot helpers: type or paste into the message box, and wait for a turn to finish."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

from textual.pilot import Pilot
from textual.widgets import Input, TextArea

from assistant.tui.app import ChatApp
from assistant.tui.widgets import AssistantMessage, PromptInput


async def settle(pilot: Pilot[None], timeout: float = 10.0) -> None:
    """Wait until no turn is running and every posted event has been rendered."""
    app = pilot.app
    assert isinstance(app, ChatApp)
    deadline = time.monotonic() + timeout
    while True:
        await app.workers.wait_for_complete()
        await pilot.pause()
        if app.active_turn is None and not any(w.is_running for w in app.workers):
            break
        if time.monotonic() > deadline:
            raise AssertionError("the turn did not finish")
        await asyncio.sleep(0.02)
    await pilot.pause()


async def wait_for(pilot: Pilot[None], condition: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        await pilot.pause(0.02)


async def type_message(pilot: Pilot[None], text: str) -> None:
    """Put text in the message box as a paste would (line breaks kept), with the box focused."""
    prompt = pilot.app.query_one("#prompt", PromptInput)
    prompt.focus()  # the STACK.md note: focus the input first
    await pilot.pause()
    prompt.insert(text)
    await pilot.pause()


async def send(pilot: Pilot[None], text: str, *, wait: bool = True) -> None:
    await type_message(pilot, text)
    await pilot.press("enter")
    if wait:
        await settle(pilot)


def answers(app: ChatApp) -> list[str]:
    return [m.source for m in app.query(AssistantMessage)]


async def steady_cursors(pilot: Pilot[None]) -> None:
    """Stop text cursors blinking, so a snapshot never catches one mid-blink."""
    for screen in pilot.app.screen_stack:
        for widget in screen.query("TextArea, Input"):
            if isinstance(widget, TextArea | Input):
                widget.cursor_blink = False
    await pilot.pause()
