"""CLI wiring that the end-to-end tests do not reach: retrieval evals and the scorer list."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from assistant.cli import main


class FakeReport:
    def __init__(self, meets: bool) -> None:
        self.hybrid_meets_target = meets
        self.modes = {"hybrid": object()}

    def table(self) -> str:
        return "retriever  recall@5\nhybrid 0.950"

    def misses(self) -> list[tuple[str, list[str]]]:
        return [("q1", ["case:torbay"])]

    def model_dump_json(self, indent: int = 1) -> str:
        return '{"modes": {}}'


@pytest.mark.parametrize("meets, code", [(True, 0), (False, 1)])
def test_eval_retrieval_reports_and_gates(meets: bool, code: int, monkeypatch: pytest.MonkeyPatch,
                                          capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    seen: dict[str, Any] = {}

    def fake(queries_path: Path | None = None, *, modes: Any = None) -> FakeReport:
        seen.update(queries=queries_path, modes=modes)
        return FakeReport(meets)

    monkeypatch.setattr("assistant.retrieval.evaluate.evaluate_retrieval", fake)
    assert main(["eval", "retrieval", "--modes", "bm25", "hybrid", "--misses", "--gate"]) == code
    out = capsys.readouterr().out
    assert "hybrid 0.950" in out and "miss q1: case:torbay" in out
    assert seen["modes"] == ("bm25", "hybrid")
    assert main(["eval", "retrieval", "--format", "json", "--out", str(tmp_path / "r.json")]) == 0
    assert (tmp_path / "r.json").read_text() == '{"modes": {}}'


def test_eval_scorers_lists_every_scorer(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["eval", "scorers"]) == 0
    out = capsys.readouterr().out
    assert "llm_judge (opt-in)" in out and "finding_recall" in out and "relational_share_error (lower is better)" in out


def test_eval_without_an_action_shows_usage() -> None:
    assert main(["eval"]) == 2


def test_report_of_a_missing_run_is_bad_input(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["eval", "report", str(tmp_path / "nope.json")]) == 2
    assert "No run record" in capsys.readouterr().err


def test_public_names_resolve_lazily() -> None:
    import subprocess
    import sys

    import assistant.evals as evals

    for name in evals.__all__:
        assert getattr(evals, name) is not None, name
    # the CLI registers `assistant eval` without paying for litellm or chromadb
    code = "import sys, assistant.evals.cli; print('litellm' in sys.modules or 'chromadb' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
