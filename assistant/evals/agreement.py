"""How far two readings of the same plan agree: action detection, coding, and the judgement on top.

One comparison serves three uses: the advisor's reading against a sample's gold actions (the
``reading`` scorer), a second annotator against the reference (``AGREEMENT.md``), and a model's
reading against the offline one. Actions are compared as spans of the plan: two actions match
when each covers at least half of the other's letters and digits (so list markers, run-in labels
and table pipes do not decide a match), one to one, best overlap first.
"""

from __future__ import annotations

import bisect
import re
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from ..analysis.locate import locate, locate_all

__all__ = [
    "ActionMatch",
    "ReadingComparison",
    "SpanLabel",
    "cohen_kappa",
    "compare_readings",
    "locate",
    "locate_all",
    "segment_labels",
    "set_agreement",
]

DIMENSIONS = ("theme", "orientation", "horizon", "concrete")
MIN_COVER = 0.5

@dataclass(frozen=True)
class SpanLabel:
    """An action as a span of the plan, with its labels (any may be None when not given)."""

    start: int
    end: int
    theme: str | None = None
    orientation: str | None = None
    horizon: str | None = None
    concrete: bool | None = None
    text: str = ""

    def label(self, dim: str) -> Any:
        return getattr(self, dim)


@dataclass(frozen=True)
class ActionMatch:
    a: SpanLabel
    b: SpanLabel


@dataclass
class ReadingComparison:
    """Two readings of one plan, A taken as the reference."""

    matches: list[ActionMatch] = field(default_factory=list)
    only_a: list[SpanLabel] = field(default_factory=list)
    only_b: list[SpanLabel] = field(default_factory=list)

    @property
    def precision(self) -> float | None:
        n = len(self.matches) + len(self.only_b)
        return len(self.matches) / n if n else None

    @property
    def recall(self) -> float | None:
        n = len(self.matches) + len(self.only_a)
        return len(self.matches) / n if n else None

    def counts(self) -> dict[str, int]:
        out = {"matched": len(self.matches), "only_a": len(self.only_a), "only_b": len(self.only_b)}
        for dim in DIMENSIONS:
            pairs = self.pairs(dim)
            out[f"{dim}_n"] = len(pairs)
            out[f"{dim}_same"] = sum(1 for x, y in pairs if x == y)
        return out

    def pairs(self, dim: str) -> list[tuple[Any, Any]]:
        """The two labels of every matched action where both readings give one."""
        return [(m.a.label(dim), m.b.label(dim)) for m in self.matches
                if m.a.label(dim) is not None and m.b.label(dim) is not None]


_ALNUM = re.compile(r"[^\W_]")


def _weights(text: str) -> list[int]:
    """Cumulative count of letters and digits, so a span's weight is w[end] - w[start]."""
    acc, out = 0, [0]
    for ch in text:
        acc += 1 if _ALNUM.match(ch) else 0
        out.append(acc)
    return out


def compare_readings(text: str, a: Sequence[SpanLabel], b: Sequence[SpanLabel]) -> ReadingComparison:
    """Match the actions of two readings of ``text`` one to one (see the module's docstring)."""
    w = _weights(text)

    def weight(s: int, e: int) -> int:
        return max(0, w[min(e, len(text))] - w[max(0, min(s, len(text)))])

    b_sorted = sorted(range(len(b)), key=lambda j: b[j].start)
    starts = [b[j].start for j in b_sorted]
    candidates = []
    for i, x in enumerate(a):
        lo = max(0, bisect.bisect_left(starts, x.start) - 50)
        for j in b_sorted[lo:]:
            y = b[j]
            if y.start >= x.end:
                break
            ov = weight(max(x.start, y.start), min(x.end, y.end))
            wa, wb = weight(x.start, x.end), weight(y.start, y.end)
            if ov and wa and wb and ov >= MIN_COVER * wa and ov >= MIN_COVER * wb:
                candidates.append((2 * ov / (wa + wb), i, j))
    used_a: set[int] = set()
    used_b: set[int] = set()
    out = ReadingComparison()
    for _, i, j in sorted(candidates, key=lambda c: (-c[0], c[1], c[2])):
        if i in used_a or j in used_b:
            continue
        used_a.add(i)
        used_b.add(j)
        out.matches.append(ActionMatch(a[i], b[j]))
    out.matches.sort(key=lambda m: m.a.start)
    out.only_a = [x for i, x in enumerate(a) if i not in used_a]
    out.only_b = [y for j, y in enumerate(b) if j not in used_b]
    return out


def cohen_kappa(pairs: Iterable[tuple[Any, Any]]) -> float | None:
    """Cohen's kappa for two raters' labels on the same items (None when undefined)."""
    pairs = list(pairs)
    n = len(pairs)
    if not n:
        return None
    observed = sum(1 for x, y in pairs if x == y) / n
    ca = Counter(x for x, _ in pairs)
    cb = Counter(y for _, y in pairs)
    expected = sum(ca[k] * cb.get(k, 0) for k in ca) / (n * n)
    if expected >= 1.0:
        return 1.0 if observed >= 1.0 else None
    return (observed - expected) / (1 - expected)


def set_agreement(reference: Iterable[str], other: Iterable[str]) -> dict[str, int]:
    """True positives, false positives and false negatives of ``other`` against ``reference``."""
    ref, got = set(reference), set(other)
    return {"tp": len(ref & got), "fp": len(got - ref), "fn": len(ref - got)}


def segment_labels(text: str, segments: Sequence[tuple[int, int]], gold_texts: Sequence[str]) -> list[bool]:
    """For each segment span, whether it holds a gold action: it overlaps a gold span by at least
    half of the smaller of the two (letters and digits), so a segment that a split later cuts into
    two gold actions, and a gold action inside a longer bullet, both count."""
    w = _weights(text)
    gold = [sp for sp in locate_all(text, gold_texts) if sp]

    def weight(s: int, e: int) -> int:
        return max(0, w[min(e, len(text))] - w[max(0, min(s, len(text)))])

    out = []
    for s, e in segments:
        ws = weight(s, e)
        hit = False
        for gs, ge in gold:
            ov = weight(max(s, gs), min(e, ge))
            if ov and ov >= MIN_COVER * min(ws, weight(gs, ge)):
                hit = True
                break
        out.append(hit)
    return out
