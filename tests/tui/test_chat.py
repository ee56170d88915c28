"""Pilot tests of the chat: what a leader does, and what they see."""

from __future__ import annotations

from pathlib import Path

import pytest
from textual.widgets import DataTable, Input, Markdown, TabbedContent
from textual.widgets.markdown import MarkdownStream

from assistant.tui.app import ChatApp
from assistant.tui.screens import (
    HelpScreen,
    OpenPlanScreen,
    SessionsScreen,
    SourceScreen,
    TextPromptScreen,
)
from assistant.tui.sessions import SessionStore
from assistant.tui.widgets import (
    AssistantMessage,
    BalanceView,
    CritiqueCard,
    InterventionList,
    PromptInput,
    SourceList,
    UserMessage,
)

from .conftest import AppMaker, make_store
from .fakes import (
    CRITIQUE,
    CRITIQUE_ANSWER,
    DATA,
    FOLLOW_UP_ANSWER,
    PLAN,
    REVISED,
    REVISED_PLAN,
    FakeFactory,
)
from .helpers import answers, send, settle, type_message, wait_for


def notices(app: ChatApp) -> list[str]:
    return [f"{n.title} {n.message}" for n in app._notifications]


async def test_send_a_plan_streams_the_answer_and_shows_the_balance(make_app: AppMaker, store: SessionStore) -> None:
    app = make_app()
    async with app.run_test(size=(120, 40)) as pilot:
        await send(pilot, PLAN)
        assert answers(app) == [CRITIQUE_ANSWER]
        assert app.query_one(AssistantMessage).border_subtitle == ""
        # the balance view beside the conversation, from the critique
        panel = app.query_one("#panel", TabbedContent)
        assert panel.display and panel.active == "tab-balance"
        balance = app.query_one(BalanceView)
        assert balance.critique == CRITIQUE
        rendered = app.query_one(BalanceView).render()
        text = "".join(str(r) for r in rendered.renderables)  # type: ignore[attr-defined]
        assert "Relational share 0%" in text and "Strategy" in text and "5 structural" in text
        assert "17 short-term" in text
        assert app.query_one(CritiqueCard).critique == CRITIQUE
        # the plan shows as sent, folded after its first lines
        assert app.query_one(UserMessage).content_text == PLAN.strip()
        # and both sides were saved
        [session] = store.list_sessions()
        assert session.title == "Northfield and Vale Community Services Integration Plan 2025-2027"
        saved = store.messages(session.id)
        assert [(m.role, m.status) for m in saved] == [("user", "complete"), ("assistant", "complete")]
        assert saved[1].content == CRITIQUE_ANSWER and saved[1].critique is not None


async def test_each_piece_of_an_answer_is_saved_before_it_is_shown(make_app: AppMaker, store: SessionStore,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[tuple[str, str]] = []
    write = MarkdownStream.write

    async def checked_write(self: MarkdownStream, fragment: str) -> None:
        saved = store.messages(store.list_sessions()[0].id)[-1].content
        seen.append((fragment, saved))
        await write(self, fragment)

    monkeypatch.setattr(MarkdownStream, "write", checked_write)
    app = make_app(delay=0.06)  # slower than the screen's gathering interval: each piece is shown
    async with app.run_test() as pilot:
        await send(pilot, "why did you flag the PMO?")
    shown = ""
    assert len(seen) > 3
    for fragment, saved in seen:
        shown += fragment
        assert saved.startswith(shown)  # the database already held everything on screen


async def test_enter_sends_and_ctrl_j_starts_a_new_line(make_app: AppMaker) -> None:
    app = make_app()
    async with app.run_test() as pilot:
        await type_message(pilot, "first line")
        await pilot.press("ctrl+j")
        await pilot.press(*"second")
        prompt = app.query_one(PromptInput)
        assert prompt.text == "first line\nsecond"
        assert not app.query(UserMessage)
        await pilot.press("enter")
        await settle(pilot)
        assert app.query_one(UserMessage).content_text == "first line\nsecond"
        assert prompt.text == ""


async def test_load_a_plan_file(make_app: AppMaker, store: SessionStore) -> None:
    factory = FakeFactory()
    app = make_app(factory)
    async with app.run_test(size=(120, 40)) as pilot:
        await send(pilot, f"/load {DATA / 'plan.md'}")
        await settle(pilot)
        assert factory.last.sent == [f"<plan {DATA / 'plan.md'}>"]
        assert app.critique == CRITIQUE
        assert "Opened the plan plan.md (2,180 characters)." in app.query_one(UserMessage).content_text
        [session] = store.list_sessions()
        assert session.title == "Northfield and Vale Community Services Integration Plan 2025-2027"


async def test_open_plan_prompt_completes_paths(make_app: AppMaker, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(DATA.parent)
    factory = FakeFactory()
    app = make_app(factory)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("ctrl+o")
        await pilot.pause()
        assert isinstance(app.screen, OpenPlanScreen)
        await pilot.press(*"da", "tab")  # completes the folder
        field = app.screen.query_one("#path", Input)
        assert field.value == "data/"
        await pilot.press(*"plan-r", "tab")
        assert field.value == "data/plan-revised.md"
        await pilot.press("enter")
        await pilot.pause()
        await settle(pilot)
        assert factory.last.sent == ["<plan data/plan-revised.md>"]
        assert app.critique is not None


@pytest.mark.parametrize(("name", "content", "message"), [
    ("missing.docx", None, "does not exist"),
    ("binary.txt", b"\x00\x01\x02\x03" * 100, "binary file"),
    ("broken.docx", b"PK\x03\x04 not really a docx", "broken.docx"),
    ("empty.md", b"   \n", "is empty"),
])
async def test_an_unreadable_file_gives_a_notification_not_a_crash(
        make_app: AppMaker, tmp_path: Path, name: str, content: bytes | None, message: str) -> None:
    path = tmp_path / name
    if content is not None:
        path.write_bytes(content)
    app = make_app()
    async with app.run_test() as pilot:
        await send(pilot, f"/load {path}")
        await settle(pilot)
        assert any(message in n and "Could not open the plan" in n for n in notices(app)), notices(app)
        assert app.critique is None and not app.query(AssistantMessage)
        await send(pilot, "is the app still alive?")  # it is
        assert answers(app) == [FOLLOW_UP_ANSWER]


async def test_follow_up_question(make_app: AppMaker, store: SessionStore) -> None:
    factory = FakeFactory()
    app = make_app(factory)
    async with app.run_test(size=(120, 40)) as pilot:
        await send(pilot, PLAN)
        await send(pilot, "why did you flag the PMO?")
        assert factory.last.sent[-1] == "why did you flag the PMO?"
        assert answers(app) == [CRITIQUE_ANSWER, FOLLOW_UP_ANSWER]
        assert app.last_answer == FOLLOW_UP_ANSWER
        assert "case:torbay" in app.query_one(SourceList).references
        saved = store.messages(store.list_sessions()[0].id)
        assert [m.role for m in saved] == ["user", "assistant", "user", "assistant"]


async def test_a_revised_plan_shows_the_balance_before_and_after(make_app: AppMaker) -> None:
    app = make_app()
    async with app.run_test(size=(120, 40)) as pilot:
        await send(pilot, PLAN)
        await send(pilot, REVISED_PLAN)
        balance = app.query_one(BalanceView)
        assert balance.critique == REVISED and balance.previous == CRITIQUE.balance
        card = list(app.query(CritiqueCard))[-1]
        assert "0% → 56%" in str(card.render())


async def test_resume_a_saved_session_after_restarting_the_app(make_app: AppMaker, store_path: Path) -> None:
    first = make_store(store_path)
    app = make_app(store_=first)
    async with app.run_test(size=(120, 40)) as pilot:
        await send(pilot, PLAN)
        await send(pilot, "why did you flag the PMO?")
        session_id = app.session_id
    first.close()
    assert session_id is not None

    again = SessionStore(store_path)
    factory = FakeFactory()
    app = make_app(factory, session_id=session_id, store_=again)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        assert answers(app) == [CRITIQUE_ANSWER, FOLLOW_UP_ANSWER]
        assert app.critique == CRITIQUE and app.query_one("#panel").display
        assert app.sub_title == "Northfield and Vale Community Services Integration Plan 2025-2027"
        # the conversation carries on from its saved state
        assert factory.last.critique == CRITIQUE and len(factory.last.turns) == 4
        await send(pilot, "show me a case like ours")
        assert factory.last.sent == ["show me a case like ours"]
        assert len(again.messages(session_id)) == 6
    again.close()


async def test_sessions_screen_resumes_renames_and_deletes(make_app: AppMaker, store: SessionStore) -> None:
    older = store.create("Torbay refresh")
    store.add_message(older.id, "user", "We are merging two trusts.")
    store.add_message(older.id, "assistant", "Tell me about your leadership.")
    app = make_app()
    async with app.run_test(size=(120, 40)) as pilot:
        await send(pilot, "why did you flag the PMO?")
        await pilot.press("f3")
        await pilot.pause()
        assert isinstance(app.screen, SessionsScreen)
        table = app.screen.query_one(DataTable)
        assert table.row_count == 2
        # rename the older one (second row)
        await pilot.press("down", "r")
        await pilot.pause()
        assert isinstance(app.screen, TextPromptScreen)
        field = app.screen.query_one(Input)
        field.value = "Torbay refresh 2026"
        await pilot.press("enter")
        await pilot.pause()
        assert store.get(older.id).title == "Torbay refresh 2026"
        # resume it
        await pilot.press("enter")
        await pilot.pause()
        await settle(pilot)
        assert app.session_id == older.id
        assert answers(app) == ["Tell me about your leadership."]
        assert app.sub_title == "Torbay refresh 2026"
        # delete the other one (most recently used, so first)
        await pilot.press("f3")
        await pilot.pause()
        await pilot.press("d")
        await pilot.pause()
        await pilot.press("y")
        await pilot.pause()
        assert [s.id for s in store.list_sessions()] == [older.id]
        assert app.session_id == older.id
        # deleting the open one starts a new conversation
        await pilot.press("d")
        await pilot.pause()
        await pilot.press("y", "escape")
        await settle(pilot)
        assert store.list_sessions() == [] and app.session_id is None and app.query("#welcome")


async def test_new_conversation(make_app: AppMaker, store: SessionStore) -> None:
    app = make_app()
    async with app.run_test() as pilot:
        await send(pilot, PLAN)
        await send(pilot, "/new")
        await settle(pilot)
        assert app.session_id is None and app.critique is None
        assert not app.query(AssistantMessage) and app.query("#welcome")
        await send(pilot, "We are merging the two community trusts next April.")
        assert len(store.list_sessions()) == 2


async def test_export_writes_the_conversation_and_the_latest_critique(make_app: AppMaker, tmp_path: Path) -> None:
    app = make_app()
    target = tmp_path / "out" / "board-paper.md"
    async with app.run_test() as pilot:
        await send(pilot, PLAN)
        await send(pilot, "why did you flag the PMO?")
        await send(pilot, f"/export {target}")
        await pilot.pause()
        assert any(str(target) in n for n in notices(app))
        await pilot.press("f4")  # the default place: never overwrites
        await pilot.pause()
    text = target.read_text()
    assert text.startswith("# Northfield and Vale Community Services Integration Plan 2025-2027\n")
    assert "**You:**" in text and "**Advisor:**" in text
    assert "> why did you flag the PMO?" in text and FOLLOW_UP_ANSWER in text
    assert "## Critique of Northfield" in text and CRITIQUE.verdict.headline in text
    for finding in CRITIQUE.findings:
        assert finding.evidence[0].quote in text
    exported = sorted((tmp_path / "exports").iterdir())
    assert [p.name for p in exported] == ["northfield-and-vale-community-services-integration-plan-2025-2027.md"]


async def test_esc_cancels_a_slow_generation(make_app: AppMaker, store: SessionStore) -> None:
    factory = FakeFactory(delay=0.15)
    app = make_app(factory)
    async with app.run_test() as pilot:
        await send(pilot, "why did you flag the PMO?", wait=False)
        await wait_for(pilot, lambda: bool(answers(app)) and len(answers(app)[0]) >= 24)
        assert app.active_turn is not None
        await pilot.press("escape")
        await pilot.pause()
        assert app.active_turn is None  # the screen is free at once
        assert factory.last.closed.wait(2.0)  # and the generator was closed: generation stopped
        await settle(pilot)
        shown = answers(app)[0]
        assert 0 < len(shown) < len(FOLLOW_UP_ANSWER)
        assert app.query_one(AssistantMessage).border_subtitle == "stopped"
        saved = store.messages(store.list_sessions()[0].id)[-1]
        assert saved.status == "stopped" and FOLLOW_UP_ANSWER.startswith(saved.content) and saved.content
        # the leader can carry on
        factory.last.delay = 0
        await send(pilot, "show me a case like ours")
        assert answers(app)[-1] == FOLLOW_UP_ANSWER


async def test_a_fallback_is_announced_in_a_notification_and_the_footer(make_app: AppMaker) -> None:
    app = make_app(fallback="timeout", backend="ollama/llama3.1")
    async with app.run_test() as pilot:
        await settle(pilot)
        assert str(app.query_one("#backend").render()) == "ollama/llama3.1"
        await send(pilot, PLAN)
        label = app.query_one("#backend")
        assert str(label.render()) == "offline (fallback: timeout)" and label.has_class("-fallback")
        assert any("timeout" in n for n in notices(app))


async def test_copy_the_last_answer(make_app: AppMaker, monkeypatch: pytest.MonkeyPatch) -> None:
    import sys

    monkeypatch.setitem(sys.modules, "pyperclip", None)  # not installed: the terminal's clipboard (OSC 52)
    app = make_app()
    async with app.run_test() as pilot:
        await pilot.press("f5")
        assert any("no answer to copy" in n for n in notices(app))
        await send(pilot, "why did you flag the PMO?")
        await pilot.press("f5")
        assert app.clipboard == FOLLOW_UP_ANSWER


async def test_selecting_an_intervention_or_case_opens_its_full_text(make_app: AppMaker) -> None:
    app = make_app()
    async with app.run_test(size=(120, 40)) as pilot:
        await send(pilot, PLAN)
        app.query_one("#panel", TabbedContent).active = "tab-interventions"
        await pilot.pause()
        app.query_one(InterventionList).focus()
        await pilot.press("enter")
        await pilot.pause()
        assert isinstance(app.screen, SourceScreen)
        assert app.screen.title_text == "Relational coordination baseline and mapping"
        text = app.screen.query_one(Markdown).source
        assert "## First steps" in text and "## Pitfalls" in text
        await pilot.press("escape")
        app.query_one("#panel", TabbedContent).active = "tab-sources"
        await pilot.pause()
        sources = app.query_one(SourceList)
        sources.focus()
        assert sources.get_option_at_index(0).id == "case:jonkoping-esther"  # cases first
        await pilot.press("enter")
        await pilot.pause()
        assert isinstance(app.screen, SourceScreen)
        assert "## Lessons" in app.screen.query_one(Markdown).source


async def test_the_panel_takes_the_screen_at_80_columns(make_app: AppMaker) -> None:
    app = make_app()
    async with app.run_test(size=(80, 24)) as pilot:
        await send(pilot, PLAN)
        assert not app.query_one("#panel").display  # the answer stays in view
        await pilot.press("f2")
        assert app.query_one("#panel").display and not app.query_one("#chat").display
        await pilot.press("f2")
        assert not app.query_one("#panel").display and app.query_one("#chat").display
        assert app.focused is app.query_one(PromptInput)
        await pilot.press("f2", "right", "escape")  # Esc also comes back
        assert app.query_one("#panel", TabbedContent).active == "tab-findings"
        assert not app.query_one("#panel").display and app.focused is app.query_one(PromptInput)


async def test_the_layout_follows_the_window_size(make_app: AppMaker) -> None:
    app = make_app()
    async with app.run_test(size=(120, 40)) as pilot:
        await send(pilot, PLAN)
        assert app.query_one("#panel").display and app.query_one("#chat").display
        await pilot.resize_terminal(80, 24)
        await pilot.pause(0.2)
        assert not app.query_one("#panel").display and app.query_one("#chat").display
        await pilot.resize_terminal(120, 40)
        await pilot.pause(0.2)
        assert app.query_one("#panel").display and app.query_one("#chat").display


async def test_f2_goes_to_the_panel_and_back_when_it_is_beside_the_chat(make_app: AppMaker) -> None:
    app = make_app()
    async with app.run_test(size=(120, 40)) as pilot:
        await send(pilot, PLAN)
        await pilot.press("f2", "right", "right")
        panel = app.query_one("#panel", TabbedContent)
        assert panel.active == "tab-interventions" and panel.has_focus_within
        await pilot.press("down", "enter")  # into the list, and open the highlighted intervention
        await pilot.pause()
        assert isinstance(app.screen, SourceScreen)
        await pilot.press("escape", "f2")
        assert app.focused is app.query_one(PromptInput) and panel.display and app.query_one("#chat").display


async def test_help_and_unknown_commands(make_app: AppMaker) -> None:
    app = make_app()
    async with app.run_test() as pilot:
        await send(pilot, "/help")
        assert isinstance(app.screen, HelpScreen)
        await pilot.press("escape")
        await send(pilot, "/exprot")
        assert any("There is no command /exprot. Did you mean /export?" in n for n in notices(app))
        assert app.query_one(PromptInput).text == "/exprot"  # kept, to fix the typo


def test_no_color_is_respected(make_app: AppMaker, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NO_COLOR", "1")
    assert make_app().no_color



async def test_a_long_answer_is_shown_from_its_start(make_app: AppMaker) -> None:
    factory = FakeFactory()
    app = make_app(factory)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        factory.last.answer = "**The verdict first.**\n\n" + "\n\n".join(f"Point {n}." for n in range(60))
        await send(pilot, "why?")
        await pilot.pause(0.2)
        conversation = app.query_one("#conversation")
        answer = app.query_one(AssistantMessage)
        assert answer.outer_size.height > conversation.size.height
        assert abs(answer.region.y - conversation.region.y) <= 1  # its top, where the verdict is, is in view


def test_export_keeps_one_outline() -> None:
    from datetime import UTC, datetime

    from assistant.tui.export import conversation_markdown
    from assistant.tui.sessions import MessageRecord

    when = datetime(2026, 3, 2, tzinfo=UTC)
    messages = [MessageRecord(1, "user", "# Our plan\n- Merge the trusts.", "complete", None, None, when),
                MessageRecord(2, "assistant", "# Critique\n\n## What we found\n\n```\n# not a heading\n```",
                              "stopped", "offline", None, when)]
    text = conversation_markdown("Our plan", messages, CRITIQUE)
    headings = [line for line in text.splitlines() if line.startswith("#")]
    assert [h for h in headings if h.startswith("# ")] == ["# Our plan", "# not a heading"]  # one title (and code)
    assert text.index("## Critique of") < text.index("## Conversation")  # the critique first
    assert "### Critique\n" in text and "#### What we found" in text and "\n# not a heading\n" in text
    assert "> # Our plan\n> - Merge the trusts." in text
    assert "**Advisor:** *(stopped before it finished)*" in text


async def test_a_resumed_conversation_folds_earlier_long_answers(make_app: AppMaker, store: SessionStore) -> None:
    from assistant.tui.widgets import FoldedAnswer

    session = store.create("Long one")
    long_answer = "# Critique of our plan\n\n" + "\n\n".join(f"Point {n}." for n in range(400))
    for question in ("our plan", "why?", "and then?"):
        store.add_message(session.id, "user", question)
        store.add_message(session.id, "assistant", long_answer)
    app = make_app(session_id=session.id)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        folded = app.query_one(FoldedAnswer)
        assert "Critique of our plan" in str(folded.render())
        assert len(app.query(AssistantMessage)) == 2  # the last two in full
        folded.focus()
        await pilot.press("enter")
        await settle(pilot)
        assert not app.query(FoldedAnswer) and answers(app) == [long_answer] * 3


def test_the_balance_view_reads_without_colour() -> None:
    """Each kind of action has its own glyph, so the bars read with NO_COLOR too."""
    from rich.console import Console

    from assistant.tui.widgets import balance_renderable

    console = Console(width=60, no_color=True, record=True)
    console.print(balance_renderable(REVISED.balance, CRITIQUE.balance, width=60))
    text = console.export_text()
    assert "Relational share 0% → 56%" in text
    people = next(line for line in text.splitlines() if line.startswith("People"))
    assert "█" in people and "▓" in people and "▒" in people
    assert "was 4 · 0 · 0" in text and "(was 17 · 0 · 0)" in text
