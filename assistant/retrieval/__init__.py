"""Retrieval: the corpus index (chromadb + BM25) and hybrid search for the planner and chat.

Public names are imported lazily, so ``from assistant.retrieval.embeddings import ...`` (the
offline coder's path) does not pay for chromadb.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

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


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f".{module}", __name__), name)


def __dir__() -> list[str]:
    return sorted(__all__)
