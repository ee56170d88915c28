"""Compare two runs: metric deltas on the samples both ran, and which samples got worse or better.

Aggregates are recomputed over the samples the two runs share (from their stored per-sample
scores), so a run made with ``--limit`` compares fairly with a full one. A metric regresses
when it moves the wrong way by more than the tolerance; the samples named for it are those
whose own value for that metric moved the wrong way.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .records import Metric, RunRecord, Score
from .scorers import SCORERS, all_metrics

__all__ = ["Comparison", "MetricDelta", "SampleChange", "compare_runs", "render_comparison"]


@dataclass(frozen=True)
class MetricDelta:
    name: str
    a: float | None
    b: float | None
    higher_is_better: bool
    tolerance: float

    @property
    def delta(self) -> float | None:
        return None if self.a is None or self.b is None else self.b - self.a

    @property
    def gain(self) -> float | None:
        """The delta signed so that positive is an improvement."""
        d = self.delta
        return None if d is None else (d if self.higher_is_better else -d)

    @property
    def regressed(self) -> bool:
        g = self.gain
        if g is None:  # measured before, not now: that is a regression too
            return self.a is not None and self.b is None
        return g < -self.tolerance

    @property
    def improved(self) -> bool:
        g = self.gain
        return g is not None and g > self.tolerance


@dataclass(frozen=True)
class SampleChange:
    sample_id: str
    metric: str
    a: float
    b: float
    higher_is_better: bool

    @property
    def gain(self) -> float:
        d = self.b - self.a
        return d if self.higher_is_better else -d


@dataclass
class Comparison:
    a: RunRecord
    b: RunRecord
    tolerance: float
    metrics: list[MetricDelta]
    worse: dict[str, list[SampleChange]] = field(default_factory=dict)
    better: dict[str, list[SampleChange]] = field(default_factory=dict)
    only_a: list[str] = field(default_factory=list)
    only_b: list[str] = field(default_factory=list)
    common: list[str] = field(default_factory=list)

    @property
    def regressions(self) -> list[MetricDelta]:
        return [m for m in self.metrics if m.regressed]

    def regressed_samples(self) -> dict[str, list[str]]:
        """Regressed metric -> the samples that got worse on it."""
        out = {}
        for m in self.regressions:
            out[m.name] = sorted(s for s, changes in self.worse.items() if any(c.metric == m.name for c in changes))
        return out

    @property
    def dataset_changed(self) -> bool:
        return self.a.dataset.hash != self.b.dataset.hash


def _aggregate_over(record: RunRecord, ids: list[str]) -> dict[str, Metric]:
    """The record's aggregate metrics recomputed over ``ids`` (registered scorers only)."""
    out: dict[str, Metric] = {}
    for name in record.scorers:
        scorer = SCORERS.get(name)
        if scorer is None:
            continue
        scores: list[Score] = [record.scores[i][name] for i in ids if name in record.scores.get(i, {})]
        out.update(scorer.aggregate(scores))
    for name, metric in record.aggregate.items():  # metrics of scorers this version does not know
        out.setdefault(name, metric)
    return out


def compare_runs(a: RunRecord, b: RunRecord, *, tolerance: float = 0.01) -> Comparison:
    specs = all_metrics()
    ids_a, ids_b = list(a.outputs), list(b.outputs)
    common = [i for i in ids_a if i in set(ids_b)]
    agg_a, agg_b = _aggregate_over(a, common), _aggregate_over(b, common)
    names = list(dict.fromkeys([*agg_a, *agg_b]))
    metrics = [MetricDelta(name=n, a=agg_a[n].value if n in agg_a else None,
                           b=agg_b[n].value if n in agg_b else None,
                           higher_is_better=specs[n].higher_is_better if n in specs else True,
                           tolerance=tolerance) for n in names]
    cmp = Comparison(a=a, b=b, tolerance=tolerance, metrics=metrics, common=common,
                     only_a=[i for i in ids_a if i not in set(ids_b)], only_b=[i for i in ids_b if i not in set(ids_a)])
    for sample_id in common:
        sa, sb = a.scores.get(sample_id, {}), b.scores.get(sample_id, {})
        for scorer_name in sa.keys() & sb.keys():
            va, vb = sa[scorer_name].value, sb[scorer_name].value
            for metric in va.keys() & vb.keys():
                change = SampleChange(sample_id, metric, va[metric], vb[metric],
                                      specs[metric].higher_is_better if metric in specs else True)
                if change.gain < -tolerance:
                    cmp.worse.setdefault(sample_id, []).append(change)
                elif change.gain > tolerance:
                    cmp.better.setdefault(sample_id, []).append(change)
    for changes in (*cmp.worse.values(), *cmp.better.values()):
        changes.sort(key=lambda c: c.metric)
    return cmp


def _fmt(v: float | None) -> str:
    return "-" if v is None else f"{v:.3f}"


def _fmt_delta(m: MetricDelta) -> str:
    d = m.delta
    if d is None:
        return "n/a"
    mark = " REGRESSED" if m.regressed else (" improved" if m.improved else "")
    return f"{d:+.3f}{mark}"


def render_comparison(cmp: Comparison, *, markdown: bool = False) -> str:
    """Plain text (or Markdown) for the terminal or a PR comment."""
    lines = []
    title = f"Compare A = {cmp.a.label()}  vs  B = {cmp.b.label()}"
    lines.append(f"## {title}" if markdown else title)
    lines.append(f"{len(cmp.common)} samples in common; tolerance {cmp.tolerance:g}.")
    if cmp.dataset_changed:
        lines.append(f"Note: the dataset changed between the runs ({cmp.a.dataset.hash} -> {cmp.b.dataset.hash}).")
    if cmp.only_a:
        lines.append(f"Only in A: {', '.join(cmp.only_a)}")
    if cmp.only_b:
        lines.append(f"Only in B: {', '.join(cmp.only_b)}")
    lines.append("")
    width = max((len(m.name) for m in cmp.metrics), default=10)
    if markdown:
        lines += ["| metric | A | B | delta |", "|---|---:|---:|---|"]
        lines += [f"| {m.name} | {_fmt(m.a)} | {_fmt(m.b)} | {_fmt_delta(m)} |" for m in cmp.metrics]
    else:
        lines.append(f"{'metric':<{width}}  {'A':>8}  {'B':>8}  delta")
        lines += [f"{m.name:<{width}}  {_fmt(m.a):>8}  {_fmt(m.b):>8}  {_fmt_delta(m)}" for m in cmp.metrics]
    for heading, group in (("Samples that got worse", cmp.worse), ("Samples that got better", cmp.better)):
        lines += ["", f"### {heading} ({len(group)})" if markdown else f"{heading} ({len(group)}):"]
        for sample_id in sorted(group):
            detail = ", ".join(f"{c.metric} {c.a:.2f}->{c.b:.2f}" for c in group[sample_id])
            lines.append(f"- {sample_id}: {detail}")
    regressed = cmp.regressed_samples()
    lines.append("")
    if regressed:
        lines.append("REGRESSION beyond tolerance:")
        for metric, samples in regressed.items():
            m = next(x for x in cmp.metrics if x.name == metric)
            lines.append(f"- {metric} {_fmt(m.a)} -> {_fmt(m.b)}; regressed samples: {', '.join(samples) or '(none individually)'}")
    else:
        lines.append("No metric regressed beyond tolerance.")
    return "\n".join(lines) + "\n"
