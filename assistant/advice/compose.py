"""The offline composer: turn an analysis and its detections into a grounded Critique.

Deterministic: the same plan gives the same critique. Wording lives in Jinja templates
(``templates/``); this module chooses what to say and what to cite.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Sequence
from pathlib import Path

import jinja2

from ..analysis.actions import CodedAction, PlanAnalysis
from ..analysis.detect import Detection, VerdictFacts, balance_of
from ..domain import (
    Action,
    Balance,
    Critique,
    Evidence,
    Finding,
    InterventionAdvice,
    PlanInfo,
    ReadingInfo,
    Reference,
    Theme,
    Verdict,
)
from ..knowledge import Corpus
from ..knowledge.models import Intervention, in_sentence
from .ranking import CONTEXT, InterventionRanker, PlanFacts

__all__ = ["CaseFinder", "compose_critique", "references_for"]

TEMPLATES = Path(__file__).resolve().parent / "templates"
# (finding kind, query) -> ranked case reference ids; the retrieval layer plugs in here.
CaseFinder = Callable[[str, str], list[str]]


@functools.cache
def _env() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(TEMPLATES)),
        autoescape=False,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=False,
    )
    env.globals["pct"] = lambda x: f"{round(100 * float(x))}%"
    env.globals["first_sentence"] = _first_sentence
    return env


def _first_sentence(text: str) -> str:
    m = re.match(r"(.+?[.!?])(\s|$)", " ".join(text.split()))
    return m.group(1) if m else text


def _short_quote(text: str, limit: int = 140) -> str:
    """A verbatim quote short enough to read in a sentence: the text itself, or its first clause."""
    text = text.strip()
    if len(text) <= limit:
        return text
    cut = max(text.rfind(sep, 0, limit) for sep in (", ", "; ", " – ", " - ", ": "))
    if cut > 40:
        return text[:cut]
    space = text.rfind(" ", 0, limit)
    return text[:space if space > 40 else limit]


def _module(name: str) -> object:
    return _env().get_template(name).module


def _summary(detection: Detection, quote: str) -> str:
    module = _module("findings.j2")
    n = len(detection.quotes)
    for key in ("pm_actions", "structural_changes", "governance_actions", "engagement_actions", "training_actions",
                "metric_actions"):
        if key in detection.facts:
            n = int(str(detection.facts[key]))
            break
    return " ".join(str(module.summary(detection.kind, detection, quote, n)).split())  # type: ignore[attr-defined]


def _choose_interventions(
    ranker: InterventionRanker, analysis: PlanAnalysis, findings: Sequence[tuple[Finding, Detection]],
    balance: Balance, overuse: bool,
) -> list[tuple[Intervention, list[Finding], tuple[str, ...]]]:
    """The ranker's picks, each with the findings it answers (by the corpus's own advice) and the
    plan context that raised it."""
    facts = PlanFacts.of(analysis, [det for _, det in findings], overuse, balance)
    chosen = []
    for ranked in ranker.choose(facts, has_actions=bool(analysis.actions)):
        iv = ranked.intervention
        addressed = [f for f, _ in findings if f.kind in iv.answers or iv.id in ranker.recommended.get(f.kind, ())]
        chosen.append((iv, addressed, ranked.reasons))
    return chosen


def references_for(corpus: Corpus, ids: Sequence[str]) -> list[Reference]:
    """Reference entries for citation ids, in first-cited order; unknown ids are skipped."""
    out: list[Reference] = []
    seen: set[str] = set()
    for ref_id in ids:
        if ref_id in seen:
            continue
        seen.add(ref_id)
        if ref_id.startswith("case:") and ref_id[5:] in corpus.cases:
            case = corpus.cases[ref_id[5:]]
            out.append(Reference(id=ref_id, kind="case", title=f"{case.name} ({case.country}, {case.years})",
                                 source=str(case.sources[0].url)))
        elif ref_id.startswith("intervention:") and ref_id[13:] in corpus.interventions:
            out.append(Reference(id=ref_id, kind="intervention", title=corpus.interventions[ref_id[13:]].title,
                                 source=None))
        elif ref_id in corpus.references:
            entry = corpus.references[ref_id]
            year = f", {entry.year}" if entry.year else ""
            out.append(Reference(id=ref_id, kind=entry.kind, title=f"{entry.title} ({entry.authors}{year})",
                                 source=str(entry.url)))
    return out


def _theme_for(iv: Intervention, neglected: Sequence[Theme]) -> Theme:
    for t in iv.themes:
        if t in neglected:
            return t
    return iv.themes[0]


def compose_critique(
    corpus: Corpus,
    analysis: PlanAnalysis,
    detections: Sequence[Detection],
    verdict: VerdictFacts,
    *,
    backend: str = "offline",
    case_finder: CaseFinder | None = None,
    ranker: InterventionRanker | None = None,
    reader: str = "offline",
    notices: Sequence[str] = (),
) -> Critique:
    balance = balance_of(analysis.actions)
    kinds_def = {k.id: k for k in corpus.framework.finding_kinds}
    findings: list[tuple[Finding, Detection]] = []
    for n, det in enumerate(detections, start=1):
        quotes = [_short_quote(q.text) for q in det.quotes]
        citations = list(kinds_def[det.kind].anchors[:2]) if det.kind in kinds_def else []
        if case_finder is not None:
            query = " ".join([kinds_def[det.kind].label if det.kind in kinds_def else det.kind, *quotes[:2]])
            citations += [c for c in case_finder(det.kind, query)[:1] if c not in citations]
        finding = Finding(
            id=f"f{n}",
            kind=det.kind,
            theme=det.theme,
            summary=_summary(det, quotes[0]),
            evidence=[Evidence(quote=qt, action_id=q.action_id) for q, qt in zip(det.quotes, quotes, strict=True)],
            citations=[c for c in citations if c],
        )
        findings.append((finding, det))

    module = _module("intervention.j2")
    advice: list[InterventionAdvice] = []
    ranker = ranker or InterventionRanker(corpus)
    for iv, addressed, reasons in _choose_interventions(ranker, analysis, findings, balance,
                                                        verdict.structural_overuse):
        quote = addressed[0].evidence[0].quote if addressed and addressed[0].evidence else None
        labels = [f"{f.id} ({in_sentence(kinds_def[f.kind].label) if f.kind in kinds_def else f.kind})" for f in addressed]
        context = CONTEXT[reasons[0]].describes if reasons else None
        rationale = " ".join(str(module.rationale(  # type: ignore[attr-defined]
            iv, labels, quote, context, verdict.structural_overuse)).split())
        tailored = " ".join(str(module.tailored_step(iv, quote)).split())  # type: ignore[attr-defined]
        citations = [c for c in iv.cases if c[5:] in corpus.cases][:2] + [r for r in iv.references if r in corpus.references][:2]
        advice.append(InterventionAdvice(
            id=iv.id,
            title=iv.title,
            theme=_theme_for(iv, balance.neglected_themes),
            addresses=[f.id for f in addressed],
            rationale=rationale,
            first_steps=[tailored, *iv.first_steps[:3]],
            measures=list(iv.measures[:3]),
            citations=citations,
        ))

    cited = [c for f, _ in findings for c in f.citations] + [c for a in advice for c in a.citations]
    kinds = [f.kind for f, _ in findings]
    headline = " ".join(_env().get_template("verdict.j2").render(
        v=verdict, kinds=kinds, actions=len(analysis.actions)).split())
    return Critique(
        backend=backend,
        plan=PlanInfo(title=analysis.title, characters=len(analysis.text), actions=len(analysis.actions)),
        verdict=Verdict(structural_overuse=verdict.structural_overuse, severity=verdict.severity, headline=headline),
        balance=balance,
        actions=[_action(a) for a in analysis.actions],
        findings=[f for f, _ in findings],
        interventions=advice,
        references=references_for(corpus, cited),
        reading=ReadingInfo(reader=reader, notices=[*notices, *reading_notices(analysis)]),
    )


def reading_notices(analysis: PlanAnalysis) -> list[str]:
    """What the reader set aside, said so the user can check it."""
    if not analysis.asides:
        return []
    shown = "; ".join(f'"{_clip(a.text)}"' for a in analysis.asides[:3])
    more = f" and {len(analysis.asides) - 3} more" if len(analysis.asides) > 3 else ""
    n = len(analysis.asides)
    return [f"{n} passage{'s' if n > 1 else ''} addressed to a reviewer or an AI model rather than to the plan's "
            f"readers {'were' if n > 1 else 'was'} set aside and not read as part of the plan: {shown}{more}."]


def _clip(text: str, limit: int = 120) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[:limit].rsplit(" ", 1)[0] + " ..."


def _action(a: CodedAction) -> Action:
    return Action(id=a.id, text=a.text, start=a.start, end=a.end, theme=a.theme, orientation=a.orientation,
                  horizon=a.horizon, code=a.code, confidence=a.confidence, concrete=a.concrete)
