"""The chromadb adapter for our embedders, registered so a reopened collection finds it.

A process that opens an existing collection must import this module first (``store`` does),
or Chroma answers text queries with "Embedding function ... not found".
"""

from __future__ import annotations

from typing import Any

from chromadb.api.types import Documents, EmbeddingFunction, Embeddings, Space
from chromadb.utils.embedding_functions import register_embedding_function

from .embeddings import Embedder, get_embedder

__all__ = ["AdvisorEmbeddingFunction"]


@register_embedding_function
class AdvisorEmbeddingFunction(EmbeddingFunction[Documents]):
    """Wraps an ``Embedder``; its config is just the embedder spec, e.g. ``onnx-minilm``."""

    def __init__(self, spec: str | None = None, embedder: Embedder | None = None) -> None:
        self.embedder = embedder if embedder is not None else get_embedder(spec)

    def __call__(self, input: Documents) -> Embeddings:
        return list(self.embedder.embed(list(input)))

    @staticmethod
    def name() -> str:
        return "transformation-advisor"

    def get_config(self) -> dict[str, Any]:
        return {"spec": self.embedder.id, "model_name": self.embedder.model_name}

    @staticmethod
    def build_from_config(config: dict[str, Any]) -> AdvisorEmbeddingFunction:
        return AdvisorEmbeddingFunction(spec=str(config["spec"]))

    @staticmethod
    def validate_config(config: dict[str, Any]) -> None:
        if not isinstance(config.get("spec"), str):
            raise ValueError("the transformation-advisor embedding config needs a 'spec' string")

    def is_legacy(self) -> bool:
        # chromadb's default check builds a second instance from the config; ours is never legacy.
        return False

    def default_space(self) -> Space:
        return "cosine"

    def supported_spaces(self) -> list[Space]:
        return ["cosine", "ip", "l2"]
