"""Which relational interventions a plan needs most: a small learned ranker.

Every (plan, intervention) pair gets a score from a logistic model over what the offline
analysis already knows about the plan:

- the finding kinds detected, both as they are (``kind:<kind>|<intervention>``) and through the
  corpus's own advice: the rank at which a finding kind recommends the intervention
  (``rec:<rank>``) and whether the intervention says it answers that kind (``answers``);
- what the plan builds and how it engages people (``ctx:<family>|<intervention>``): teams of
  several professions, hand-offs between services, partner organisations, restructures, digital
  systems, staff-facing or public-facing engagement, training, targets, boards, programme
  offices;
- whether the plan already does the intervention concretely (``doing``), the intervention's
  themes that the plan neglects (``neglected``), the plan's verdict and relational share.

The generic features (``rec:*``, ``answers``, ``doing``, ``neglected``) carry over to
interventions an organisation adds to its own corpus; the per-intervention ones are learned from
reference critiques. Training (``assistant ranker train``) needs scikit-learn; inference is numpy
only and deterministic. The weights ship as readable JSON in ``advice/data/ranker.json``, with
the datasets they were fitted on.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..analysis.actions import PlanAnalysis
from ..analysis.detect import Detection, balance_of
from ..domain import Balance, FindingKind
from ..errors import ConfigError
from ..knowledge import Corpus
from ..knowledge.models import Intervention
from .answers import PROFESSIONS

__all__ = ["ALREADY_DOING", "CONTEXT", "InterventionRanker", "PlanFacts", "Ranked", "RankerModel", "RankerScore",
           "TrainingPlan", "cross_validate", "pair_features", "plan_context", "recommended_by_kind", "score_ranker", "train_ranker"]

SHIPPED_RANKER = Path(__file__).resolve().parent / "data" / "ranker.json"

# Codes whose concrete presence means the plan already does what an intervention proposes.
ALREADY_DOING: dict[str, tuple[str, ...]] = {
    "boundary-spanning-roles": ("structure.relational.boundary-spanning-roles",),
    "relational-coordination-baseline": ("people.relational.relational-coordination-mapping",),
    "interprofessional-learning": ("people.relational.interprofessional-learning",),
    "shared-purpose-co-creation": ("strategy.relational.co-created-shared-purpose",),
    "co-production-with-service-users": ("people.relational.co-production-with-service-users",
                                         "people.work_process.experience-based-co-design"),
    "distributed-leadership-development": ("leadership.relational.distributed-clinical-leadership",
                                           "leadership.relational.cross-boundary-leadership-development"),
    "integrated-team-huddles": ("structure.work_process.huddle-based-improvement",
                                "structure.relational.multidisciplinary-team-meetings"),
    "psychological-safety-and-relational-space": ("people.relational.psychological-safety",),
    "coaching-and-improvement-capability": ("people.work_process.joint-improvement-teams",
                                            "strategy.work_process.improvement-methodology"),
    "staff-voice-and-engagement": ("people.relational.staff-voice-and-engagement",),
    "leadership-continuity-and-visibility": ("leadership.relational.leadership-continuity",
                                             "leadership.relational.visible-listening-leadership"),
    "relational-measures": ("strategy.relational.relational-outcome-measures",),
    "sustainment-plan": ("strategy.relational.long-term-commitment",),
}



@dataclass(frozen=True)
class ContextFamily:
    """One thing a plan can be about, with the words that show it and a phrase for rationales."""

    pattern: re.Pattern[str]
    saturation: int  # matches at which the feature reaches 1.0
    describes: str


def _family(pattern: str, saturation: int, describes: str) -> ContextFamily:
    return ContextFamily(re.compile(pattern, re.I), saturation, describes)


# What a plan builds and how it engages people. Each family's level is its match count against
# the plan's text, scaled to [0, 1]; `describes` completes "the plan ..." in a rationale.
CONTEXT: dict[str, ContextFamily] = {
    "teams": _family(r"\b(co-?locat\w*|integrated teams?|multi-?disciplinary|mdts?|neighbourhood teams?|"
                     r"locality teams?|community teams?|virtual wards?|hubs?|caseloads?|wijkteams?|"
                     r"teams? (?:around|based)|one team)\b", 4,
                     "brings several professions into shared teams or hubs"),
    "handoffs": _family(r"\b(discharges?|referrals?|refer|hand-?offs?|hand-?overs?|transfers? of care|transitions?|"
                        r"pathways?|waiting lists?|escalat\w+)\b", 5,
                        "depends on hand-offs between services"),
    "partners": _family(r"\b(council|local authorit\w+|municipalit\w+|gemeente\w*|voluntary|third sector|"
                        r"housing|police|partners?|partnership|agreements?|contracts?|commission\w*|"
                        r"providers?)\b", 8,
                        "joins several organisations together"),
    "restructure": _family(r"\b(merg\w+|acquisition|restructur\w+|reorganis\w+|tupe|consolidat\w+|"
                           r"directorates?|single (?:organisation|management|service|structure)|realign\w*|"
                           r"new (?:structure|organisation|operating model))\b", 3,
                           "restructures or merges services"),
    "digital": _family(r"\b(records?|platform|digital|software|systems? (?:go-live|roll-?out|procure\w*)|ehr|epr|"
                       r"data sharing|interoperab\w+|portal|app)\b", 4,
                       "relies on new digital systems"),
    "staff_engagement": _family(r"\b(staff (?:briefings?|surveys?|engagement|side|consultation|"
                                r"communications?|newsletters?)|roadshows?|newsletters?|briefing sessions?|"
                                r"town halls?|all-staff|intranet|engagement events?)\b", 3,
                                "tells staff about the change"),
    "public_engagement": _family(r"\b(service users?|patients?|residents?|carers?|the public|public "
                                 r"(?:consultation|engagement|meetings?)|communit(?:y|ies) (?:groups?|"
                                 r"members?|engagement|consultation)|citizens?|clients?|whānau|"
                                 r"lived experience|healthwatch|consult\w*)\b", 6,
                                 "involves the people who use services"),
    "training": _family(r"\b(training|e-?learning|modules?|induction|mandatory|competenc\w+|"
                        r"learning (?:programme|package))\b", 3,
                        "develops staff through training"),
    "metrics": _family(r"\b(kpis?|dashboards?|targets?|metrics?|indicators?|performance|trajector\w+|"
                       r"benchmark\w*)\b", 5,
                       "measures success through performance indicators"),
    "governance": _family(r"\b(boards?|sro|senior responsible|steering|committee|governance|"
                          r"accountab\w+|sign-?off|scheme of delegation)\b", 6,
                          "leads through boards and accountability lines"),
    "pmo": _family(r"\b(pmo|programme (?:management )?office|project management|milestones?|raid|gantt|"
                   r"highlight reports?|workstreams?|benefits realisation|critical path)\b", 4,
                   "runs the change as a programme of milestones"),
    "time_limited": _family(r"\b(pilots?|non-?recurrent|fixed-?term|time-?limited|one-?off|test of change|"
                            r"proof of concept|(?:12|twelve|18|eighteen)[- ]months?|year one|first year|"
                            r"programme closes?|project closure)\b", 2,
                            "is funded or planned for a short time"),
    "standardise": _family(r"\b(standard operating procedures?|sops?|mandat\w+|complian\w+|protocols?|bundles?|"
                           r"templates?|standardis\w+|checklists?|audit\w*)\b", 3,
                           "changes practice by standardising it"),
    "culture": _family(r"\b(culture|trust|collaborat\w+|relationships?|together|one team|values|"
                       r"compassion\w*|partnership working)\b", 6,
                       "talks about culture and collaboration"),
}


def recommended_by_kind(corpus: Corpus) -> dict[str, list[str]]:
    """Each finding kind's interventions, in the order the framework recommends them."""
    return {k.id: list(k.interventions) for k in corpus.framework.finding_kinds}


def plan_context(text: str) -> dict[str, float]:
    """Each context family's level in [0, 1] for a plan's text, plus ``professions`` (distinct
    professions named, scaled so that four reach 1.0)."""
    out = {name: min(1.0, len(fam.pattern.findall(text)) / fam.saturation) for name, fam in CONTEXT.items()}
    professions = {m.group(0).lower()[:6] for m in PROFESSIONS.finditer(text)}
    out["professions"] = min(1.0, len(professions) / 4)
    return out


@dataclass(frozen=True)
class PlanFacts:
    """What the ranker looks at, gathered once per plan."""

    kinds: tuple[FindingKind, ...]
    context: Mapping[str, float]
    present_codes: frozenset[str]
    neglected: frozenset[str]
    overuse: bool
    relational_share: float

    @classmethod
    def of(cls, analysis: PlanAnalysis, detections: Iterable[Detection], overuse: bool,
           balance: Balance | None = None) -> PlanFacts:
        """The facts of an assessed plan (``balance`` is derived from its actions if not given)."""
        balance = balance or balance_of(analysis.actions)
        return cls(
            kinds=tuple(dict.fromkeys(d.kind for d in detections)),
            context=plan_context(analysis.text),
            present_codes=frozenset(a.code for a in analysis.actions if a.relational and a.concrete),
            neglected=frozenset(balance.neglected_themes),
            overuse=overuse,
            relational_share=balance.relational_share,
        )


def pair_features(facts: PlanFacts, iv: Intervention, recommended: Mapping[str, Sequence[str]]) -> dict[str, float]:
    """The features of one (plan, intervention) pair; names are stable strings (see module doc)."""
    f: dict[str, float] = {f"bias|{iv.id}": 1.0}

    def add(name: str, value: float) -> None:
        if value:
            f[name] = f.get(name, 0.0) + value

    for kind in facts.kinds:
        add(f"kind:{kind}|{iv.id}", 1.0)
        ranked = list(recommended.get(kind, ()))
        if iv.id in ranked:
            add(f"rec:{min(ranked.index(iv.id), 3)}", 1.0)
        if kind in iv.answers:
            add("answers", 1.0)
    for name, level in facts.context.items():
        add(f"ctx:{name}|{iv.id}", level)
    add("doing", float(any(code in facts.present_codes for code in ALREADY_DOING.get(iv.id, ()))))
    add("neglected", float(sum(1 for t in iv.themes if t in facts.neglected)))
    add(f"overuse|{iv.id}", float(facts.overuse))
    add(f"share|{iv.id}", facts.relational_share)
    add(f"findings|{iv.id}", min(len(facts.kinds), 6) / 6)
    return f


@dataclass(frozen=True)
class RankerModel:
    """A linear model over named features, and the rule that turns its probabilities into picks."""

    weights: Mapping[str, float]
    intercept: float
    threshold: float  # suggest every intervention at least this probable ...
    min_picks: int  # ... but never fewer than this (a plan with actions always gets advice) ...
    max_picks: int  # ... nor more than this (advice a leader can act on)
    meta: Mapping[str, Any] = field(default_factory=dict)

    def save(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        body = {
            "format": "transformation-advisor/ranker@1",
            "intercept": round(self.intercept, 6),
            "threshold": self.threshold,
            "min_picks": self.min_picks,
            "max_picks": self.max_picks,
            "meta": dict(self.meta),
            "weights": {k: round(v, 6) for k, v in sorted(self.weights.items()) if round(v, 6)},
        }
        path.write_text(json.dumps(body, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")

    @classmethod
    def load(cls, path: Path) -> RankerModel:
        try:
            body = json.loads(path.read_text(encoding="utf-8"))
            if body.get("format") != "transformation-advisor/ranker@1":
                raise ValueError(f"unknown format {body.get('format')!r}")
            return cls(weights={str(k): float(v) for k, v in body["weights"].items()},
                       intercept=float(body["intercept"]), threshold=float(body["threshold"]),
                       min_picks=int(body["min_picks"]), max_picks=int(body["max_picks"]),
                       meta=body.get("meta", {}))
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise ConfigError(f"The intervention ranker's model {path} cannot be read: {exc}",
                              hint="Run `assistant ranker train` to fit it again.") from exc

    def probability(self, features: Mapping[str, float]) -> float:
        z = self.intercept + sum(self.weights.get(name, 0.0) * value for name, value in features.items())
        return 1.0 / (1.0 + math.exp(-max(-30.0, min(30.0, z))))


@dataclass(frozen=True)
class Ranked:
    """One intervention with its probability and the strongest reasons the model had for it."""

    intervention: Intervention
    probability: float
    reasons: tuple[str, ...]  # context family names that raised the score most, strongest first


class InterventionRanker:
    """Ranks a corpus's interventions for a plan; see the module docstring."""

    def __init__(self, corpus: Corpus, model: RankerModel | None = None, model_path: Path | None = None) -> None:
        self.corpus = corpus
        self.model = model or _find_model(model_path)
        self.recommended = recommended_by_kind(corpus)

    def rank(self, facts: PlanFacts) -> list[Ranked]:
        out: list[Ranked] = []
        for iv in self.corpus.interventions.values():
            feats = pair_features(facts, iv, self.recommended)
            contributions = sorted(
                ((self.model.weights.get(name, 0.0) * value, name.split("|")[0][4:])
                 for name, value in feats.items() if name.startswith("ctx:")),
                reverse=True)
            reasons = tuple(name for gain, name in contributions if gain > 0.25 and name in CONTEXT)[:2]
            out.append(Ranked(iv, self.model.probability(feats), reasons))
        out.sort(key=lambda r: (-r.probability, r.intervention.id))
        return out

    def choose(self, facts: PlanFacts, has_actions: bool = True) -> list[Ranked]:
        """The interventions to suggest: every one at least `threshold` probable, within
        [min_picks, max_picks] (none for a plan with no actions)."""
        if not has_actions:
            return []
        ranked = self.rank(facts)
        picked = [r for r in ranked if r.probability >= self.model.threshold][: self.model.max_picks]
        if len(picked) < self.model.min_picks:
            picked = ranked[: self.model.min_picks]
        return picked


def _find_model(model_path: Path | None) -> RankerModel:
    from ..settings import get_settings

    candidates = [model_path] if model_path else [get_settings().home / "ranker" / "ranker.json", SHIPPED_RANKER]
    for path in candidates:
        if path is not None and path.exists():
            return RankerModel.load(path)
    raise ConfigError("The intervention ranker's model is missing.",
                      hint="Reinstall the package, or run `assistant ranker train`.")


@dataclass(frozen=True)
class TrainingPlan:
    """One plan's facts and the interventions its reference critique insists on."""

    sample_id: str
    facts: PlanFacts
    expected: frozenset[str]


def train_ranker(corpus: Corpus, plans: Sequence[TrainingPlan], *, c: float = 0.3, threshold: float = 0.2,
                 min_picks: int = 2, max_picks: int = 6, meta: Mapping[str, Any] | None = None) -> RankerModel:
    """Fit the ranker's weights to reference critiques (needs scikit-learn)."""
    try:
        import numpy as np
        from sklearn.linear_model import LogisticRegression
    except ImportError as exc:
        raise ConfigError("Training the ranker needs scikit-learn.",
                          hint='pip install "transformation-advisor[dev]"') from exc
    if not plans:
        raise ConfigError("No reference critiques to train the ranker on.")
    recommended = recommended_by_kind(corpus)
    rows: list[dict[str, float]] = []
    labels: list[int] = []
    for plan in plans:
        for iv in corpus.interventions.values():
            rows.append(pair_features(plan.facts, iv, recommended))
            labels.append(int(iv.id in plan.expected))
    if len(set(labels)) < 2:
        raise ConfigError("The reference critiques must name some interventions, and not all of them.")
    names = sorted({name for row in rows for name in row})
    index = {name: j for j, name in enumerate(names)}
    x = np.zeros((len(rows), len(names)))
    for i, row in enumerate(rows):
        for name, value in row.items():
            x[i, index[name]] = value
    clf = LogisticRegression(C=c, max_iter=5000, tol=1e-8)
    clf.fit(x, np.asarray(labels))
    weights = {name: float(w) for name, w in zip(names, clf.coef_[0], strict=True)}
    info = {"plans": len(plans), "pairs": len(rows), "C": c, **(meta or {})}
    return RankerModel(weights=weights, intercept=float(clf.intercept_[0]), threshold=threshold,
                       min_picks=min_picks, max_picks=max_picks, meta=info)


@dataclass(frozen=True)
class RankerScore:
    recall: float  # expected interventions suggested (micro)
    precision: float  # suggested interventions the reference expects (micro)
    picks: float  # mean suggestions per plan


def score_ranker(corpus: Corpus, model: RankerModel, plans: Sequence[TrainingPlan]) -> RankerScore:
    """How well a model's picks match the references of some plans."""
    ranker = InterventionRanker(corpus, model=model)
    hits = expected = given = 0
    for plan in plans:
        got = {r.intervention.id for r in ranker.choose(plan.facts)}
        hits += len(got & plan.expected)
        expected += len(plan.expected)
        given += len(got)
    return RankerScore(recall=hits / expected if expected else 0.0, precision=hits / given if given else 0.0,
                       picks=given / len(plans) if plans else 0.0)


def cross_validate(corpus: Corpus, plans: Sequence[TrainingPlan], folds: int = 5, **train_args: Any) -> RankerScore:
    """k-fold cross-validated score (plans dealt to folds in order): the honest estimate of how
    the ranker does on plans it was not fitted to."""
    folds = max(2, min(folds, len(plans)))
    hits = expected = given = 0.0
    for k in range(folds):
        held = [p for i, p in enumerate(plans) if i % folds == k]
        model = train_ranker(corpus, [p for i, p in enumerate(plans) if i % folds != k], **train_args)
        s = score_ranker(corpus, model, held)
        n_expected = sum(len(p.expected) for p in held)
        hits += s.recall * n_expected
        expected += n_expected
        given += s.picks * len(held)
    return RankerScore(recall=hits / expected if expected else 0.0,
                       precision=hits / given if given else 0.0, picks=given / len(plans))
