"""The benchmark still runs end to end (its numbers are for the closing note, not for asserts)."""

from __future__ import annotations

from assistant.advice.llm.bench import run_bench


def test_the_benchmark_runs_and_reports_both_figures() -> None:
    result = run_bench(latency=0.05, runs=1)
    assert result["bare_call_s"] >= 0.05 and result["ours_s"] >= 0.05
    assert {"overhead_pct_of_wall", "first_token_delay_ms", "overhead_ms"} <= set(result)
