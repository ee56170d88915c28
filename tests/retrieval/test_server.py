"""The same retrieval against a real Chroma server (ASSISTANT_CHROMA_URL), as several machines
or API workers would share it. Run by .ci/lanes/chroma-server.sh; skipped without a server."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from assistant.retrieval import Retriever
from assistant.retrieval.embeddings import get_embedder
from assistant.settings import Settings

from .conftest import HashEmbedder, chroma_url_or_skip, copy_case

pytestmark = [
    pytest.mark.chroma_server,
    # the hashing test embedder is not resolvable by id, so chromadb cannot rebuild it from config
    pytest.mark.filterwarnings("ignore:Could not reconstruct embedding function"),
]


class Scratch:
    """The real offline embedder under a unique model name, so each run gets its own collection."""

    def __init__(self) -> None:
        self.inner = get_embedder("onnx-minilm")
        self.id = self.inner.id
        self.model_name = f"{self.inner.model_name}-test-{uuid.uuid4().hex[:8]}"
        self.dimension = self.inner.dimension

    def embed(self, texts: object) -> object:
        return self.inner.embed(texts)  # type: ignore[arg-type]


def server_settings(url: str, home: Path, corpus: Path | None = None) -> Settings:
    return Settings(home=home, chroma_url=url, corpus_path=corpus, chroma_timeout=10.0)


@pytest.fixture(scope="module")
def server_retriever(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Retriever]:
    url = chroma_url_or_skip()
    home = tmp_path_factory.mktemp("server-home")
    retriever = Retriever(settings=server_settings(url, home), embedder=Scratch())  # type: ignore[arg-type]
    retriever.ensure_index()
    yield retriever
    retriever.store.drop()
    retriever.close()


def test_acceptance_query_against_the_server(server_retriever: Retriever) -> None:
    assert server_retriever.store.mode == "server"
    hits = server_retriever.search(
        "boundary-spanning roles between community nurses and social workers", k=8
    )
    assert {"case:torbay", "case:buurtzorg"} & {h.doc_id for h in hits[:5]}
    dutch = server_retriever.search(
        "self-managing nurse teams", k=2, kind="case", country="Netherlands"
    )
    assert [h.doc_id for h in dutch] == ["case:buurtzorg"]


def test_a_second_process_uses_the_server_index_while_this_one_holds_it(
    server_retriever: Retriever,
) -> None:
    """No file lock in server mode: another process opens the same collection and queries it,
    with plain chromadb too (the registered embedding function rebuilds from its config)."""
    settings = server_retriever.settings
    code = textwrap.dedent(
        f"""
        import json, chromadb
        from assistant.retrieval import Retriever
        from assistant.retrieval.embeddings import get_embedder
        from assistant.retrieval.store import chroma_client_settings
        from assistant.settings import Settings

        class Same:
            inner = get_embedder("onnx-minilm")
            id = inner.id
            model_name = {server_retriever.embedder.model_name!r}
            dimension = inner.dimension
            def embed(self, texts):
                return self.inner.embed(texts)

        r = Retriever(settings=Settings(home={str(settings.home)!r}, chroma_url={settings.chroma_url!r}), embedder=Same())
        report = r.ensure_index()
        hits = r.search("Mrs Smith and the co-ordinator role", k=3)
        host, port = {settings.chroma_url!r}.rsplit(":", 1)
        client = chromadb.HttpClient(host=host.split("//")[1], port=int(port), settings=chroma_client_settings())
        col = client.get_collection(r.store.name)
        by_text = col.query(query_texts=["Mrs Smith in Torbay"], n_results=3)
        print(json.dumps({{"skipped": report.skipped, "hits": [h.doc_id for h in hits], "by_text": by_text["ids"][0]}}))
        """
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result["skipped"] is True
    assert "case:torbay" in result["hits"]
    assert any(i.startswith("case:torbay") for i in result["by_text"])


def test_incremental_refresh_on_the_server(
    chroma_url: str, tmp_path: Path, user_corpus: Path
) -> None:
    embedder = HashEmbedder(f"hash-{uuid.uuid4().hex[:8]}")
    r = Retriever(
        settings=server_settings(chroma_url, tmp_path / "home", user_corpus), embedder=embedder
    )
    try:
        first = r.ensure_index()
        assert first.added == first.chunks
        copy_case("nuka", user_corpus, "third-town")
        added = r.ensure_index()
        assert added.added > 0 and not added.updated and not added.deleted
        (user_corpus / "cases" / "third-town.md").unlink()
        removed = r.ensure_index()
        assert removed.deleted == added.added and r.store.count() == first.chunks
        # another machine (its own home, so no local state) finds nothing to re-embed
        other = Retriever(
            settings=server_settings(chroma_url, tmp_path / "other-home", user_corpus),
            embedder=embedder,
        )
        again = other.ensure_index()
        assert (again.added, again.updated, again.deleted) == (
            0,
            0,
            0,
        ) and again.unchanged == first.chunks
        other.close()
    finally:
        r.store.drop()
        r.close()


def test_model_change_makes_a_new_collection_on_the_server(chroma_url: str, tmp_path: Path) -> None:
    a, b = (
        HashEmbedder(f"hash-a-{uuid.uuid4().hex[:6]}"),
        HashEmbedder(f"hash-b-{uuid.uuid4().hex[:6]}"),
    )
    ra = Retriever(settings=server_settings(chroma_url, tmp_path / "h"), embedder=a)
    rb = Retriever(settings=server_settings(chroma_url, tmp_path / "h"), embedder=b)
    try:
        ra.ensure_index()
        rb.ensure_index()
        assert ra.store.name != rb.store.name
        assert ra.store.name in rb.status().other_collections
    finally:
        for r in (ra, rb):
            r.store.drop()
            r.close()
