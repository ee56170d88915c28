"""What a conversation turn yields, in order, to whichever face renders it.

A turn is a stream of events: zero or more ``TextDelta`` (the narrative, token by token),
then at most one ``CritiqueReady`` (when the turn produced or revised a critique), any
``Citations``, ``Notice`` for things the user must be told (a fallback to offline), and
always a final ``TurnDone``. Faces render these; they never compute advice themselves.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from ..domain import Balance, Critique, Reference

__all__ = ["Citations", "CritiqueReady", "Event", "Notice", "TextDelta", "TurnDone"]


@dataclass(frozen=True)
class TextDelta:
    text: str
    type: Literal["text"] = "text"


@dataclass(frozen=True)
class CritiqueReady:
    critique: Critique
    previous: Balance | None = None  # set when a revised plan was re-critiqued (before -> after)
    type: Literal["critique"] = "critique"


@dataclass(frozen=True)
class Citations:
    references: list[Reference] = field(default_factory=list)
    type: Literal["citations"] = "citations"


@dataclass(frozen=True)
class Notice:
    message: str
    level: Literal["info", "warning"] = "info"
    type: Literal["notice"] = "notice"


@dataclass(frozen=True)
class TurnDone:
    backend: str
    answer: str  # the full narrative of the turn, as saved in the session
    type: Literal["done"] = "done"


Event = TextDelta | CritiqueReady | Citations | Notice | TurnDone
