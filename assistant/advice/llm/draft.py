"""The model's draft critique: its schema, parsing, and the merge with the measured analysis.

The merge is where a model's critique is gated before anyone sees it: its lists are capped,
its free text (headline, summaries, rationales, steps, measures) goes through the grounding
gate (``grounding.ModelTextGate``: no unverifiable quote, citation, link, address or order),
quotes shorter than ``MIN_QUOTE_WORDS`` are not evidence, and what remains is grounded. The
offline analysis is the floor: findings the model left out come back.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from ...domain import (
    Action,
    Critique,
    Evidence,
    Finding,
    FindingKind,
    InterventionAdvice,
    Severity,
    Theme,
    Verdict,
)
from ...knowledge import Corpus
from ..compose import references_for
from ..grounding import (
    MAX_EVIDENCE,
    MAX_FIELD_CHARS,
    MAX_FINDINGS,
    MAX_INTERVENTIONS,
    MAX_ITEMS,
    MIN_QUOTE_WORDS,
    GateCounts,
    ModelTextGate,
    check_grounding,
    ground,
)

__all__ = ["DRAFT_SCHEMA", "CritiqueDraft", "GroundingCounts", "merge_draft", "parse_draft"]

SEVERITY_RANK: dict[Severity, int] = {"none": 0, "mild": 1, "marked": 2, "severe": 3}
# A headline that denies overuse the analysis measured is a contradiction even with the right booleans.
DENIES_OVERUSE = re.compile(
    r"\b(no (?:structural )?overuse|not? over-?rel\w+|excellent|exemplary|outstanding|well[- ]balanced|"
    r"balanced plan|is balanced|nothing to (?:change|improve|add))\b", re.I)


# --- what the model is asked for ------------------------------------------------------------------

class _Lenient(BaseModel):
    model_config = ConfigDict(extra="ignore")


class DraftEvidence(_Lenient):
    quote: str = Field(min_length=1, description="Exact words copied from the plan.")
    action_id: str | None = Field(default=None, description="The id of the action quoted, e.g. a3.")


class DraftFinding(_Lenient):
    id: str | None = Field(default=None, description="f1, f2, ...")
    kind: FindingKind
    theme: Theme | None = None
    summary: str = Field(min_length=1)
    evidence: list[DraftEvidence] = Field(min_length=1)
    citations: list[str] = Field(default_factory=list)


class DraftIntervention(_Lenient):
    id: str = Field(description="An intervention id from the evidence list.")
    addresses: list[str] = Field(default_factory=list, description="Finding ids it answers.")
    rationale: str = Field(min_length=1)
    theme: Theme | None = None
    first_steps: list[str] = Field(default_factory=list)
    measures: list[str] = Field(default_factory=list)
    citations: list[str] = Field(default_factory=list)


class DraftVerdict(_Lenient):
    structural_overuse: bool
    severity: Severity
    headline: str = Field(min_length=1)


class CritiqueDraft(_Lenient):
    """The part of a Critique a model writes; the plan info, balance and actions are measured."""

    verdict: DraftVerdict
    findings: list[DraftFinding]
    interventions: list[DraftIntervention]


DRAFT_SCHEMA: dict[str, Any] = CritiqueDraft.model_json_schema()


# --- what is recorded with every answer -----------------------------------------------------------

class GroundingCounts(BaseModel):
    """What grounding found in the model's critique (dropped = total - kept)."""

    model_config = ConfigDict(extra="forbid")

    quotes: int = 0
    quotes_verbatim: int = 0
    quotes_repaired: int = 0  # matched the plan once whitespace and quote marks were normalised
    citations: int = 0
    citations_resolved: int = 0
    interventions: int = 0
    interventions_valid: int = 0
    findings_dropped: int = 0  # model findings with no verbatim evidence left
    findings_restored: int = 0  # offline findings the model left out, put back
    interventions_restored: int = 0
    quotes_too_short: int = 0  # verbatim, but fewer than MIN_QUOTE_WORDS words: not evidence
    # what the gate removed from the model's free text (grounding.GateCounts)
    removed_quotes: int = 0
    removed_citations: int = 0
    removed_links: int = 0
    removed_emails: int = 0
    removed_instructions: int = 0
    capped: int = 0  # findings, interventions, steps or characters over the caps

    @property
    def removed(self) -> int:
        return (self.removed_quotes + self.removed_citations + self.removed_links + self.removed_emails
                + self.removed_instructions + self.capped + self.quotes_too_short)

    def gate(self) -> GateCounts:
        return GateCounts(quotes=self.removed_quotes + self.quotes_too_short, citations=self.removed_citations,
                          links=self.removed_links, emails=self.removed_emails,
                          instructions=self.removed_instructions, capped=self.capped)

    @property
    def dropped(self) -> int:
        return (self.quotes - self.quotes_verbatim) + (self.citations - self.citations_resolved) + (
            self.interventions - self.interventions_valid)


# --- parsing and repair ---------------------------------------------------------------------------

FENCE = re.compile(r"```(?:json)?\s*(.*?)```", re.S | re.I)


def _json_text(text: str) -> str:
    """The JSON object in a reply: fences and chatter around it removed."""
    fenced = FENCE.search(text)
    if fenced:
        text = fenced.group(1)
    start, end = text.find("{"), text.rfind("}")
    return text[start: end + 1] if start != -1 and end > start else text.strip()


def parse_draft(text: str) -> tuple[CritiqueDraft | None, str | None]:
    """The draft, or None and an error message short enough to quote back to the model."""
    if not text.strip():
        return None, "the answer was empty."
    try:
        data = json.loads(_json_text(text))
    except json.JSONDecodeError as exc:
        return None, f"it is not valid JSON ({exc.msg} at line {exc.lineno}, column {exc.colno})."
    if isinstance(data, dict) and isinstance(data.get("critique"), dict):
        data = data["critique"]  # some models wrap the object
    try:
        return CritiqueDraft.model_validate(data), None
    except ValidationError as exc:
        problems = []
        for err in exc.errors()[:6]:
            loc = ".".join(str(p) for p in err["loc"]) or "the object"
            problems.append(f"{loc}: {err['msg']}")
        more = f" (and {exc.error_count() - 6} more)" if exc.error_count() > 6 else ""
        return None, "it does not match the required structure: " + "; ".join(problems) + more + "."


# --- merging the model's draft with the measured analysis -----------------------------------------

_QUOTE_CHARS = str.maketrans({"“": '"', "”": '"', "‘": "'", "’": "'", "–": "-", "—": "-"})


def _verbatim(quote: str, plan: str, normalised: Callable[[], tuple[str, list[int]]]) -> tuple[str, bool]:
    """The quote as an exact substring of the plan: as given, or found again once whitespace and
    typographic quote marks are normalised (then the plan's own characters are returned)."""
    q = quote.strip().strip('"\'“”‘’').strip()
    if q and q in plan:
        return q, q != quote
    if not q:
        return quote, False
    flat, index = normalised()
    target = " ".join(q.translate(_QUOTE_CHARS).split())
    at = flat.find(target) if len(target) >= 12 else -1
    if at < 0:
        return quote, False
    start, end = index[at], index[at + len(target) - 1] + 1
    return plan[start:end], True


def _normalise_plan(plan: str) -> tuple[str, list[int]]:
    """The plan with runs of whitespace collapsed and quote marks plain, and an index back into it."""
    out: list[str] = []
    index: list[int] = []
    space = False
    for i, ch in enumerate(plan.translate(_QUOTE_CHARS)):
        if ch.isspace():
            if not space and out:
                out.append(" ")
                index.append(i)
            space = True
            continue
        space = False
        out.append(ch)
        index.append(i)
    return "".join(out), index


def _citation(ref: str, corpus: Corpus, known: set[str]) -> str:
    ref = ref.strip().strip("[]")
    if ref in known:
        return ref
    if ref in corpus.interventions:
        return f"intervention:{ref}"
    if ref in corpus.cases:
        return f"case:{ref}"
    return ref


def _first_theme(themes: Iterable[Theme | None]) -> Theme:
    for theme in themes:
        if theme is not None:
            return theme
    return "people"


def _citations(refs: list[str], corpus: Corpus, known: set[str]) -> list[str]:
    return list(dict.fromkeys(_citation(c, corpus, known) for c in refs))


@dataclass
class _Merge:
    critique: Critique
    counts: GroundingCounts
    verdict_flagged: bool
    contributed: int  # model findings + interventions that survived grounding, + a used headline
    problems: list[str] = field(default_factory=list)


def _verdict(draft: DraftVerdict, offline: Critique) -> tuple[Verdict, bool]:
    measured = offline.verdict
    contradicts = (draft.structural_overuse != measured.structural_overuse
                   or abs(SEVERITY_RANK[draft.severity] - SEVERITY_RANK[measured.severity]) >= 2
                   or (measured.structural_overuse and bool(DENIES_OVERUSE.search(draft.headline))))
    agrees = (not contradicts and draft.structural_overuse == measured.structural_overuse
              and draft.severity == measured.severity and 1 < len(draft.headline) <= 300)
    headline = " ".join(draft.headline.split()) if agrees else measured.headline
    return Verdict(structural_overuse=measured.structural_overuse, severity=measured.severity,
                   headline=headline), contradicts


def _capped(items: list[Any], limit: int, gate: ModelTextGate) -> list[Any]:
    if len(items) > limit:
        gate.counts.capped += len(items) - limit
    return items[:limit]


def gate_draft(draft: CritiqueDraft, gate: ModelTextGate) -> CritiqueDraft:
    """The draft with its lists capped and its free text screened by the grounding gate."""

    def text(value: str) -> str:
        return " ".join(gate.clean(value, limit=MAX_FIELD_CHARS).split())

    def texts(values: list[str]) -> list[str]:
        return [t for t in (text(v) for v in _capped(values, MAX_ITEMS, gate)) if t]

    findings = [f.model_copy(update={"summary": text(f.summary),
                                     "evidence": _capped(list(f.evidence), MAX_EVIDENCE, gate),
                                     "citations": _capped(list(f.citations), MAX_ITEMS, gate)})
                for f in _capped(list(draft.findings), MAX_FINDINGS, gate)]
    interventions = [d.model_copy(update={"rationale": text(d.rationale), "first_steps": texts(d.first_steps),
                                          "measures": texts(d.measures),
                                          "addresses": _capped(list(d.addresses), MAX_FINDINGS, gate),
                                          "citations": _capped(list(d.citations), MAX_ITEMS, gate)})
                     for d in _capped(list(draft.interventions), MAX_INTERVENTIONS, gate)]
    before = gate.counts.total
    headline = text(draft.verdict.headline)
    if gate.counts.total != before:
        headline = ""  # a headline that needed cutting is not used: the measured one stands
    return draft.model_copy(update={"findings": findings, "interventions": interventions,
                                    "verdict": draft.verdict.model_copy(update={"headline": headline or "-"})})


def merge_draft(draft: CritiqueDraft, offline: Critique, plan: str, corpus: Corpus, backend: str) -> _Merge:
    """The model's draft over the measured critique, gated and grounded; see the module docstring."""
    gate = ModelTextGate(plan, corpus)
    draft = gate_draft(draft, gate)
    too_short = 0
    offline_summary = {f.kind: f.summary for f in offline.findings}
    known = corpus.reference_ids()
    actions: dict[str, Action] = {a.id: a for a in offline.actions}
    flat = functools.cache(lambda: _normalise_plan(plan))  # only when a quote is not verbatim as given
    repaired_quotes = 0

    def action_for(quote: str, given: str | None) -> str | None:
        if given is not None and given in actions and quote in actions[given].text:
            return given
        for action_id, action in actions.items():
            if quote in action.text:
                return action_id
        return None

    # model findings, namespaced "m:<id>" so they cannot collide with restored offline ones
    findings: list[Finding] = []
    used_ids: set[str] = set()
    for n, f in enumerate(draft.findings, start=1):
        fid = f.id.strip() if f.id and f.id.strip() and f.id.strip() not in used_ids else f"f{n}"
        used_ids.add(fid)
        evidence = []
        for e in f.evidence:
            quote, repaired = _verbatim(e.quote, plan, flat)
            repaired_quotes += int(repaired and quote in plan)
            if quote in plan and len(quote.split()) < MIN_QUOTE_WORDS:
                too_short += 1  # "and" is in the plan, but it is not evidence of anything
                continue
            evidence.append(Evidence(quote=quote, action_id=action_for(quote, e.action_id)))
        if not evidence:
            continue
        summary = f.summary or offline_summary.get(f.kind) or ""
        if not summary:
            continue
        findings.append(Finding(id=f"m:{fid}", kind=f.kind, theme=f.theme, summary=summary,
                                evidence=evidence, citations=_citations(f.citations, corpus, known)))
    theme_of = {f.id: f.theme for f in offline.findings}
    interventions: list[InterventionAdvice] = []
    seen_iv: set[str] = set()
    for d in draft.interventions:
        iv_id = d.id.strip().removeprefix("intervention:")
        if iv_id in seen_iv:
            continue
        seen_iv.add(iv_id)
        lib = corpus.interventions.get(iv_id)
        theme: Theme = d.theme or (lib.themes[0] if lib else _first_theme(theme_of.values()))
        interventions.append(InterventionAdvice(
            id=iv_id, title=lib.title if lib else iv_id, theme=theme,
            addresses=[f"m:{a.strip()}" for a in d.addresses],
            rationale=d.rationale or (lib.summary if lib else ""),
            first_steps=[s for s in d.first_steps if s.strip()] or (list(lib.first_steps[:3]) if lib else []),
            measures=[m for m in d.measures if m.strip()] or (list(lib.measures[:3]) if lib else []),
            citations=_citations(d.citations, corpus, known),
        ))
    verdict, flagged = _verdict(draft.verdict, offline)
    cited = [c for f in findings for c in f.citations] + [c for i in interventions for c in i.citations]
    candidate = offline.model_copy(update={
        "backend": backend, "verdict": verdict, "findings": findings, "interventions": interventions,
        "references": references_for(corpus, cited)})
    grounded, report = ground(candidate, plan, corpus)
    counts = GroundingCounts(
        quotes=report.quotes, quotes_verbatim=report.quotes_verbatim, quotes_repaired=repaired_quotes,
        citations=report.citations, citations_resolved=report.citations_resolved,
        interventions=report.interventions, interventions_valid=report.interventions_valid,
        findings_dropped=len(draft.findings) - len(grounded.findings), quotes_too_short=too_short,
        removed_quotes=gate.counts.quotes, removed_citations=gate.counts.citations, removed_links=gate.counts.links,
        removed_emails=gate.counts.emails, removed_instructions=gate.counts.instructions,
        capped=gate.counts.capped)
    contributed = len(grounded.findings) + len(grounded.interventions) + int(verdict.headline != offline.verdict.headline)

    # the offline analysis is the floor: a finding the model left out (or could not ground) returns
    covered = {f.kind for f in grounded.findings}
    restored = [f.model_copy(update={"id": f"o:{f.id}"}) for f in offline.findings if f.kind not in covered]
    counts.findings_restored = len(restored)
    all_findings = list(grounded.findings) + restored
    final_interventions = list(grounded.interventions)
    if not final_interventions and offline.interventions:
        final_interventions = [i.model_copy(update={"addresses": [f"o:{a}" for a in i.addresses]})
                               for i in offline.interventions]
        counts.interventions_restored = len(final_interventions)
    else:  # a restored finding keeps its answer when the model offered nothing for it
        have = {i.id for i in final_interventions}
        restored_ids = {f.id for f in restored}
        for i in offline.interventions:
            addresses = [f"o:{a}" for a in i.addresses if f"o:{a}" in restored_ids]
            if addresses and i.id not in have:
                final_interventions.append(i.model_copy(update={"addresses": addresses}))
                counts.interventions_restored += 1

    # plain ids again: f1..fn in order, addresses remapped
    rename = {f.id: f"f{n}" for n, f in enumerate(all_findings, start=1)}
    all_findings = [f.model_copy(update={"id": rename[f.id]}) for f in all_findings]
    final_interventions = [i.model_copy(update={"addresses": [rename[a] for a in i.addresses if a in rename]})
                           for i in final_interventions]
    cited = [c for f in all_findings for c in f.citations] + [c for i in final_interventions for c in i.citations]
    critique = grounded.model_copy(update={"findings": all_findings, "interventions": final_interventions,
                                           "references": references_for(corpus, cited)})
    final = check_grounding(critique, plan, corpus)
    if not final.ok:  # cannot happen with the steps above; never ship an ungrounded critique anyway
        critique, _ = ground(critique, plan, corpus)
    return _Merge(critique, counts, flagged, contributed, report.problems)
