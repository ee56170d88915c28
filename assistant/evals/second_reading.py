"""A second, independent reading of reference plans, and how far it agrees with the references.

A second reading is the Reading contract (PRODUCT.md section 4b) written blind to the reference,
plus the second reader's verdict::

    id: <sample id>
    reader: <who read it, blind to the reference>
    structural_overuse: true
    actions: [{text, theme, orientation, horizon, concrete, note}]
    findings: [{kind, evidence: [quotes]}]
    interventions: [ids, best first]

``assistant eval agreement`` compares each with its sample and writes the figures that bound what
the advisor can be expected to reach (``evals/datasets/real/AGREEMENT.md``).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from ..domain import PlanReading
from ..errors import BadInputError
from .agreement import SpanLabel, cohen_kappa, compare_readings, locate_all, set_agreement
from .dataset import LoadedSample, load_sample

__all__ = ["SecondReading", "agreement_report", "compare_second_reading", "load_second_readings"]


class SecondReading(PlanReading):
    id: str
    reader: str | None = None
    structural_overuse: bool


def load_second_readings(directory: Path) -> list[SecondReading]:
    out = []
    for path in sorted(Path(directory).glob("*.yaml")):
        try:
            reading = SecondReading.model_validate(yaml.safe_load(path.read_text(encoding="utf-8")))
        except (yaml.YAMLError, ValidationError) as exc:
            raise BadInputError(f"{path}: {exc}") from exc
        if reading.id != path.stem:
            raise BadInputError(f"{path}: id {reading.id!r} must match the file name")
        out.append(reading)
    return out


@dataclass
class PlanAgreement:
    sample_id: str
    split: str
    verdict_same: bool
    findings: dict[str, int]
    evidence: tuple[int, int]
    interventions: dict[str, int]
    second_interventions: int
    actions: dict[str, int]
    pairs: dict[str, list[tuple[Any, Any]]] = field(default_factory=dict)
    dropped: int = 0
    only_reference_kinds: list[str] = field(default_factory=list)
    only_second_kinds: list[str] = field(default_factory=list)


def compare_second_reading(loaded: LoadedSample, second: SecondReading, split: str) -> PlanAgreement:
    s, text = loaded.sample, loaded.text
    gold = locate_all(text, [g.text for g in s.gold_actions])
    a = [SpanLabel(sp[0], sp[1], g.theme, g.orientation, g.horizon, g.concrete, g.text)
         for g, sp in zip(s.gold_actions, gold, strict=True) if sp]
    found = locate_all(text, [x.text for x in second.actions])
    b = [SpanLabel(sp[0], sp[1], x.theme, x.orientation, x.horizon, x.concrete, x.text)
         for x, sp in zip(second.actions, found, strict=True) if sp]
    cmp = compare_readings(text, a, b)
    ref_kinds = {f.kind for f in s.reference.findings}
    second_kinds = {f.kind for f in second.findings}
    hits = 0
    for exp in s.reference.findings:
        exp_spans = [sp for sp in locate_all(text, exp.evidence) if sp]
        quotes = [q for f in second.findings if f.kind == exp.kind for q in f.evidence]
        got = [sp for sp in locate_all(text, quotes) if sp]
        if any(x0 < y1 and y0 < x1 for x0, x1 in exp_spans for y0, y1 in got):
            hits += 1
    return PlanAgreement(
        sample_id=s.id, split=split, verdict_same=second.structural_overuse == s.reference.structural_overuse,
        findings=set_agreement(ref_kinds, second_kinds), evidence=(hits, len(s.reference.findings)),
        interventions=set_agreement(s.reference.interventions, second.interventions),
        second_interventions=len(second.interventions), actions=cmp.counts(),
        pairs={d: cmp.pairs(d) for d in ("theme", "orientation", "horizon", "concrete")},
        dropped=len(second.actions) - len(b),
        only_reference_kinds=sorted(ref_kinds - second_kinds), only_second_kinds=sorted(second_kinds - ref_kinds))


def _ratio(n: float, d: float) -> str:
    return f"{n / d:.2f}" if d else "-"


def _summary(rows: list[PlanAgreement]) -> dict[str, str]:
    f = Counter[str]()
    iv = Counter[str]()
    act = Counter[str]()
    pairs: dict[str, list[tuple[Any, Any]]] = {d: [] for d in ("theme", "orientation", "horizon", "concrete")}
    for r in rows:
        f.update(r.findings)
        iv.update(r.interventions)
        act.update(r.actions)
        for d in pairs:
            pairs[d] += r.pairs[d]
    tp, fp, fn = act["matched"], act["only_b"], act["only_a"]
    kt, ko = cohen_kappa(pairs["theme"]), cohen_kappa(pairs["orientation"])
    return {
        "plans": str(len(rows)),
        "verdict": _ratio(sum(r.verdict_same for r in rows), len(rows)),
        "finding recall": _ratio(f["tp"], f["tp"] + f["fn"]),
        "finding precision": _ratio(f["tp"], f["tp"] + f["fp"]),
        "evidence recall": _ratio(sum(r.evidence[0] for r in rows), sum(r.evidence[1] for r in rows)),
        "intervention recall": _ratio(iv["tp"], iv["tp"] + iv["fn"]),
        "interventions a plan": _ratio(sum(r.second_interventions for r in rows), len(rows)),
        "action precision": _ratio(tp, tp + fp),
        "action recall": _ratio(tp, tp + fn),
        "action F1": _ratio(2 * tp, 2 * tp + fp + fn),
        "theme agreement": _ratio(sum(x == y for x, y in pairs["theme"]), len(pairs["theme"])),
        "theme kappa": f"{kt:.2f}" if kt is not None else "-",
        "orientation agreement": _ratio(sum(x == y for x, y in pairs["orientation"]), len(pairs["orientation"])),
        "orientation kappa": f"{ko:.2f}" if ko is not None else "-",
        "horizon agreement": _ratio(sum(x == y for x, y in pairs["horizon"]), len(pairs["horizon"])),
        "concrete agreement": _ratio(sum(x == y for x, y in pairs["concrete"]), len(pairs["concrete"])),
    }


def agreement_report(rows: list[PlanAgreement], *, title: str, preamble: str = "") -> str:
    """The agreement figures as Markdown: all plans, each split, then each plan."""
    groups = {"all": rows} | {split: [r for r in rows if r.split == split]
                              for split in sorted({r.split for r in rows})}
    summaries = {name: _summary(g) for name, g in groups.items()}
    keys = list(summaries["all"])
    lines = [f"# {title}", ""]
    if preamble:
        lines += [preamble.strip(), ""]
    lines += ["| figure | " + " | ".join(groups) + " |", "|---|" + "---:|" * len(groups)]
    lines += [f"| {k} | " + " | ".join(summaries[g][k] for g in groups) + " |" for k in keys]
    lines += ["", "## Each plan", "",
              "| plan | split | verdict | finding kinds only in the reference | only in the second reading "
              "| interventions shared | action F1 | orientation agreement |",
              "|---|---|---|---|---|---:|---:|---:|"]
    for r in rows:
        a = r.actions
        f1 = _ratio(2 * a["matched"], 2 * a["matched"] + a["only_a"] + a["only_b"])
        lines.append(f"| {r.sample_id} | {r.split} | {'same' if r.verdict_same else '**differs**'} "
                     f"| {', '.join(r.only_reference_kinds) or '-'} | {', '.join(r.only_second_kinds) or '-'} "
                     f"| {r.interventions['tp']} of {r.interventions['tp'] + r.interventions['fn']} | {f1} "
                     f"| {_ratio(a['orientation_same'], a['orientation_n'])} |")
    dropped = sum(r.dropped for r in rows)
    if dropped:
        lines += ["", f"{dropped} action text(s) of the second reading were not found in their plan and are left out."]
    return "\n".join(lines) + "\n"


def find_sample(roots: list[Path], sample_id: str) -> tuple[LoadedSample, str]:
    for root in roots:
        for path in root.rglob(f"{sample_id}.yaml"):
            if path.parent.name != "second-reading":
                return load_sample(path), path.parent.name
    raise BadInputError(f"No sample {sample_id!r} under {', '.join(map(str, roots))}.")
