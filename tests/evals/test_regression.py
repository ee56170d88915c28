"""A deliberately worsened coder makes `compare --fail-on-regression` fail and name the samples."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from assistant.analysis.coder import CodeAssignment, Coder
from assistant.cli import main
from assistant.evals.compare import compare_runs
from assistant.evals.records import load_record

FLIP = {"structural": "relational", "relational": "structural", "work_process": "structural"}


def test_flipped_orientations_are_caught_as_a_regression(home: Path, tiny_dataset: Path, tmp_path: Path,
                                                         advisor: Any, monkeypatch: pytest.MonkeyPatch,
                                                         capsys: pytest.CaptureFixture[str]) -> None:
    baseline, worse = tmp_path / "baseline.json", tmp_path / "worse.json"
    assert main(["eval", "run", "--dataset", str(tiny_dataset), "--out", str(baseline), "--quiet"]) == 0

    real_code = Coder.code

    def flipped(self: Coder, texts: Sequence[str], headings: Sequence[Sequence[str]] | None = None
                ) -> list[CodeAssignment]:
        return [dataclasses.replace(a, orientation=FLIP[a.orientation])  # type: ignore[arg-type]
                for a in real_code(self, texts, headings)]

    monkeypatch.setattr(Coder, "code", flipped)
    assert main(["eval", "run", "--dataset", str(tiny_dataset), "--out", str(worse), "--quiet"]) == 0
    monkeypatch.undo()

    a, b = load_record(baseline), load_record(worse)
    assert (b.metric("coder_orientation_accuracy") or 0) < (a.metric("coder_orientation_accuracy") or 0) - 0.3

    capsys.readouterr()
    assert main(["eval", "compare", str(baseline), str(worse)]) == 0  # reporting alone does not fail
    assert main(["eval", "compare", str(baseline), str(worse), "--fail-on-regression"]) == 1
    captured = capsys.readouterr()
    assert "REGRESSION" in captured.out
    regression_lines = [ln for ln in captured.err.splitlines() if ln.startswith("regression: coder_orientation")]
    assert regression_lines, captured.err
    for sample_id in ("t-balanced", "t-injection", "t-structural"):
        assert sample_id in regression_lines[0]

    cmp = compare_runs(a, b)
    assert "coder_orientation_accuracy" in {m.name for m in cmp.regressions}
    assert set(cmp.regressed_samples()["coder_orientation_accuracy"]) == {"t-balanced", "t-injection", "t-structural"}
    # the other way round it is an improvement, not a regression
    back = compare_runs(b, a)
    assert "coder_orientation_accuracy" not in {m.name for m in back.regressions}
    assert "t-structural" in back.better


def test_tolerance_absorbs_small_moves(home: Path, tiny_dataset: Path, tmp_path: Path, advisor: Any) -> None:
    run = tmp_path / "run.json"
    assert main(["eval", "run", "--dataset", str(tiny_dataset), "--out", str(run), "--quiet"]) == 0
    a = load_record(run)
    b = a.model_copy(deep=True)
    score = b.scores["t-structural"]["semantic_similarity"]
    score.value["semantic_similarity"] -= 0.03  # one sample a little less similar; the mean moves by 0.01
    b.aggregate["semantic_similarity"].value = (a.metric("semantic_similarity") or 0) - 0.01
    assert "semantic_similarity" not in {m.name for m in compare_runs(a, b, tolerance=0.02).regressions}
    strict = compare_runs(a, b, tolerance=0.0)
    assert "semantic_similarity" in {m.name for m in strict.regressions}
    assert strict.regressed_samples()["semantic_similarity"] == ["t-structural"]
