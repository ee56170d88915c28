"""Benchmarks (not tests): ``python -m assistant.bench critique``.

Reports the in-process offline critique time over the example plans after warm-up (p50/p95 per
plan), both for a plan the process has not seen (the embedder's memo of recent vectors emptied
before every run) and for one it has (a revision, or a chat that sends its plan every turn), and
the whole-process cold time of ``assistant critique <plan> --format json``.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _pct(values: list[float], q: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, round(q * (len(values) - 1)))]


def bench_critique(repeats: int, cold_runs: int) -> None:
    from .advice.advisor import Advisor
    from .analysis.coder import EMBEDDER
    from .reading import read_plan
    from .retrieval.embeddings import get_embedder

    plans = sorted((ROOT / "examples" / "plans").iterdir())
    t0 = time.perf_counter()
    advisor = Advisor()
    print(f"advisor start-up (corpus, coder, embedder): {1000 * (time.perf_counter() - t0):.0f} ms")
    for plan in plans:
        doc = read_plan(plan)
        for _ in range(3):
            advisor.critique(doc)
        words = len(doc.text.split())
        for label, forget in (("new plan ", getattr(get_embedder(EMBEDDER), "forget", None)), ("seen plan", None)):
            times = []
            for _ in range(repeats):
                if forget is not None:
                    forget()
                t = time.perf_counter()
                advisor.critique(doc)
                times.append(1000 * (time.perf_counter() - t))
            print(f"warm in-process  {label}  {plan.name:28} {words:5} words  p50 {statistics.median(times):6.1f} ms  "
                  f"p95 {_pct(times, 0.95):6.1f} ms  (n={repeats})")
    plan = ROOT / "examples" / "plans" / "structural-heavy.md"
    colds = []
    for _ in range(cold_runs):
        t = time.perf_counter()
        subprocess.run([sys.executable, "-m", "assistant", "critique", str(plan), "--format", "json"], check=True,
                       capture_output=True)
        colds.append(time.perf_counter() - t)
    baseline = []
    for _ in range(cold_runs):
        t = time.perf_counter()
        subprocess.run([sys.executable, "-c", "pass"], check=True)
        baseline.append(time.perf_counter() - t)
    print(f"cold whole process  assistant critique {plan.name} --format json: median {statistics.median(colds):.2f} s, "
          f"max {max(colds):.2f} s (n={cold_runs}); bare `python -c pass` median {statistics.median(baseline):.3f} s")


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m assistant.bench")
    parser.add_argument("what", choices=["critique"])
    parser.add_argument("--repeats", type=int, default=50)
    parser.add_argument("--cold-runs", type=int, default=5)
    args = parser.parse_args()
    bench_critique(args.repeats, args.cold_runs)


if __name__ == "__main__":
    main()
