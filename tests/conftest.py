"""Every test runs with its own ASSISTANT_HOME, so no test touches a user's state.

Built models (the optimised embedding model) are cached once per test session, or where
ASSISTANT_MODEL_CACHE already points (CI shares one cache across its lanes)."""

from __future__ import annotations

import os

import pytest


@pytest.fixture(scope="session", autouse=True)
def _shared_model_cache(tmp_path_factory: pytest.TempPathFactory) -> None:
    from pathlib import Path

    from assistant.retrieval.embeddings import minilm_files
    from assistant.retrieval.fast_minilm import optimise

    if not os.environ.get("ASSISTANT_MODEL_CACHE"):
        # Subprocesses started by tests inherit it too.
        os.environ["ASSISTANT_MODEL_CACHE"] = str(tmp_path_factory.mktemp("models"))
    # Built up front, so no test's output depends on whether it was the first to embed.
    optimise(*minilm_files(), Path(os.environ["ASSISTANT_MODEL_CACHE"]))


@pytest.fixture(autouse=True)
def _isolated_home(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    from assistant.settings import get_settings

    monkeypatch.setenv("ASSISTANT_HOME", str(tmp_path_factory.mktemp("home")))
    monkeypatch.delenv("ASSISTANT_MODEL", raising=False)
    monkeypatch.delenv("ASSISTANT_CORPUS_PATH", raising=False)
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()
