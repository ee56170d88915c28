"""The vector store seam, and its chromadb implementation.

    VectorStore (protocol)   what the index and search need: hashes, upsert, delete, query
    ChromaStore              chromadb PersistentClient under ``<home>/index/chroma`` (default),
                             or HttpClient against ``ASSISTANT_CHROMA_URL``

Chroma's embedded store is thread-safe but not process-safe, so embedded mode holds a
file lock beside the index: shared while a process has the index open, exclusive while it
writes. A second process that wants to write while another has the index open gets a clear
error after ``chroma_timeout`` seconds instead of a hang. Server mode needs no lock.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import hashlib
import os
import re
import shutil
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar, Literal, Protocol
from urllib.parse import urlparse

import numpy as np

from ..errors import ConfigError, StoreUnavailableError
from ..settings import Settings
from .chunking import MetadataValue
from .embeddings import Embedder, Vectors

__all__ = [
    "ChromaStore",
    "StoreMode",
    "VectorStore",
    "chroma_client_settings",
    "collection_name",
    "open_store",
    "where_clause",
    "wipe_embedded",
]

StoreMode = Literal["embedded", "server"]
COLLECTION_PREFIX = "corpus"
HASH_KEY = "hash"
_SERVER_HINT = (
    "Start it (chroma run --path DIR --host 127.0.0.1 --port PORT) or unset ASSISTANT_CHROMA_URL "
    "to use the embedded index."
)
_REBUILD_HINT = (
    "Run `assistant index --rebuild`, or delete the directory and run `assistant index`."
)


class VectorStore(Protocol):
    """The few operations retrieval needs from a vector database."""

    @property
    def name(self) -> str: ...

    @property
    def mode(self) -> StoreMode: ...

    @property
    def location(self) -> str: ...

    def count(self) -> int: ...

    def hashes(self) -> dict[str, str]:
        """chunk id -> content hash of everything stored."""
        ...

    def upsert(
        self,
        ids: Sequence[str],
        vectors: Vectors,
        documents: Sequence[str],
        metadatas: Sequence[Mapping[str, MetadataValue]],
    ) -> None: ...

    def delete(self, ids: Sequence[str]) -> None: ...

    def query(
        self, vector: Vectors, n: int, where: Mapping[str, MetadataValue] | None = None
    ) -> list[tuple[str, float]]:
        """(chunk id, cosine similarity), best first."""
        ...

    def drop(self) -> None:
        """Remove every vector of this collection."""
        ...

    def writing(self) -> contextlib.AbstractContextManager[None]:
        """Be the only process refreshing this index (others wait); reconnects to fresh data."""
        ...

    def exclusive(self) -> contextlib.AbstractContextManager[None]:
        """Sole access while changing vectors (inside ``writing``)."""
        ...

    def other_collections(self) -> list[str]: ...

    def close(self) -> None: ...


def collection_name(embedder: Embedder) -> str:
    """``corpus__<provider>__<model>``, e.g. ``corpus__onnx-minilm__all-minilm-l6-v2-qattn-int8-v3``;
    valid for Chroma (3-512 of [a-zA-Z0-9._-], alphanumeric at both ends)."""
    provider = embedder.id.split(":", 1)[0]
    raw = f"{COLLECTION_PREFIX}__{provider}__{embedder.model_name}".lower()
    name = re.sub(r"[^a-z0-9._-]+", "-", raw).strip("-._")
    name = re.sub(r"\.\.+", ".", name)
    if name != raw or len(name) > 200:
        # Sanitising may merge two distinct model names: keep them apart with a short hash.
        name = f"{name[:180].rstrip('-._')}-{hashlib.sha256(raw.encode()).hexdigest()[:8]}"
    return name


def where_clause(where: Mapping[str, MetadataValue] | None) -> dict[str, Any] | None:
    if not where:
        return None
    items = [{key: value} for key, value in where.items()]
    return items[0] if len(items) == 1 else {"$and": items}


# --------------------------------------------------------------------------- process lock

WRITER_WAIT = 600.0
"""Longest wait for another process that is refreshing the index (a build can take minutes
with an API embedder). Waiting for processes that merely have the index open to close it is
bounded by ``chroma_timeout`` instead."""

_LOCK_HINT = (
    "Chroma's embedded index is not process-safe, so it is written only while no other process "
    "has it open: close the other process (a TUI, API server or `assistant index`) and retry, or "
    "share a Chroma server through ASSISTANT_CHROMA_URL."
)


class _IndexLock:
    """File locks for one embedded index directory, shared by every store of this process.

        .lock        shared while a process has the index open; exclusive while it writes
        .build.lock  exclusive while a process refreshes (holds its pid): one writer at a time
        .open.lock   exclusive while a process creates its Chroma client: a fresh directory's
                     first clients would otherwise both run Chroma's schema migrations
                     ("table collections already exists")

    A would-be writer closes its Chroma client and drops its shared lock before queueing for
    ``.build.lock``, so two processes refreshing at once never wait for each other; the second
    reconnects once the first is done, finds the index fresh, and writes nothing.
    """

    _registry: ClassVar[dict[Path, _IndexLock]] = {}
    _registry_lock: ClassVar[threading.Lock] = threading.Lock()

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.fd: int | None = None
        self.build_fd: int | None = None
        self.refs = 0
        self.builders = 0
        self.writers = 0
        self.lock = threading.RLock()

    @classmethod
    def acquire(cls, directory: Path) -> _IndexLock:
        directory = directory.resolve()
        with cls._registry_lock:
            lock = cls._registry.get(directory)
            if lock is None:
                lock = cls._registry[directory] = _IndexLock(directory)
        with lock.lock:
            if lock.refs == 0:
                directory.mkdir(parents=True, exist_ok=True)
                lock.fd = os.open(directory / ".lock", os.O_RDWR | os.O_CREAT, 0o644)
                try:
                    lock._flock(lock.fd, fcntl.LOCK_SH, WRITER_WAIT)
                except BaseException:
                    os.close(lock.fd)
                    lock.fd = None
                    raise
            lock.refs += 1
        return lock

    def _refresher(self) -> str:
        try:
            pid = (self.directory / ".build.lock").read_text().strip()
        except OSError:
            return ""
        return f" (process {pid})" if pid.isdigit() and int(pid) != os.getpid() else ""

    def _flock(self, fd: int, mode: int, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while True:
            try:
                fcntl.flock(fd, mode | fcntl.LOCK_NB)
                return
            except OSError as exc:
                if exc.errno not in (errno.EAGAIN, errno.EACCES):
                    raise
            if time.monotonic() >= deadline:
                if fd == self.build_fd or mode == fcntl.LOCK_SH:
                    what = f"being refreshed by another process{self._refresher()}"
                else:
                    what = "in use by another process"
                raise StoreUnavailableError(
                    f"The embedded index at {self.directory} is {what}.", hint=_LOCK_HINT
                )
            time.sleep(0.05)

    @contextlib.contextmanager
    def refreshing(self, disconnect: Callable[[], None]) -> Iterator[None]:
        """One refreshing process at a time; on entry the caller's client must reconnect."""
        with self.lock:
            assert self.fd is not None
            if self.builders == 0:
                disconnect()
                if self.build_fd is None:
                    self.build_fd = os.open(
                        self.directory / ".build.lock", os.O_RDWR | os.O_CREAT, 0o644
                    )
                fcntl.flock(self.fd, fcntl.LOCK_UN)
                try:
                    self._flock(self.build_fd, fcntl.LOCK_EX, WRITER_WAIT)
                except BaseException:
                    self._flock(self.fd, fcntl.LOCK_SH, WRITER_WAIT)
                    raise
                os.ftruncate(self.build_fd, 0)
                os.pwrite(self.build_fd, f"{os.getpid()}\n".encode(), 0)
                try:
                    self._flock(self.fd, fcntl.LOCK_SH, WRITER_WAIT)
                except BaseException:
                    os.ftruncate(self.build_fd, 0)
                    fcntl.flock(self.build_fd, fcntl.LOCK_UN)
                    raise
            self.builders += 1
            try:
                yield
            finally:
                self.builders -= 1
                if self.builders == 0 and self.build_fd is not None:
                    os.ftruncate(self.build_fd, 0)
                    fcntl.flock(self.build_fd, fcntl.LOCK_UN)

    @contextlib.contextmanager
    def exclusive(self, timeout: float) -> Iterator[None]:
        """Sole access while writing: waits up to ``timeout`` for other processes to close the index."""
        with self.lock:
            assert self.fd is not None
            if self.writers == 0:
                fcntl.flock(self.fd, fcntl.LOCK_UN)
                try:
                    self._flock(self.fd, fcntl.LOCK_EX, timeout)
                except BaseException:
                    self._flock(self.fd, fcntl.LOCK_SH, WRITER_WAIT)
                    raise
            self.writers += 1
            try:
                yield
            finally:
                self.writers -= 1
                if self.writers == 0:
                    fcntl.flock(self.fd, fcntl.LOCK_SH)

    @contextlib.contextmanager
    def opening(self) -> Iterator[None]:
        """Serialise creating Chroma clients on this directory across processes."""
        with self.lock:
            fd = os.open(self.directory / ".open.lock", os.O_RDWR | os.O_CREAT, 0o644)
            try:
                self._flock(fd, fcntl.LOCK_EX, WRITER_WAIT)
                yield
            finally:
                os.close(fd)  # closing the descriptor drops its lock

    def release(self) -> None:
        with self.lock:
            self.refs -= 1
            if self.refs == 0:
                for fd in (self.fd, self.build_fd):
                    if fd is not None:
                        fcntl.flock(fd, fcntl.LOCK_UN)
                        os.close(fd)
                self.fd = self.build_fd = None


# --------------------------------------------------------------------------- chroma


def chroma_client_settings() -> Any:
    """The chromadb Settings every client of ours uses. Another client opening the same path in
    the same process must pass equal settings, or chromadb refuses ("different settings")."""
    from chromadb.config import Settings as ChromaSettings

    return ChromaSettings(anonymized_telemetry=False, allow_reset=False)


def _parse_url(url: str) -> tuple[str, int, bool]:
    parsed = urlparse(url if "://" in url else f"http://{url}")
    if parsed.scheme not in ("http", "https") or not parsed.hostname:
        raise ConfigError(
            f"ASSISTANT_CHROMA_URL={url!r} is not an http(s) URL.",
            hint="Use e.g. http://127.0.0.1:8000.",
        )
    ssl = parsed.scheme == "https"
    try:
        port = parsed.port or (443 if ssl else 8000)
    except ValueError as exc:
        raise ConfigError(
            f"ASSISTANT_CHROMA_URL={url!r} has an invalid port.",
            hint="Use e.g. http://127.0.0.1:8000.",
        ) from exc
    return parsed.hostname, port, ssl


def check_server(url: str, timeout: float) -> None:
    """Fail fast, with a clear message, when the Chroma server does not answer its heartbeat."""
    import httpx

    host, port, ssl = _parse_url(url)
    base = f"{'https' if ssl else 'http'}://{host}:{port}"
    try:
        response = httpx.get(f"{base}/api/v2/heartbeat", timeout=timeout)
        response.raise_for_status()
    except httpx.HTTPError as exc:
        raise StoreUnavailableError(
            f"The Chroma server at {base} is unreachable ({exc.__class__.__name__}: {exc}).",
            hint=_SERVER_HINT,
        ) from exc


class ChromaStore:
    """One Chroma collection holding the corpus vectors of one embedding model."""

    def __init__(
        self,
        client: Any,
        embedder: Embedder,
        *,
        mode: StoreMode,
        location: str,
        timeout: float,
        lock: _IndexLock | None = None,
        name: str | None = None,
        connect: Callable[[], Any] | None = None,
    ) -> None:
        self._client = client
        self._connect = connect
        self._embedder = embedder
        self._mode: StoreMode = mode
        self._location = location
        self._timeout = timeout
        self._lock = lock
        self._name = name or collection_name(embedder)
        self._collection: Any = None
        self._closed = False

    # -- opening

    @classmethod
    def open(cls, settings: Settings, embedder: Embedder) -> ChromaStore:
        if settings.chroma_url:
            return cls._open_server(settings, embedder)
        return cls._open_embedded(
            Path(settings.home) / "index" / "chroma", embedder, settings.chroma_timeout
        )

    @classmethod
    def _open_embedded(cls, path: Path, embedder: Embedder, timeout: float) -> ChromaStore:
        lock = _IndexLock.acquire(path.parent)
        try:
            import chromadb

            from . import chroma_embedding  # noqa: F401  (registers our embedding function)

            def connect() -> Any:
                path.mkdir(parents=True, exist_ok=True)
                with lock.opening():
                    return chromadb.PersistentClient(
                        path=str(path), settings=chroma_client_settings()
                    )

            client = connect()
        except StoreUnavailableError:
            lock.release()
            raise
        except Exception as exc:
            lock.release()
            raise StoreUnavailableError(
                f"Cannot open the embedded index at {path}: {exc.__class__.__name__}: {exc}",
                hint=_REBUILD_HINT,
            ) from exc
        return cls(
            client,
            embedder,
            mode="embedded",
            location=str(path),
            timeout=timeout,
            lock=lock,
            connect=connect,
        )

    @classmethod
    def _open_server(cls, settings: Settings, embedder: Embedder) -> ChromaStore:
        url = str(settings.chroma_url)
        timeout = settings.chroma_timeout
        host, port, ssl = _parse_url(url)
        check_server(url, timeout)
        try:
            import chromadb
            import httpx

            from . import chroma_embedding  # noqa: F401

            client = chromadb.HttpClient(
                host=host, port=port, ssl=ssl, settings=chroma_client_settings()
            )
            # chromadb's HTTP client has no timeout of its own; bound every later request.
            session = getattr(getattr(client, "_server", None), "_session", None)
            if isinstance(session, httpx.Client):
                session.timeout = httpx.Timeout(timeout)
        except Exception as exc:
            raise StoreUnavailableError(
                f"Cannot use the Chroma server at {url}: {exc.__class__.__name__}: {exc}",
                hint=_SERVER_HINT,
            ) from exc
        return cls(client, embedder, mode="server", location=url, timeout=timeout)

    # -- properties

    @property
    def name(self) -> str:
        return self._name

    @property
    def mode(self) -> StoreMode:
        return self._mode

    @property
    def location(self) -> str:
        return self._location

    # -- helpers

    def _fail(self, what: str, exc: Exception) -> StoreUnavailableError:
        hint = _SERVER_HINT if self._mode == "server" else _REBUILD_HINT
        return StoreUnavailableError(
            f"Chroma {what} failed on {self._location} ({self._name}): {exc.__class__.__name__}: {exc}",
            hint=hint,
        )

    def _col(self) -> Any:
        if self._closed:
            raise StoreUnavailableError(
                "The index store has been closed.", hint="Open a new Retriever."
            )
        if self._client is None:
            self._reopen()
        if self._collection is None:
            from .chroma_embedding import AdvisorEmbeddingFunction

            try:
                self._collection = self._client.get_or_create_collection(
                    self._name,
                    embedding_function=AdvisorEmbeddingFunction(embedder=self._embedder),
                    configuration={"hnsw": {"space": "cosine"}},
                    metadata={"embedder": self._embedder.id, "model": self._embedder.model_name},
                )
            except Exception as exc:
                raise self._fail("opening the collection", exc) from exc
        return self._collection

    # -- operations

    def count(self) -> int:
        try:
            return int(self._col().count())
        except StoreUnavailableError:
            raise
        except Exception as exc:
            raise self._fail("count", exc) from exc

    def hashes(self) -> dict[str, str]:
        try:
            got = self._col().get(include=["metadatas"])
        except StoreUnavailableError:
            raise
        except Exception as exc:
            raise self._fail("reading the stored hashes", exc) from exc
        metadatas = got.get("metadatas") or [None] * len(got["ids"])
        return {
            i: str((m or {}).get(HASH_KEY, "")) for i, m in zip(got["ids"], metadatas, strict=True)
        }

    def upsert(
        self,
        ids: Sequence[str],
        vectors: Vectors,
        documents: Sequence[str],
        metadatas: Sequence[Mapping[str, MetadataValue]],
    ) -> None:
        if not ids:
            return
        col = self._col()
        batch = 1000
        try:
            for start in range(0, len(ids), batch):
                end = start + batch
                col.upsert(
                    ids=list(ids[start:end]),
                    embeddings=np.asarray(vectors[start:end], dtype=np.float32),
                    documents=list(documents[start:end]),
                    metadatas=[dict(m) for m in metadatas[start:end]],
                )
        except Exception as exc:
            raise self._fail("writing", exc) from exc

    def delete(self, ids: Sequence[str]) -> None:
        if not ids:
            return
        try:
            self._col().delete(ids=list(ids))
        except Exception as exc:
            raise self._fail("deleting", exc) from exc

    def query(
        self, vector: Vectors, n: int, where: Mapping[str, MetadataValue] | None = None
    ) -> list[tuple[str, float]]:
        col = self._col()
        try:
            result = col.query(
                query_embeddings=np.asarray(vector, dtype=np.float32).reshape(1, -1),
                n_results=max(1, n),
                where=where_clause(where),
                include=["distances"],
            )
        except Exception as exc:
            raise self._fail("query", exc) from exc
        ids = result["ids"][0] if result["ids"] else []
        distances = (result.get("distances") or [[]])[0] or [0.0] * len(ids)
        return [(i, 1.0 - float(d)) for i, d in zip(ids, distances, strict=True)]

    def drop(self) -> None:
        try:
            self._col()
            self._client.delete_collection(self._name)
        except Exception as exc:
            if "does not exist" not in str(exc).lower() and "not found" not in str(exc).lower():
                raise self._fail("dropping the collection", exc) from exc
        self._collection = None

    def writing(self) -> contextlib.AbstractContextManager[None]:
        if self._lock is None:
            return contextlib.nullcontext()
        # A client opened before another process wrote the index keeps answering from its stale
        # in-memory HNSW; refreshing() closes it, and the next call reconnects.
        return self._lock.refreshing(self._disconnect)

    def exclusive(self) -> contextlib.AbstractContextManager[None]:
        if self._lock is None:
            return contextlib.nullcontext()
        return self._lock.exclusive(self._timeout)

    def _disconnect(self) -> None:
        self._collection = None
        if self._client is not None and self._connect is not None:
            with contextlib.suppress(Exception):
                self._client.close()
            self._client = None

    def _reopen(self) -> None:
        assert self._connect is not None
        try:
            self._client = self._connect()
        except Exception as exc:
            raise StoreUnavailableError(
                f"Cannot reopen the embedded index at {self._location}: {exc.__class__.__name__}: {exc}",
                hint=_REBUILD_HINT,
            ) from exc

    def other_collections(self) -> list[str]:
        try:
            self._col()
            names = [c if isinstance(c, str) else c.name for c in self._client.list_collections()]
        except Exception as exc:
            raise self._fail("listing collections", exc) from exc
        return sorted(
            n for n in names if n.startswith(COLLECTION_PREFIX + "__") and n != self._name
        )

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._disconnect()
        if self._lock is not None:
            self._lock.release()
            self._lock = None


def clear_chroma_cache() -> None:
    """Forget chromadb's per-process clients (after their files were removed)."""
    with contextlib.suppress(Exception):
        from chromadb.api.shared_system_client import SharedSystemClient

        SharedSystemClient.clear_system_cache()


def wipe_embedded(path: Path, timeout: float) -> None:
    """Delete an embedded index directory (one too damaged to open), with the write locks held."""
    lock = _IndexLock.acquire(path.parent)
    try:
        with lock.refreshing(lambda: None), lock.exclusive(timeout):
            clear_chroma_cache()
            shutil.rmtree(path, ignore_errors=True)
    finally:
        lock.release()


def open_store(settings: Settings, embedder: Embedder) -> ChromaStore:
    """The Chroma store ``settings`` asks for: embedded under home, or the server at chroma_url."""
    return ChromaStore.open(settings, embedder)
