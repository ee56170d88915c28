"""A plan described in conversation: accumulate what the leader says, and ask what is missing.

Described sentences are kept verbatim and laid out as a small Markdown plan (context as a
paragraph, actions as a one-column table under an action heading), so the same analysis that
reads a pasted plan reads this one, and every quote in the critique is the leader's own words.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from ..analysis.actions import CodedAction, PlanAnalysis
from ..domain import THEMES
from ..knowledge import Corpus
from ..knowledge.models import in_sentence
from .answers import HORIZON_WORDS, ORIENTATION_WORDS, PROFESSIONS
from .intents import Statement

__all__ = ["DESCRIBED_TITLE", "Gap", "acknowledgement", "enough_to_critique", "find_gaps", "render_plan"]

DESCRIBED_TITLE = "Plan described in conversation"
ACTIONS_HEADING = "## What we will do"
ADDED_HEADING = "## Further actions (added in conversation)"
CONTEXT_HEADING = "## Context (added in conversation)"

STAFF = re.compile(
    r"\b(staff|workforce|colleagues|employees|teams?|nurses?|social workers?|gps?|doctors?|clinicians?|therapists?|"
    r"practitioners?|care workers?|carers?|professionals?|frontline|front-line|managers?|unions?)\b",
    re.I,
)
USERS = re.compile(
    r"\b(service users?|patients?|carers?|residents?|citizens?|public|communit(?:y|ies)|people who use|families|"
    r"whānau|clients?|older people|people with|users?)\b",
    re.I,
)
PERIOD = re.compile(
    r"\b(years?|months?|quarters?|weeks?|by (?:19|20)\d\d|(?:19|20)\d\d(?:/\d\d)?|april|may|june|july|august|"
    r"september|october|november|december|january|february|march|next (?:year|spring|summer|autumn|winter)|"
    r"long[\s-]term|short[\s-]term|phase|sustain\w*|beyond)\b",
    re.I,
)


@dataclass(frozen=True)
class Gap:
    id: str
    question: str


def _action_lines(heading: str, actions: Sequence[str]) -> list[str]:
    """Described actions as a one-column table under an action heading.

    A table row is read as an action whatever its grammar ("we are merging ...", "GPs and
    district nurses meet weekly"), unless it is negated or an aspiration, so what the leader
    said they will do is what gets critiqued, in their exact words. A sentence containing a
    pipe cannot sit in a table cell; it goes in a list below.
    """
    rows = [a for a in actions if "|" not in a]
    items = [a for a in actions if "|" in a]
    lines = ["", heading]
    if rows:
        lines += ["", "| Action |", "|---|", *[f"| {a} |" for a in rows]]
    if items:
        lines += [""] + [f"- {a}" for a in items]
    return lines


def render_plan(base: str | None, statements: Sequence[Statement]) -> str | None:
    """The plan text: a pasted or loaded plan plus what was added in conversation, or a described plan."""
    actions = [s.text for s in statements if s.kind == "action"]
    context = [s.text for s in statements if s.kind == "context"]
    if base is None:
        if not actions and not context:
            return None
        parts = [f"# {DESCRIBED_TITLE}"]
        if context:
            parts += ["", " ".join(context)]
        if actions:
            parts += _action_lines(ACTIONS_HEADING, actions)
        return "\n".join(parts) + "\n"
    if not actions and not context:
        return base
    parts = [base.rstrip("\n")]
    if context:
        parts += ["", CONTEXT_HEADING, "", " ".join(context)]
    if actions:
        parts += _action_lines(ADDED_HEADING, actions)
    return "\n".join(parts) + "\n"


def actions_for(statement: str, analysis: PlanAnalysis) -> list[CodedAction]:
    """The coded actions that came from one described sentence (by position in the plan text)."""
    start = analysis.text.rfind(statement)
    if start < 0:
        return []
    end = start + len(statement)
    return [a for a in analysis.actions if a.start >= start and a.end <= end]


def acknowledgement(new: Sequence[Statement], analysis: PlanAnalysis, corpus: Corpus,
                    extra_codes: dict[str, CodedAction] | None = None) -> str:
    """'Noted: "...": structure, structural (merger); timing not stated.' for each new sentence."""
    lines: list[str] = []
    for statement in new:
        coded = actions_for(statement.text, analysis) or (
            [extra_codes[statement.text]] if extra_codes and statement.text in extra_codes else [])
        if statement.kind == "context" and not coded:
            lines.append(f"- “{statement.text}” — noted as context")
            continue
        if not coded:
            lines.append(f"- “{statement.text}” — noted, though I could not read a commitment in it")
            continue
        parts = []
        for a in coded:
            code = corpus.codes.get(a.code)
            label = in_sentence(code.label) if code else a.code
            parts.append(f"{a.theme}, {ORIENTATION_WORDS[a.orientation]} ({label}); {HORIZON_WORDS[a.horizon]}")
        lines.append(f"- “{statement.text}” — " + "; ".join(parts))
    heard = "Noted. I've added this to the plan:" if len(new) == 1 else "Noted. I've added these to the plan:"
    return "\n".join([heard, *lines])


def tally(analysis: PlanAnalysis) -> str:
    actions = analysis.actions
    if not actions:
        return "So far I have no actions I can code."
    themes = {t: sum(1 for a in actions if a.theme == t) for t in THEMES}
    relational = sum(1 for a in actions if a.relational)
    spread = ", ".join(f"{t} {n}" for t, n in themes.items() if n)
    return (f"So far: {len(actions)} action{'s' if len(actions) != 1 else ''} ({spread}); "
            f"{relational} relational or joint improvement.")


def enough_to_critique(analysis: PlanAnalysis) -> bool:
    """Enough has been described to critique without being asked: >= 5 actions across >= 2 themes."""
    return len(analysis.actions) >= 5 and len({a.theme for a in analysis.actions}) >= 2


def _pair(text: str) -> str:
    found: list[str] = []
    for m in PROFESSIONS.finditer(text):
        word = m.group(1).lower()
        word = "GPs" if word in ("gp", "gps") else (word if word.endswith("s") or word == "midwives" else word + "s")
        if word not in found:
            found.append(word)
    if len(found) >= 2:
        return f"{found[0]} and {found[1]}"
    if len(found) == 1:
        return f"{found[0]} and the colleagues they hand over to"
    return "district nurses and social workers"


THEME_QUESTIONS: dict[str, str] = {
    "leadership": ("Who will lead this across the organisations, and how? So far leadership hasn't come up — "
                   "is it only boards and sign-off, or will leaders be developed to work across the boundaries?"),
    "strategy": ("What is the shared purpose behind this, and how will you know it is working beyond "
                 "delivery milestones?"),
    "structure": ("What will change in how services are organised day to day: roles, teams, budgets, records?"),
    "people": ("What will this mean for staff, and how will they be involved in shaping it rather than told about it?"),
}


def find_gaps(analysis: PlanAnalysis, closed: Sequence[str]) -> list[Gap]:
    """What the described plan is silent on, most important first, skipping gaps already asked."""
    text = analysis.text
    actions = analysis.actions
    gaps: list[Gap] = []
    relational_people = [a for a in actions if a.relational and a.theme in ("people", "structure")]
    if not relational_people:
        gaps.append(Gap("working-together", f"You have said nothing yet about how {_pair(text)} will work "
                                            "together day to day. Is that deliberate?"))
    if not STAFF.search(text):
        gaps.append(Gap("staff", THEME_QUESTIONS["people"]))
    if actions and all(a.horizon == "unspecified" for a in actions) and not PERIOD.search(text):
        gaps.append(Gap("horizon", "Over what period is this meant to run, and what happens after the programme "
                                   "closes — who keeps it going?"))
    elif actions and not any(a.horizon == "long_term" for a in actions) and not re.search(
            r"\b(sustain\w*|beyond|long[\s-]term|years)\b", text, re.I):
        gaps.append(Gap("horizon", "Everything you've described has a near date or none. What is meant to last "
                                   "beyond the first year, and who keeps it going?"))
    present = {a.theme for a in actions}
    if "leadership" not in present:
        gaps.append(Gap("theme:leadership", THEME_QUESTIONS["leadership"]))
    if not USERS.search(text):
        gaps.append(Gap("service-users", "Where do the people who use these services, and their carers, come in? "
                                         "Will they help design any of this?"))
    for theme in ("strategy", "structure"):
        if theme not in present:
            gaps.append(Gap(f"theme:{theme}", THEME_QUESTIONS[theme]))
    return [g for g in gaps if g.id not in closed]
