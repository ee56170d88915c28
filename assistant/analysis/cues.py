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
    key: str = ""  # the cue's longest word: lowered text without it cannot match (a cheap pre-check)

    def search(self, lowered: str, text: str | None = None) -> re.Match[str] | None:
        """Search ``text`` (default ``lowered``); ``lowered`` is text.lower(), for the pre-check."""
        if self.key and self.key not in lowered:
            return None
        return self.pattern.search(lowered if text is None else text)


def compile_cue(phrase: str) -> CuePattern:
    """A case-insensitive pattern for a cue phrase: word boundaries, flexible spaces and hyphens,
    optional plural on the last word."""
    words = [w for w in re.split(r"[\s\-]+", phrase.strip().lower()) if w]
    parts = [re.escape(w) for w in words]
    if parts and parts[-1][-1:].isalpha():
        parts[-1] += r"(?:s|es)?"
    body = r"[\s\-]*".join(parts)
    key = max(words, key=len) if words else ""
    return CuePattern(phrase, re.compile(rf"(?<![\w]){body}(?![\w])", re.I), key if key.isascii() else "")


def find_cues(text: str, cues: Iterable[CuePattern]) -> list[tuple[CuePattern, int, int]]:
    out = []
    lowered = text.lower()
    for cue in cues:
        m = cue.search(lowered, text)
        if m:
            out.append((cue, m.start(), m.end()))
    return out
