"""Grounding: every quote is a verbatim substring of the plan, every citation resolves.

``ground`` repairs a critique (from any backend) by dropping what cannot be verified and
counting what it dropped; ``check_grounding`` only reports, for tests and evals.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ..domain import Critique, Evidence
from ..knowledge import Corpus

__all__ = ["GroundingReport", "check_grounding", "ground"]


@dataclass
class GroundingReport:
    quotes: int = 0
    quotes_verbatim: int = 0
    citations: int = 0
    citations_resolved: int = 0
    interventions: int = 0
    interventions_valid: int = 0
    offsets_ok: bool = True
    problems: list[str] = field(default_factory=list)

    @property
    def dropped(self) -> int:
        return (self.quotes - self.quotes_verbatim) + (self.citations - self.citations_resolved) + (
            self.interventions - self.interventions_valid)

    @property
    def ok(self) -> bool:
        return not self.problems


def check_grounding(critique: Critique, plan_text: str, corpus: Corpus) -> GroundingReport:
    report = GroundingReport()
    known = corpus.reference_ids()
    listed = {r.id for r in critique.references}
    for a in critique.actions:
        if plan_text[a.start:a.end] != a.text:
            report.offsets_ok = False
            report.problems.append(f"action {a.id}: offsets {a.start}:{a.end} do not slice to its text")
    for f in critique.findings:
        for e in f.evidence:
            report.quotes += 1
            if e.quote and e.quote in plan_text:
                report.quotes_verbatim += 1
            else:
                report.problems.append(f"finding {f.id}: quote not in the plan: {e.quote[:60]!r}")
    for owner, citations in [(f.id, f.citations) for f in critique.findings] + [
            (i.id, i.citations) for i in critique.interventions]:
        for c in citations:
            report.citations += 1
            if c in known and c in listed:
                report.citations_resolved += 1
            else:
                report.problems.append(f"{owner}: citation {c!r} does not resolve")
    for r in critique.references:
        if r.id not in known:
            report.problems.append(f"reference {r.id!r} is not in the corpus")
    for i in critique.interventions:
        report.interventions += 1
        if i.id in corpus.interventions:
            report.interventions_valid += 1
        else:
            report.problems.append(f"intervention {i.id!r} is not in the library")
    return report


def ground(critique: Critique, plan_text: str, corpus: Corpus) -> tuple[Critique, GroundingReport]:
    """Drop unverifiable quotes, unresolvable citations and unknown interventions; report counts."""
    from .compose import references_for

    report = check_grounding(critique, plan_text, corpus)
    if report.ok:
        return critique, report
    known = corpus.reference_ids()
    findings = []
    for f in critique.findings:
        evidence = [Evidence(quote=e.quote, action_id=e.action_id) for e in f.evidence if e.quote and e.quote in plan_text]
        if not evidence:
            continue  # a finding with no verifiable evidence is not grounded
        findings.append(f.model_copy(update={"evidence": evidence, "citations": [c for c in f.citations if c in known]}))
    finding_ids = {f.id for f in findings}
    interventions = [
        i.model_copy(update={"citations": [c for c in i.citations if c in known],
                             "addresses": [a for a in i.addresses if a in finding_ids]})
        for i in critique.interventions if i.id in corpus.interventions
    ]
    actions = [a for a in critique.actions if plan_text[a.start:a.end] == a.text]
    cited = [c for f in findings for c in f.citations] + [c for i in interventions for c in i.citations]
    repaired = critique.model_copy(update={
        "findings": findings, "interventions": interventions, "actions": actions,
        "references": references_for(corpus, cited),
    })
    return repaired, report
