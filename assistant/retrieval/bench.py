"""Retrieval benchmark: index build throughput, warm query latency, cold first query.

    python -m assistant.retrieval.bench [--queries N] [--json]

Embedded mode always runs (in a temporary ASSISTANT_HOME); server mode runs too when
ASSISTANT_CHROMA_URL is set (into a uniquely named scratch collection it deletes after).
Warm queries are the labelled eval queries, cycled, with the query-embedding cache cleared
so every search embeds its query.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..settings import Settings
from .embeddings import Embedder, get_embedder
from .evaluate import load_queries
from .retriever import Retriever
from .store import ChromaStore

__all__ = ["main", "run_benchmark"]


def _percentiles(samples: list[float]) -> dict[str, float]:
    ordered = sorted(samples)

    def pct(p: float) -> float:
        return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]

    return {
        "p50_ms": round(pct(50) * 1000, 2),
        "p95_ms": round(pct(95) * 1000, 2),
        "max_ms": round(ordered[-1] * 1000, 2),
    }


def _time_queries(retriever: Retriever, queries: list[str], n: int, **kw: Any) -> dict[str, float]:
    samples = []
    for i in range(n):
        retriever._query_cache.clear()
        start = time.perf_counter()
        retriever.search(queries[i % len(queries)], k=8, **kw)
        samples.append(time.perf_counter() - start)
    return _percentiles(samples)


def _time(fn: Callable[[], object], n: int) -> dict[str, float]:
    samples = []
    for _ in range(n):
        start = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - start)
    return _percentiles(samples)


BUILDS = 4


class _ScratchName:
    """Wraps an embedder so the server benchmark writes to its own scratch collection."""

    def __init__(self, inner: Embedder, suffix: str) -> None:
        self.inner = inner
        self.id = inner.id
        self.model_name = f"{inner.model_name}-bench-{suffix}"
        self.dimension = inner.dimension

    def embed(self, texts: Any) -> Any:
        return self.inner.embed(texts)


def _bench_mode(
    settings: Settings, embedder: Embedder, queries: list[str], n: int
) -> dict[str, Any]:
    retriever = Retriever(settings=settings, embedder=embedder)
    try:
        # The first build also loads the embedding model (when nothing in the process has);
        # the next ones show the steady rate of a process that rebuilds or refreshes.
        reports = [retriever.rebuild(progress=lambda done, total: None) for _ in range(BUILDS)]
        first, later = reports[0], sorted(reports[1:], key=lambda r: r.seconds)
        report = later[len(later) // 2]
        embedder.embed(["warm up"])
        result: dict[str, Any] = {
            "mode": retriever.store.mode,
            "chunks": report.chunks,
            "first_build_seconds": round(first.seconds, 2),
            "first_build_chunks_per_s": round(first.chunks / first.seconds, 1),
            "builds": BUILDS,
            "build_seconds": round(report.seconds, 2),
            "build_chunks_per_s": round(report.chunks / report.seconds, 1),
            "embed_store_seconds": round(report.embed_seconds, 2),
            "embed_store_chunks_per_s": round(report.embedded_per_second, 1),
            "query_hybrid": _time_queries(retriever, queries, n),
            "query_hybrid_filtered": _time_queries(
                retriever, queries, max(20, n // 4), kind="case"
            ),
        }
        vector = embedder.embed([queries[0]])[0]
        lexical = retriever._ready_lexical()
        result["parts"] = {
            "embed_query": _time(lambda: embedder.embed([queries[1]]), 50),
            "chroma_query": _time(lambda: retriever.store.query(vector, 64), 50),
            "bm25_query": _time(lambda: lexical.search(queries[2], 64), 50),
        }
        return result
    finally:
        if isinstance(retriever.store, ChromaStore) and retriever.store.mode == "server":
            retriever.store.drop()
        retriever.close()


_COLD = """
import time, json
t0 = time.perf_counter()
from assistant.retrieval import Retriever
from assistant.settings import Settings
r = Retriever(settings=Settings(home={home!r}, chroma_url=None))
hits = r.search({query!r}, k=8)
t1 = time.perf_counter()
print(json.dumps({{"in_process_s": t1 - t0, "hits": len(hits)}}))
"""


def _cold_first_query(home: Path, query: str) -> dict[str, float]:
    start = time.perf_counter()
    out = subprocess.run(
        [sys.executable, "-c", _COLD.format(home=str(home), query=query)],
        capture_output=True,
        text=True,
        check=True,
        env={k: v for k, v in os.environ.items() if k != "ASSISTANT_CHROMA_URL"},
    )
    wall = time.perf_counter() - start
    data = json.loads(out.stdout.strip().splitlines()[-1])
    return {
        "process_wall_s": round(wall, 3),
        "import_open_query_s": round(float(data["in_process_s"]), 3),
    }


def run_benchmark(n_queries: int = 200) -> dict[str, Any]:
    dataset, _ = load_queries()
    queries = [q.query for q in dataset.queries]
    embedder = get_embedder()
    results: dict[str, Any] = {
        "embedder": embedder.id,
        "cpus": os.cpu_count(),
        "queries": n_queries,
    }
    with tempfile.TemporaryDirectory(prefix="assistant-bench-") as tmp:
        home = Path(tmp)
        results["embedded"] = _bench_mode(
            Settings(home=home, chroma_url=None), embedder, queries, n_queries
        )
        results["cold_first_query"] = _cold_first_query(home, queries[0])
        url = os.environ.get("ASSISTANT_CHROMA_URL")
        if url:
            scratch = _ScratchName(embedder, uuid.uuid4().hex[:8])
            results["server"] = _bench_mode(
                Settings(home=home / "server", chroma_url=url), scratch, queries, n_queries
            )
    return results


def _print(results: dict[str, Any]) -> None:
    print(
        f"embedder {results['embedder']}, {results['cpus']} CPUs, {results['queries']} warm queries per mode"
    )
    for mode in ("embedded", "server"):
        r = results.get(mode)
        if r is None:
            print(f"{mode:>8}: skipped (set ASSISTANT_CHROMA_URL to a running Chroma server)")
            continue
        q, f = r["query_hybrid"], r["query_hybrid_filtered"]
        print(
            f"{mode:>8}: build {r['chunks']} chunks in {r['build_seconds']} s = {r['build_chunks_per_s']} chunks/s "
            f"end to end (median of {r['builds'] - 1} rebuilds; embed+store {r['embed_store_chunks_per_s']} "
            f"chunks/s; the first build, loading the model too: {r['first_build_chunks_per_s']} chunks/s); "
            f"hybrid top-8 p50 {q['p50_ms']} ms, p95 {q['p95_ms']} ms; with kind filter p50 {f['p50_ms']} ms, p95 {f['p95_ms']} ms"
        )
        parts = ", ".join(f"{k} p50 {v['p50_ms']} ms" for k, v in r["parts"].items())
        print(f"{'':>8}  parts: {parts}")
    c = results["cold_first_query"]
    print(
        f"    cold: first query in a new process {c['process_wall_s']} s wall ({c['import_open_query_s']} s import+open+query)"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m assistant.retrieval.bench",
        description=__doc__.split("\n")[0] if __doc__ else None,
    )
    parser.add_argument(
        "--queries", type=int, default=200, help="warm queries per mode (default 200)"
    )
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    args = parser.parse_args(argv)
    results = run_benchmark(args.queries)
    if args.json:
        print(json.dumps(results, indent=2))
    else:
        _print(results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
