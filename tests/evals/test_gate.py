"""The gate: bars, known misses with a floor, --strict, and a clear error for a bad file."""

from __future__ import annotations

import re
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from assistant.errors import ConfigError
from assistant.evals.gate import check_gate, load_thresholds


def _record(**metrics: float) -> Any:
    """Just what the gate reads of a run record."""
    return SimpleNamespace(metric=metrics.get, status="complete", run_id="r1")


def _thresholds(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "thresholds.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def _known_miss(tmp_path: Path, metric: str, bound: str, limit: float, floor: float, note: str = "x") -> Path:
    """A thresholds file with one bar recorded as a known miss."""
    return _thresholds(tmp_path, f"""
bars:
  {metric}:
    {bound}: {limit}
    known_miss: {{floor: {floor}, since: "2026-11-26", note: "{note}"}}
""")


KNOWN = """
bars:
  verdict_accuracy: {min: 0.95}
  intervention_recall:
    min: 0.80
    known_miss: {floor: 0.55, since: "2026-11-26", note: "tracked in the evaluation issue"}
"""


@pytest.mark.parametrize(
    ("recall", "statuses", "blocking"),
    [
        (0.60, ["pass", "known miss"], []),  # missed, but no worse than its floor
        (0.55, ["pass", "known miss"], []),  # exactly at the floor
        (0.54, ["pass", "MISS"], ["intervention_recall"]),  # a regression past the floor
        (0.85, ["pass", "pass"], []),  # met: the entry can go
    ],
)
def test_a_known_miss_passes_only_above_its_floor(
    tmp_path: Path, recall: float, statuses: list[str], blocking: list[str]
) -> None:
    results = check_gate(_record(verdict_accuracy=0.97, intervention_recall=recall),
                         load_thresholds(_thresholds(tmp_path, KNOWN)))
    assert [r.status for r in results] == statuses
    assert [r.metric for r in results if r.blocks] == blocking


def test_the_gate_says_why_and_when_a_known_miss_can_go(tmp_path: Path) -> None:
    thresholds = load_thresholds(_thresholds(tmp_path, KNOWN))
    [_, below] = check_gate(_record(verdict_accuracy=0.97, intervention_recall=0.6), thresholds)
    assert "known miss since 2026-11-26, floor 0.55: tracked in the evaluation issue" in below.describe()
    [_, met] = check_gate(_record(verdict_accuracy=0.97, intervention_recall=0.9), thresholds)
    assert "now met: remove its known_miss entry" in met.describe()
    [_, past] = check_gate(_record(verdict_accuracy=0.97, intervention_recall=0.5), thresholds)
    assert "fell past its known-miss floor 0.55" in past.describe()


def test_strict_fails_on_known_misses(tmp_path: Path) -> None:
    results = check_gate(_record(verdict_accuracy=0.97, intervention_recall=0.6),
                         load_thresholds(_thresholds(tmp_path, KNOWN)), strict=True)
    assert [r.metric for r in results if r.blocks] == ["intervention_recall"]


def test_a_known_miss_does_not_excuse_an_unmeasured_metric(tmp_path: Path) -> None:
    results = check_gate(_record(verdict_accuracy=0.97), load_thresholds(_thresholds(tmp_path, KNOWN)))
    assert [r.metric for r in results if r.blocks] == ["intervention_recall"]


def test_a_max_bar_known_miss_floor_is_a_ceiling(tmp_path: Path) -> None:
    path = _known_miss(tmp_path, "must_not_violations", "max", 0, 2, note="two dev plans")
    [ok] = check_gate(_record(must_not_violations=2), load_thresholds(path))
    [worse] = check_gate(_record(must_not_violations=3), load_thresholds(path))
    assert ok.known_miss and not ok.blocks
    assert worse.blocks


def test_a_floor_that_would_excuse_nothing_is_a_config_error(tmp_path: Path) -> None:
    path = _known_miss(tmp_path, "intervention_recall", "min", 0.80, 0.9)
    with pytest.raises(ConfigError, match=re.escape("known_miss.floor 0.9 is above the bar's min 0.8")):
        load_thresholds(path)


def test_the_shipped_thresholds_load_and_keep_every_product_bar() -> None:
    thresholds = load_thresholds()
    assert {"verdict_accuracy", "finding_recall", "finding_precision", "intervention_recall",
            "quotes_verbatim", "citations_resolvable", "injection_unaffected"} <= set(thresholds.bars)
    assert thresholds.bars["intervention_recall"].min == 0.80  # a known miss never lowers a bar
    for name, bar in thresholds.bars.items():
        if name != "intervention_recall":
            assert bar.known_miss is None, name
