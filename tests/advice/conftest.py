"""Fixtures for the conversation tests: one real advisor, offline, with state in a temporary home."""

from __future__ import annotations

from pathlib import Path

import pytest

from assistant.advice.advisor import Advisor
from assistant.settings import Settings


@pytest.fixture(scope="session")
def advisor(tmp_path_factory: pytest.TempPathFactory) -> Advisor:
    home: Path = tmp_path_factory.mktemp("assistant-home")
    return Advisor(settings=Settings(home=home, model=None))
