"""Shared fixtures: a session-wide index of the shipped corpus (real ONNX embeddings, embedded
Chroma in a temporary ASSISTANT_HOME), and a fast hashing embedder for tests of the refresh
mechanics, where embedding quality does not matter."""

from __future__ import annotations

import hashlib
import os
import re
import shutil
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
import pytest

from assistant.retrieval.embeddings import normalise_rows
from assistant.retrieval.retriever import Retriever
from assistant.settings import Settings, get_settings, shipped_corpus_path

SHIPPED = shipped_corpus_path()


class HashEmbedder:
    """Bag of hashed words: deterministic, instant, and similar texts share words."""

    dimension = 64

    def __init__(self, model_name: str = "hash-v1") -> None:
        self.id = "test-hash"
        self.model_name = model_name

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        out = np.zeros((len(texts), self.dimension), dtype=np.float32)
        for row, text in enumerate(texts):
            for word in re.findall(r"[a-z]+", text.lower()):
                out[row, int(hashlib.md5(word.encode()).hexdigest()[:6], 16) % self.dimension] += (
                    1.0
                )
        out[:, 0] += 1e-3
        return normalise_rows(out)


def embedded_settings(home: Path, corpus: Path | None = None, **kw: object) -> Settings:
    """Settings for an embedded index under ``home``, whatever the environment says."""
    return Settings(home=home, corpus_path=corpus, chroma_url=None, **kw)  # type: ignore[arg-type]


@pytest.fixture(autouse=True)
def _isolated_settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Every test gets its own ASSISTANT_HOME; settings are re-read."""
    monkeypatch.setenv("ASSISTANT_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("ASSISTANT_CORPUS_PATH", raising=False)
    monkeypatch.delenv("ASSISTANT_EMBEDDING", raising=False)
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


@pytest.fixture(scope="session")
def shared_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("shared-home")


@pytest.fixture(scope="session")
def shipped_retriever(shared_home: Path) -> Iterator[Retriever]:
    """The shipped corpus indexed once per session with the real offline embedder."""
    retriever = Retriever(settings=embedded_settings(shared_home))
    retriever.ensure_index()
    yield retriever
    retriever.close()


@pytest.fixture
def user_corpus(tmp_path: Path) -> Path:
    """A user corpus layered over the shipped one, holding one copied case (renamed)."""
    root = tmp_path / "user-corpus"
    (root / "cases").mkdir(parents=True)
    text = (SHIPPED / "cases" / "torbay.md").read_text(encoding="utf-8")
    text = re.sub(r"^id: torbay$", "id: test-town", text, count=1, flags=re.M)
    (root / "cases" / "test-town.md").write_text(text, encoding="utf-8")
    return root


def chroma_url_or_skip() -> str:
    """The Chroma server the server lane started; tests that need one skip without it (the
    plain pytest run has none; .ci/lanes/chroma-server.sh starts one and runs them)."""
    url = os.environ.get("ASSISTANT_CHROMA_URL")
    if not url:
        pytest.skip(
            "needs a Chroma server: set ASSISTANT_CHROMA_URL (see .ci/lanes/chroma-server.sh)"
        )
    return url


@pytest.fixture
def chroma_url() -> str:
    return chroma_url_or_skip()


def copy_case(src_id: str, dst: Path, new_id: str) -> Path:
    text = (SHIPPED / "cases" / f"{src_id}.md").read_text(encoding="utf-8")
    text = re.sub(rf"^id: {re.escape(src_id)}$", f"id: {new_id}", text, count=1, flags=re.M)
    path = dst / "cases" / f"{new_id}.md"
    path.write_text(text, encoding="utf-8")
    return path


__all__ = ["SHIPPED", "HashEmbedder", "copy_case", "embedded_settings", "shutil"]
