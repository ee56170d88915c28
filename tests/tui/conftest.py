"""Fixtures for the chat tests: ASSISTANT_HOME in a temporary folder, a session store with a
fixed clock and ids (so snapshots never show the time), the real corpus, and apps built around
fake conversations."""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from assistant.knowledge import Corpus, load_corpus
from assistant.settings import get_settings, shipped_corpus_path
from assistant.tui.app import ChatApp
from assistant.tui.sessions import SessionStore

from .fakes import FakeFactory

START = datetime(2026, 3, 2, 9, 30, tzinfo=UTC)


@pytest.fixture(autouse=True)
def assistant_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    home = tmp_path / "home"
    monkeypatch.setenv("ASSISTANT_HOME", str(home))
    monkeypatch.delenv("ASSISTANT_MODEL", raising=False)
    get_settings.cache_clear()
    yield home
    get_settings.cache_clear()


@pytest.fixture(autouse=True)
def utc() -> Iterator[None]:
    """The sessions list shows local times: make them the same everywhere, and put the zone back."""
    import os

    old = os.environ.get("TZ")
    os.environ["TZ"] = "UTC"
    time.tzset()
    yield
    if old is None:
        os.environ.pop("TZ", None)
    else:
        os.environ["TZ"] = old
    time.tzset()


@pytest.fixture(scope="session")
def corpus() -> Corpus:
    return load_corpus([shipped_corpus_path()])


class Clock:
    """Each reading is one minute after the last: ordered, and the same on every run."""

    def __init__(self) -> None:
        self.ticks = itertools.count()

    def __call__(self) -> datetime:
        return START + timedelta(minutes=next(self.ticks))


def make_store(path: Path) -> SessionStore:
    ids = (f"s{n:03d}" for n in itertools.count(1))
    return SessionStore(path, clock=Clock(), new_id=lambda: next(ids))


@pytest.fixture
def store_path(assistant_home: Path) -> Path:
    return assistant_home / "sessions" / "sessions.sqlite3"


@pytest.fixture
def store(store_path: Path) -> Iterator[SessionStore]:
    s = make_store(store_path)
    yield s
    s.close()


AppMaker = Callable[..., ChatApp]


@pytest.fixture
def make_app(store: SessionStore, corpus: Corpus, tmp_path: Path) -> AppMaker:
    def make(factory: FakeFactory | None = None, *, session_id: str | None = None,
             store_: SessionStore | None = None, **options: Any) -> ChatApp:
        return ChatApp(factory or FakeFactory(**options), store_ or store, corpus=lambda: corpus,
                       session_id=session_id, export_dir=tmp_path / "exports")
    return make
