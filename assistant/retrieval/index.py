"""Build and refresh the index: chunk the corpus, embed what changed, keep BM25 beside it.

The refresh is incremental by content hash: each chunk's hash is stored in its Chroma
metadata, so a refresh adds new chunks, re-embeds changed ones, deletes vanished ones and
leaves the rest alone. A fingerprint of the corpus files' bytes lets an unchanged corpus
skip even the corpus load.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ..errors import StoreUnavailableError
from .chunking import MAX_CHUNK_CHARS, Chunk, chunk_corpus
from .embeddings import Embedder
from .lexical import LexicalIndex
from .store import HASH_KEY, VectorStore

__all__ = [
    "IndexPaths",
    "IndexState",
    "ProgressCallback",
    "RefreshReport",
    "corpus_fingerprint",
    "refresh_index",
    "stderr_progress",
]

ProgressCallback = Callable[[int, int], None]
"""Called with (chunks embedded so far, chunks to embed)."""

CHUNKING_VERSION = 1
EMBED_BATCH = 64
_CORPUS_SUFFIXES = (".yaml", ".yml", ".md")


@dataclass(frozen=True)
class RefreshReport:
    """What one refresh did. ``skipped`` means the corpus had not changed since the last one."""

    added: int = 0
    updated: int = 0
    deleted: int = 0
    unchanged: int = 0
    chunks: int = 0
    seconds: float = 0.0
    embed_seconds: float = 0.0
    """Of ``seconds``, the time spent embedding and writing vectors (the rest is loading the
    corpus, diffing, and building the lexical index)."""
    rebuilt: bool = False
    skipped: bool = False

    @property
    def changed(self) -> bool:
        return bool(self.added or self.updated or self.deleted)

    @property
    def embedded_per_second(self) -> float:
        """Chunks embedded and stored per second of embedding and storing."""
        n = self.added + self.updated
        return n / self.embed_seconds if self.embed_seconds > 0 else 0.0

    def summary(self) -> str:
        if self.skipped:
            return f"Index up to date ({self.chunks} chunks)."
        verb = "Rebuilt" if self.rebuilt else "Refreshed"
        return (
            f"{verb} index: {self.added} added, {self.updated} updated, {self.deleted} deleted, "
            f"{self.unchanged} unchanged ({self.chunks} chunks, {self.seconds:.1f} s)."
        )

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class IndexState:
    """Written after each successful refresh, beside the lexical index."""

    fingerprint: str
    collection: str
    embedder: str
    chunks: int
    refreshed_at: str
    corpus_paths: list[str] = field(default_factory=list)

    @classmethod
    def load(cls, path: Path) -> IndexState | None:
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            return cls(**data)
        except (OSError, ValueError, TypeError):
            return None

    def save(self, path: Path) -> None:
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(asdict(self), indent=2), encoding="utf-8")
        tmp.replace(path)


@dataclass(frozen=True)
class IndexPaths:
    """Where the local parts of one collection's index live (under ``<home>/index``)."""

    root: Path
    collection: str

    @property
    def lexical(self) -> Path:
        return self.root / "lexical" / self.collection

    @property
    def state(self) -> Path:
        return self.root / "lexical" / f"{self.collection}.state.json"


def corpus_files(paths: Sequence[Path]) -> list[Path]:
    files: list[Path] = []
    for root in paths:
        root = Path(root)
        if root.is_file():
            files.append(root)
        elif root.is_dir():
            files.extend(
                sorted(p for p in root.rglob("*") if p.is_file() and p.suffix in _CORPUS_SUFFIXES)
            )
    return files


def corpus_fingerprint(
    paths: Sequence[Path], *, embedder: Embedder | None = None, max_chars: int = MAX_CHUNK_CHARS
) -> str:
    """A hash of every corpus file's path and bytes, of the chunking settings and of the
    embedding model (its provider and its weights' name)."""
    model = f"{embedder.id}|{embedder.model_name}" if embedder is not None else ""
    h = hashlib.sha256(f"v{CHUNKING_VERSION}|{max_chars}|{model}".encode())
    for root in paths:
        h.update(f"\0root:{Path(root).resolve()}".encode())
        for f in corpus_files([root]):
            h.update(f"\0{f.relative_to(root) if f != root else f.name}\0".encode())
            try:
                h.update(f.read_bytes())
            except OSError:
                h.update(b"<unreadable>")
    return h.hexdigest()[:24]


def _load_chunks(corpus_paths: Sequence[Path], max_chars: int) -> list[Chunk]:
    from ..knowledge import load_corpus

    return chunk_corpus(load_corpus(list(corpus_paths)), max_chars=max_chars)


def refresh_index(
    store: VectorStore,
    embedder: Embedder,
    paths: IndexPaths,
    corpus_paths: Sequence[Path],
    *,
    rebuild: bool = False,
    progress: ProgressCallback | None = None,
    max_chars: int = MAX_CHUNK_CHARS,
    chunks: Sequence[Chunk] | None = None,
) -> tuple[RefreshReport, LexicalIndex]:
    """Bring ``store`` and the lexical index in line with the corpus; return what changed.

    ``chunks`` bypasses the corpus loader (tests and benchmarks)."""
    started = time.perf_counter()
    fingerprint = corpus_fingerprint(corpus_paths, embedder=embedder, max_chars=max_chars)
    if chunks is not None:
        fingerprint += (
            "-" + hashlib.sha256("".join(c.content_hash for c in chunks).encode()).hexdigest()[:8]
        )

    def up_to_date() -> tuple[RefreshReport, LexicalIndex] | None:
        state = IndexState.load(paths.state)
        if state is None or state.fingerprint != fingerprint:
            return None
        lexical = LexicalIndex.load(paths.lexical)
        if lexical is None or store.count() != len(lexical):
            return None
        report = RefreshReport(
            chunks=len(lexical),
            unchanged=len(lexical),
            skipped=True,
            seconds=time.perf_counter() - started,
        )
        return report, lexical

    if not rebuild and (done := up_to_date()) is not None:
        return done
    # Load the embedding model while the corpus is read and the store prepared.
    prepare = getattr(embedder, "prepare", None)
    if callable(prepare):
        threading.Thread(target=prepare, name="embedder-prepare", daemon=True).start()
    with store.writing():
        # Another process may have refreshed the index while this one waited for the lock.
        if not rebuild and (done := up_to_date()) is not None:
            return done
        all_chunks = list(chunks) if chunks is not None else _load_chunks(corpus_paths, max_chars)
        with store.exclusive():
            if rebuild:
                store.drop()
            stored = store.hashes()
            wanted = {c.id: c for c in all_chunks}
            # Shortest first: each embedding call then pads its texts to a similar length
            # (unsorted groups of mixed lengths cost a third more time on the shipped corpus).
            to_embed = sorted(
                (c for c in all_chunks if stored.get(c.id) != c.content_hash),
                key=lambda c: len(c.text),
            )
            added = sum(1 for c in to_embed if c.id not in stored)
            to_delete = sorted(set(stored) - set(wanted))
            total = len(to_embed)
            if progress is not None:
                progress(0, total)
            embed_started = time.perf_counter()
            # The lexical index and each batch's write to the store run beside the embedding
            # of the next batch (one writer thread, so writes stay in order).
            with ThreadPoolExecutor(max_workers=1, thread_name_prefix="index-write") as writer:
                building = writer.submit(LexicalIndex.build, all_chunks)
                writes = []
                for start in range(0, total, EMBED_BATCH):
                    batch = to_embed[start : start + EMBED_BATCH]
                    vectors = embedder.embed([c.text for c in batch])
                    writes.append(
                        writer.submit(
                            store.upsert,
                            [c.id for c in batch],
                            vectors,
                            [c.text for c in batch],
                            [{**c.metadata, HASH_KEY: c.content_hash} for c in batch],
                        )
                    )
                    if progress is not None:
                        progress(min(start + len(batch), total), total)
                for write in writes:
                    write.result()  # a failed write raises here, before anything is recorded
                lexical = building.result()
            store.delete(to_delete)
            embed_seconds = time.perf_counter() - embed_started
            try:
                paths.lexical.parent.mkdir(parents=True, exist_ok=True)
                lexical.save(paths.lexical)
                IndexState(
                    fingerprint=fingerprint,
                    collection=store.name,
                    embedder=embedder.id,
                    chunks=len(all_chunks),
                    refreshed_at=datetime.now(UTC).isoformat(timespec="seconds"),
                    corpus_paths=[str(p) for p in corpus_paths],
                ).save(paths.state)
            except OSError as exc:
                raise StoreUnavailableError(
                    f"Cannot write the lexical index under {paths.root}: {exc}",
                    hint="Check that ASSISTANT_HOME is writable and has free space.",
                ) from exc
    return RefreshReport(
        added=added,
        updated=len(to_embed) - added,
        deleted=len(to_delete),
        unchanged=len(all_chunks) - len(to_embed),
        chunks=len(all_chunks),
        seconds=time.perf_counter() - started,
        embed_seconds=embed_seconds,
        rebuilt=rebuild,
    ), lexical


@contextlib.contextmanager
def stderr_progress(description: str = "Indexing corpus") -> Iterator[ProgressCallback | None]:
    """A progress bar on stderr while embedding, when stderr is a terminal; else nothing."""
    if not sys.stderr.isatty():
        yield None
        return
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=Console(stderr=True),
        transient=True,
    ) as bar:
        task = bar.add_task(description, total=None)

        def update(done: int, total: int) -> None:
            bar.update(task, completed=done, total=total)

        yield update
