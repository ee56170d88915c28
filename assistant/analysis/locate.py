"""Find a reading's texts in the plan: exactly, else ignoring whitespace and typography.

A reading (a model's, a user's, a dataset's gold actions) names its actions and quotes by their
text; the plan a user sent may differ from it in line breaks, spaces or curly quotes (a PDF's
wrapped lines, a pasted Word table). Each text is located once, the first occurrence not already
taken, so a repeated sentence is matched to each of its places in turn.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from .segment import PLAIN_TYPOGRAPHY as _TYPOGRAPHY

__all__ = ["locate", "locate_all"]

_SPACE = re.compile(r"\s+")


def _normalised(text: str) -> tuple[str, list[int]]:
    """``text`` with typography made plain and whitespace runs made one space, and for each
    character of the result its offset in ``text``."""
    out: list[str] = []
    where: list[int] = []
    plain = text.translate(_TYPOGRAPHY)
    for m in re.finditer(r"\s+|\S+", plain):
        if m.group(0).isspace():
            if out and out[-1] != " ":
                out.append(" ")
                where.append(m.start())
        else:
            out.extend(m.group(0))
            where.extend(range(m.start(), m.end()))
    return "".join(out), where


def locate_all(text: str, needles: Sequence[str]) -> list[tuple[int, int] | None]:
    """Where each needle sits in ``text`` (exactly, else ignoring whitespace and typography);
    ``None`` for a needle that is not there. A needle found more than once takes the first
    occurrence not already taken by an earlier needle."""
    norm, where = _normalised(text)
    taken: set[tuple[int, int]] = set()
    out: list[tuple[int, int] | None] = []
    for needle in needles:
        span = _find(text, needle, taken) or _find_normalised(norm, where, needle, taken)
        if span is not None:
            taken.add(span)
        out.append(span)
    return out


def locate(text: str, needle: str) -> tuple[int, int] | None:
    return locate_all(text, [needle])[0]


def _find(text: str, needle: str, taken: set[tuple[int, int]]) -> tuple[int, int] | None:
    first = None
    at = text.find(needle) if needle else -1
    while at >= 0:
        span = (at, at + len(needle))
        first = first or span
        if span not in taken:
            return span
        at = text.find(needle, at + 1)
    return first


def _find_normalised(norm: str, where: list[int], needle: str,
                     taken: set[tuple[int, int]]) -> tuple[int, int] | None:
    key = _SPACE.sub(" ", needle.translate(_TYPOGRAPHY)).strip()
    if not key:
        return None
    first = None
    at = norm.find(key)
    while at >= 0:
        span = (where[at], where[at + len(key) - 1] + 1)
        first = first or span
        if span not in taken:
            return span
        at = norm.find(key, at + 1)
    return first


