"""Fixtures for the LLM backend tests: an isolated advisor, plans, and a loopback model server."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from assistant.advice.advisor import Advisor
from assistant.domain import Critique
from assistant.reading import PlanDocument, plan_from_text, read_plan
from assistant.settings import Settings

from .fake_openai_server import FakeOpenAIServer
from .helpers import INJECTED_PLAN

ROOT = Path(__file__).resolve().parents[2]
PLANS = ROOT / "examples" / "plans"

@pytest.fixture(scope="session")
def settings(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    return Settings(home=tmp_path_factory.mktemp("home"), model=None, api_base=None, api_key=None,
                    model_timeout=2.0, model_retries=1, cache=False)


@pytest.fixture(scope="session")
def advisor(settings: Settings) -> Advisor:
    return Advisor(settings=settings)


@pytest.fixture(scope="session")
def heavy_doc() -> PlanDocument:
    return read_plan(PLANS / "structural-heavy.md")


@pytest.fixture(scope="session")
def injected_doc() -> PlanDocument:
    return plan_from_text(INJECTED_PLAN, source="injected.md")


@pytest.fixture(scope="session")
def heavy_offline(advisor: Advisor, heavy_doc: PlanDocument) -> Critique:
    return advisor.critique_offline(heavy_doc)


@pytest.fixture(scope="module")
def fake_server() -> Iterator[FakeOpenAIServer]:
    with FakeOpenAIServer(slow_s=3.0) as server:
        yield server


@pytest.fixture
def server(fake_server: FakeOpenAIServer) -> FakeOpenAIServer:
    fake_server.reset()
    return fake_server
