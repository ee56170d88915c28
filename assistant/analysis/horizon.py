"""Read an action's time horizon: short_term (within about two years), long_term, or unspecified.

Dates are read against the plan's own base year (the earliest plausible year it mentions), so
"by 2030" in a plan written for 2025 is long term and "by March 2026" is short term.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from ..domain import Horizon
from .cues import CuePattern, compile_cue, find_cues

__all__ = ["HorizonReader"]

NUMBER_WORDS = {
    "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7, "eight": 8, "nine": 9,
    "ten": 10, "eleven": 11, "twelve": 12, "fifteen": 15, "eighteen": 18, "twenty": 20, "twenty-four": 24,
    "thirty": 30, "a": 1, "an": 1, "single": 1,
}
_NUM = r"(\d{1,3}|" + "|".join(sorted(NUMBER_WORDS, key=len, reverse=True)) + r")"
DURATION = re.compile(rf"\b{_NUM}[\s\-]*(?:\+\s*)?(year|yr|month|week|day)s?\b", re.I)
YEAR = re.compile(r"\b(20[1-5]\d)(?:\s*[/\-–]\s*(\d{2,4}))?\b")
FY = re.compile(r"\b(?:fy|financial year)\s*(\d{2})(?:/(\d{2}))?\b", re.I)
SHORT_WORDS = re.compile(
    r"\b(quick wins?|immediately|immediate|this year|next year|this quarter|next quarter|"
    r"in (?:the )?(?:first|next) (?:quarter|100 days|90 days|six months|year)|"
    r"(?:by|from|in|before|after) (?:the end of )?(?:january|february|march|april|may|june|july|august|"
    r"september|october|november|december)(?! 20)|by (?:the end of )?(?:q[1-4]|quarter [1-4])|"
    r"\bq[1-4]\b|next (?:january|february|march|april|may|june|july|august|september|october|november|"
    r"december|spring|summer|autumn|winter|month|week)|phase (?:1|one)|year (?:1|one|2|two)|in year|month \d+|day one|go[\s-]live|"
    r"pilot(?:ing)? for (?:six|three|twelve) months|winter|this spring|this summer|this autumn)\b",
    re.I,
)
LONG_WORDS = re.compile(
    r"\b(long[\s-]term|over the long run|sustain(?:ed|ing|ability|able)?|beyond the (?:programme|project|"
    r"funding|pilot)|permanent(?:ly)?|for the next decade|decade|generation(?:al)?|"
    r"ten[\s-]year|five[\s-]year|10[\s-]year|5[\s-]year|multi[\s-]year|year (?:3|4|5|three|four|five)|"
    r"phase (?:3|three|4|four)|enduring|lasting|business as usual|recurrent(?:ly)? fund)\b",
    re.I,
)


class HorizonReader:
    def __init__(self, short_cues: Iterable[str] = (), long_cues: Iterable[str] = ()) -> None:
        self.short: list[CuePattern] = [compile_cue(c) for c in short_cues]
        self.long: list[CuePattern] = [compile_cue(c) for c in long_cues]

    @staticmethod
    def base_year(plan_text: str, default: int) -> int:
        years = [int(m.group(1)) for m in YEAR.finditer(plan_text)]
        plausible = [y for y in years if 2010 <= y <= 2060]
        if not plausible:
            return default
        # the plan's own start: the most common early year, not a distant target
        plausible.sort()
        return plausible[len(plausible) // 4]

    def read(self, text: str, base_year: int) -> Horizon:
        votes_short = 0
        votes_long = 0
        for m in DURATION.finditer(text):
            raw, unit = m.group(1).lower(), m.group(2).lower()
            n = int(raw) if raw.isdigit() else NUMBER_WORDS.get(raw, 0)
            months = n * {"year": 12, "yr": 12, "month": 1, "week": 0.25, "day": 1 / 30}[unit]
            if months <= 24:
                votes_short += 2
            else:
                votes_long += 2
        for m in YEAR.finditer(text):
            year = int(m.group(1))
            if m.group(2):
                tail = m.group(2)
                year = int(tail) + 2000 if len(tail) == 2 else int(tail)
            if year - base_year <= 2:
                votes_short += 2
            else:
                votes_long += 2
        for m in FY.finditer(text):
            year = 2000 + int(m.group(2) or m.group(1))
            votes_short += 2 if year - base_year <= 2 else 0
            votes_long += 2 if year - base_year > 2 else 0
        if SHORT_WORDS.search(text) or find_cues(text, self.short):
            votes_short += 1
        if LONG_WORDS.search(text) or find_cues(text, self.long):
            votes_long += 1
        if votes_long > votes_short:
            return "long_term"
        if votes_short > 0:
            return "short_term"
        return "unspecified"
