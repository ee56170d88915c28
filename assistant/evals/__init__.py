"""Evaluation: run the advisor over reference plans, score, report, compare, gate.

    dataset   the sample YAML schema (plan + reference critique + gold-coded actions)
    runner    generate (resumable, cached for LLMs) then score -> RunRecord (records)
    scorers   the @scorer registry: verdict, balance, coder, findings, evidence, interventions,
              must-not, groundedness, injection, similarity, LLM judge
    report    table | markdown | one self-contained HTML file
    compare   two runs aligned by sample: deltas, worse and better samples, regressions
    gate      a run against evals/thresholds.yaml (PRODUCT.md section 7)

Public names are imported lazily so the CLI's parser stays cheap. See docs/evals.md.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .._lazy import lazy_exports

if TYPE_CHECKING:
    from .compare import Comparison, compare_runs
    from .dataset import Dataset, Sample, load_dataset
    from .gate import check_gate, load_thresholds
    from .records import RunRecord, SampleOutput, Score, load_record
    from .report import render_report
    from .runner import RunOptions, rescore, run_eval
    from .scorers import MetricSpec, ScoreContext, get_scorer, scorer

__all__ = [
    "Comparison",
    "Dataset",
    "MetricSpec",
    "RunOptions",
    "RunRecord",
    "Sample",
    "SampleOutput",
    "Score",
    "ScoreContext",
    "check_gate",
    "compare_runs",
    "get_scorer",
    "load_dataset",
    "load_record",
    "load_thresholds",
    "render_report",
    "rescore",
    "run_eval",
    "scorer",
]

_WHERE = {
    "Comparison": "compare",
    "compare_runs": "compare",
    "Dataset": "dataset",
    "Sample": "dataset",
    "load_dataset": "dataset",
    "check_gate": "gate",
    "load_thresholds": "gate",
    "RunRecord": "records",
    "SampleOutput": "records",
    "Score": "records",
    "load_record": "records",
    "render_report": "report",
    "RunOptions": "runner",
    "rescore": "runner",
    "run_eval": "runner",
    "MetricSpec": "scorers",
    "ScoreContext": "scorers",
    "get_scorer": "scorers",
    "scorer": "scorers",
}


__getattr__, __dir__ = lazy_exports(__name__, _WHERE, __all__)
