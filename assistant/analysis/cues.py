"""Cue phrase matching: the framework's cue phrases compiled into word-boundary patterns."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

__all__ = ["CuePattern", "compile_cue", "find_cues"]


@dataclass(frozen=True)
class CuePattern:
    phrase: str
    pattern: re.Pattern[str]


def compile_cue(phrase: str) -> CuePattern:
    """A case-insensitive pattern for a cue phrase: word boundaries, flexible spaces and hyphens,
    optional plural on the last word."""
    words = [w for w in re.split(r"[\s\-]+", phrase.strip().lower()) if w]
    parts = [re.escape(w) for w in words]
    if parts and parts[-1][-1:].isalpha():
        parts[-1] += r"(?:s|es)?"
    body = r"[\s\-]*".join(parts)
    return CuePattern(phrase, re.compile(rf"(?<![\w]){body}(?![\w])", re.I))


def find_cues(text: str, cues: Iterable[CuePattern]) -> list[tuple[CuePattern, int, int]]:
    out = []
    for cue in cues:
        m = cue.pattern.search(text)
        if m:
            out.append((cue, m.start(), m.end()))
    return out
