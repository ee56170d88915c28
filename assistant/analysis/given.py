"""A plan read by someone else: the user's corrected reading, a dataset's gold actions, a model's.

The Reading contract (PRODUCT.md section 4b) names each action by its text with its theme,
orientation, horizon and ``concrete``. Each text is located in the plan (whitespace- and
typography-insensitive) or dropped and counted; the rest of the plan (its sentences, headings and
set-aside text) is read as usual, so the detectors see the same context they see in the offline
reading. Only the actions, and their labels, come from the given reading.
"""

from __future__ import annotations

import datetime as _dt
from collections.abc import Sequence
from dataclasses import dataclass

from ..domain import ReadingAction
from .actions import CodedAction, PlanAnalysis, keep_own_characters, read_segments
from .coder import Coder
from .horizon import HorizonReader
from .locate import locate_all

__all__ = ["GivenReading", "analyse_given"]


@dataclass(frozen=True)
class GivenReading:
    analysis: PlanAnalysis
    dropped: tuple[str, ...]  # action texts not found in the plan, or inside set-aside text


def analyse_given(text: str, actions: Sequence[ReadingAction], coder: Coder, title: str | None = None) -> GivenReading:
    plain, segments, plain_asides = read_segments(text)
    asides = keep_own_characters(text, segments, plain_asides)
    for seg in segments:
        seg.is_action = False
    spans = locate_all(text, [a.text for a in actions])
    kept: list[tuple[int, int, ReadingAction]] = []
    dropped: list[str] = []
    for action, span in zip(actions, spans, strict=True):
        if span is None or any(span[0] < a.end and a.start < span[1] for a in asides):
            dropped.append(action.text)
        else:
            kept.append((span[0], span[1], action))
    kept.sort(key=lambda k: k[0])
    texts = [plain[s:e] for s, e, _ in kept]
    codes = coder.code_within(texts, [(a.theme, a.orientation) for _, _, a in kept])
    unstated = [i for i, (_, _, a) in enumerate(kept) if a.concrete is None]  # the reader's own call for these
    read = dict(zip(unstated, coder.concrete([texts[i] for i in unstated]), strict=True))
    coded = []
    for n, ((s, e, action), code) in enumerate(zip(kept, codes, strict=True), start=1):
        concrete = action.concrete if action.concrete is not None else read[n - 1]
        home = max(segments, key=lambda seg: min(e, seg.end) - max(s, seg.start), default=None)
        headings: tuple[str, ...] = ()
        if home is not None and min(e, home.end) > max(s, home.start):
            home.is_action = True
            headings = home.headings
        coded.append(CodedAction(id=f"a{n}", start=s, end=e, text=text[s:e], theme=action.theme,
                                 orientation=action.orientation, horizon=action.horizon, code=code, confidence=1.0,
                                 headings=headings, concrete=concrete, cues=()))
    base_year = HorizonReader.base_year(plain, _dt.date.today().year)
    analysis = PlanAnalysis(text=text, title=title, actions=tuple(coded), segments=tuple(segments),
                            base_year=base_year, asides=asides)
    return GivenReading(analysis, tuple(dropped))
