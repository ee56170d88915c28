"""``assistant chat``: the Textual app where a leader talks a transformation plan through.

The app is a thin face over the core's conversation object: it sends what the leader typed
(or the plan file they opened), renders the events that come back (streamed Markdown, the
critique, notices), and saves every message before it is shown.

Each turn runs the conversation's synchronous generator in a Textual thread worker, which posts
the events back to the UI. Esc cancels the turn's model call at once, then the worker, which
closes the generator. Commands and actions are in commands.py; what a turn is, in turns.py.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, ClassVar

from textual import on, work
from textual.app import ComposeResult, SystemCommand
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import Screen
from textual.widgets import Footer, Header, Markdown, Static, TabPane
from textual.widgets.markdown import MarkdownStream
from textual.worker import Worker, get_current_worker

from ..advice.described import DESCRIBED_TITLE
from ..advice.events import Citations, CritiqueReady, Event, Notice, TextDelta, TurnDone
from ..advice.llm.deadline import cancellable
from ..domain import Balance, Critique
from ..errors import AdvisorError
from ..knowledge import Corpus
from ..reading import read_plan
from .commands import WIDE, ChatCommands
from .sessions import UNTITLED, SessionStore
from .turns import (
    AnswerWriter,
    BackendReady,
    ConversationFactory,
    ConversationLike,
    PlanRead,
    Turn,
    TurnEnded,
    TurnEvent,
    TurnFailed,
    close_events,
    first_line_title,
    shorten,
)
from .widgets import (
    AssistantMessage,
    BalanceView,
    CritiqueCard,
    CritiquePanel,
    FindingsView,
    InterventionList,
    NoteMessage,
    PromptInput,
    SourceList,
    UserMessage,
)

__all__ = ["ChatApp", "ConversationFactory", "ConversationLike"]

log = logging.getLogger(__name__)

WELCOME = """\
## Welcome to the Transformation Advisor

I read integrated health-and-care transformation plans and point out where they lean on
**structure** (boards, mergers, programme offices, dashboards) and neglect the **relationships**
that make change last, then suggest relational interventions with cases that used them.

**To start**, do one of these:
- **paste your plan** in the box below and press **Enter**;
- press **Ctrl+O** to **open a plan file** (txt, md, docx or pdf);
- or **describe your plan** in your own words, a few sentences at a time.

Press **F1** for help at any time. Everything you say here is saved as you go.
"""


class ChatApp(ChatCommands):
    """The leader's chat."""

    TITLE = "Transformation Advisor"
    CSS_PATH = "chat.tcss"
    ENABLE_COMMAND_PALETTE = True
    HORIZONTAL_BREAKPOINTS = [(0, "-narrow"), (WIDE, "-wide")]  # noqa: RUF012 (Textual's own declaration)
    BINDINGS: ClassVar[list[Binding | tuple[str, str] | tuple[str, str, str]]] = [
        Binding("escape", "cancel", "Stop", priority=True),
        # in the footer's order; on a narrow window the last ones are cut first
        Binding("f1", "help", "Help", key_display="F1", priority=True),
        Binding("ctrl+o", "open_plan", "Open plan", priority=True),
        Binding("f2", "toggle_panel", "Critique", key_display="F2", priority=True),
        Binding("f3", "sessions", "Sessions", key_display="F3", priority=True),
        Binding("f4", "export", "Export", key_display="F4", priority=True),
        Binding("f5", "copy_answer", "Copy", key_display="F5", priority=True),
        Binding("ctrl+n", "new_session", "New", show=False, priority=True),
        Binding("ctrl+q", "quit", "Quit", priority=True),
    ]

    def __init__(self, conversation_factory: ConversationFactory, store: SessionStore, *,
                 corpus: Callable[[], Corpus], session_id: str | None = None,
                 backend: str = "offline", export_dir: Path | None = None) -> None:
        super().__init__()
        self._factory = conversation_factory
        self.store = store
        self._corpus_loader = corpus
        self._corpus: Corpus | None = None
        self.session_id: str | None = None
        self._initial_session = session_id
        self.export_dir = export_dir
        self.backend = backend
        # the conversation is built (and used) only in worker threads, under this lock
        self._conversation_lock = threading.Lock()
        self._conversation: ConversationLike | None = None
        self._conversation_state: dict[str, Any] | None = None
        self._turn_lock = threading.Lock()
        self._turn_numbers = 0
        self.active_turn: Turn | None = None
        self._turn_worker: Worker[None] | None = None
        self._stream: MarkdownStream | None = None
        self._answer: AssistantMessage | None = None
        self._answer_text: list[str] = []
        self.critique: Critique | None = None
        self.previous_balance: Balance | None = None
        self.last_answer: str | None = None
        self._conversation_built = False  # the conversation (and the advisor behind it) has been built

    # layout ------------------------------------------------------------------------------

    def compose(self) -> ComposeResult:
        yield Header(show_clock=False, icon="")
        with Horizontal(id="body"):
            with Vertical(id="chat"):
                yield VerticalScroll(id="conversation")
                yield PromptInput(id="prompt")
            with CritiquePanel(id="panel"):
                with TabPane("Balance", id="tab-balance"), VerticalScroll():
                    yield BalanceView(id="balance")
                with TabPane("Findings", id="tab-findings"), VerticalScroll():
                    yield FindingsView(id="findings")
                with TabPane("Interventions", id="tab-interventions"):
                    yield InterventionList(id="interventions")
                with TabPane("Sources", id="tab-sources"):
                    yield SourceList(id="sources")
        with Horizontal(id="statusbar"):
            yield Footer(show_command_palette=False, compact=True)
            yield Static(self.backend, id="backend")

    async def on_mount(self) -> None:
        self.sub_title = UNTITLED
        self._show_panel(False)
        self.query_one("#prompt", PromptInput).focus()
        if self.store.notice:
            self.notify(self.store.notice, title="Sessions", severity="warning", timeout=12)
        if self._initial_session is not None:
            # the window first, then the history (a long one takes a moment to lay out)
            await self._mount(NoteMessage("Opening your conversation…"))
            self.call_after_refresh(self.resume_session, self._initial_session)
        else:
            await self._show_welcome()
            self._prepare_conversation()

    async def _show_welcome(self) -> None:
        await self.query_one("#conversation", VerticalScroll).mount(Markdown(WELCOME, id="welcome"))

    def get_system_commands(self, screen: Screen[Any]) -> Iterator[SystemCommand]:
        yield from super().get_system_commands(screen)
        yield SystemCommand("Open a plan file", "Load a txt, md, docx or pdf plan", self.action_open_plan)
        yield SystemCommand("Saved conversations", "Resume, rename or delete", self.action_sessions)
        yield SystemCommand("Export to Markdown", "The conversation and latest critique", self.action_export)
        yield SystemCommand("Copy the last answer", "To the clipboard", self.action_copy_answer)
        yield SystemCommand("New conversation", "Start afresh", self.action_new_session)
        yield SystemCommand("Show or hide the critique panel", "Balance, findings, interventions",
                            self.action_toggle_panel)

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "cancel":
            # Esc stops an answer; otherwise it belongs to whatever has focus (screens, dialogs)
            return self.active_turn is not None
        if action == "toggle_panel":
            return self.critique is not None or None
        if action in ("export", "copy_answer"):
            return self.active_turn is None  # room in the footer for "esc Stop" at 80 columns
        return True

    # the conversation object --------------------------------------------------------------

    @work(thread=True, group="prepare")
    def _prepare_conversation(self) -> None:
        """Build the conversation in the background, so the first answer does not wait for it."""
        try:
            conversation = self._get_conversation()
        except Exception as exc:  # shown when the leader sends; logged here
            log.warning("could not prepare the conversation: %s", exc)
            return
        self.post_message(BackendReady(conversation.backend))

    def _get_conversation(self) -> ConversationLike:
        with self._conversation_lock:
            if self._conversation is None:
                self._conversation = self._factory(self._conversation_state)
            return self._conversation

    def _reset_conversation(self, state: dict[str, Any] | None) -> None:
        with self._conversation_lock:
            self._conversation = None
            self._conversation_state = state

    @on(BackendReady)
    def _backend_ready(self, message: BackendReady) -> None:
        self._conversation_built = True
        if self.active_turn is None:
            self._set_backend(message.backend)

    def _set_backend(self, backend: str) -> None:
        self.backend = backend
        label = self.query_one("#backend", Static)
        label.update(backend)
        label.set_class("fallback" in backend, "-fallback")

    # sending ------------------------------------------------------------------------------

    @on(PromptInput.Submitted)
    async def _submitted(self, event: PromptInput.Submitted) -> None:
        text = event.text.strip()
        if not text:
            return
        if text.startswith("/") and "\n" not in text:
            if await self.run_slash_command(text):
                self.query_one("#prompt", PromptInput).clear()
            return
        if self.active_turn is not None:
            self.notify("Still answering. Press Esc to stop it, or wait for it to finish.", severity="warning")
            return
        self.query_one("#prompt", PromptInput).clear()
        await self.send_message(text)

    async def send_message(self, text: str) -> None:
        session_id = self._ensure_session(title_hint=text)
        self.store.add_message(session_id, "user", text)  # saved before it is shown
        await self._mount(UserMessage(text))
        await self._start_turn(session_id, lambda conversation: conversation.send(text))

    async def load_plan_file(self, path: str) -> None:
        """``/load PATH`` and the open-plan prompt: read the file, then let the conversation critique it."""
        if self.active_turn is not None:
            self.notify("Still answering. Press Esc to stop it first.", severity="warning")
            return
        self._read_plan(path)

    @work(thread=True, group="read", exit_on_error=False)
    def _read_plan(self, path: str) -> None:
        try:
            doc = read_plan(Path(os.path.expanduser(path)))
        except AdvisorError as exc:
            self.call_from_thread(self.notify, str(exc), title="Could not open the plan", severity="error",
                                  timeout=12)
            return
        except Exception as exc:  # a broken file must never take the chat down
            log.exception("reading %s", path)
            self.call_from_thread(self.notify, f"{path} could not be read: {exc}", title="Could not open the plan",
                                  severity="error", timeout=12)
            return
        self.post_message(PlanRead(doc))

    @on(PlanRead)
    async def _plan_read(self, message: PlanRead) -> None:
        doc = message.doc
        if self.active_turn is not None:
            self.notify("Still answering. Press Esc to stop it first.", severity="warning")
            return
        name = Path(doc.source).name
        note = f"Opened the plan {name} ({len(doc.text):,} characters)."
        session_id = self._ensure_session(title_hint=doc.title or name)
        self.store.add_message(session_id, "user", note)
        await self._mount(UserMessage(note))
        await self._start_turn(session_id, lambda conversation: conversation.load_plan(doc))

    def _ensure_session(self, *, title_hint: str) -> str:
        if self.session_id is None:
            info = self.store.create(backend=self.backend)
            self.session_id = info.id
        first_line = next((line.strip("#*- ").strip() for line in title_hint.splitlines() if line.strip()), "")
        if first_line and self.store.set_title_if_untitled(self.session_id, shorten(first_line, 80)):
            self.sub_title = self.store.get(self.session_id).title
        return self.session_id

    async def _start_turn(self, session_id: str, start: Callable[[ConversationLike], Iterator[Event]]) -> None:
        answer_id = self.store.add_message(session_id, "assistant", "", status="streaming")
        self._turn_numbers += 1
        turn = Turn(self._turn_numbers, session_id, answer_id)
        self.active_turn = turn
        self._answer_text = []
        waiting = "working on it…" if self._conversation_built else "getting ready (the first answer takes a few seconds)…"
        self._answer = AssistantMessage(status=waiting)
        await self._mount(self._answer)
        self._stream = Markdown.get_stream(self._answer)
        self.query_one("#conversation", VerticalScroll).anchor()
        self.refresh_bindings()
        self._turn_worker = self._run_turn(turn, start)

    @work(thread=True, group="turn", exit_on_error=False)
    def _run_turn(self, turn: Turn, start: Callable[[ConversationLike], Iterator[Event]]) -> None:
        worker = get_current_worker()
        answer = AnswerWriter(self.store, turn, self.post_message)
        try:
            with self._turn_lock, cancellable(turn.cancellation):
                conversation = self._get_conversation()
                events = start(conversation)
                try:
                    for event in events:
                        if worker.is_cancelled:
                            break
                        answer.handle(event, conversation)
                finally:
                    close_events(events)  # closing the generator is what cancels the generation
                answer.flush()
                if worker.is_cancelled and not answer.done:
                    answer.stopped(conversation)
        except AdvisorError as exc:
            answer.failed()
            self.post_message(TurnFailed(turn, str(exc), "The advisor could not answer"))
        except Exception as exc:
            log.exception("chat turn failed")
            answer.failed()
            self.post_message(TurnFailed(turn, f"{type(exc).__name__}: {exc}", "Something went wrong"))
        finally:
            self.post_message(TurnEnded(turn))

    # rendering a turn's events ---------------------------------------------------------------

    @on(TurnEvent)
    async def _turn_event(self, message: TurnEvent) -> None:
        if message.turn != self.active_turn or self._answer is None:
            return  # a stopped turn's late events
        event = message.event
        if isinstance(event, TextDelta):
            if not self._answer_text:
                self._answer.set_status(None)
            self._answer_text.append(event.text)
            if self._stream is not None:
                await self._stream.write(event.text)
        elif isinstance(event, CritiqueReady):
            await self._show_critique(event.critique, event.previous, announce=True)
        elif isinstance(event, Citations):
            self.query_one("#sources", SourceList).show(event.references)
        elif isinstance(event, Notice):
            self.notify(event.message, title="Note" if event.level == "info" else "Please note",
                        severity="warning" if event.level == "warning" else "information", timeout=12)
        elif isinstance(event, TurnDone):
            self._finish_answer(event.answer)
            self._set_backend(event.backend)
            self.last_answer = event.answer
            self.active_turn = None
            self.refresh_bindings()

    def _finish_answer(self, answer: str | None, status: str | None = None) -> None:
        """Close the answer's stream. Rendering a long answer takes a moment, so it is finished
        in the background and the leader can carry on meanwhile."""
        stream, widget, streamed = self._stream, self._answer, "".join(self._answer_text)
        self._stream = self._answer = None
        if widget is None:
            return
        widget.set_status(status)
        self.run_worker(self._settle_answer(stream, widget, answer, streamed), group="render",
                        exit_on_error=False)

    async def _settle_answer(self, stream: MarkdownStream | None, widget: AssistantMessage, answer: str | None,
                             streamed: str) -> None:
        if stream is not None:
            await stream.stop()
        async with widget.lock:  # stop() can return while a last append is still being laid out
            pass
        if answer is not None and answer != streamed:
            await widget.update(answer)
        self.call_after_refresh(self._show_start_of, widget)

    def _show_start_of(self, answer: AssistantMessage) -> None:
        """A finished answer taller than the view is shown from its start, where the verdict is."""
        conversation = self.query_one("#conversation", VerticalScroll)
        if answer.is_attached and answer.outer_size.height > conversation.scrollable_content_region.height:
            conversation.anchor(False)
            conversation.scroll_to_widget(answer, top=True, animate=False)

    @on(PromptInput.ScrollConversation)
    def _scroll_conversation(self, message: PromptInput.ScrollConversation) -> None:
        conversation = self.query_one("#conversation", VerticalScroll)
        if message.pages < 0:
            conversation.scroll_page_up()
        else:
            conversation.scroll_page_down()

    @on(TurnFailed)
    async def _turn_failed(self, message: TurnFailed) -> None:
        if message.turn != self.active_turn:
            return
        self._finish_answer(None, "failed")
        await self._mount(NoteMessage(f"{message.title}: {message.error}"))
        self.notify(message.error, title=message.title, severity="error", timeout=12)
        self.active_turn = None
        self.refresh_bindings()

    @on(TurnEnded)
    def _turn_ended(self, message: TurnEnded) -> None:
        if message.turn == self.active_turn:  # ended without TurnDone: treat as stopped
            self.active_turn = None
            self.refresh_bindings()

    async def action_cancel(self) -> None:
        turn = self.active_turn
        if turn is None:
            return
        turn.cancellation.cancel()
        if self._turn_worker is not None:
            self._turn_worker.cancel()
        self.active_turn = None
        self._finish_answer(None, "stopped")
        self.refresh_bindings()
        self.notify("Stopped. What was written so far is kept.", timeout=4)

    async def _show_critique(self, critique: Critique, previous: Balance | None, *, announce: bool) -> None:
        first = self.critique is None
        self.critique = critique
        self.previous_balance = previous
        self.query_one("#balance", BalanceView).show(critique, previous)
        self.query_one("#findings", FindingsView).show(critique)
        self.query_one("#interventions", InterventionList).show(critique)
        self.query_one("#sources", SourceList).show(critique.references, replace=True)
        if self._is_wide():
            self._show_panel(True)
        if announce:
            self.query_one("#panel", CritiquePanel).active = "tab-balance"  # a new critique opens on its balance
            await self._mount(CritiqueCard(critique, previous), after_answer=True)
            if first and critique.plan.title and self.session_id is not None:
                self._retitle_from_plan(critique.plan.title)
        self.refresh_bindings()

    def _retitle_from_plan(self, title: str) -> None:
        """A session named after the first thing typed is renamed after its plan, once.

        A plan described in conversation has no title of its own; the session keeps the
        leader's first words.
        """
        assert self.session_id is not None
        if title == DESCRIBED_TITLE:
            return
        info = self.store.get(self.session_id)
        first = next((m for m in self.store.messages(self.session_id) if m.role == "user"), None)
        if first is not None and info.title != title and info.title == first_line_title(first.content):
            self.store.rename(self.session_id, title)
            self.sub_title = title

    async def _mount(self, widget: Any, *, after_answer: bool = False) -> None:
        conversation = self.query_one("#conversation", VerticalScroll)
        welcome = conversation.query("#welcome")
        if welcome:
            await welcome.remove()
        if after_answer and self._answer is not None:
            await conversation.mount(widget, after=self._answer)
        else:
            await conversation.mount(widget)

    # the corpus ----------------------------------------------------------------------------

    @property
    def corpus(self) -> Corpus:
        if self._corpus is None:
            self._corpus = self._corpus_loader()
        return self._corpus
