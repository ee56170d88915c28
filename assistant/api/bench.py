"""Load benchmark for the API (a benchmark, not a test): ``python -m assistant.api.bench``.

For each worker count it starts ``assistant serve`` on loopback, warms it, then drives three
phases of equal length in the same run: ``GET /healthz`` (the trivial baseline: what the server,
the client and the machine can do at all); ``critiques``, ``POST /v1/critiques`` with the same
one-page plan each time on the offline backend (a plan sent again, as a chat client does every
turn: the server remembers its action vectors); and ``fresh``, the same plan with every action
made new on each request (nothing remembered helps: the cold cost of a new plan). It reports
throughput, p50/p95/p99 latency and errors for each, and the critique-to-baseline throughput
ratios, which are the figures to compare across machines.

Bounded: each phase stops at ``--seconds`` or ``--max-requests``, whichever comes first; the
server binds 127.0.0.1 only. The load generator runs on the same machine, so on 2 cores it
competes with the server for CPU: the baseline shows how much.

    python -m assistant.api.bench --seconds 60 --workers 1 2
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import httpx

__all__ = ["PhaseResult", "main", "run_phase"]

KEY = "bench-key-" + "0" * 24

ONE_PAGE_PLAN = """\
# Westmoor Integrated Care Partnership: Community Services Transformation Plan 2026/27

## Purpose
This plan sets out how Westmoor will bring community health and adult social care together
over the next eighteen months so that older people receive joined-up care closer to home.

## Governance
- A Partnership Board chaired by the Director of Adult Social Care will meet monthly from April 2026.
- A Programme Management Office will maintain the RAID log, the benefits register and a Gantt chart.
- Each workstream will report RAG-rated milestones to the Board through a monthly dashboard.
- All business cases will pass a three-stage gateway review before implementation.

## Structure
- We will merge the district nursing and reablement teams into four locality teams by October 2026.
- The council and the community trust will pool £12m under a Section 75 agreement.
- Locality teams will be co-located in the new Westmoor health hub by September 2026.
- A shared care record will go live across health and social care by March 2027.

## People
- All staff will complete mandatory e-learning on the new care record within three months of go-live.
- The communications team will publish a monthly newsletter and hold quarterly roadshows.
- Staff will be consulted on the new team structures for 45 days from June 2026.
- A working group of GPs and nurses will review the referral pathway and report back to the Board.

## Measures
- Success will be measured by delayed discharges, emergency admissions, length of stay and savings.
- The programme will close in March 2027, when remaining actions transfer to business as usual.
"""


@dataclass
class PhaseResult:
    workers: int
    endpoint: str
    seconds: float
    requests: int
    errors: int
    throughput: float
    p50_ms: float
    p95_ms: float
    p99_ms: float
    error_samples: list[str]


def _percentile(sorted_values: list[float], q: float) -> float:
    if not sorted_values:
        return float("nan")
    index = min(len(sorted_values) - 1, max(0, round(q * (len(sorted_values) - 1))))
    return sorted_values[index]


async def run_phase(base: str, *, workers: int, endpoint: str, seconds: float, concurrency: int,
                    max_requests: int, plan: str) -> PhaseResult:
    """Drive one endpoint with ``concurrency`` clients until the time or request budget is spent."""
    method, path = ("GET", "/healthz") if endpoint == "healthz" else ("POST", "/v1/critiques")
    body = json.dumps({"plan": plan, "model": "transformation-advisor-offline"}).encode()
    sent = itertools.count()

    def fresh_body() -> bytes:
        """The plan with every action made new (a request number on each line), so no vector
        the server remembers from an earlier request can serve it."""
        n = next(sent)
        lines = [f"{line.rstrip('.')} (item {n}-{i})." if line.startswith("- ") else line
                 for i, line in enumerate(plan.splitlines())]
        return json.dumps({"plan": "\n".join(lines), "model": "transformation-advisor-offline"}).encode()

    latencies: list[float] = []
    samples: list[str] = []
    counts = {"left": max_requests, "errors": 0}
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    headers = {"Authorization": f"Bearer {KEY}", "Content-Type": "application/json"}
    async with httpx.AsyncClient(base_url=base, headers=headers, limits=limits, timeout=30) as client:
        started = time.perf_counter()
        deadline = started + seconds

        async def worker() -> None:
            while time.perf_counter() < deadline and counts["left"] > 0:
                counts["left"] -= 1
                t0 = time.perf_counter()
                problem = None
                try:
                    if method == "GET":
                        response = await client.get(path)
                    else:
                        response = await client.post(path, content=fresh_body() if endpoint == "fresh" else body)
                    if response.status_code != 200:
                        problem = f"{response.status_code}: {response.text[:200]}"
                except httpx.HTTPError as exc:
                    problem = f"{type(exc).__name__}: {exc}"
                if problem is None:
                    latencies.append((time.perf_counter() - t0) * 1000)
                else:
                    counts["errors"] += 1
                    if len(samples) < 5:
                        samples.append(problem)

        await asyncio.gather(*(worker() for _ in range(concurrency)))
        elapsed = time.perf_counter() - started
    latencies.sort()
    return PhaseResult(workers=workers, endpoint=endpoint, seconds=round(elapsed, 2), requests=len(latencies),
                       errors=counts["errors"], throughput=len(latencies) / elapsed if elapsed else 0.0,
                       p50_ms=_percentile(latencies, 0.50), p95_ms=_percentile(latencies, 0.95),
                       p99_ms=_percentile(latencies, 0.99), error_samples=samples)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Server:
    """``assistant serve`` on loopback in a subprocess, with its state in a temporary directory."""

    def __init__(self, workers: int, home: Path) -> None:
        self.workers = workers
        self.port = _free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        env = {k: v for k, v in os.environ.items() if not k.startswith("ASSISTANT_")}
        env.update({"ASSISTANT_HOME": str(home), "ASSISTANT_API_KEYS": KEY,
                    "ASSISTANT_RATE_LIMIT_PER_MINUTE": "100000000", "LITELLM_LOCAL_MODEL_COST_MAP": "True"})
        self.log = home / f"serve-{workers}.log"
        with open(self.log, "wb") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "assistant", "serve", "--host", "127.0.0.1", "--port", str(self.port),
                 "--workers", str(workers)], env=env, stdout=log, stderr=subprocess.STDOUT)

    def wait_ready(self, timeout: float = 120) -> None:
        """Ready when /readyz says so several times in a row (each worker warms up on its own)."""
        deadline = time.monotonic() + timeout
        streak = 0
        while streak < 4 * self.workers:
            if self.process.poll() is not None:
                raise SystemExit(f"assistant serve exited ({self.process.returncode}):\n{self.log.read_text()}")
            if time.monotonic() > deadline:
                raise SystemExit(f"assistant serve was not ready in {timeout:.0f} s:\n{self.log.read_text()}")
            try:
                ok = httpx.get(self.base + "/readyz", timeout=5).status_code == 200
            except httpx.HTTPError:
                ok = False
            streak = streak + 1 if ok else 0
            time.sleep(0.1 if ok else 0.3)

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(20)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(5)


def _table(results: list[PhaseResult]) -> str:
    lines = [f"{'workers':>7}  {'endpoint':<10} {'requests':>8} {'req/s':>8} {'p50 ms':>8} {'p95 ms':>8} "
             f"{'p99 ms':>8} {'errors':>6}"]
    for r in results:
        lines.append(f"{r.workers:>7}  {r.endpoint:<10} {r.requests:>8} {r.throughput:>8.1f} {r.p50_ms:>8.1f} "
                     f"{r.p95_ms:>8.1f} {r.p99_ms:>8.1f} {r.errors:>6}")
    by_workers: dict[int, dict[str, PhaseResult]] = {}
    for r in results:
        by_workers.setdefault(r.workers, {})[r.endpoint] = r
    for workers, phases in by_workers.items():
        for name in ("critiques", "fresh"):
            if "healthz" in phases and name in phases and phases["healthz"].throughput:
                ratio = phases[name].throughput / phases["healthz"].throughput
                lines.append(f"workers={workers}: {name}/healthz throughput ratio {ratio:.3f} "
                             f"({phases[name].throughput:.1f} / {phases['healthz'].throughput:.1f} req/s)")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m assistant.api.bench", description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=60.0, help="length of each phase (default 60)")
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2], help="worker counts to run (default 1 2)")
    parser.add_argument("--concurrency", type=int, default=8, help="concurrent client connections (default 8)")
    parser.add_argument("--max-requests", type=int, default=200_000, help="request cap per phase")
    parser.add_argument("--warmup", type=float, default=3.0, help="seconds of unmeasured critiques first")
    parser.add_argument("--plan", type=Path, help="a plan file to use instead of the built-in one-page plan")
    parser.add_argument("--json", type=Path, help="also write the results as JSON here")
    args = parser.parse_args(argv)
    if args.seconds <= 0 or args.seconds > 600 or any(w < 1 or w > 16 for w in args.workers):
        parser.error("--seconds must be in (0, 600] and --workers in [1, 16]")
    plan = args.plan.read_text(encoding="utf-8") if args.plan else ONE_PAGE_PLAN
    results: list[PhaseResult] = []
    print(f"plan: {len(plan):,} characters; {os.cpu_count()} CPUs; concurrency {args.concurrency}; "
          f"{args.seconds:.0f} s per phase", flush=True)
    with tempfile.TemporaryDirectory(prefix="assistant-bench-") as tmp:
        for workers in args.workers:
            server = Server(workers, Path(tmp))
            try:
                server.wait_ready()
                common: dict[str, Any] = {"workers": workers, "concurrency": args.concurrency, "plan": plan,
                                          "max_requests": args.max_requests}
                if args.warmup > 0:
                    asyncio.run(run_phase(server.base, endpoint="critiques", seconds=args.warmup, **common))
                for endpoint in ("healthz", "critiques", "fresh"):
                    result = asyncio.run(run_phase(server.base, endpoint=endpoint, seconds=args.seconds, **common))
                    results.append(result)
                    print(f"  workers={workers} {endpoint}: {result.throughput:.1f} req/s, p50 {result.p50_ms:.1f} ms, "
                          f"p99 {result.p99_ms:.1f} ms, errors {result.errors}", flush=True)
                    for sample in result.error_samples:
                        print(f"    error: {sample}", flush=True)
            finally:
                server.stop()
    print()
    print(_table(results))
    if args.json:
        args.json.write_text(json.dumps([asdict(r) for r in results], indent=2) + "\n", encoding="utf-8")
    return 0 if all(r.errors == 0 for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
