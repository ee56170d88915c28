"""Retrieval quality: recall@5 and MRR for dense, BM25 and hybrid, side by side.

The labelled set is ``evals/retrieval/queries.yaml``. Scores are per document: a hit counts
for each relevant document id (a chunk id in the labels counts as its document). The report is
a pydantic record (dataset hash, embedder, collection, fusion settings, every query's ranking),
so a run can be saved as JSON and compared later.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from ..errors import BadInputError, UnknownIdError
from ..settings import PACKAGE_ROOT
from .chunking import CHUNK_KINDS
from .retriever import Retriever
from .search import SEARCH_MODES, SearchConfig, SearchMode

__all__ = [
    "DEFAULT_QUERIES",
    "ModeMetrics",
    "QueryResult",
    "RetrievalEvalReport",
    "RetrievalQuery",
    "RetrievalSet",
    "evaluate_retrieval",
    "load_queries",
]

DEFAULT_QUERIES = PACKAGE_ROOT.parent / "evals" / "retrieval" / "queries.yaml"
RECALL_AT = 5
RANK_DEPTH = 10
TARGET_RECALL = 0.90


class RetrievalQuery(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: str
    query: str = Field(min_length=3)
    relevant: list[str] = Field(min_length=1)
    kind: str | None = None
    theme: str | None = None
    country: str | None = None
    asked_by: str | None = None
    note: str | None = None


class RetrievalSet(BaseModel):
    model_config = ConfigDict(extra="forbid")

    version: int = 1
    queries: list[RetrievalQuery] = Field(min_length=1)


class QueryResult(BaseModel):
    id: str
    ranked: list[str] = Field(description=f"Top {RANK_DEPTH} document ids, best first.")
    recall_at_5: float
    reciprocal_rank: float


class ModeMetrics(BaseModel):
    mode: str
    recall_at_5: float
    mrr: float
    hit_at_5: float = Field(
        description="Share of queries with at least one relevant document in the top 5."
    )
    queries: list[QueryResult]


class RetrievalEvalReport(BaseModel):
    dataset: str
    dataset_sha256: str
    queries: int
    embedder: str
    collection: str
    config: dict[str, Any]
    created_at: str
    modes: dict[str, ModeMetrics]

    @property
    def hybrid_meets_target(self) -> bool:
        """Hybrid recall@5 >= 0.90 and at least as good as dense and BM25 alone."""
        hybrid = self.modes.get("hybrid")
        if hybrid is None:
            return False
        others = [m.recall_at_5 for name, m in self.modes.items() if name != "hybrid"]
        return hybrid.recall_at_5 >= TARGET_RECALL and all(hybrid.recall_at_5 >= o for o in others)

    def table(self) -> str:
        lines = [f"{'retriever':<8}  {'recall@5':>8}  {'MRR':>6}  {'hit@5':>6}"]
        for name, m in self.modes.items():
            lines.append(f"{name:<8}  {m.recall_at_5:8.3f}  {m.mrr:6.3f}  {m.hit_at_5:6.3f}")
        lines.append(
            f"{self.queries} queries, {self.embedder}, collection {self.collection}; "
            f"target hybrid recall@5 >= {TARGET_RECALL:.2f} and >= each alone: "
            f"{'met' if self.hybrid_meets_target else 'NOT met'}"
        )
        return "\n".join(lines)

    def misses(self, mode: str = "hybrid") -> list[tuple[str, list[str]]]:
        """Queries whose relevant documents were not all in the top 5, with their top 5."""
        return [
            (q.id, q.ranked[:RECALL_AT]) for q in self.modes[mode].queries if q.recall_at_5 < 1.0
        ]


def load_queries(path: Path | None = None) -> tuple[RetrievalSet, str]:
    """The labelled set and the sha256 of its bytes."""
    path = Path(path or DEFAULT_QUERIES)
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise BadInputError(f"Cannot read the retrieval eval set {path}: {exc}") from exc
    try:
        dataset = RetrievalSet.model_validate(yaml.safe_load(raw))
    except (yaml.YAMLError, ValidationError) as exc:
        raise BadInputError(f"The retrieval eval set {path} is invalid: {exc}") from exc
    return dataset, hashlib.sha256(raw).hexdigest()


def _doc(label: str) -> str:
    return label.split("#", 1)[0]


def _score(ranked: Sequence[str], relevant: set[str]) -> tuple[float, float]:
    top = set(ranked[:RECALL_AT])
    recall = len(top & relevant) / len(relevant)
    rr = next((1.0 / (i + 1) for i, doc in enumerate(ranked) if doc in relevant), 0.0)
    return recall, rr


def evaluate_retrieval(
    retriever: Retriever | None = None,
    queries_path: Path | None = None,
    *,
    modes: Sequence[SearchMode] = SEARCH_MODES,
    config: SearchConfig | None = None,
) -> RetrievalEvalReport:
    """Run every labelled query through each retriever and score recall@5 and MRR@10."""
    dataset, digest = load_queries(queries_path)
    own = retriever is None
    retriever = retriever or Retriever()
    try:
        retriever.ensure_index()
        known = {str(c.metadata["doc_id"]) for c in retriever._ready_lexical().chunks}
        for q in dataset.queries:
            for label in q.relevant:
                if _doc(label) not in known:
                    raise UnknownIdError(
                        f"document in retrieval query {q.id!r}", label, sorted(known)
                    )
            if q.kind is not None and q.kind not in CHUNK_KINDS:
                raise UnknownIdError("kind", q.kind, CHUNK_KINDS)
        config = config or retriever.config
        results: dict[str, ModeMetrics] = {}
        for mode in modes:
            per_query = []
            for q in dataset.queries:
                hits = retriever.search(
                    q.query,
                    k=RANK_DEPTH,
                    kind=q.kind,
                    theme=q.theme,
                    country=q.country,
                    mode=mode,
                    config=config,
                )
                ranked = [h.doc_id for h in hits]
                recall, rr = _score(ranked, {_doc(r) for r in q.relevant})
                per_query.append(
                    QueryResult(id=q.id, ranked=ranked, recall_at_5=recall, reciprocal_rank=rr)
                )
            n = len(per_query)
            results[mode] = ModeMetrics(
                mode=mode,
                recall_at_5=round(sum(r.recall_at_5 for r in per_query) / n, 4),
                mrr=round(sum(r.reciprocal_rank for r in per_query) / n, 4),
                hit_at_5=round(sum(1 for r in per_query if r.recall_at_5 > 0) / n, 4),
                queries=per_query,
            )
        return RetrievalEvalReport(
            dataset=str(queries_path or DEFAULT_QUERIES),
            dataset_sha256=digest,
            queries=len(dataset.queries),
            embedder=retriever.embedder.id,
            collection=retriever.store.name,
            config=asdict(config),
            created_at=datetime.now(UTC).isoformat(timespec="seconds"),
            modes=results,
        )
    finally:
        if own:
            retriever.close()


if __name__ == "__main__":  # pragma: no cover
    report = evaluate_retrieval()
    print(report.table())
    for qid, top in report.misses():
        print(f"  miss {qid}: {top}")
