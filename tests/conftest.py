"""Every test runs with its own ASSISTANT_HOME, so no test touches a user's state."""

from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def _isolated_home(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    from assistant.settings import get_settings

    monkeypatch.setenv("ASSISTANT_HOME", str(tmp_path_factory.mktemp("home")))
    monkeypatch.delenv("ASSISTANT_MODEL", raising=False)
    monkeypatch.delenv("ASSISTANT_CORPUS_PATH", raising=False)
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()
