"""``Retriever``: the one object the planner, the chat and the CLI use. Open once, reuse.

retriever = Retriever()            # embedded index under ASSISTANT_HOME, or the server
retriever.ensure_index()           # builds on first use, refreshes when the corpus changed
hits = retriever.search("boundary-spanning roles between nurses and social workers")
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from ..domain import THEMES
from ..errors import BadInputError, StoreUnavailableError, UnknownIdError
from ..settings import Settings, get_settings
from .chunking import CHUNK_KINDS, MAX_CHUNK_CHARS, Chunk, MetadataValue, country_key
from .embeddings import Embedder, Vectors, get_embedder
from .index import (
    IndexPaths,
    IndexState,
    ProgressCallback,
    RefreshReport,
    corpus_fingerprint,
    refresh_index,
    stderr_progress,
)
from .lexical import LexicalIndex
from .search import SEARCH_MODES, Hit, Ranked, SearchConfig, SearchMode, fuse
from .store import ChromaStore, VectorStore, collection_name, wipe_embedded

__all__ = ["IndexStatus", "Retriever", "get_retriever"]

log = logging.getLogger(__name__)
MAX_K = 100


@dataclass(frozen=True)
class IndexStatus:
    mode: str
    location: str
    collection: str
    embedder: str
    model: str
    dense_chunks: int
    lexical_chunks: int
    built: bool
    up_to_date: bool
    refreshed_at: str | None
    corpus_paths: list[str] = field(default_factory=list)
    other_collections: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class Retriever:
    """Hybrid retrieval over the corpus index. Thread-safe; one per process is enough.

    Everything is injectable for tests: ``settings``, ``embedder`` (an ``Embedder``),
    ``store`` (a ``VectorStore``), ``corpus_paths`` and the fusion ``config``.
    """

    def __init__(
        self,
        *,
        settings: Settings | None = None,
        embedder: Embedder | str | None = None,
        store: VectorStore | None = None,
        corpus_paths: Sequence[Path] | None = None,
        config: SearchConfig | None = None,
        max_chars: int = MAX_CHUNK_CHARS,
    ) -> None:
        self.settings = settings or get_settings()
        self.embedder = (
            embedder
            if isinstance(embedder, Embedder)
            else get_embedder(embedder or self.settings.embedding)
        )
        self.corpus_paths = [
            Path(p)
            for p in (corpus_paths if corpus_paths is not None else self.settings.corpus_paths)
        ]
        self.config = config or SearchConfig()
        self.max_chars = max_chars
        self._store = store
        self._owns_store = store is None
        self._lexical: LexicalIndex | None = None
        self._lock = threading.RLock()
        self._query_cache: dict[str, Vectors] = {}
        self._cache_lock = threading.Lock()
        self.paths = IndexPaths(
            Path(self.settings.home) / "index",
            collection_name(self.embedder) if store is None else store.name,
        )

    # ------------------------------------------------------------------ lifecycle

    @property
    def store(self) -> VectorStore:
        with self._lock:
            if self._store is None:
                self._store = ChromaStore.open(self.settings, self.embedder)
            return self._store

    def close(self) -> None:
        with self._lock:
            if self._store is not None and self._owns_store:
                self._store.close()
                self._store = None
            self._lexical = None

    def __enter__(self) -> Retriever:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------------ indexing

    def ensure_index(
        self, *, progress: ProgressCallback | None = None, chunks: Sequence[Chunk] | None = None
    ) -> RefreshReport:
        """Build the index on first use, refresh it when the corpus changed, else just load it."""
        return self.refresh(progress=progress, chunks=chunks)

    def refresh(
        self,
        *,
        rebuild: bool = False,
        progress: ProgressCallback | None = None,
        chunks: Sequence[Chunk] | None = None,
    ) -> RefreshReport:
        with self._lock:
            if rebuild and self._owns_store:
                self._reopen_if_broken()
            with stderr_progress() if progress is None else _given(progress) as callback:
                report, lexical = refresh_index(
                    self.store,
                    self.embedder,
                    self.paths,
                    self.corpus_paths,
                    rebuild=rebuild,
                    progress=callback,
                    max_chars=self.max_chars,
                    chunks=chunks,
                )
            self._lexical = lexical
            if report.changed:
                log.info("%s", report.summary())
            return report

    def rebuild(self, *, progress: ProgressCallback | None = None) -> RefreshReport:
        return self.refresh(rebuild=True, progress=progress)

    def _reopen_if_broken(self) -> None:
        """For --rebuild: an embedded index that cannot even be opened is wiped and recreated."""
        if self.settings.chroma_url:
            return
        try:
            self.store.count()
        except StoreUnavailableError:
            if self._store is not None:
                self._store.close()
                self._store = None
            chroma_dir = Path(self.settings.home) / "index" / "chroma"
            log.warning("Removing unreadable index at %s", chroma_dir)
            wipe_embedded(chroma_dir, self.settings.chroma_timeout)

    def _ready_lexical(self) -> LexicalIndex:
        if self._lexical is None:
            self.ensure_index()
        assert self._lexical is not None
        return self._lexical

    def status(self) -> IndexStatus:
        """What is indexed where, and whether it matches the corpus on disk. Never builds."""
        with self._lock:
            state = IndexState.load(self.paths.state)
            lexical = self._lexical or LexicalIndex.load(self.paths.lexical)
            dense = self.store.count()
            fingerprint = corpus_fingerprint(
                self.corpus_paths, embedder=self.embedder, max_chars=self.max_chars
            )
            return IndexStatus(
                mode=self.store.mode,
                location=self.store.location,
                collection=self.store.name,
                embedder=self.embedder.id,
                model=self.embedder.model_name,
                dense_chunks=dense,
                lexical_chunks=len(lexical) if lexical is not None else 0,
                built=state is not None and dense > 0,
                up_to_date=state is not None
                and state.fingerprint.split("-")[0] == fingerprint
                and lexical is not None
                and dense == len(lexical),
                refreshed_at=state.refreshed_at if state is not None else None,
                corpus_paths=[str(p) for p in self.corpus_paths],
                other_collections=self.store.other_collections(),
            )

    # ------------------------------------------------------------------ search

    def embed_query(self, query: str) -> Vectors:
        """The query's vector; the last 512 are cached (the planner repeats its queries)."""
        vector = self._query_cache.get(query)
        if vector is None:
            vector = self.embedder.embed([query])[0]
            with self._cache_lock:
                if len(self._query_cache) >= 512:
                    self._query_cache.pop(next(iter(self._query_cache)), None)
                self._query_cache[query] = vector
        return vector

    def search(
        self,
        query: str,
        k: int = 8,
        kind: str | None = None,
        theme: str | None = None,
        country: str | None = None,
        *,
        mode: SearchMode = "hybrid",
        group_by_document: bool = True,
        config: SearchConfig | None = None,
    ) -> list[Hit]:
        """The top ``k`` documents (or chunks) for ``query``, filtered by kind, theme and country."""
        query = " ".join(query.split())
        if not query:
            raise BadInputError("The search query is empty.", hint="Say what you are looking for.")
        if not 1 <= k <= MAX_K:
            raise BadInputError(f"k must be between 1 and {MAX_K}, not {k}.")
        if mode not in SEARCH_MODES:
            raise UnknownIdError("search mode", mode, SEARCH_MODES)
        config = config or self.config
        with self._lock:
            lexical = self._ready_lexical()
            store = self.store
        # Searching needs no lock: Chroma, ONNX and the BM25 arrays are thread-safe.
        where = self._where(lexical, kind, theme, country)
        n = min(len(lexical), max(config.candidates, 8 * k))
        if n == 0:
            raise StoreUnavailableError(
                "The index is empty.", hint="Run `assistant index --rebuild`."
            )
        mask = lexical.mask(where)
        if mask is not None and not mask.any():
            filters = ", ".join(
                f"{name}={value}"
                for name, value in (("kind", kind), ("theme", theme), ("country", country))
                if value
            )
            raise BadInputError(
                f"No indexed documents match {filters}.", hint="Drop or change a filter."
            )
        dense = bm25 = None
        if mode in ("hybrid", "dense"):
            pairs = store.query(self.embed_query(query), n, where)
            dense = Ranked([p[0] for p in pairs], [p[1] for p in pairs])
        if mode in ("hybrid", "bm25"):
            found = lexical.search(query, n, mask)
            bm25 = Ranked([lexical.chunks[i].id for i, _ in found], [s for _, s in found])
        fused = fuse(
            dense,
            bm25,
            doc_of=lexical.doc_of,
            k=k,
            config=config,
            group_by_document=group_by_document,
        )
        hits = []
        for chunk_id, _doc, score, d, b in fused:
            chunk = lexical.chunks[lexical.position[chunk_id]]
            meta = chunk.metadata
            hits.append(
                Hit(
                    id=chunk_id,
                    doc_id=str(meta["doc_id"]),
                    kind=str(meta["kind"]),
                    title=str(meta["title"]),
                    section=str(meta.get("section", "")),
                    text=chunk.text,
                    score=round(score, 6),
                    dense_rank=d[0] if d else None,
                    dense_score=round(d[1], 4) if d else None,
                    bm25_rank=b[0] if b else None,
                    bm25_score=round(b[1], 4) if b else None,
                    metadata=meta,
                )
            )
        return hits

    @staticmethod
    def _where(
        lexical: LexicalIndex, kind: str | None, theme: str | None, country: str | None
    ) -> dict[str, MetadataValue]:
        where: dict[str, MetadataValue] = {}
        if kind is not None:
            if kind not in CHUNK_KINDS:
                raise UnknownIdError("kind", kind, CHUNK_KINDS)
            where["kind"] = kind
        if theme is not None:
            if theme not in THEMES:
                raise UnknownIdError("theme", theme, THEMES)
            where[f"theme_{theme}"] = True
        if country is not None:
            known = {
                str(c.metadata["country_key"]): str(c.metadata["country"])
                for c in lexical.chunks
                if "country_key" in c.metadata
            }
            key = country_key(country)
            if key not in known:
                raise UnknownIdError("country", country, sorted(known))
            where["country_key"] = key
        return where


class _given:
    """A context manager that just yields the callback it was given."""

    def __init__(self, callback: ProgressCallback) -> None:
        self.callback = callback

    def __enter__(self) -> ProgressCallback:
        return self.callback

    def __exit__(self, *exc: object) -> None:
        return None


_DEFAULT: tuple[tuple[str, ...], Retriever] | None = None
_DEFAULT_LOCK = threading.Lock()


def get_retriever() -> Retriever:
    """The process-wide Retriever for the current settings, opened lazily and reused.

    When the settings that locate the index change (home, Chroma URL, embedding, user corpus;
    tests do this), the previous one is closed and a new one opened."""
    global _DEFAULT
    settings = get_settings()
    key = (
        str(settings.home),
        str(settings.chroma_url),
        settings.embedding,
        str(settings.corpus_path),
    )
    with _DEFAULT_LOCK:
        if _DEFAULT is not None and _DEFAULT[0] != key:
            _DEFAULT[1].close()
            _DEFAULT = None
        if _DEFAULT is None:
            _DEFAULT = (key, Retriever(settings=settings))
        return _DEFAULT[1]
