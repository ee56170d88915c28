"""BM25 over the same chunks as the dense index (bm25s), persisted beside it.

The lexical index also holds each chunk's text and metadata, so search results are built
from it without a second round trip to Chroma.
"""

from __future__ import annotations

import functools
import json
import logging
import re
import shutil
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from ..errors import StoreUnavailableError
from .chunking import Chunk, MetadataValue

__all__ = ["LexicalIndex", "StoredChunk", "stem", "tokenize"]

FORMAT_VERSION = 1
_STOPWORDS = frozenset(
    [
        "a",
        "an",
        "and",
        "are",
        "as",
        "at",
        "be",
        "but",
        "by",
        "for",
        "if",
        "in",
        "into",
        "is",
        "it",
        "no",
        "not",
        "of",
        "on",
        "or",
        "such",
        "that",
        "the",
        "their",
        "then",
        "there",
        "these",
        "they",
        "this",
        "to",
        "was",
        "will",
        "with",
        "we",
        "our",
        "us",
        "its",
        "from",
        "has",
        "have",
        "had",
        "been",
        "were",
        "which",
        "who",
        "whom",
        "what",
        "when",
        "where",
        "how",
        "can",
        "could",
        "would",
        "should",
        "may",
        "might",
        "do",
        "does",
        "did",
        "so",
        "than",
        "too",
        "very",
        "also",
        "each",
        "any",
        "all",
    ]
)
_WORD = re.compile(r"[a-z0-9]+(?:[-'][a-z0-9]+)*")
# (suffix, replacement), longest first; a match with too short a stem is skipped.
_SUFFIXES: tuple[tuple[str, str], ...] = (
    ("izations", "iz"),
    ("ization", "iz"),
    ("ational", "at"),
    ("ations", "at"),
    ("ation", "at"),
    ("ators", "at"),
    ("ator", "at"),
    ("nesses", ""),
    ("ness", ""),
    ("ments", ""),
    ("ment", ""),
    ("ities", ""),
    ("ity", ""),
    ("sses", "ss"),
    ("ss", "ss"),
    ("ings", ""),
    ("ing", ""),
    ("ies", "y"),
    ("ied", "y"),
    ("ers", ""),
    ("er", ""),
    ("ed", ""),
    ("es", ""),
    ("s", ""),
    ("ly", ""),
)
_UNDOUBLE = frozenset("bdgmnprt")


@functools.lru_cache(maxsize=1 << 16)
def stem(word: str) -> str:
    """A small, deterministic English suffix stemmer: nurse/nurses/nursing -> nurs,
    coordinator/coordination/co-ordinating -> coordinat. Good enough for ranking."""
    if len(word) <= 3 or word.isdigit():
        return word
    for suffix, replacement in _SUFFIXES:
        if word.endswith(suffix):
            root = word[: -len(suffix)]
            if len(root) < 3 or (suffix == "ly" and root.endswith("i")):
                continue
            word = root + replacement
            if (
                suffix in ("ing", "ings", "ed", "er", "ers")
                and len(word) > 3
                and word[-1] == word[-2]
                and word[-1] in _UNDOUBLE
            ):
                word = word[:-1]
            break
    if len(word) > 3 and word.endswith("e"):
        word = word[:-1]
    return word


def tokenize(text: str) -> list[str]:
    """Lowercased, stemmed word tokens without stop words; hyphenated words also count joined
    (``co-ordinator`` matches ``coordinator``)."""
    out: list[str] = []
    for match in _WORD.finditer(text.lower()):
        word = match.group(0).replace("'", "")
        parts = word.split("-")
        if len(parts) > 1:
            out.append(stem("".join(parts)))
            if parts[0] == "co":
                continue
        out.extend(stem(p) for p in parts if len(p) > 1 and p not in _STOPWORDS)
    return out


@dataclass(frozen=True)
class StoredChunk:
    id: str
    text: str
    metadata: dict[str, MetadataValue]
    content_hash: str


class LexicalIndex:
    """BM25 over stored chunks, with metadata filters applied as a mask."""

    def __init__(self, chunks: Sequence[StoredChunk], model: Any) -> None:
        self.chunks = list(chunks)
        self.position = {c.id: i for i, c in enumerate(self.chunks)}
        self.doc_of = {c.id: str(c.metadata["doc_id"]) for c in self.chunks}
        self._model = model

    @classmethod
    def build(cls, chunks: Iterable[Chunk]) -> LexicalIndex:
        stored = [StoredChunk(c.id, c.text, c.metadata, c.content_hash) for c in chunks]
        return cls(stored, _bm25([tokenize(c.text) for c in stored]))

    def __len__(self) -> int:
        return len(self.chunks)

    def hashes(self) -> dict[str, str]:
        return {c.id: c.content_hash for c in self.chunks}

    def mask(self, where: dict[str, MetadataValue] | None) -> NDArray[np.bool_] | None:
        if not where:
            return None
        return np.array(
            [all(c.metadata.get(k) == v for k, v in where.items()) for c in self.chunks], dtype=bool
        )

    def search(
        self, query: str, n: int, mask: NDArray[np.bool_] | None = None
    ) -> list[tuple[int, float]]:
        """(chunk position, score) best first; chunks with no matching term are left out."""
        if not self.chunks or n <= 0:
            return []
        tokens = tokenize(query)
        if not tokens:
            return []
        scores = np.asarray(self._model.get_scores(tokens), dtype=np.float32)
        if mask is not None:
            scores = np.where(mask, scores, 0.0)
        candidates = np.flatnonzero(scores > 0)
        if candidates.size == 0:
            return []
        top = candidates[np.argsort(-scores[candidates], kind="stable")[:n]]
        return [(int(i), float(scores[i])) for i in top]

    # ------------------------------------------------------------------ persistence

    def save(self, directory: Path) -> None:
        """Write atomically enough: into a sibling temp dir, then swap it in."""
        tmp = directory.with_name(directory.name + ".tmp")
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
        self._model.save(str(tmp / "bm25"), show_progress=False)
        records = [
            {"id": c.id, "text": c.text, "metadata": c.metadata, "hash": c.content_hash}
            for c in self.chunks
        ]
        (tmp / "chunks.json").write_text(
            json.dumps({"version": FORMAT_VERSION, "chunks": records}, ensure_ascii=False),
            encoding="utf-8",
        )
        old = directory.with_name(directory.name + ".old")
        shutil.rmtree(old, ignore_errors=True)
        if directory.exists():
            directory.rename(old)
        tmp.rename(directory)
        shutil.rmtree(old, ignore_errors=True)

    @classmethod
    def load(cls, directory: Path) -> LexicalIndex | None:
        """The saved index, or None when there is none (or it is from an older format)."""
        path = directory / "chunks.json"
        if not path.is_file():
            return None
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            if data.get("version") != FORMAT_VERSION:
                return None
            chunks = [
                StoredChunk(r["id"], r["text"], r["metadata"], r["hash"]) for r in data["chunks"]
            ]
            model = _import_bm25s().BM25.load(str(directory / "bm25"), show_progress=False)
        except Exception as exc:
            raise StoreUnavailableError(
                f"The lexical index at {directory} is unreadable: {exc}",
                hint="Rebuild it: assistant index --rebuild.",
            ) from exc
        return cls(chunks, model)


def _import_bm25s() -> Any:
    import bm25s

    # bm25s logs each build at DEBUG through its own handler; keep stderr for what matters.
    logging.getLogger("bm25s").setLevel(logging.WARNING)
    return bm25s


def _bm25(corpus_tokens: list[list[str]]) -> Any:
    bm25s = _import_bm25s()

    model = bm25s.BM25()
    if corpus_tokens:
        # bm25s cannot index an empty document; a placeholder token keeps positions aligned.
        model.index([t or ["\x00"] for t in corpus_tokens], show_progress=False)
    return model
