"""What a chat turn is, as the window runs it: the conversation it talks to, the turn's identity
and cancellation, the messages a worker posts, and the writer that saves each event before the
screen shows it."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, Protocol

from textual.app import App
from textual.message import Message

from ..advice.events import CritiqueReady, Event, TextDelta, TurnDone
from ..advice.llm.deadline import Cancellation
from ..domain import Critique
from ..reading import PlanDocument
from .sessions import SessionStore

__all__ = ["AnswerWriter", "BackendReady", "ConversationFactory", "ConversationLike", "PlanRead", "Turn",
           "TurnEnded", "TurnEvent", "TurnFailed", "close_events", "copy_text", "first_line_title", "shorten"]

TITLE_WIDTH = 80


class ConversationLike(Protocol):
    """The core's ``Conversation`` as the chat uses it (tests inject fakes)."""

    @property
    def critique(self) -> Critique | None: ...

    @property
    def backend(self) -> str: ...

    def send(self, message: str) -> Iterator[Event]: ...

    def load_plan(self, doc: PlanDocument) -> Iterator[Event]: ...

    def to_state(self) -> dict[str, Any]: ...


ConversationFactory = Callable[[dict[str, Any] | None], ConversationLike]
"""Build a conversation, fresh (``None``) or from a saved state. Called in a worker thread."""


@dataclass(frozen=True)
class Turn:
    number: int
    session_id: str
    answer_id: int
    # Esc cancels the model call in flight at once (advice/llm/deadline.py), not at its next token
    cancellation: Cancellation = field(default_factory=Cancellation, compare=False)


class TurnEvent(Message):
    def __init__(self, turn: Turn, event: Event) -> None:
        super().__init__()
        self.turn = turn
        self.event = event


class TurnFailed(Message):
    def __init__(self, turn: Turn, error: str, title: str) -> None:
        super().__init__()
        self.turn = turn
        self.error = error
        self.title = title


class TurnEnded(Message):
    """The worker has finished with the turn (done, failed or stopped)."""

    def __init__(self, turn: Turn) -> None:
        super().__init__()
        self.turn = turn


class PlanRead(Message):
    def __init__(self, doc: PlanDocument) -> None:
        super().__init__()
        self.doc = doc


class BackendReady(Message):
    def __init__(self, backend: str) -> None:
        super().__init__()
        self.backend = backend


def copy_text(app: App[Any], text: str) -> str:
    """Copy with pyperclip when it is installed and works, else with the terminal (OSC 52)."""
    try:
        import pyperclip  # type: ignore[import-not-found,unused-ignore]

        pyperclip.copy(text)
        return "system"
    except Exception:  # not installed, or no clipboard on this machine
        app.copy_to_clipboard(text)
        return "terminal"


class AnswerWriter:
    """Saves a turn's events, then posts them to the screen: nothing is shown before it is saved.

    Text that arrives faster than the screen can usefully redraw (the offline advisor yields
    hundreds of pieces at once) is gathered and saved and shown together, at most
    ``FLUSH_SECONDS`` late; text from a slow model is saved and shown piece by piece.
    """

    FLUSH_SECONDS = 0.05

    def __init__(self, store: SessionStore, turn: Turn, post: Callable[[Message], bool]) -> None:
        self.store, self.turn, self.post = store, turn, post
        self.text: list[str] = []
        self.pending: list[str] = []
        self.last_flush = 0.0
        self.done = False

    def handle(self, event: Event, conversation: ConversationLike) -> None:
        if isinstance(event, TextDelta):
            self.pending.append(event.text)
            if time.monotonic() - self.last_flush >= self.FLUSH_SECONDS:
                self.flush()
            return
        self.flush()
        if isinstance(event, CritiqueReady):
            self.store.update_message(self.turn.answer_id, critique=event.critique.model_dump(mode="json"))
        elif isinstance(event, TurnDone):
            self.store.update_message(self.turn.answer_id, content=event.answer, status="complete",
                                      backend=event.backend)
            self.store.save_state(self.turn.session_id, conversation.to_state(), backend=event.backend)
            self.done = True
        self.post(TurnEvent(self.turn, event))

    def flush(self) -> None:
        if not self.pending:
            return
        piece = "".join(self.pending)
        self.pending.clear()
        self.text.append(piece)
        self.store.update_message(self.turn.answer_id, content="".join(self.text))
        self.post(TurnEvent(self.turn, TextDelta(piece)))
        self.last_flush = time.monotonic()

    def stopped(self, conversation: ConversationLike) -> None:
        self.store.update_message(self.turn.answer_id, content="".join(self.text), status="stopped")
        self.store.save_state(self.turn.session_id, conversation.to_state())

    def failed(self) -> None:
        self.store.update_message(self.turn.answer_id, content="".join(self.text), status="failed")


def close_events(events: Iterator[Event]) -> None:
    close = getattr(events, "close", None)
    if callable(close):
        close()


def shorten(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 1].rstrip() + "…"


def first_line_title(content: str) -> str:
    first = next((line.strip("#*- ").strip() for line in content.splitlines() if line.strip()), "")
    return shorten(first, TITLE_WIDTH)
