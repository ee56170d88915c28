"""The full text of a corpus entry (case, intervention, framework or paper) as Markdown.

What the chat shows when a leader opens a cited case or a suggested intervention.
"""

from __future__ import annotations

from ..errors import UnknownIdError
from ..knowledge import Corpus
from ..knowledge.models import Case, Intervention, ReferenceEntry

__all__ = ["entry_markdown", "entry_title", "is_openable"]

CONFIDENCE = {"high": "well documented", "medium": "partly documented", "low": "thinly documented"}


def _split(ref_id: str) -> tuple[str, str]:
    kind, _, key = ref_id.partition(":")
    return (kind, key) if key else ("intervention", kind)


def is_openable(corpus: Corpus, ref_id: str) -> bool:
    kind, key = _split(ref_id)
    if kind == "case":
        return key in corpus.cases
    if kind == "intervention":
        return key in corpus.interventions
    return ref_id in corpus.references


def entry_title(corpus: Corpus, ref_id: str) -> str:
    kind, key = _split(ref_id)
    if kind == "case" and key in corpus.cases:
        return str(corpus.cases[key].name)
    if kind == "intervention" and key in corpus.interventions:
        return str(corpus.interventions[key].title)
    if ref_id in corpus.references:
        return str(corpus.references[ref_id].title)
    return ref_id


def entry_markdown(corpus: Corpus, ref_id: str) -> str:
    """``case:torbay``, ``intervention:boundary-spanning-roles`` (or the bare id), ``framework:gittell-rc``."""
    kind, key = _split(ref_id)
    if kind == "case" and key in corpus.cases:
        return case_markdown(corpus.cases[key])
    if kind == "intervention" and key in corpus.interventions:
        return intervention_markdown(corpus.interventions[key], corpus)
    if ref_id in corpus.references:
        return reference_markdown(corpus.references[ref_id])
    raise UnknownIdError("source", ref_id, sorted(corpus.reference_ids()))


def case_markdown(case: Case) -> str:
    lines = [f"# {case.name}", "",
             f"*{case.country} · {case.years} · {case.organisation_type}*", "",
             f"Evidence: {CONFIDENCE[case.confidence]} ({case.confidence} confidence). "
             f"Relational share of its approach, as we coded it: {round(100 * case.balance.relational_share)}%.",
             ""]
    if case.body.strip():
        lines += [case.body.strip(), ""]
    lines += ["## Lessons", ""] + [f"- {lesson}" for lesson in case.lessons] + [""]
    lines += ["## Outcomes reported", ""]
    for outcome in case.outcomes:
        mark = "" if outcome.confirmed else " *(unconfirmed)*"
        lines.append(f"- {outcome.claim}{mark}")
    lines += ["", "## What sustained it", "", case.sustainment, ""]
    if case.unconfirmed:
        lines += ["## Not confirmed by a source", ""] + [f"- {u}" for u in case.unconfirmed] + [""]
    lines += ["## Sources", ""]
    for source in case.sources:
        lines.append(f"- {source.title or source.url}: {source.url}")
    lines += ["", "*The case is written in this project's own words from the sources above; "
              "its coding is ours, not the sources'.*"]
    return "\n".join(lines)


def intervention_markdown(intervention: Intervention, corpus: Corpus) -> str:
    lines = [f"# {intervention.title}", "", intervention.summary, ""]
    lines += ["## First steps", ""] + [f"{n}. {s}" for n, s in enumerate(intervention.first_steps, 1)] + [""]
    lines += ["## How to measure it", ""] + [f"- {m}" for m in intervention.measures] + [""]
    lines += ["## Pitfalls", ""] + [f"- {p}" for p in intervention.pitfalls] + [""]
    if intervention.cases:
        lines += ["## Cases", ""]
        lines += [f"- {entry_title(corpus, c)} (`{c}`)" for c in intervention.cases]
        lines.append("")
    if intervention.references:
        lines += ["## Frameworks and papers", ""]
        lines += [f"- {entry_title(corpus, r)} (`{r}`)" for r in intervention.references]
    return "\n".join(lines)


def reference_markdown(ref: ReferenceEntry) -> str:
    year = f" ({ref.year})" if ref.year else ""
    return "\n".join([f"# {ref.title}", "", f"*{ref.authors}{year}*", "", ref.summary, "",
                      f"Source: {ref.url}"])
