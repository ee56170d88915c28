"""What a conversation holds between turns, and the small helpers its turns share.

``PlanState`` is everything a turn may change besides the transcript (the plan, its critique, what
was described and asked); it is replaced whole when a turn completes, and saved with the session
(``state_to_dict``/``state_from_dict``, which reads older or damaged states as far as it can).
``Outcome`` is what a turn will say and do, decided before anything is streamed.
"""

from __future__ import annotations

import difflib
import logging
import re
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from pydantic import ValidationError

from ..domain import Critique
from ..reading import PlanDocument, guess_title
from ..retrieval.lexical import tokenize
from ..settings import Settings
from . import answers
from .answers import Answer
from .described import DESCRIBED_TITLE, render_plan
from .events import Event, Notice
from .intents import Statement

__all__ = ["STATE_VERSION", "Outcome", "PlanState", "Role", "Say", "Turn", "state_from_dict", "state_to_dict"]

log = logging.getLogger(__name__)

STATE_VERSION = 1
Role = Literal["user", "assistant"]
Say = Callable[[str], Iterator[Event]]


@dataclass
class Turn:
    role: Role
    content: str
    backend: str | None = None
    critique: Critique | None = None  # the critique an assistant turn produced, if any
    prompts: list[dict[str, str]] = field(default_factory=list)  # name, version, sha256 of the prompts a model used
    record: dict[str, Any] | None = None  # how a model answer was produced: model, tokens, cost, fallback


@dataclass(frozen=True)
class PlanState:
    """Everything a turn may change besides the transcript; replaced whole when a turn completes."""

    base_text: str | None = None            # a pasted or loaded plan
    source: str = "none"                    # none | pasted | loaded | described
    statements: tuple[Statement, ...] = ()  # sentences described in conversation, verbatim
    closed_gaps: tuple[str, ...] = ()       # questions already asked about what is missing
    pending_gap: str | None = None          # the question the last answer asked
    critique: Critique | None = None
    critiqued_text: str | None = None       # the plan text the critique was made from
    before: Critique | None = None          # the critique the latest one revised, if it was a revision

    @property
    def plan_text(self) -> str | None:
        return render_plan(self.base_text, self.statements)


@dataclass
class Outcome:
    """What a turn will say and do, decided before anything is streamed."""

    intent: str
    answer: Answer
    state: PlanState
    critique_doc: PlanDocument | None = None     # critique this plan during the turn
    previous: Critique | None = None             # the critique it revises (before -> after)
    preface: str = ""                            # said before the critique narrative
    postscript: str = ""                         # said after it
    model_may_answer: bool = True
    notices: list[Notice] = field(default_factory=list)



def _critique_or_none(data: Any) -> Critique | None:
    if not data:
        return None
    try:
        return Critique.model_validate(data)
    except ValidationError:
        log.warning("a saved critique could not be read; it is left out")
        return None


def _text_or_none(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def state_to_dict(state: PlanState, backend: str, turns: Sequence[Turn]) -> dict[str, Any]:
    return {
        "version": STATE_VERSION,
        "backend": backend,
        "plan_text": state.plan_text,
        "base_text": state.base_text,
        "source": state.source,
        "statements": [{"text": st.text, "kind": st.kind} for st in state.statements],
        "closed_gaps": list(state.closed_gaps),
        "pending_gap": state.pending_gap,
        "critique": state.critique.model_dump(mode="json") if state.critique else None,
        "critiqued_text": state.critiqued_text,
        "before": state.before.model_dump(mode="json") if state.before else None,
        "turns": [
            {"role": t.role, "content": t.content, "backend": t.backend,
             "critique": t.critique.model_dump(mode="json") if t.critique else None,
             "prompts": list(t.prompts), "record": t.record}
            for t in turns
        ],
    }


def state_from_dict(state: dict[str, Any]) -> tuple[PlanState, list[Turn]]:
    """A saved state, as far as it can be read: damaged parts are left out, never raised."""
    if not isinstance(state, dict):
        return PlanState(), []
    statements = tuple(Statement(str(s["text"]), "context" if s.get("kind") == "context" else "action")
                       for s in state.get("statements") or [] if isinstance(s, dict) and "text" in s)
    base_text = _text_or_none(state.get("base_text"))
    if base_text is None and not statements and isinstance(state.get("plan_text"), str):
        base_text = state["plan_text"]  # an older or hand-written state: keep the plan as pasted
    plan = PlanState(
        base_text=base_text,
        source=str(state.get("source") or ("pasted" if base_text else "none")),
        statements=statements,
        closed_gaps=tuple(str(g) for g in state.get("closed_gaps") or ()),
        pending_gap=_text_or_none(state.get("pending_gap")),
        critique=_critique_or_none(state.get("critique")),
        critiqued_text=_text_or_none(state.get("critiqued_text")),
        before=_critique_or_none(state.get("before")),
    )
    turns: list[Turn] = []
    for t in state.get("turns") or []:
        if not isinstance(t, dict):
            continue
        role: Role = "assistant" if t.get("role") == "assistant" else "user"
        prompts = [dict(p) for p in t.get("prompts") or [] if isinstance(p, dict)]
        record = t.get("record") if isinstance(t.get("record"), dict) else None
        turns.append(Turn(role, str(t.get("content", "")), _text_or_none(t.get("backend")),
                          _critique_or_none(t.get("critique")), prompts, record))
    return plan, turns


_RETRIEVERS: dict[str, Any] = {}


def index_case_search(settings: Settings) -> answers.CaseSearch | None:
    home = str(settings.home)
    if home not in _RETRIEVERS:
        retriever = None
        if (Path(settings.home) / "index").is_dir():
            try:
                from ..retrieval.retriever import Retriever

                candidate = Retriever(settings=settings)
                status = candidate.status()
                if status.built and status.up_to_date:
                    retriever = candidate
                else:
                    candidate.close()
            except Exception as exc:  # retrieval is optional here; the lexical match stands in
                log.info("retrieval index unavailable for case search: %s", exc)
        _RETRIEVERS[home] = retriever
    retriever = _RETRIEVERS[home]
    if retriever is None:
        return None

    def search(kind: str, query: str) -> list[str]:
        return [hit.doc_id for hit in retriever.search(query[:4000], k=5, kind="case")]

    return search



def text_of(content: object) -> str:
    """A message's text: a string, or OpenAI-style content parts ([{"type": "text", "text": ...}])."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "\n".join(str(p.get("text", "")) for p in content if isinstance(p, dict) and p.get("type") == "text")
    return ""


def similar_plans(old: str, new: str) -> bool:
    """Is ``new`` a revision of ``old``? Similar title, or much of the same wording."""
    t_old, t_new = guess_title(old), guess_title(new)
    if t_old and t_new and t_old != DESCRIBED_TITLE and difflib.SequenceMatcher(None, t_old.lower(), t_new.lower()).ratio() >= 0.7:
        return True
    a, b = set(tokenize(old)), set(tokenize(new))
    if not a or not b:
        return False
    return len(a & b) / len(a | b) >= 0.35


def chunks(text: str, words: int = 4) -> Iterator[str]:
    """Split text into small pieces (a few words each, whitespace kept) for faces to stream."""
    tokens = re.findall(r"\s+|\S+", text)
    for i in range(0, len(tokens), 2 * words):
        yield "".join(tokens[i:i + 2 * words])


