"""Against a live local model (SmolLM2-135M on llama.cpp's server, started by
.ci/lanes/live-model.sh, which sets LIVE_MODEL_API_BASE). The tiny model's advice is poor and its
JSON often broken; these tests assert that every run finishes, yields a valid, grounded critique,
and that the backend string tells the truth about whether the model's critique was used.
(``assistant critique --model`` itself is checked by the lane with tests/llm/live_check.py.)"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from assistant.advice.advisor import Advisor
from assistant.advice.events import CritiqueReady, Notice, TextDelta, TurnDone
from assistant.advice.grounding import check_grounding
from assistant.advice.llm.litellm_model import get_chat_model
from assistant.advice.llm.model import ChatModel
from assistant.advice.llm.planner import stream_critique
from assistant.domain import Critique
from assistant.reading import PlanDocument, read_plan
from assistant.settings import Settings

pytestmark = pytest.mark.live_model

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def live_model(tmp_path_factory: pytest.TempPathFactory) -> ChatModel:
    api_base = os.environ.get("LIVE_MODEL_API_BASE")
    if not api_base:
        pytest.skip("no live model server (set LIVE_MODEL_API_BASE; .ci/lanes/live-model.sh does)")
    settings = Settings(home=tmp_path_factory.mktemp("live"), api_base=api_base, cache=False,
                        model_timeout=float(os.environ.get("ASSISTANT_MODEL_TIMEOUT", "120")), model_retries=0,
                        max_tokens=int(os.environ.get("ASSISTANT_MAX_TOKENS", "600")))
    return get_chat_model(os.environ.get("LIVE_MODEL_NAME", "openai/smollm2"), settings)


@pytest.fixture(scope="module")
def live_doc() -> PlanDocument:
    return read_plan(ROOT / os.environ.get("LIVE_MODEL_PLAN", "examples/plans/relational-rhetoric.txt"))


def _valid_and_grounded(critique: Critique, doc: PlanDocument, advisor: Advisor) -> None:
    Critique.model_validate_json(critique.model_dump_json())
    report = check_grounding(critique, doc.text, advisor.corpus)
    assert report.ok, report.problems
    assert all(e.quote in doc.text for f in critique.findings for e in f.evidence)


def _truthful(critique: Critique, offline: Critique, model: ChatModel) -> str:
    if critique.backend == model.name:
        assert critique.model_copy(update={"backend": "offline"}) != offline
        assert (critique.verdict.structural_overuse, critique.verdict.severity) == (
            offline.verdict.structural_overuse, offline.verdict.severity)
        return "model"
    assert critique.backend.startswith("offline (fallback: "), critique.backend
    assert critique.model_copy(update={"backend": "offline"}) == offline
    return critique.backend


def test_live_streamed_critique(advisor: Advisor, live_model: ChatModel, live_doc: PlanDocument) -> None:
    stream = stream_critique(advisor, live_doc, model=live_model)
    events = list(stream)
    ready = [e for e in events if isinstance(e, CritiqueReady)]
    assert len(ready) == 1
    text = "".join(e.text for e in events if isinstance(e, TextDelta))
    assert text.strip(), "the user always gets a narrative"
    print(f"\nlive stream: backend={ready[0].critique.backend!r} first_token_s={stream.first_token_s} "
          f"narrative={len(text)} chars, notices={[e.message for e in events if isinstance(e, Notice)]}")
    _valid_and_grounded(ready[0].critique, live_doc, advisor)
    used = _truthful(ready[0].critique, advisor.critique_offline(live_doc), live_model)
    assert (used == "model") == (not any(isinstance(e, Notice) and "could not be used" in e.message for e in events))


def test_live_two_chat_turns(advisor: Advisor, live_model: ChatModel, live_doc: PlanDocument) -> None:
    conversation_module = pytest.importorskip("assistant.advice.conversation")
    conversation = conversation_module.Conversation(advisor, model=live_model)
    first = list(conversation.load_plan(live_doc))
    second = list(conversation.send("What would a boundary-spanning role look like for our district nurses?"))
    for events in (first, second):
        done = [e for e in events if isinstance(e, TurnDone)]
        assert len(done) == 1 and events[-1] is done[0]
        assert done[0].backend == live_model.name or done[0].backend.startswith("offline (fallback: ")
        assert done[0].answer.strip()
        for e in events:
            if isinstance(e, CritiqueReady):
                _valid_and_grounded(e.critique, live_doc, advisor)
    critiques = [e.critique for e in first if isinstance(e, CritiqueReady)]
    assert len(critiques) == 1
    print(f"\nlive chat: turn 1 backend={first[-1].backend!r}, turn 2 backend={second[-1].backend!r}")  # type: ignore[union-attr]
