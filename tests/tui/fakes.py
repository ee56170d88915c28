"""Fakes at the chat's seam: a scripted conversation that answers like the core's, deterministically."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from assistant.advice.events import Citations, CritiqueReady, Event, Notice, TextDelta, TurnDone
from assistant.domain import Critique
from assistant.reading import PlanDocument

DATA = Path(__file__).parent / "data"
CRITIQUE = Critique.model_validate_json((DATA / "critique.json").read_text())
REVISED = Critique.model_validate_json((DATA / "critique-revised.json").read_text())
PLAN = (DATA / "plan.md").read_text()
REVISED_PLAN = (DATA / "plan-revised.md").read_text()

CRITIQUE_ANSWER = (
    "**Severe structural overuse.** None of the plan's 17 actions builds working relationships "
    "concretely.\n\n"
    "The plan leans on a *Programme Management Office*, gateways and a merger, and treats staff as "
    "people to keep informed:\n\n"
    "> “We will keep staff informed through a monthly integration newsletter”\n\n"
    "Start with a relational coordination baseline, and co-produce the new pathways with the people "
    "who use them. The critique panel has the balance, findings and interventions."
)
FOLLOW_UP_ANSWER = (
    "I flagged the PMO because the plan presents its **RAID logs, highlight reports and Gantt chart** "
    "as deliverables, not as means to the leaders' vision.\n\n"
    "A case like yours is **Torbay**: its integrated teams came before the organisational superstructure."
)


def chunks(text: str, size: int = 12) -> list[str]:
    return [text[i:i + size] for i in range(0, len(text), size)]


class FakeConversation:
    """Answers a pasted plan with the frozen critique, and anything else with a canned answer.

    ``delay`` slows each streamed piece (for cancel tests); ``closed`` records that the
    generator was closed, which is how the chat cancels a generation.
    """

    def __init__(self, state: dict[str, Any] | None = None, *, delay: float = 0.0,
                 backend: str = "offline", fallback: str | None = None) -> None:
        state = state or {}
        self.plan_text: str | None = state.get("plan_text")
        self.critique: Critique | None = (Critique.model_validate(state["critique"])
                                          if state.get("critique") else None)
        self.turns: list[dict[str, Any]] = list(state.get("turns", []))
        self._backend = backend
        self.fallback = fallback
        self.delay = delay
        self.closed = threading.Event()
        self.sent: list[str] = []
        self.answer = FOLLOW_UP_ANSWER

    @property
    def backend(self) -> str:
        return self._backend

    def send(self, message: str) -> Iterator[Event]:
        self.sent.append(message)
        if message.count("\n") >= 5:
            return self._critique_turn(message)
        return self._answer_turn(message, self.answer)

    def load_plan(self, doc: PlanDocument) -> Iterator[Event]:
        self.sent.append(f"<plan {doc.source}>")
        return self._critique_turn(doc.text)

    def _stream(self, text: str) -> Iterator[Event]:
        for piece in chunks(text):
            if self.delay:
                time.sleep(self.delay)
            yield TextDelta(piece)

    def _critique_turn(self, plan: str) -> Iterator[Event]:
        try:
            revised = self.critique is not None
            critique = REVISED if revised else CRITIQUE
            previous = self.critique.balance if self.critique is not None else None
            yield from self._stream(CRITIQUE_ANSWER)
            backend = self._backend
            if self.fallback:
                backend = f"offline (fallback: {self.fallback})"
                yield Notice(f"The model failed ({self.fallback}); this is the offline critique.", level="warning")
            self.plan_text, self.critique = plan, critique
            yield CritiqueReady(critique, previous)
            self.turns += [{"role": "user", "content": plan}, {"role": "assistant", "content": CRITIQUE_ANSWER}]
            yield TurnDone(backend, CRITIQUE_ANSWER)
        finally:
            self.closed.set()

    def _answer_turn(self, message: str, answer: str) -> Iterator[Event]:
        try:
            yield from self._stream(answer)
            yield Citations([r for r in CRITIQUE.references if r.id == "case:torbay"])
            self.turns += [{"role": "user", "content": message}, {"role": "assistant", "content": answer}]
            yield TurnDone(self._backend, answer)
        finally:
            self.closed.set()

    def to_state(self) -> dict[str, Any]:
        return {"plan_text": self.plan_text,
                "critique": self.critique.model_dump(mode="json") if self.critique else None,
                "turns": self.turns}


class FakeFactory:
    """A ConversationFactory that remembers what it built."""

    def __init__(self, **options: Any) -> None:
        self.options = options
        self.built: list[FakeConversation] = []

    def __call__(self, state: dict[str, Any] | None) -> FakeConversation:
        conversation = FakeConversation(state, **self.options)
        self.built.append(conversation)
        return conversation

    @property
    def last(self) -> FakeConversation:
        return self.built[-1]
