"""Hybrid search: dense and BM25 rankings fused by weighted reciprocal rank fusion.

    fused(d) = sum over retrievers r of  weight_r / (rrf_k + rank_r(d))

With ``group_by_document`` (the default) each retriever's chunk ranking is first turned into a
document ranking (a document ranks where its best chunk ranks), so one long case cannot fill
the top-k with its sections; each hit then carries the document's best-fused chunk. Every hit
keeps each retriever's rank and score, so a user can see why it matched.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

from .chunking import MetadataValue

__all__ = ["Hit", "Ranked", "SearchConfig", "SearchMode", "fuse"]

SearchMode = Literal["hybrid", "dense", "bm25"]
SEARCH_MODES: tuple[SearchMode, ...] = ("hybrid", "dense", "bm25")


@dataclass(frozen=True)
class SearchConfig:
    """Fusion settings. The defaults are the ones the retrieval eval was tuned with."""

    rrf_k: int = 60
    dense_weight: float = 1.0
    bm25_weight: float = 1.0
    candidates: int = 60
    """Chunks each retriever contributes before fusion (at least 8 x k are always fetched)."""

    def __post_init__(self) -> None:
        if self.rrf_k < 1 or self.candidates < 1 or self.dense_weight < 0 or self.bm25_weight < 0:
            raise ValueError("rrf_k and candidates must be >= 1, weights >= 0")


@dataclass(frozen=True)
class Hit:
    """One search result: a document (or chunk), its best chunk, and why it ranked."""

    id: str
    doc_id: str
    kind: str
    title: str
    section: str
    text: str
    score: float
    dense_rank: int | None = None
    dense_score: float | None = None
    bm25_rank: int | None = None
    bm25_score: float | None = None
    metadata: Mapping[str, MetadataValue] = field(default_factory=dict)

    @property
    def themes(self) -> list[str]:
        raw = str(self.metadata.get("themes", ""))
        return [t for t in raw.split(",") if t]

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["metadata"] = dict(self.metadata)
        return out


@dataclass(frozen=True)
class Ranked:
    """One retriever's answer: chunk ids best first, with their scores."""

    ids: Sequence[str]
    scores: Sequence[float]


def _doc_ranking(ranked: Ranked, doc_of: Mapping[str, str]) -> dict[str, tuple[int, float]]:
    """doc id -> (1-based rank of its best chunk among documents, that chunk's score)."""
    out: dict[str, tuple[int, float]] = {}
    for chunk_id, score in zip(ranked.ids, ranked.scores, strict=True):
        doc = doc_of.get(chunk_id)
        if doc is not None and doc not in out:
            out[doc] = (len(out) + 1, score)
    return out


def _chunk_ranking(ranked: Ranked, doc_of: Mapping[str, str]) -> dict[str, tuple[int, float]]:
    out: dict[str, tuple[int, float]] = {}
    for chunk_id, score in zip(ranked.ids, ranked.scores, strict=True):
        if chunk_id in doc_of and chunk_id not in out:
            out[chunk_id] = (len(out) + 1, score)
    return out


def fuse(
    dense: Ranked | None,
    bm25: Ranked | None,
    *,
    doc_of: Mapping[str, str],
    k: int,
    config: SearchConfig,
    group_by_document: bool = True,
) -> list[tuple[str, str, float, tuple[int, float] | None, tuple[int, float] | None]]:
    """Fuse two rankings. Returns (chunk id, doc id, fused score, dense (rank, score) or None,
    bm25 (rank, score) or None) for the top ``k``, best first; ties break on the better single
    rank, then on the id, so results are deterministic."""
    empty = Ranked((), ())
    dense, bm25 = dense or empty, bm25 or empty
    chunk_dense = _chunk_ranking(dense, doc_of)
    chunk_bm25 = _chunk_ranking(bm25, doc_of)

    def rrf(d: tuple[int, float] | None, b: tuple[int, float] | None) -> float:
        score = 0.0
        if d is not None:
            score += config.dense_weight / (config.rrf_k + d[0])
        if b is not None:
            score += config.bm25_weight / (config.rrf_k + b[0])
        return score

    chunk_scores = {
        c: rrf(chunk_dense.get(c), chunk_bm25.get(c))
        for c in chunk_dense.keys() | chunk_bm25.keys()
    }

    def best_rank(d: tuple[int, float] | None, b: tuple[int, float] | None) -> int:
        return min(x[0] for x in (d, b, (10**9, 0.0)) if x is not None)

    if not group_by_document:
        order = sorted(
            chunk_scores,
            key=lambda c: (-chunk_scores[c], best_rank(chunk_dense.get(c), chunk_bm25.get(c)), c),
        )
        return [
            (c, doc_of[c], chunk_scores[c], chunk_dense.get(c), chunk_bm25.get(c))
            for c in order[:k]
        ]

    doc_dense = _doc_ranking(dense, doc_of)
    doc_bm25 = _doc_ranking(bm25, doc_of)
    best_chunk: dict[str, str] = {}
    for chunk_id in sorted(chunk_scores, key=lambda c: (-chunk_scores[c], c)):
        best_chunk.setdefault(doc_of[chunk_id], chunk_id)
    doc_scores = {d: rrf(doc_dense.get(d), doc_bm25.get(d)) for d in best_chunk}
    order = sorted(
        doc_scores, key=lambda d: (-doc_scores[d], best_rank(doc_dense.get(d), doc_bm25.get(d)), d)
    )
    return [(best_chunk[d], d, doc_scores[d], doc_dense.get(d), doc_bm25.get(d)) for d in order[:k]]
