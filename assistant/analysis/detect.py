"""Balance profile, the nine pattern detectors, and the verdict.

Each detector reads the coded actions (and, for rhetoric, the plan's non-action text) and
returns a Detection that points at actions and quotes the plan verbatim. The wording of
findings is the composer's job; detectors only say what was found and where.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

from ..domain import (
    HORIZONS,
    ORIENTATIONS,
    THEMES,
    Balance,
    FindingKind,
    Severity,
    Theme,
    ThemeCounts,
)
from .actions import CodedAction, PlanAnalysis

__all__ = ["DETECTORS", "Detection", "Quote", "VerdictFacts", "balance_of", "detect", "verdict_of"]


@dataclass(frozen=True)
class Quote:
    text: str
    start: int
    action_id: str | None


@dataclass(frozen=True)
class Detection:
    kind: FindingKind
    theme: Theme | None
    quotes: tuple[Quote, ...]
    facts: dict[str, object] = field(default_factory=dict)

    @property
    def action_ids(self) -> list[str]:
        return [q.action_id for q in self.quotes if q.action_id]


def _q(action: CodedAction) -> Quote:
    return Quote(action.text, action.start, action.id)


def _clause_around(text: str, start: int, end: int, limit: int = 160) -> tuple[int, int]:
    """The clause of ``text`` around a match: cut at the nearest sentence or clause punctuation."""
    if len(text) <= limit:
        return 0, len(text)
    left = max(text.rfind(p, 0, start) for p in (". ", "; ", ": ", ", ", "\n"))
    left = 0 if left < 0 else left + 2
    rights = [i for i in (text.find(p, end) for p in (". ", "; ", ", ", "\n")) if i >= 0]
    right = min(rights) if rights else len(text)
    if right - left > limit:
        left = max(left, start - limit // 2)
        right = min(right, max(end, left + limit))
        while left > 0 and text[left - 1].isalnum():
            left += 1
        while right < len(text) and text[right:right + 1].isalnum():
            right -= 1
    return left, right


def _pattern_quote(analysis: PlanAnalysis, pattern: re.Pattern[str], limit: int = 2) -> list[Quote]:
    """Quotes of the sentences (actions or not) that match a pattern, in plan order; a long
    sentence is quoted by the clause that matched, so the quote shows the evidence."""
    out: list[Quote] = []
    by_start = {a.start: a for a in analysis.actions}
    for seg in analysis.segments:
        if seg.kind == "heading":
            continue
        m = pattern.search(seg.text)
        if m:
            action = by_start.get(seg.start)
            a, b = _clause_around(seg.text, m.start(), m.end())
            quote = seg.text[a:b].strip(" ,;:*")
            offset = seg.text.find(quote, a)
            out.append(Quote(quote, seg.start + offset, action.id if action else None))
            if len(out) >= limit:
                break
    return out


def balance_of(actions: Sequence[CodedAction]) -> Balance:
    themes = {t: {o: 0 for o in ORIENTATIONS} for t in THEMES}
    horizon = dict.fromkeys(HORIZONS, 0)
    for a in actions:
        themes[a.theme][a.orientation] += 1
        horizon[a.horizon] += 1
    coded = len(actions)
    relational = sum(1 for a in actions if a.relational)
    neglected: list[Theme] = [t for t in THEMES if themes[t]["relational"] + themes[t]["work_process"] == 0]
    return Balance(
        relational_share=round(relational / coded, 3) if coded else 0.0,
        themes={t: ThemeCounts(**themes[t]) for t in THEMES},
        horizon=horizon,
        neglected_themes=neglected,
    )


def _code_in(action: CodedAction, *prefixes: str) -> bool:
    return action.code.startswith(prefixes)


PM = re.compile(
    r"\b(pmo|programme management office|program management office|project management office|"
    r"integration management office|"
    r"raid\b|raid logs?|gantt(?: charts?)?|gateway reviews?|gateways?|highlight reports?|project plans?|"
    r"programme plans?|milestone (?:plans?|trackers?|charts?)|"
    r"benefits (?:realisation|register|tracker)\w*|project initiation documents?|pid\b|programme office|"
    r"delivery unit|critical path|deliverables (?:are |were )?(?:complete|completed|delivered)|"
    r"on time and (?:on|within) budget|delivered to plan|milestones (?:are |were )?met|closure report|"
    r"workstream leads? (?:will )?report)\b",
    re.I,
)
REPORTING = re.compile(r"\b(dashboards?|trackers?|rag[\s-]rat\w*|performance reports?|assurance framework|"
                       r"risk registers?)\b", re.I)
BIG_STRUCTURE = (
    "structure.structural.merger-and-organisational-form",
    "structure.structural.pooled-budgets",
    "structure.structural.contracts-and-commissioning",
    "structure.structural.shared-records-and-it",
    "structure.structural.co-location-and-estates",
    "leadership.structural.boards-and-committees",
)
BIG_STRUCTURE_WORDS = re.compile(
    r"\b(merge[rd]?|merging|single organisation|new (?:organisation|board|trust|body|entity|committee)|"
    r"pooled? (?:budgets?|funds?)|section 75|better care fund|lead commissioning|alliance contract|"
    r"shared (?:care )?records?|electronic (?:health|patient) records?|epr|ehr|interoperab\w+|"
    r"co-?locat\w+|hub|integrated care board|joint committee|restructur\w+|consolidat\w+|relocat\w+|"
    r"directorate|management structures?|realign\w*|single service|connect\w*)\b",
    re.I,
)
ENGAGE = re.compile(
    r"\b(inform(?:ed|ing)?|consult(?:ed|ing|ation)?s?|engage(?:d|ment)?|brief(?:ed|ings?)?|communicat\w+|"
    r"newsletters?|roadshows?|listening (?:events?|exercises?)|feedback|surveys?|keep \w+ (?:informed|updated)|"
    r"updates?|cascade\w*|awareness|town halls?|drop-in|focus groups?|questionnaires?|webinars?|"
    r"share (?:the|our) plans?|tell|told|asked for (?:its|their|our) (?:advice|views?|comments?)|surveyed|"
    r"information (?:sessions?|webinars?|events?))\b",
    re.I,
)
PEOPLE_WORDS = re.compile(
    r"\b(staff|workforce|colleagues|employees|teams?|service users?|patients?|carers?|public|residents?|"
    r"communit(?:y|ies)|citizens?|people who use|families|whānau|clients?|unions?|stakeholders?|members)\b",
    re.I,
)
CO_PRODUCE = re.compile(
    r"\b(co-?produc\w+|co-?design\w*|co-?creat\w+|experience[\s-]based co-?design|ebcd|lived experience|"
    r"experts? by experience|equal partners?|design (?:team|group) (?:of|with|including)|"
    r"(?:patients?|service users?|carers?|residents?|people) (?:will )?(?:sit|sitting) on|co-?chair\w*|"
    r"people who use services (?:will )?(?:design|lead|shape)|citizens'? (?:panel|jury|assembly)|"
    r"user[\s-]led|community[\s-]led|peer (?:leaders?|researchers?)|whānau[\s-]led)\b",
    re.I,
)
CULTURE_CLAIM = re.compile(
    r"\b(culture|cultural change|transform\w*|ways? of working|behaviours?|relationships?|(?-i:trust)(?! (?:board|fund))|"
    r"integrat\w+|one team|collaborat\w+|system change|whole[\s-]system)\b",
    re.I,
)
SUSTAIN = re.compile(
    r"\b(sustain\w*|beyond (?:the )?(?:programme|project|pilot|funding)|long[\s-]term|ten[\s-]year|10[\s-]year|"
    r"five[\s-]year|5[\s-]year|decade|recurrently fund\w*|permanent\w*|enduring|over (?:the next )?"
    r"(?:\w+ )?years|by 20[3-5]\d|mainstream\w*|embed\w* (?:into|in) (?:core|business))\b",
    re.I,
)
TRAINING = re.compile(
    r"\b(train(?:ing|ed)?|e-?learning|mandatory|induction|competenc\w+|upskill\w*|course|module|"
    r"certif\w+|skills? (?:programme|development)|learning (?:package|module))\b",
    re.I,
)
JOINT_LEARNING = re.compile(
    r"\b(interprofessional|inter-professional|multi-?professional learning|multidisciplinary learning|"
    r"joint (?:learning|training|education|development|induction|workshops?|sessions?)|learn(?:ing)? together|"
    r"shared learning|learning sets?|action learning|shadowing|rotations?|schwartz rounds?|reflective practice|"
    r"communit(?:y|ies) of practice|peer learning|cross-(?:organisational|professional) learning|"
    r"simulation (?:with|across)|case[\s-]based (?:learning|teaching|education|sessions?)|"
    r"(?:learning|teaching|education) sessions? built around (?:a |real |recent |shared )*cases?)\b",
    re.I,
)
METRIC = re.compile(
    r"\b(kpis?|key performance indicators?|targets?|metrics?|measure[sd]?|measurement|indicators?|dashboards?|"
    r"scorecards?|reduc\w+ .{0,60}?by \d+|\d+\s*%|per ?cent|length of stay|admissions?|delayed (?:transfers|discharges)|"
    r"occupancy|waiting (?:times?|lists?)|savings?|cost per|activity|throughput|performance|benchmark\w*|"
    r"availability|enrolments?|uptake|report(?:s|ing)? (?:\w+ )?(?:against|on)|monitor\w* progress|"
    r"national (?:\w+ )?metrics|benefits)\b",
    re.I,
)
RELATIONAL_MEASURE = re.compile(
    r"\b(relational coordination|rc survey|quality of (?:working )?relationships|relationships? (?:survey|measures?|map\w*)|"
    r"(?:patient|user|service user|carer|people's|resident|client|whānau|family|families'?) (?:experience|reported|"
    r"satisfaction|feedback|outcomes?)|experience measures?|prems?|proms?|what matters(?: to (?:you|them|me))?|"
    r"i statements|psychological safety|team climate|trust (?:survey|scores?)|friends and family test|"
    r"joy in work|burnout|staff (?:experience|wellbeing|well-being) (?:measures?|scores?|index|survey|pulse)|pulse surveys?)\b",
    re.I,
)
MEASURING = re.compile(r"\b(measur\w+|survey\w*|track\w*|monitor\w*|indicators?|metrics?|report\w*|baseline|"
                       r"scores?|kpis?|dashboards?|evaluat\w+|assess\w*|collect\w*|ask(?:ed|ing)?)\b", re.I)
RHETORIC = re.compile(
    r"\b(culture|cultures|trust|collaborat\w+|partnership(?: working)?|one team|together|relationships?|"
    r"compassion\w*|person[\s-]centred|people[\s-]centred|values?|shared vision|joined[\s-]up|seamless|"
    r"empower\w*|co-?operation|inclusive|kindness|respect|whole[\s-]system|system working|integrated culture)\b",
    re.I,
)
SUPPORT = re.compile(
    r"\b(protected time|backfill\w*|funded|funding|budgets?|invest\w*|£\s?\d|€\s?\d|\$\s?\d|posts?|roles?|"
    r"appoint\w*|recruit\w*|job descriptions?|governance|steering group|board|committee|terms of reference|"
    r"information[\s-]sharing|data[\s-]sharing|shared records?|care records?|it system|digital|contract\w*|"
    r"agreements?|rota\w*|job plans?|accountab\w+|reporting|resourc\w+)\b",
    re.I,
)


def _structural(analysis: PlanAnalysis) -> list[CodedAction]:
    return [a for a in analysis.actions if a.orientation == "structural"]


def _concrete_relational(analysis: PlanAnalysis, themes: Iterable[str] = THEMES) -> list[CodedAction]:
    wanted = set(themes)
    return [a for a in analysis.actions if a.relational and a.concrete and a.theme in wanted]


def detect_pm_as_product(analysis: PlanAnalysis) -> Detection | None:
    """Project-management machinery presented as the work: a programme office, RAID logs, Gantt
    charts, gateways (anywhere in the plan), or a pile of trackers and dashboards with nothing relational."""
    core = _pattern_quote(analysis, PM, limit=3)
    reporting = [a for a in analysis.actions if a.orientation == "structural" and REPORTING.search(a.text)]
    relational = _concrete_relational(analysis)
    if core and (len(core) >= 2 or len(relational) <= max(2, len(analysis.actions) // 4)):
        quotes = core + [_q(a) for a in reporting if a.start not in {q.start for q in core}]
        return Detection("pm-as-product", "strategy", tuple(quotes[:3]),
                         {"pm_actions": len(core) + len(reporting), "relational_actions": len(relational)})
    if len(reporting) >= 3 and not relational:
        return Detection("pm-as-product", "strategy", tuple(_q(a) for a in reporting[:3]),
                         {"pm_actions": len(reporting), "relational_actions": 0})
    return None


THIN_RELATIONAL_SHARE = 0.2


def detect_structure_without_relationship(analysis: PlanAnalysis) -> Detection | None:
    big = [a for a in analysis.actions if a.orientation == "structural" and (
        _code_in(a, *BIG_STRUCTURE) or (BIG_STRUCTURE_WORDS.search(a.text) and a.theme in ("structure", "leadership"))
        or (a.theme == "structure" and not _code_in(a, "structure.structural.standard-protocols")))]
    if not big:
        return None
    mechanisms = _concrete_relational(analysis, ("structure", "people", "leadership"))
    # In a plan that is overwhelmingly structural, a few actions read as relational rarely amount
    # to a mechanism for changing how the people behind the structural changes work together.
    thin = len(big) >= len(mechanisms) and balance_of(analysis.actions).relational_share < THIN_RELATIONAL_SHARE
    if not mechanisms or (len(big) >= 2 and len(big) >= 2 * len(mechanisms)) or thin:
        theme: Theme = "structure" if any(a.theme == "structure" for a in big) else big[0].theme
        return Detection("structure-without-relationship", theme, tuple(_q(a) for a in big[:3]),
                         {"structural_changes": len(big), "relational_mechanisms": len(mechanisms)})
    return None


def detect_leadership_as_governance(analysis: PlanAnalysis) -> Detection | None:
    lead = [a for a in analysis.actions if a.theme == "leadership"]
    structural = [a for a in lead if a.orientation == "structural"]
    relational = [a for a in lead if a.relational and a.concrete]
    accountable = re.compile(r"\b(sro|senior responsible|accountab\w+|to account|sign[\s-]?off|signed off|"
                             r"scheme of delegation|reporting lines?|chair(?:ed)? by)\b", re.I)
    if structural and not relational and (len(structural) >= 2 or any(accountable.search(a.text) for a in structural)):
        return Detection("leadership-as-governance", "leadership", tuple(_q(a) for a in structural[:3]),
                         {"governance_actions": len(structural)})
    return None


def detect_tokenistic_engagement(analysis: PlanAnalysis) -> Detection | None:
    if any(CO_PRODUCE.search(a.text) for a in analysis.actions if a.relational or a.theme == "people"):
        return None
    listened = re.compile(r"\b(told (?:us|the|our)|tell us|showed|said|we heard|heard from|listening sessions?|conversations? "
                          r"(?:held|with))\b", re.I)
    relational_starts = {a.start for a in analysis.actions if a.relational}
    quotes = [q for q in _pattern_quote(analysis, ENGAGE, limit=12)
              if PEOPLE_WORDS.search(q.text) and not JOINT_LEARNING.search(q.text) and not CO_PRODUCE.search(q.text)
              and not listened.search(q.text) and not (q.action_id and any(
                  a.id == q.action_id and a.start in relational_starts for a in analysis.actions))]
    if not quotes:
        return None
    return Detection("tokenistic-engagement", "people", tuple(quotes[:3]), {"engagement_actions": len(quotes)})


PROGRAMME_END = re.compile(
    r"\b(?:programme|project|pilot|plan|initiative|funding|transformation|integration|merger|pmo|work)\b[^.;]{0,60}?"
    r"\b(?:will |is to |would )?(?:close|closes|closing|end|ends|conclude|concludes|finish|finishes|cease|ceases|stop|stops|"
    r"run(?:s)? (?:until|to|for (?:one|two|12|18|24|six|nine) (?:years?|months?))|be (?:closed|reviewed|wound down)|"
    r"hand(?:s|ed)? over\b[^.;]{0,80}business as usual|decide whether to continue|"
    r"review (?:the|this) (?:plan|programme|pilot))\b"
    r"|\bdecide whether to continue\b|\bwe will review the plan\b|\bno additional funding or posts\b"
    r"|\bwithin existing (?:capacity|resources)\b",
    re.I,
)


# Money or posts that stop soon: a grant for one year, fixed-term posts, non-recurrent funds.
TIME_LIMITED = re.compile(
    r"\b(?:fixed[\s-]term|non[\s-]?recurrent|time[\s-]limited|one[\s-]off|one[\s-]year|twelve[\s-]month|12[\s-]month)\b"
    r"[^.;]{0,60}\b(?:funding|fund|grant|money|allocation|posts?|contracts?|roles?|budget)\b"
    r"|\b(?:funding|fund|grant|money|allocation|posts?|contracts?|roles?)\b[^.;]{0,50}"
    r"\b(?:is |are )?(?:fixed[\s-]term|non[\s-]?recurrent|time[\s-]limited)\b"
    r"|\b(?:funding|fund|grant|money|allocation|budget)\b[^.;]{0,60}\b(?:20\d\d/\d\d|this year|the year|next year)"
    r"\s+only\b"
    r"|\bhas to be spent by\b"
    r"|\bnot (?:yet )?(?:been )?confirmed[^.;]{0,40}\b(?:recurrent|ongoing|continued) funding\b",
    re.I,
)
# A culture change promised by a date that leaves no time for it: "one culture by March 2026".
CULTURE_DEADLINE = re.compile(
    r"\b(?:culture|cultures|ways? of working|behaviours?|one team|embedded)\b[^.;]{0,80}?"
    r"\bby (?:the end of )?(?:(?:january|february|march|april|may|june|july|august|september|october|november|"
    r"december)(?: 20\d\d)?|20\d\d|the (?:end of the )?(?:programme|program|project|year))\b",
    re.I,
)


def detect_short_horizon(analysis: PlanAnalysis) -> Detection | None:
    """The programme ends (or is only reviewed) soon, and nothing says how the change outlives it."""
    if SUSTAIN.search(" ".join(a.text for a in analysis.actions)):
        return None
    deadline = _pattern_quote(analysis, CULTURE_DEADLINE, limit=1)
    if not deadline and not CULTURE_CLAIM.search(analysis.text):
        return None
    ends = [*deadline, *_pattern_quote(analysis, PROGRAMME_END, limit=2), *_pattern_quote(analysis, TIME_LIMITED, limit=1)]
    ends = list({(q.start, q.text): q for q in ends}.values())[:3]
    if not ends:
        return None
    longs = [a for a in analysis.actions if a.horizon == "long_term"]
    if len(longs) > max(1, len(analysis.actions) // 5):
        return None
    return Detection("short-horizon", "strategy", tuple(ends),
                     {"short_term": sum(1 for a in analysis.actions if a.horizon == "short_term"), "long_term": len(longs)})


def detect_training_as_compliance(analysis: PlanAnalysis) -> Detection | None:
    training = [a for a in analysis.actions if a.theme == "people" and (
        a.code == "people.structural.system-training" or (TRAINING.search(a.text) and a.orientation == "structural"))]
    training = [a for a in training if TRAINING.search(a.text) or a.code == "people.structural.system-training"]
    if not training:
        return None
    joint = [a for a in analysis.actions if JOINT_LEARNING.search(a.text) or a.code == "people.relational.interprofessional-learning"]
    if joint:
        return None
    return Detection("training-as-compliance", "people", tuple(_q(a) for a in training[:3]), {"training_actions": len(training)})


def detect_metrics_only_structural(analysis: PlanAnalysis) -> Detection | None:
    metrics = [a for a in analysis.actions if a.orientation == "structural" and (
        _code_in(a, "strategy.structural.targets-and-kpis", "strategy.structural.performance-dashboards")
        or METRIC.search(a.text))]
    metrics = [a for a in metrics if METRIC.search(a.text)]
    if not metrics:
        return None
    if any(RELATIONAL_MEASURE.search(a.text) and MEASURING.search(a.text)
           and a.code != "people.structural.compliance-surveys" for a in analysis.actions) or any(
            a.code in ("strategy.relational.relational-outcome-measures", "people.relational.relational-coordination-mapping")
            for a in analysis.actions):
        return None
    return Detection("metrics-only-structural", "strategy", tuple(_q(a) for a in metrics[:3]), {"metric_actions": len(metrics)})


def detect_relational_rhetoric(analysis: PlanAnalysis) -> Detection | None:
    rhetoric_segments = [s for s in analysis.segments if s.kind != "heading" and RHETORIC.search(s.text)]
    mentions = sum(len(RHETORIC.findall(s.text)) for s in rhetoric_segments)
    concrete = _concrete_relational(analysis)
    abstract = [a for a in analysis.actions if a.relational and not a.concrete]
    structural = _structural(analysis)
    talk = [s for s in rhetoric_segments if not s.is_action or any(
        a.start == s.start and a.relational and not a.concrete for a in analysis.actions)]
    if mentions < 5 or len(talk) < 2 or not structural:
        return None
    if (len(concrete) <= 1 and len(concrete) < len(structural) / 3) or (abstract and len(abstract) >= len(concrete) and len(concrete) <= 2):
        quotes: list[Quote] = [_q(a) for a in abstract[:2]]
        by_start = {a.start: a for a in analysis.actions}
        for s in rhetoric_segments:
            if len(quotes) >= 2:
                break
            if s.start not in {q.start for q in quotes}:
                action = by_start.get(s.start)
                quotes.append(Quote(s.text, s.start, action.id if action else None))
        return Detection("relational-rhetoric", None, tuple(quotes),
                         {"mentions": mentions, "concrete_mechanisms": len(concrete)})
    return None

# Relational work that rests on spare time and goodwill: "when caseloads allow", "in their own time".
GOODWILL = re.compile(
    r"\b(?:when|where|if|as) (?:time|caseloads?|rosters?|rotas?|schedules?|capacity|workloads?|diaries|"
    r"pressures?|services?|operational pressures?) (?:allows?|permits?)\b"
    r"|\bin (?:their|her|his|our) own time\b|\bgoodwill\b|\bon a voluntary basis\b|\bvolunteered to\b"
    r"|\bkindly (?:offered|agreed)\b"
    r"|\balongside (?:their|her|his) (?:existing |current |day |usual |practice |clinical )*(?:roles?|jobs?|caseloads?|duties)\b"
    r"|\bno (?:protected|dedicated|backfilled|funded) time\b"
    r"|\bnot committing (?:any )?staff time\b|\bwithout (?:protected|dedicated|backfill\w*) time\b",
    re.I,
)


def detect_relational_without_structure(analysis: PlanAnalysis) -> Detection | None:
    actions = analysis.actions
    relational = [a for a in actions if a.relational]
    if len(relational) < 3:
        return None
    goodwill = _pattern_quote(analysis, GOODWILL, limit=2)
    if len(relational) < (0.4 if goodwill else 0.6) * len(actions):
        return None
    supporting = [a for a in actions if SUPPORT.search(a.text) and (a.orientation == "structural" or a.theme in ("structure", "leadership"))]
    if len(supporting) >= 2 and not goodwill:
        return None
    quotes = [*goodwill, *(_q(a) for a in relational)]
    return Detection("relational-without-structure", None, tuple(quotes[:3]),
                     {"relational_actions": len(relational), "supporting_actions": len(supporting),
                      "goodwill": len(goodwill)})


DETECTORS: dict[FindingKind, Callable[[PlanAnalysis], Detection | None]] = {
    "pm-as-product": detect_pm_as_product,
    "structure-without-relationship": detect_structure_without_relationship,
    "leadership-as-governance": detect_leadership_as_governance,
    "tokenistic-engagement": detect_tokenistic_engagement,
    "short-horizon": detect_short_horizon,
    "training-as-compliance": detect_training_as_compliance,
    "metrics-only-structural": detect_metrics_only_structural,
    "relational-rhetoric": detect_relational_rhetoric,
    "relational-without-structure": detect_relational_without_structure,
}

STRUCTURAL_KINDS = {
    "pm-as-product", "structure-without-relationship", "leadership-as-governance", "tokenistic-engagement",
    "training-as-compliance", "metrics-only-structural", "relational-rhetoric",
}


def detect(analysis: PlanAnalysis) -> list[Detection]:
    out = []
    for detector in DETECTORS.values():
        found = detector(analysis)
        if found is not None and found.quotes:
            out.append(found)
    return out


@dataclass(frozen=True)
class VerdictFacts:
    structural_overuse: bool
    severity: Severity
    relational_share: float
    effective_share: float
    structural_findings: int


def verdict_of(analysis: PlanAnalysis, balance: Balance, detections: Sequence[Detection]) -> VerdictFacts:
    actions = analysis.actions
    n = len(actions)
    concrete = sum(1 for a in actions if a.relational and a.concrete)
    effective = concrete / n if n else 0.0
    structural_findings = sum(1 for d in detections if d.kind in STRUCTURAL_KINDS)
    structural = sum(1 for a in actions if a.orientation == "structural")
    overuse = n > 0 and structural >= 2 and (
        effective < 0.3 or (effective < 0.4 and structural_findings >= 3)
    )
    if any(d.kind == "relational-without-structure" for d in detections):
        overuse = False
    if not overuse:
        severity: Severity = "none"
    elif effective < 0.08 and structural_findings >= 3:
        severity = "severe"
    elif effective < 0.18:
        severity = "marked"
    else:
        severity = "mild"
    return VerdictFacts(overuse, severity, balance.relational_share, round(effective, 3), structural_findings)
