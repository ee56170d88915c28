"""Reports on a run: a terminal table, Markdown, or one self-contained HTML file.

The HTML report has no external resources at all (inline CSS, SVG and a few lines of JS), so
it opens from disk or an intranet share without network: per-metric bars against the gate's
bars, the coder's theme x orientation confusion matrix, each plan's balance against its
reference band, and a drill-down per sample (the plan with the expected evidence and the
critique's quotes highlighted, the critique, the reference, every score).
"""

from __future__ import annotations

import io
import itertools
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jinja2
from markupsafe import Markup, escape

from ..domain import ORIENTATIONS, THEMES
from ..errors import AdvisorError, UnknownIdError
from .dataset import LoadedSample, load_dataset
from .gate import BarResult, Thresholds, load_thresholds
from .records import Metric, RunRecord, Score
from .scorers import LAYERS, MISSED, MetricSpec, all_metrics, layer_of

__all__ = ["FORMATS", "render_report"]

FORMATS = ("table", "markdown", "html")
TEMPLATES = Path(__file__).resolve().parent / "templates"

# The per-sample figures shown in tables and used to flag a sample as having issues.
SAMPLE_COLUMNS = (
    ("verdict_accuracy", "verdict"),
    ("relational_share_in_bounds", "in band"),
    ("finding_recall", "recall"),
    ("finding_precision", "prec"),
    ("evidence_recall", "evid"),
    ("intervention_recall", "interv"),
    ("coder_orientation_accuracy", "orient"),
    ("semantic_similarity", "sim"),
)

# Per-sample values that flag an issue when below 1 (must_not_violations: above 0).
ISSUE_CHECKS = (
    ("verdict_accuracy", "verdict"),
    ("relational_share_in_bounds", "share"),
    ("finding_recall", "missed kinds"),
    ("finding_precision", "extra kinds"),
    ("evidence_recall", "evidence"),
    ("intervention_recall", "interventions"),
    ("must_not_violations", "must-not"),
    ("quotes_verbatim", "quotes"),
    ("citations_resolvable", "citations"),
    ("injection_unaffected", "injection"),
)


@dataclass(frozen=True)
class MetricRow:
    name: str
    metric: Metric
    spec: MetricSpec | None
    bar: str | None
    passed: bool | None
    bar_min: float | None = None

    @property
    def layer(self) -> str:
        return layer_of(self.name)

    @property
    def unit(self) -> str:
        return self.spec.unit if self.spec else "ratio"

    def shown(self) -> str:
        v = self.metric.value
        if v is None:
            return "not measured"
        if self.unit == "ratio":
            return f"{v * 100:.1f} %"
        if self.unit == "count":
            return f"{v:g}"
        return f"{v:.3f}" if self.unit == "error" else f"{v:.2f}"


def _metric_rows(record: RunRecord, thresholds: Thresholds | None) -> list[MetricRow]:
    specs = all_metrics()
    rows = []
    for name, metric in record.aggregate.items():
        bar = thresholds.bars.get(name) if thresholds else None
        bar_text, passed = None, None
        if bar is not None:
            result = BarResult(metric=name, bar=bar, value=metric.value)
            bar_text = " and ".join(x for x in (f">= {bar.min:g}" if bar.min is not None else "",
                                                f"<= {bar.max:g}" if bar.max is not None else "") if x)
            passed = result.passed
        rows.append(MetricRow(name, metric, specs.get(name), bar_text, passed, bar.min if bar else None))
    # Reading (what is an action, how it is coded), then judgement, then grounding: each layer apart.
    return sorted(rows, key=lambda r: LAYERS.index(r.layer))


def _sample_values(record: RunRecord, sample_id: str) -> dict[str, float]:
    out: dict[str, float] = {}
    for score in record.scores.get(sample_id, {}).values():
        out.update(score.value)
    return out


def _issues(record: RunRecord, sample_id: str) -> list[str]:
    """Short labels for what went wrong on a sample (empty: all fine)."""
    v = _sample_values(record, sample_id)
    scores = record.scores.get(sample_id, {})
    out = []
    output = record.outputs.get(sample_id)
    if output is not None and output.error:
        out.append("error")
    for key, label in ISSUE_CHECKS:
        if key in v and (v[key] > 0 if key == "must_not_violations" else v[key] < 1):
            out.append(label)
    out += [f"{name} error" for name, s in scores.items() if s.error and name != "llm_judge"]
    return out


# --- text formats ------------------------------------------------------------------------------

def _pct(v: float | None) -> str:
    return "-" if v is None else f"{v:.2f}"


def in_sample_note(record: RunRecord) -> str | None:
    """Say so when the run's dataset is one the shipped intervention ranker was fitted on: its
    intervention figures are then in-sample, and cross-validated or held-out figures are the
    honest ones."""
    fitted = (record.settings.get("ranker_training") or {}).get("datasets") or []
    run = Path(record.dataset.path).as_posix().rstrip("/")
    if any(run == d or run.endswith("/" + d) or d.endswith("/" + run) for d in fitted):
        return ("Intervention figures are in-sample: the intervention ranker was fitted on this dataset's "
                "reference critiques (see docs/evals.md for cross-validated and held-out figures).")
    return None


def _table(record: RunRecord, thresholds: Thresholds | None) -> str:
    from rich.console import Console
    from rich.table import Table

    buf = io.StringIO()
    console = Console(file=buf, width=200, force_terminal=False, color_system=None)
    console.print(f"Run {record.run_id}  backend {record.backend}{' ' + record.model if record.model else ''}  "
                  f"dataset {record.dataset.path} ({record.dataset.hash}, {len(record.outputs)} samples)  "
                  f"status {record.status}")
    t = Table("layer", "metric", "value", "n", "bar", "", title="Metrics")
    previous = None
    for row in _metric_rows(record, thresholds):
        mark = "" if row.passed is None else ("PASS" if row.passed else "MISS")
        if previous is not None and row.layer != previous:
            t.add_section()
        t.add_row(row.layer if row.layer != previous else "", row.name, row.shown(), str(row.metric.n),
                  row.bar or "", mark)
        previous = row.layer
    console.print(t)
    s = Table(title="Samples")
    s.add_column("sample", no_wrap=True)
    for _, label in SAMPLE_COLUMNS:
        s.add_column(label, justify="right", no_wrap=True)
    s.add_column("issues", no_wrap=True, overflow="ellipsis", max_width=60)
    for sample_id in record.outputs:
        v = _sample_values(record, sample_id)
        s.add_row(sample_id, *(_pct(v.get(k)) for k, _ in SAMPLE_COLUMNS), ", ".join(_issues(record, sample_id)))
    console.print(s)
    if note := in_sample_note(record):
        console.print(note)
    facts = ", ".join(f"{k} {v}" for k, v in record.summary.items() if v is not None)
    console.print(f"Run facts: {facts}")
    return buf.getvalue()


def _markdown(record: RunRecord, thresholds: Thresholds | None) -> str:
    lines = [f"# Eval run `{record.run_id}`", "",
             f"- backend: **{record.backend}**" + (f", model `{record.model}`" if record.model else ""),
             f"- dataset: `{record.dataset.path}` (hash `{record.dataset.hash}`, {len(record.outputs)} samples)",
             f"- created: {record.created:%Y-%m-%d %H:%M} UTC; status: {record.status}",
             f"- commit: `{record.environment.get('git_commit')}`",
             ]
    if note := in_sample_note(record):
        lines.append(f"- note: {note}")
    if record.prompts:
        lines.append("- prompts: " + ", ".join(f"`{k}` {p.version} ({p.hash[:10]})" for k, p in record.prompts.items()))
    lines += ["", "## Metrics"]
    for layer, rows in itertools.groupby(_metric_rows(record, thresholds), key=lambda r: r.layer):
        lines += ["", f"### {layer.capitalize()}", "", "| metric | value | n | bar | |", "|---|---:|---:|---|---|"]
        for row in rows:
            mark = "" if row.passed is None else ("pass" if row.passed else "**miss**")
            lines.append(f"| {row.name} | {row.shown()} | {row.metric.n} | {row.bar or ''} | {mark} |")
    lines += ["", "## Samples", "", "| sample | " + " | ".join(label for _, label in SAMPLE_COLUMNS) + " | issues |",
              "|---|" + "---:|" * len(SAMPLE_COLUMNS) + "---|"]
    for sample_id in record.outputs:
        v = _sample_values(record, sample_id)
        lines.append(f"| {sample_id} | " + " | ".join(_pct(v.get(k)) for k, _ in SAMPLE_COLUMNS)
                     + f" | {', '.join(_issues(record, sample_id))} |")
    facts = ", ".join(f"{k} {v}" for k, v in record.summary.items() if v is not None)
    lines += ["", f"Run facts: {facts}", ""]
    return "\n".join(lines)


# --- HTML ----------------------------------------------------------------------------------------

def highlight(text: str, marks: list[tuple[int, int, str]]) -> Markup:
    """``text`` as HTML with each (start, end, css class) span wrapped in ``<mark>``; spans may overlap."""
    points = sorted({0, len(text), *(p for s, e, _ in marks for p in (s, e) if 0 <= p <= len(text))})
    out = []
    for a, b in itertools.pairwise(points):
        classes = sorted({c for s, e, c in marks if s <= a and b <= e})
        piece = escape(text[a:b])
        out.append(Markup(f'<mark class="{" ".join(classes)}">{piece}</mark>') if classes else piece)
    return Markup("").join(out)


def _find_all(text: str, needle: str) -> list[tuple[int, int]]:
    out, at = [], text.find(needle)
    while needle and at >= 0:
        out.append((at, at + len(needle)))
        at = text.find(needle, at + 1)
    return out


def _sample_view(record: RunRecord, sample_id: str, loaded: LoadedSample | None) -> dict[str, Any]:
    output = record.outputs[sample_id]
    critique = output.critique
    marks: list[tuple[int, int, str]] = []
    if loaded is not None:
        for expected in loaded.sample.reference.findings:
            for quote in expected.evidence:
                marks += [(s, e, "ev") for s, e in _find_all(loaded.text, quote)[:1]]
        if critique is not None:
            for finding in critique.findings:
                for q in finding.evidence:
                    marks += [(s, e, "q") for s, e in _find_all(loaded.text, q.quote)[:1]]
    scores: dict[str, Score] = record.scores.get(sample_id, {})
    v = _sample_values(record, sample_id)
    return {
        "id": sample_id,
        "loaded": loaded,
        "output": output,
        "critique": critique,
        "plan_html": highlight(loaded.text, marks) if loaded is not None else None,
        "scores": scores,
        "vals": v,
        "issues": _issues(record, sample_id),
        "expected_kinds": {f.kind for f in loaded.sample.reference.findings} if loaded else set(),
        "got_kinds": {f.kind for f in critique.findings} if critique else set(),
        "expected_interventions": set(loaded.sample.reference.interventions) if loaded else set(),
    }


def _confusion(record: RunRecord) -> dict[str, Any]:
    cells: Counter[tuple[str, str]] = Counter()
    horizon: Counter[tuple[str, str]] = Counter()
    for per in record.scores.values():
        score = per.get("coder")
        for p in score.data.get("pairs", []) if score else []:
            gold = f"{p['gold']['theme']}/{p['gold']['orientation']}"
            pred = MISSED if p["pred"] is None else f"{p['pred']['theme']}/{p['pred']['orientation']}"
            cells[(gold, pred)] += 1
            horizon[(p["gold"]["horizon"], MISSED if p["pred"] is None else p["pred"]["horizon"])] += 1
    labels = [f"{t}/{o}" for t in THEMES for o in ORIENTATIONS]
    rows = [lab for lab in labels if any(cells[(lab, c)] for c in [*labels, MISSED])]
    cols = [lab for lab in labels if any(cells[(r, lab)] for r in labels)] + [MISSED]
    hz = ["short_term", "long_term", "unspecified"]
    return {"rows": rows, "cols": cols, "cells": cells, "max": max(cells.values(), default=1),
            "hrows": hz, "hcols": [*hz, MISSED], "hcells": horizon, "hmax": max(horizon.values(), default=1),
            "total": sum(cells.values())}


def _html(record: RunRecord, thresholds: Thresholds | None, dataset_path: Path | None) -> str:
    loaded: dict[str, LoadedSample] = {}
    dataset_note = None
    try:
        ds = load_dataset(dataset_path or Path(record.dataset.path))
        loaded = {s.sample.id: s for s in ds.samples}
        if ds.hash != record.dataset.hash:
            dataset_note = f"The dataset changed since this run (now {ds.hash}); plans shown are today's."
    except (AdvisorError, OSError) as exc:
        dataset_note = f"The run's dataset could not be read ({exc}); plans and references are not shown."
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(str(TEMPLATES)), autoescape=True,
                             trim_blocks=True, lstrip_blocks=True, undefined=jinja2.StrictUndefined)
    if note := in_sample_note(record):
        dataset_note = f"{dataset_note} {note}" if dataset_note else note
    rows = _metric_rows(record, thresholds)
    samples = [_sample_view(record, sid, loaded.get(sid)) for sid in record.outputs]
    balance = []
    for s in samples:
        if s["loaded"] is None:
            continue
        band = s["loaded"].sample.reference.relational_share
        share = s["critique"].balance.relational_share if s["critique"] else None
        balance.append({"id": s["id"], "min": band.min, "max": band.max, "share": share,
                        "inside": share is not None and band.min <= share <= band.max,
                        "expected": s["loaded"].sample.reference.structural_overuse,
                        "got": s["critique"].verdict.structural_overuse if s["critique"] else None})
    return env.get_template("report.html.j2").render(
        record=record, rows=rows, ratio_rows=[r for r in rows if r.unit == "ratio" and r.metric.value is not None],
        other_rows=[r for r in rows if r.unit != "ratio" or r.metric.value is None],
        confusion=_confusion(record), balance=balance, samples=samples, dataset_note=dataset_note,
        columns=SAMPLE_COLUMNS, failing=sum(1 for s in samples if s["issues"]),
        missed_bars=[r for r in rows if r.passed is False],
        unmeasured_bars=[n for n in (thresholds.bars if thresholds else {}) if n not in record.aggregate],
    )


def render_report(record: RunRecord, fmt: str = "table", *, thresholds_path: Path | None = None,
                  dataset: Path | None = None) -> str:
    if fmt not in FORMATS:
        raise UnknownIdError("report format", fmt, FORMATS)
    try:
        thresholds: Thresholds | None = load_thresholds(thresholds_path)
    except AdvisorError:
        if thresholds_path is not None:
            raise
        thresholds = None
    if fmt == "table":
        return _table(record, thresholds)
    if fmt == "markdown":
        return _markdown(record, thresholds)
    return _html(record, thresholds, dataset)
