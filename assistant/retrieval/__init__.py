"""Retrieval: the corpus index (chromadb + BM25) and hybrid search for the planner and chat.

Public names are imported lazily, so ``from assistant.retrieval.embeddings import ...`` (the
offline coder's path) does not pay for chromadb.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .._lazy import lazy_exports

if TYPE_CHECKING:
    from .chunking import Chunk
    from .embeddings import Embedder, available_providers, get_embedder
    from .evaluate import RetrievalEvalReport, evaluate_retrieval
    from .index import RefreshReport
    from .retriever import IndexStatus, Retriever, get_retriever
    from .search import Hit, SearchConfig

__all__ = [
    "Chunk",
    "Embedder",
    "Hit",
    "IndexStatus",
    "RefreshReport",
    "RetrievalEvalReport",
    "Retriever",
    "SearchConfig",
    "available_providers",
    "evaluate_retrieval",
    "get_embedder",
    "get_retriever",
]

_WHERE = {
    "Chunk": "chunking",
    "Embedder": "embeddings",
    "available_providers": "embeddings",
    "get_embedder": "embeddings",
    "RetrievalEvalReport": "evaluate",
    "evaluate_retrieval": "evaluate",
    "RefreshReport": "index",
    "IndexStatus": "retriever",
    "Retriever": "retriever",
    "get_retriever": "retriever",
    "Hit": "search",
    "SearchConfig": "search",
}


__getattr__, __dir__ = lazy_exports(__name__, _WHERE, __all__)
