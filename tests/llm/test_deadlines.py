"""One deadline per model call, whatever the provider does, through a real loopback server.

A model that trickles one byte a second, hangs before its headers, asks us to come back in 30 s,
or streams forever must end within the deadline (plus a little), as a ``timeout``; a cancelled
call stops at once, and the server sees its client go within 2 s.
"""

from __future__ import annotations

import threading
import time

import pytest

from assistant.advice.llm.deadline import Cancellation, cancellable, time_budget
from assistant.advice.llm.litellm_model import LiteLLMChatModel, import_litellm
from assistant.advice.llm.model import ChatMessage
from assistant.errors import ModelError

from .fake_openai_server import FakeOpenAIServer

HELLO = [ChatMessage("system", "Be brief."), ChatMessage("user", "Say hello.")]
DEADLINE_S = 1.0
SLACK_S = 1.5  # well inside the "deadline plus 5 s" the product promises


@pytest.fixture(autouse=True, scope="module")
def _litellm_loaded() -> None:
    import_litellm()  # a one-off import cost (seconds) is not what these tests time


def _model(server: FakeOpenAIServer, behaviour: str, **kw: object) -> LiteLLMChatModel:
    options: dict[str, object] = {"timeout": DEADLINE_S, "retries": 2, "backoff_s": 0.01, "api_key": "test"}
    options.update(kw)
    return LiteLLMChatModel(f"openai/{behaviour}", api_base=server.api_base, **options)  # type: ignore[arg-type]


def _timed(call: object) -> tuple[float, ModelError]:
    started = time.monotonic()
    with pytest.raises(ModelError) as info:
        call()  # type: ignore[operator]
    return time.monotonic() - started, info.value


@pytest.mark.parametrize("behaviour", ["trickle", "hang"])
def test_a_trickling_or_hanging_model_ends_at_the_deadline(server: FakeOpenAIServer, behaviour: str) -> None:
    model = _model(server, behaviour, retries=0)
    took, error = _timed(lambda: model.complete(HELLO))
    assert error.reason == "timeout"
    assert DEADLINE_S - 0.2 <= took <= DEADLINE_S + SLACK_S


def test_retries_share_the_one_deadline(server: FakeOpenAIServer) -> None:
    model = _model(server, "hang", retries=5)
    took, error = _timed(lambda: model.complete(HELLO))
    assert error.reason == "timeout" and took <= DEADLINE_S + SLACK_S
    assert server.count("hang") == 1  # no retry can start after the deadline


def test_a_long_retry_after_is_not_waited_past_the_deadline(server: FakeOpenAIServer) -> None:
    took, error = _timed(lambda: _model(server, "ratelimit-wait").complete(HELLO))
    assert error.reason == "rate-limited" and took <= DEADLINE_S + SLACK_S


def test_structured_output_is_bounded_too(server: FakeOpenAIServer) -> None:
    took, error = _timed(lambda: _model(server, "trickle").structured(HELLO, {"type": "object"}))
    assert error.reason == "timeout" and took <= DEADLINE_S + SLACK_S


def test_a_stream_that_never_ends_is_stopped_at_the_deadline(server: FakeOpenAIServer) -> None:
    server.trickle_s = 0.2
    got: list[str] = []

    def consume() -> None:
        for piece in _model(server, "trickle").stream(HELLO):
            got.append(piece)

    took, error = _timed(consume)
    assert error.reason == "timeout" and took <= DEADLINE_S + SLACK_S
    assert got  # what came before the deadline was delivered


def test_first_byte_deadline_is_shorter_than_the_total(server: FakeOpenAIServer) -> None:
    model = _model(server, "hang", timeout=5.0, first_byte_timeout=0.5, retries=0)
    took, error = _timed(lambda: list(model.stream(HELLO)))
    assert error.reason == "timeout" and took < 2.5


def test_a_time_budget_bounds_every_call_inside_it(server: FakeOpenAIServer) -> None:
    model = _model(server, "hang", timeout=30.0, retries=0)
    with time_budget(1.0):
        took, error = _timed(lambda: model.complete(HELLO))
    assert error.reason == "timeout" and took < 1.0 + SLACK_S


@pytest.mark.parametrize("behaviour", ["hang", "trickle"])
def test_a_cancelled_call_stops_at_once_and_the_server_sees_it(server: FakeOpenAIServer, behaviour: str) -> None:
    server.trickle_s = 0.3
    model = _model(server, behaviour, timeout=30.0, retries=0)
    cancellation = Cancellation()
    failure: list[ModelError] = []

    def call() -> None:
        with cancellable(cancellation):
            try:
                for _ in model.stream(HELLO):
                    pass
            except ModelError as exc:
                failure.append(exc)

    worker = threading.Thread(target=call)
    worker.start()
    time.sleep(0.8)
    cancelled_at = time.monotonic()
    cancellation.cancel()
    worker.join(timeout=5)
    assert not worker.is_alive() and failure and failure[0].reason == "cancelled"
    deadline = cancelled_at + 2.0
    while not server.disconnects and time.monotonic() < deadline:
        time.sleep(0.05)
    assert server.disconnects, "the model server never saw the client go"
    assert server.disconnects[0][1] - cancelled_at < 2.0


def test_a_normal_answer_is_unaffected(server: FakeOpenAIServer) -> None:
    server.script("plain", "one two three")
    model = _model(server, "plain")
    assert model.complete(HELLO).text == "one two three"
    stream = model.stream(HELLO)
    assert "".join(stream) == "one two three" and stream.finish_reason == "stop"


def test_a_stream_cut_off_midway_says_so(server: FakeOpenAIServer) -> None:
    server.script("cut", "one two three four five")
    _, error = _timed(lambda: list(_model(server, "cut").stream(HELLO)))
    assert error.reason == "cut-off"
