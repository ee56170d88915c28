"""Index lifecycle: incremental refresh by content hash, reopening in a new process, model
change, rebuild, and clear errors for a locked, corrupt or unreachable store."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from assistant.errors import StoreUnavailableError
from assistant.retrieval import Retriever
from assistant.retrieval.store import collection_name
from assistant.settings import Settings

from .conftest import SHIPPED, HashEmbedder, copy_case, embedded_settings

# the hashing test embedder is not resolvable by id, so chromadb cannot rebuild it from config
pytestmark = pytest.mark.filterwarnings("ignore:Could not reconstruct embedding function")


def _retriever(home: Path, corpus: Path | None, model: str = "hash-v1", **kw: object) -> Retriever:
    return Retriever(settings=embedded_settings(home, corpus, **kw), embedder=HashEmbedder(model))


def test_incremental_refresh_edit_add_delete(tmp_path: Path, user_corpus: Path) -> None:
    home = tmp_path / "home"
    with _retriever(home, user_corpus) as r:
        first = r.ensure_index()
        assert first.added == first.chunks > 300 and not first.updated and not first.deleted
        case_chunks = sum(
            1 for c in r._ready_lexical().chunks if c.metadata["doc_id"] == "case:test-town"
        )
        assert case_chunks >= 6

        assert r.ensure_index().skipped

        # edit one section of the user's case: only that chunk is re-embedded
        path = user_corpus / "cases" / "test-town.md"
        text = path.read_text(encoding="utf-8")
        path.write_text(
            text.replace(
                "## What did not\n",
                "## What did not\nA new sentence about tensions with the council.\n",
            ),
            encoding="utf-8",
        )
        edited = r.ensure_index()
        assert (edited.added, edited.updated, edited.deleted) == (0, 1, 0), edited
        assert edited.unchanged == first.chunks - 1
        hits = r.search("tensions with the council", k=3, mode="bm25")
        assert hits[0].id == "case:test-town#what-did-not"

        # add a case
        copy_case("buurtzorg", user_corpus, "second-town")
        added = r.ensure_index()
        assert added.added > 0 and added.updated == 0 and added.deleted == 0
        assert any(h.doc_id == "case:second-town" for h in r.search("Buurtzorg", k=5, kind="case"))

        # delete it again
        (user_corpus / "cases" / "second-town.md").unlink()
        removed = r.ensure_index()
        assert (removed.added, removed.updated, removed.deleted) == (0, 0, added.added)
        assert r.store.count() == edited.chunks
        assert not any(
            h.doc_id == "case:second-town" for h in r.search("Buurtzorg", k=16, kind="case")
        )
        assert "deleted" in removed.summary()


def test_rebuild_starts_from_scratch(tmp_path: Path) -> None:
    with _retriever(tmp_path / "home", None) as r:
        built = r.ensure_index()
        rebuilt = r.rebuild()
        assert rebuilt.rebuilt and rebuilt.added == built.chunks and r.store.count() == built.chunks


def test_model_change_makes_a_new_collection(tmp_path: Path) -> None:
    home = tmp_path / "home"
    with _retriever(home, None, "hash-v1") as r1:
        r1.ensure_index()
        name1 = r1.store.name
    with _retriever(home, None, "hash-v2") as r2:
        report = r2.ensure_index()
        assert not report.skipped and report.added == report.chunks
        assert r2.store.name != name1
        assert r2.status().other_collections == [name1]
    assert collection_name(HashEmbedder("hash-v1")) == "corpus__test-hash__hash-v1"


def test_collection_names_are_valid_for_chroma() -> None:
    class Odd(HashEmbedder):
        def __init__(self) -> None:
            super().__init__("openai/text-embedding-3-small")
            self.id = "litellm:openai/text-embedding-3-small"

    name = collection_name(Odd())
    assert name.startswith("corpus__litellm__openai-text-embedding-3-small")
    assert all(ch.isalnum() or ch in "._-" for ch in name) and name[-1].isalnum()


def test_reopen_in_a_new_process(shipped_retriever: Retriever, shared_home: Path) -> None:
    """A second process finds the index built (no re-embedding), searches it, and can open the
    collection with plain chromadb because our embedding function is registered."""
    code = textwrap.dedent(
        f"""
        import json, chromadb
        from assistant.retrieval import Retriever
        from assistant.settings import Settings
        r = Retriever(settings=Settings(home={str(shared_home)!r}, chroma_url=None))
        report = r.ensure_index()
        hits = r.search("boundary-spanning roles between community nurses and social workers", k=5)
        from assistant.retrieval.store import chroma_client_settings
        client = chromadb.PersistentClient(path={str(shared_home / "index" / "chroma")!r},
                                           settings=chroma_client_settings())
        col = client.get_collection(r.store.name)   # no embedding function passed
        by_text = col.query(query_texts=["Mrs Smith in Torbay"], n_results=3)
        print(json.dumps({{"skipped": report.skipped, "hits": [h.doc_id for h in hits],
                          "ef": col.configuration_json["embedding_function"]["name"], "by_text": by_text["ids"][0]}}))
        """
    )
    env = {**os.environ, "ASSISTANT_CHROMA_URL": ""}
    env.pop("ASSISTANT_CHROMA_URL")
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120
    )
    assert out.returncode == 0, out.stderr[-2000:]
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result["skipped"] is True
    assert {"case:torbay", "case:buurtzorg"} & set(result["hits"])
    assert result["ef"] == "transformation-advisor"
    assert any(i.startswith("case:torbay") for i in result["by_text"])


def test_a_stuck_writer_elsewhere_gives_a_clear_error_not_a_hang(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Openers wait for a refreshing process, but only for a bounded time (WRITER_WAIT)."""
    from assistant.retrieval import store

    monkeypatch.setattr(store, "WRITER_WAIT", 0.5)
    home = tmp_path / "home"
    index = home / "index"
    index.mkdir(parents=True)
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import fcntl, os, time\n"
            f"main = os.open({str(index / '.lock')!r}, os.O_RDWR | os.O_CREAT)\n"
            f"build = os.open({str(index / '.build.lock')!r}, os.O_RDWR | os.O_CREAT)\n"
            "fcntl.flock(build, fcntl.LOCK_EX); os.write(build, str(os.getpid()).encode())\n"
            "fcntl.flock(main, fcntl.LOCK_EX)\n"
            "print('locked', flush=True); time.sleep(30)\n",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "locked"
        start = time.monotonic()
        with pytest.raises(
            StoreUnavailableError, match="being refreshed by another process"
        ) as info:
            _retriever(home, None).ensure_index()
        assert time.monotonic() - start < 5
        assert f"process {holder.pid}" in str(info.value)
        assert "ASSISTANT_CHROMA_URL" in str(info.value)
    finally:
        holder.kill()
        holder.wait()


def test_corrupt_index_says_rebuild_and_rebuild_recovers(tmp_path: Path) -> None:
    home = tmp_path / "home"
    with _retriever(home, None) as r:
        r.ensure_index()
    from assistant.retrieval.store import clear_chroma_cache

    clear_chroma_cache()
    sqlite = home / "index" / "chroma" / "chroma.sqlite3"
    sqlite.write_bytes(b"this is not a database" * 100)
    with pytest.raises(StoreUnavailableError, match="rebuild"):
        _retriever(home, None).ensure_index()
    clear_chroma_cache()
    with _retriever(home, None) as r:
        report = r.rebuild()
        assert report.added == report.chunks > 0
        assert r.search("pooled budgets", k=3)


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_unreachable_chroma_server_fails_fast_and_clearly() -> None:
    settings = Settings(chroma_url=f"http://127.0.0.1:{_closed_port()}", chroma_timeout=1.0)
    start = time.monotonic()
    with pytest.raises(StoreUnavailableError, match="unreachable") as info:
        Retriever(settings=settings, embedder=HashEmbedder()).ensure_index()
    assert time.monotonic() - start < 3
    assert "chroma run" in str(info.value)


def test_silent_chroma_server_times_out() -> None:
    """A server that accepts connections but never answers must not hang us."""
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(1)
        port = server.getsockname()[1]
        settings = Settings(chroma_url=f"http://127.0.0.1:{port}", chroma_timeout=0.5)
        start = time.monotonic()
        with pytest.raises(StoreUnavailableError, match="unreachable"):
            Retriever(settings=settings, embedder=HashEmbedder()).ensure_index()
        assert time.monotonic() - start < 3


def test_bad_chroma_url_is_a_config_error() -> None:
    from assistant.errors import ConfigError

    with pytest.raises(ConfigError, match="ASSISTANT_CHROMA_URL"):
        Retriever(
            settings=Settings(chroma_url="ftp://nowhere"), embedder=HashEmbedder()
        ).ensure_index()


def test_shipped_corpus_is_where_we_think() -> None:
    assert (SHIPPED / "framework.yaml").is_file()


_WORKER = """
import hashlib, json, re, sys, time
import numpy as np
from assistant.retrieval import Retriever
from assistant.retrieval.embeddings import normalise_rows
from assistant.settings import Settings

class Hash:
    id, model_name, dimension = "test-hash", "hash-v1", 64
    def embed(self, texts):
        out = np.zeros((len(texts), 64), dtype=np.float32)
        for row, text in enumerate(texts):
            for w in re.findall(r"[a-z]+", text.lower()):
                out[row, int(hashlib.md5(w.encode()).hexdigest()[:6], 16) % 64] += 1.0
        out[:, 0] += 1e-3
        time.sleep(0.002 * len(texts))  # a build that takes a moment
        return normalise_rows(out)

r = Retriever(settings=Settings(home=sys.argv[1], chroma_url=None, chroma_timeout=2.0), embedder=Hash())
r.store.count()  # open the index (shared lock) before anyone has written it
print("open", flush=True)
sys.stdin.readline()  # wait until both processes are open
report = r.ensure_index()
hits = r.search("Torbay co-ordinator Mrs Smith", k=3, mode="dense")
if len(sys.argv) > 2:
    print("holding", flush=True)
    sys.stdin.readline()
print(json.dumps({"added": report.added, "skipped": report.skipped, "hits": [h.doc_id for h in hits]}), flush=True)
"""


def test_two_processes_building_at_once_both_succeed_and_see_the_index(tmp_path: Path) -> None:
    """Both open the empty index, then both find it needs building: one builds, the other
    waits for it, then reopens Chroma (its old client would query a stale HNSW) and reuses it."""
    home = str(tmp_path / "home")
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", _WORKER, home],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    try:
        for p in procs:
            assert p.stdout is not None and p.stdout.readline().strip() == "open"
        for p in procs:
            assert p.stdin is not None
            p.stdin.write("go\n")
            p.stdin.flush()
        results = []
        for p in procs:
            out, _ = p.communicate(timeout=300)
            assert p.returncode == 0
            results.append(json.loads(out.strip().splitlines()[-1]))
    finally:
        for p in procs:
            p.kill()
    # exactly one of them embedded the corpus; the other found it done
    assert sorted(r["added"] > 0 for r in results) == [False, True]
    # and both query fresh vectors (a stale client would return nothing from the dense index)
    assert results[0]["hits"] and results[0]["hits"] == results[1]["hits"]


def test_a_process_with_the_index_open_blocks_writers_but_not_readers(
    tmp_path: Path, user_corpus: Path
) -> None:
    home = tmp_path / "home"
    with _retriever(home, None) as r:
        r.ensure_index()
    holder = subprocess.Popen(
        [sys.executable, "-c", _WORKER, str(home), "hold"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdin is not None
        assert holder.stdout.readline().strip() == "open"
        holder.stdin.write("go\n")
        holder.stdin.flush()
        assert holder.stdout.readline().strip() == "holding"
        # reading alongside it is fine
        with _retriever(home, None, chroma_timeout=0.5) as reader:
            assert reader.ensure_index().skipped
            assert reader.search("Torbay", k=2)
        # writing (here: indexing a user corpus) is refused quickly and says why
        start = time.monotonic()
        with pytest.raises(StoreUnavailableError, match="in use by another process"):
            _retriever(home, user_corpus, chroma_timeout=0.5).ensure_index()
        assert time.monotonic() - start < 5
    finally:
        holder.kill()
        holder.wait()


def test_chroma_clients_are_created_under_an_exclusive_lock(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two processes opening a fresh directory at once would both run Chroma's schema
    migrations ("table collections already exists", seen in CI): creating a client holds
    ``.open.lock`` exclusively, so the second waits for the first."""
    import fcntl

    import chromadb

    from assistant.retrieval.store import ChromaStore

    seen: list[bool] = []
    real = chromadb.PersistentClient

    def probing_client(*args: object, **kwargs: object) -> object:
        fd = os.open(tmp_path / "index" / ".open.lock", os.O_RDWR)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            seen.append(False)  # nobody held it
        except BlockingIOError:
            seen.append(True)
        finally:
            os.close(fd)
        return real(*args, **kwargs)

    monkeypatch.setattr(chromadb, "PersistentClient", probing_client)
    store = ChromaStore.open(embedded_settings(tmp_path), HashEmbedder())
    try:
        assert store.count() == 0
    finally:
        store.close()
    assert seen == [True]
