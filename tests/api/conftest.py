"""Shared fixtures for the API tests: one real advisor, apps built around it, and fakes at the seams."""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from assistant.advice.advisor import Advisor
from assistant.advice.events import Event, TextDelta, TurnDone
from assistant.api.app import create_app
from assistant.settings import Settings
from tests.advice.helpers import PLAN

KEY = "test-key-0123456789abcdef"
OTHER_KEY = "other-key-0123456789abcdef"
AUTH = {"Authorization": f"Bearer {KEY}"}

ONE_PAGE_PLAN = PLAN  # the conversation tests' one-page plan


@pytest.fixture(scope="session")
def home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("assistant-home")


@pytest.fixture(scope="session")
def advisor(home: Path) -> Advisor:
    return Advisor(Settings(home=home))


def make_settings(home: Path, **overrides: Any) -> Settings:
    values: dict[str, Any] = {"home": home, "api_keys": f"{KEY},{OTHER_KEY}", "rate_limit_per_minute": 10_000}
    values.update(overrides)
    return Settings(**values)


@pytest.fixture
def make_app(home: Path, advisor: Advisor):  # type: ignore[no-untyped-def]
    def build(advisor_: Any = None, conversation_factory: Any = None, chat_model_factory: Any = None,
              **overrides: Any) -> FastAPI:
        return create_app(make_settings(home, **overrides), advisor=advisor_ or advisor,
                          conversation_factory=conversation_factory, chat_model_factory=chat_model_factory,
                          warm_up=False)

    return build


@pytest.fixture
def client(make_app) -> Iterator[TestClient]:  # type: ignore[no-untyped-def]
    with TestClient(make_app()) as c:
        c.headers.update(AUTH)
        yield c


class ScriptedConversation:
    """A conversation that yields a fixed script; records whether its generator was closed early."""

    def __init__(self, script: list[Event | BaseException], *, gate: threading.Event | None = None) -> None:
        self.script = script
        self.gate = gate
        self.started = threading.Event()
        self.closed_early = threading.Event()
        self.finished = threading.Event()

    def send(self, message: str) -> Iterator[Event]:
        try:
            for step in self.script:
                self.started.set()
                if self.gate is not None and isinstance(step, TurnDone):
                    self.gate.wait(10)
                if isinstance(step, BaseException):
                    raise step
                yield step
            self.finished.set()
        except GeneratorExit:
            self.closed_early.set()
            raise


def scripted(conversation: ScriptedConversation):  # type: ignore[no-untyped-def]
    def factory(advisor: Any, messages: list[dict[str, str]], model: str) -> ScriptedConversation:
        factory.calls.append((messages, model))  # type: ignore[attr-defined]
        return conversation

    factory.calls = []  # type: ignore[attr-defined]
    return factory


def text_turn(*chunks: str, backend: str = "offline") -> list[Event | BaseException]:
    return [*(TextDelta(c) for c in chunks), TurnDone(backend=backend, answer="".join(chunks))]
