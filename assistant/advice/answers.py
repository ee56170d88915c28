"""Offline answers to chat follow-ups, written from the critique and the corpus.

Every function returns an ``Answer``: Markdown text and the citation ids it rests on. Quotes
come from the critique's evidence or the plan's actions (both verbatim); every cited id is
checked against the corpus by the caller (``references_for`` drops what does not resolve).
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from ..domain import THEMES, Balance, Critique, Finding, Theme
from ..knowledge import Corpus
from ..knowledge.models import Case, in_sentence
from ..retrieval.lexical import tokenize

__all__ = [
    "Answer",
    "advice_answer",
    "case_answer",
    "change_markdown",
    "critique_narrative",
    "finding_answer",
    "framework_answer",
    "help_answer",
    "injection_answer",
    "intervention_answer",
    "no_plan_answer",
    "rank_similar_cases",
    "reference_answer",
    "similar_cases_answer",
    "smalltalk_answer",
    "summary_answer",
    "theme_answer",
]

ORIENTATION_WORDS = {"structural": "structural", "relational": "relational", "work_process": "joint improvement"}
HORIZON_WORDS = {"short_term": "short-term", "long_term": "long-term", "unspecified": "timing not stated"}


@dataclass(frozen=True)
class Answer:
    text: str
    citations: list[str] = field(default_factory=list)


def _pct(x: float) -> str:
    return f"{round(100 * x)}%"


def _kind_label(corpus: Corpus, kind: str) -> str:
    for k in corpus.framework.finding_kinds:
        if k.id == kind:
            return str(k.label)
    return kind.replace("-", " ").capitalize()


def _code_label(corpus: Corpus, code: str) -> str:
    entry = corpus.codes.get(code)
    return in_sentence(entry.label) if entry else code.rsplit(".", 1)[-1].replace("-", " ")


def critique_narrative(critique: Critique) -> str:
    """The full critique as Markdown: the lead's board-paper rendering when present."""
    try:
        from .render import critique_markdown
    except ImportError:  # pragma: no cover - render.py is part of the package once committed
        return _fallback_markdown(critique)
    return str(critique_markdown(critique))


def _fallback_markdown(critique: Critique) -> str:
    v, b = critique.verdict, critique.balance
    lines = [f"**{v.headline}**", "", f"Relational share: {_pct(b.relational_share)} of {critique.plan.actions} actions."]
    for f in critique.findings:
        lines += ["", f"**{f.id}.** {f.summary}"] + [f"> “{e.quote}”" for e in f.evidence]
    if critique.interventions:
        lines += ["", "**What to do about it:**"] + [f"- {i.title}: {i.rationale}" for i in critique.interventions]
    return "\n".join(lines)


def summary_answer(critique: Critique, corpus: Corpus) -> Answer:
    """A short recap of the current critique (when the plan has not changed since)."""
    v, b = critique.verdict, critique.balance
    lines = [f"**{v.headline}**", "",
             f"- Relational share: **{_pct(b.relational_share)}** of {critique.plan.actions} actions"]
    if b.neglected_themes:
        lines.append(f"- Themes with no relational action: {', '.join(b.neglected_themes)}")
    if critique.findings:
        lines += ["", "Findings:"] + [f"- **{f.id}** {_kind_label(corpus, f.kind)}: “{f.evidence[0].quote}”"
                                      if f.evidence else f"- **{f.id}** {_kind_label(corpus, f.kind)}"
                                      for f in critique.findings]
    if critique.interventions:
        lines += ["", "What I would do first:"] + [f"- {i.title}" for i in critique.interventions[:3]]
    lines += ["", "Ask me why I flagged any finding, what an intervention would look like for your teams, "
              "or for a case like yours."]
    cited = [c for f in critique.findings for c in f.citations][:4]
    return Answer("\n".join(lines), cited)


def change_markdown(before: Critique, after: Critique, corpus: Corpus) -> str:
    """Before -> after for a revised plan: share, verdict, per theme, findings resolved and new."""
    b0, b1 = before.balance, after.balance
    delta = round(100 * (b1.relational_share - b0.relational_share))
    sign = "+" if delta >= 0 else "−"
    lines = ["## What changed since the last version", "",
             f"- Relational share: **{_pct(b0.relational_share)} → {_pct(b1.relational_share)}** "
             f"({sign}{abs(delta)} points); actions {before.plan.actions} → {after.plan.actions}"]
    v0, v1 = before.verdict, after.verdict
    if (v0.structural_overuse, v0.severity) != (v1.structural_overuse, v1.severity):
        lines.append(f"- Verdict: {_verdict_words(v0.structural_overuse, v0.severity)} → "
                     f"**{_verdict_words(v1.structural_overuse, v1.severity)}**")
    else:
        lines.append(f"- Verdict unchanged: {_verdict_words(v1.structural_overuse, v1.severity)}")
    for t in THEMES:
        x, y = b0.themes[t], b1.themes[t]
        if x != y:
            lines.append(f"- {t.capitalize()}: structural {x.structural} → {y.structural}, relational "
                         f"{x.relational + x.work_process} → {y.relational + y.work_process}")
    kinds0 = {f.kind for f in before.findings}
    kinds1 = {f.kind for f in after.findings}
    resolved = [k for k in _ordered(before.findings) if k not in kinds1]
    new = [k for k in _ordered(after.findings) if k not in kinds0]
    kept = [k for k in _ordered(after.findings) if k in kinds0]
    if resolved:
        lines.append("- Resolved: " + ", ".join(_kind_label(corpus, k) for k in resolved))
    if new:
        lines.append("- New: " + ", ".join(_kind_label(corpus, k) for k in new))
    if kept:
        lines.append("- Still there: " + ", ".join(_kind_label(corpus, k) for k in kept))
    gained = [t for t in b0.neglected_themes if t not in b1.neglected_themes]
    if gained:
        lines.append("- Now with relational action: " + ", ".join(gained))
    return "\n".join(lines)


def balance_line(before: Balance, after: Balance) -> str:
    return f"{_pct(before.relational_share)} → {_pct(after.relational_share)}"


def _ordered(findings: Sequence[Finding]) -> list[str]:
    out: list[str] = []
    for f in findings:
        if f.kind not in out:
            out.append(f.kind)
    return out


def _verdict_words(overuse: bool, severity: str) -> str:
    return f"structural overuse ({severity})" if overuse else "no structural overuse"


def finding_answer(finding: Finding, critique: Critique, corpus: Corpus) -> Answer:
    kind = next((k for k in corpus.framework.finding_kinds if k.id == finding.kind), None)
    label = kind.label if kind else finding.kind
    lines = [f"**Why I flagged {finding.id}: {label}.**", "", finding.summary, ""]
    if finding.evidence:
        lines.append("Your plan says:")
        lines += [f"> “{e.quote}”" for e in finding.evidence]
        lines.append("")
    if kind is not None:
        lines += [f"**What the pattern is.** {kind.definition}", "", f"**How I recognise it.** {kind.recognise}", ""]
    answering = [i for i in critique.interventions if finding.id in i.addresses]
    if answering:
        lines.append("**What would answer it:**")
        lines += [f"- {i.title}: {_first_sentence(corpus.interventions[i.id].summary)}"
                  if i.id in corpus.interventions else f"- {i.title}" for i in answering]
        lines.append("")
    citations = list(finding.citations)
    if kind is not None:
        citations += [a for a in kind.anchors if a not in citations]
    for i in answering:
        citations += [c for c in i.citations if c not in citations]
    lines.append("Sources: " + ", ".join(f"`{c}`" for c in citations[:6]) if citations else "")
    return Answer("\n".join(lines).rstrip(), citations[:6])


def _first_sentence(text: str) -> str:
    m = re.match(r"(.+?[.!?])(\s|$)", " ".join(text.split()))
    return m.group(1) if m else text


def intervention_answer(iv_id: str, critique: Critique | None, corpus: Corpus, *, audience: str | None,
                        plan_text: str | None) -> Answer:
    iv = corpus.interventions[iv_id]
    advice = next((i for i in critique.interventions if i.id == iv_id), None) if critique else None
    who = audience or _plan_professions(plan_text)
    heading = f"**{iv.title}**" + (f" — for {who}" if who else "")
    lines = [heading, "", iv.summary, ""]
    if advice is not None:
        rationale = advice.rationale
        summary_start = _first_sentence(iv.summary)
        if rationale.endswith(summary_start) and len(rationale) > len(summary_start):
            rationale = rationale[: -len(summary_start)].rstrip()  # the summary is already said above
        lines += [f"**Why it fits your plan.** {rationale}", ""]
    elif critique is not None:
        fits = [f for f in critique.findings if f.kind in iv.answers]
        if fits:
            lines += ["**Why it fits your plan.** It answers " + ", ".join(
                f"{f.id} ({in_sentence(_kind_label(corpus, f.kind))})" for f in fits) + ".", ""]
    if who:
        touching = _actions_about(who, critique)
        if touching:
            lines += [f"**What it could look like for {who}.** Your plan already involves them in “{touching}” — "
                      f"this is how that commitment would reach their day-to-day work. Start with one pathway or "
                      f"neighbourhood where {who} already share the people they care for, and test it there "
                      "before spreading it.", ""]
        else:
            lines += [f"**What it could look like for {who}.** Your plan does not yet say how {who} will take "
                      f"part. Start with one pathway or neighbourhood where {who} already share the people they "
                      "care for, and test it there before spreading it.", ""]
    steps = list(advice.first_steps) if advice is not None else list(iv.first_steps)
    lines.append("**First steps:**")
    lines += [f"{n}. {s}" for n, s in enumerate(steps, start=1)]
    lines += ["", "**How to measure it:**"] + [f"- {m}" for m in iv.measures[:4]]
    if iv.pitfalls:
        lines += ["", "**Watch out for:** " + iv.pitfalls[0]]
    cases = [c for c in iv.cases if c[5:] in corpus.cases]
    if cases:
        lines += ["", "**Where it has been done:**"]
        for ref in cases[:3]:
            case = corpus.cases[ref[5:]]
            lesson = _closest_lesson(case, iv.title, iv.summary)
            lines.append(f"- {case.name.split('(')[0].strip()} ({case.country}, {case.years.split('(')[0].strip()}): "
                         f"{lesson} [`{ref}`]")
    references = [r for r in iv.references if r in corpus.references]
    citations = [f"intervention:{iv.id}", *cases[:3], *references[:3]]
    lines += ["", "Sources: " + ", ".join(f"`{c}`" for c in citations)]
    return Answer("\n".join(lines), citations)


PROFESSIONS = re.compile(
    r"\b(district nurses?|community nurses?|social workers?|gps?|general practitioners?|therapists?|"
    r"occupational therapists?|physiotherapists?|pharmacists?|paramedics?|care workers?|home carers?|"
    r"health visitors?|midwives|consultants?|geriatricians?|reablement (?:staff|workers?|teams?))\b",
    re.I,
)


def _plan_professions(plan_text: str | None) -> str | None:
    if not plan_text:
        return None
    found: list[str] = []
    for m in PROFESSIONS.finditer(plan_text):
        word = m.group(1).lower()
        word = {"gp": "GPs", "gps": "GPs"}.get(word, word if word.endswith("s") or word == "midwives" else word + "s")
        if word not in found:
            found.append(word)
    if len(found) >= 2:
        return f"{found[0]} and {found[1]}"
    return None


def _closest_lesson(case: Case, title: str, summary: str) -> str:
    """The case's lesson most about this intervention (its title counts double), else its first."""
    title_words, summary_words = set(tokenize(title)), set(tokenize(summary))

    def score(lesson: str) -> int:
        words = set(tokenize(lesson))
        return 2 * len(words & title_words) + len(words & summary_words)

    best = max(case.lessons, key=score)
    return best if score(best) >= 2 else case.lessons[0]


def _actions_about(who: str, critique: Critique | None) -> str | None:
    """A plan action (verbatim) that involves the people named, e.g. 'district nurses' ~ 'community nursing'."""
    if critique is None:
        return None
    wanted = {t for t in tokenize(who) if t not in {"and", "staff", "team", "worker"}} or set(tokenize(who))
    for action in critique.actions:
        if wanted & set(tokenize(action.text)):
            return action.text
    return None


def _section(case: Case, title: str) -> str:
    m = re.search(rf"^## {re.escape(title)}\s*\n(.*?)(?=^## |\Z)", case.body, re.M | re.S)
    return " ".join(m.group(1).split()) if m else ""


def case_answer(case_id: str, corpus: Corpus, *, why: str | None = None) -> Answer:
    case = corpus.cases[case_id]
    lines = [f"**{case.name}** — {case.country}, {case.years}", ""]
    if why:
        lines += [why, ""]
    done = _section(case, "What was done")
    worked = _section(case, "What worked")
    not_worked = _section(case, "What did not")
    if done:
        lines += [f"**What was done.** {done}", ""]
    if worked:
        lines += [f"**What worked.** {worked}", ""]
    if not_worked:
        lines += [f"**What did not.** {not_worked}", ""]
    lines.append("**Lessons for a plan under review:**")
    lines += [f"- {lesson}" for lesson in case.lessons]
    lines += ["", f"Source: `{case.ref_id}` (evidence confidence: {case.confidence}; "
              f"{len(case.sources)} sources, first: {case.sources[0].url})"]
    if case.unconfirmed:
        lines += ["", "Not confirmed by a source:"] + [f"- {u}" for u in case.unconfirmed]
    return Answer("\n".join(lines), [case.ref_id])


# --- similar cases ----------------------------------------------------------------------------

CaseSearch = Callable[[str, str], list[str]]


def _case_text(case: Case) -> str:
    notes = " ".join(n.note for c in case.coding.values() for n in [*c.structural, *c.relational])
    return " ".join([case.name, case.organisation_type, case.body, notes, " ".join(case.lessons), case.sustainment])


def _idf(corpus: Corpus) -> tuple[dict[str, Counter[str]], dict[str, float]]:
    bags = {cid: Counter(tokenize(_case_text(case))) for cid, case in corpus.cases.items()}
    df: Counter[str] = Counter()
    for bag in bags.values():
        df.update(bag.keys())
    n = len(bags)
    return bags, {t: math.log(1 + n / c) for t, c in df.items()}


_IDF_CACHE: dict[int, tuple[dict[str, Counter[str]], dict[str, float]]] = {}


def rank_similar_cases(corpus: Corpus, *, plan_text: str | None, critique: Critique | None, query: str,
                       case_search: CaseSearch | None = None, k: int = 3) -> list[tuple[str, list[str]]]:
    """Cases most like the plan: (case id, what they share), best first.

    Uses the retrieval layer when one is plugged in (``case_search``), else a lexical TF-IDF
    match over the case files, plus the overlap of the plan's action codes with each case's coding.
    """
    codes = [a.code for a in critique.actions] if critique else []
    shared: dict[str, list[str]] = {}
    for cid, case in corpus.cases.items():
        case_codes = {n.code for c in case.coding.values() for n in [*c.structural, *c.relational]}
        shared[cid] = [c for c in dict.fromkeys(codes) if c in case_codes]
    text = " ".join(x for x in (plan_text, query) if x)
    if case_search is not None:
        try:
            ranked = [r[5:] for r in case_search("similar", text) if r.startswith("case:") and r[5:] in corpus.cases]
        except Exception:  # the retrieval layer is optional here; fall back to lexical ranking
            ranked = []
        if ranked:
            return [(cid, shared[cid]) for cid in ranked[:k]]
    key = id(corpus)
    if key not in _IDF_CACHE:
        _IDF_CACHE.clear()
        _IDF_CACHE[key] = _idf(corpus)
    bags, idf = _IDF_CACHE[key]
    q = Counter(tokenize(text))
    scores: dict[str, float] = {}
    for cid, bag in bags.items():
        dot = sum(q[t] * bag[t] * idf.get(t, 0.0) ** 2 for t in q if t in bag)
        norm = math.sqrt(sum((v * idf.get(t, 0.0)) ** 2 for t, v in bag.items())) or 1.0
        scores[cid] = dot / norm + 0.15 * len(shared[cid])
    order = sorted(scores, key=lambda c: (-scores[c], c))
    return [(cid, shared[cid]) for cid in order[:k]]


def similar_cases_answer(ranked: Sequence[tuple[str, list[str]]], corpus: Corpus, *, has_plan: bool) -> Answer:
    if not ranked:
        return Answer("I have no cases to compare with yet.", [])
    first_id, first_shared = ranked[0]
    why = None
    if first_shared:
        why = "Why it is like yours: it also " + _shared_words(first_shared, corpus) + "."
    elif not has_plan:
        why = "You have not shared a plan yet, so this is the closest match to your question."
    best = case_answer(first_id, corpus, why=why)
    lines = [best.text]
    citations = list(best.citations)
    others = ranked[1:]
    if others:
        lines += ["", "**Also worth a look:**"]
        for cid, common in others:
            case = corpus.cases[cid]
            extra = f" — also {_shared_words(common, corpus)}" if common else ""
            lines.append(f"- {case.name.split('(')[0].strip()} ({case.country}){extra}: {case.lessons[0]} [`{case.ref_id}`]")
            citations.append(case.ref_id)
    return Answer("\n".join(lines), citations)


def _shared_words(codes: Sequence[str], corpus: Corpus) -> str:
    labels = [_code_label(corpus, c) for c in codes[:3]]
    if len(labels) == 1:
        return f"relied on {labels[0]}"
    return "relied on " + ", ".join(labels[:-1]) + f" and {labels[-1]}"


# --- themes, help, guards ---------------------------------------------------------------------

def theme_answer(theme: Theme, critique: Critique | None, corpus: Corpus) -> Answer:
    tdef = next(t for t in corpus.framework.themes if t.id == theme)
    lines = [f"**{tdef.label}.** {tdef.definition}", ""]
    citations: list[str] = []
    if critique is not None:
        counts = critique.balance.themes[theme]
        relational = counts.relational + counts.work_process
        lines.append(f"In your plan: {counts.structural} structural, {counts.relational} relational and "
                     f"{counts.work_process} joint-improvement actions.")
        actions = [a for a in critique.actions if a.theme == theme]
        if actions:
            lines.append("")
            lines += [f"- “{a.text}” — {ORIENTATION_WORDS[a.orientation]}: {_code_label(corpus, a.code)}"
                      for a in actions[:6]]
            if len(actions) > 6:
                lines.append(f"- … and {len(actions) - 6} more")
        else:
            lines.append(f"Your plan has no {theme} actions at all.")
        if relational == 0:
            lines += ["", f"Nothing in {theme} yet changes how people work together; this is where I would look first."]
        findings = [f for f in critique.findings if f.theme == theme]
        if findings:
            lines += ["", "Findings here:"] + [f"- **{f.id}** {f.summary}" for f in findings]
            citations += [c for f in findings for c in f.citations]
        advice = [i for i in critique.interventions if i.theme == theme or theme in corpus.interventions[i.id].themes]
    else:
        lines.append("You have not shared a plan yet; here is what I would look for.")
        advice = []
    if advice:
        lines += ["", "Interventions that strengthen it:"] + [
            f"- {i.title}: {_first_sentence(corpus.interventions[i.id].summary)}" for i in advice[:3]]
        citations += [f"intervention:{i.id}" for i in advice[:3]]
    else:
        library = [iv for iv in corpus.interventions.values() if theme in iv.themes][:3]
        if library:
            lines += ["", "Interventions that strengthen it:"] + [f"- {iv.title}: {_first_sentence(iv.summary)}"
                                                               for iv in library]
            citations += [f"intervention:{iv.id}" for iv in library]
    citations = list(dict.fromkeys(citations))
    return Answer("\n".join(lines), citations)


def help_answer(has_plan: bool) -> Answer:
    lines = [
        "I review integrated health-and-care transformation plans for **overuse of structural approaches** "
        "(mergers, boards, PMOs, dashboards) and suggest **relational interventions**, citing real programmes.",
        "",
        "You can:",
        "- **paste or load a plan** and I will critique it; paste a revised version and I will show the balance "
        "before → after;",
        "- **describe your plan** a sentence at a time (“we're merging the two community trusts next April”); "
        "I will ask about what is missing and critique it when you say “what do you think?”;",
        "- ask **why I flagged something** (“why did you flag the PMO?”);",
        "- ask **what an intervention would look like** (“what would a boundary-spanning role look like for "
        "district nurses?”);",
        "- ask about **cases** (“tell me about Torbay”, “show me a case like ours”) or a **theme** "
        "(“what about leadership?”).",
    ]
    if not has_plan:
        lines += ["", "Start by pasting your plan or telling me what it will do."]
    return Answer("\n".join(lines))


def injection_answer(critique: Critique | None) -> Answer:
    text = ("I can't change my assessment on request. The verdict comes from the plan's own actions and the "
            "balance between structural and relational approaches, so the way to change it is to change the plan.")
    if critique is not None:
        text += (f"\n\nThe verdict stands: **{critique.verdict.headline}** (relational share "
                 f"{_pct(critique.balance.relational_share)}).")
    return Answer(text)


def no_plan_answer() -> Answer:
    return Answer("I don't have a plan to look at yet. Paste it, load a file, or tell me what it will do — "
                  "for example “we're merging the two community trusts next April” — and I'll build it up as we go.")


def advice_answer(critique: Critique, corpus: Corpus) -> Answer:
    """Where to start: the critique's interventions, each with the finding it answers and its first step."""
    if not critique.interventions:
        return Answer("I have no interventions to suggest for this plan: " + critique.verdict.headline)
    labels = {f.id: in_sentence(_kind_label(corpus, f.kind)) for f in critique.findings}
    lines = ["Where I would start, in order:", ""]
    citations: list[str] = []
    for n, advice in enumerate(critique.interventions[:3], start=1):
        answers = ", ".join(f"{a} ({labels[a]})" for a in advice.addresses if a in labels)
        lines.append(f"{n}. **{advice.title}**" + (f" — answers {answers}" if answers else ""))
        if advice.first_steps:
            lines.append(f"   - First step: {advice.first_steps[0]}")
        citations += [f"intervention:{advice.id}", *advice.citations[:1]]
    rest = critique.interventions[3:]
    if rest:
        lines += ["", "Then: " + "; ".join(i.title for i in rest) + "."]
    lines += ["", "Ask me what any of these would look like for your teams, or for a case where it worked."]
    return Answer("\n".join(lines), list(dict.fromkeys(citations)))


def reference_answer(ref_id: str, corpus: Corpus) -> Answer:
    entry = corpus.references[ref_id]
    year = f", {entry.year}" if entry.year else ""
    lines = [f"**{entry.title}** ({entry.authors}{year})", "", entry.summary, "", f"Source: {entry.url}"]
    provenance = corpus.framework.provenance
    if ref_id == provenance.paper:
        lines += ["", "**How this advisor uses it.** " + provenance.statement]
    elif ref_id in provenance.anchors:
        lines += ["", "It is one of the validated frameworks this advisor's own coding scheme is cross-walked to."]
    return Answer("\n".join(lines), [ref_id])


def framework_answer(corpus: Corpus) -> Answer:
    """What the advice rests on, said plainly: the paper's themes, and that the detailed codes are ours."""
    fw = corpus.framework
    lines = [fw.provenance.statement, "", "**Themes** (from the paper):"]
    lines += [f"- **{t.label}**: {t.definition}" for t in fw.themes]
    lines += ["", "**Orientations** (every action in a plan is coded as one):"]
    lines += [f"- **{o.label}**: {o.definition}" for o in fw.orientations]
    lines += ["", "The **relational share** is the relational and joint-improvement actions divided by all coded "
              "actions. A plan shows structural overuse when few of its actions concretely build working "
              "relationships and the overuse patterns pile up."]
    citations = [fw.provenance.paper, *[a for a in fw.provenance.anchors if a in corpus.references][:4]]
    lines += ["", "Sources: " + ", ".join(f"`{c}`" for c in citations)]
    return Answer("\n".join(lines), citations)


def smalltalk_answer(message: str, has_plan: bool) -> Answer:
    if re.match(r"^\s*(?:hello|hi|hey|good (?:morning|afternoon|evening))\b", message, re.I):
        return Answer("Hello. " + ("Ask me about the critique, or paste a revised plan." if has_plan else
                                   "Paste your plan, load a file, or tell me what it will do."))
    if re.match(r"^\s*(?:bye|goodbye)\b", message, re.I):
        return Answer("Goodbye. Your conversation is kept; come back to it any time.")
    if has_plan:
        return Answer("Glad it helps. You can ask why I flagged something, what an intervention would look like "
                      "for your teams, or paste a revised plan to see the balance move.")
    return Answer("Whenever you're ready: paste your plan, load a file, or tell me what it will do.")
