"""Error shapes, auth, limits, request ids, logging and streaming failure modes."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

from assistant.advice.events import TextDelta, TurnDone
from assistant.advice.llm.testing import ScriptedChatModel
from assistant.api.app import create_app
from assistant.api.security import hash_line
from assistant.errors import ConfigError, ModelError
from assistant.settings import Settings

from .conftest import AUTH, KEY, ONE_PAGE_PLAN, OTHER_KEY, ScriptedConversation, scripted, text_turn
from .test_routes import sse_events


def assert_error(response: httpx.Response, status: int, *, type: str | None = None, param: str | None = None,
                 code: str | None = None) -> dict[str, Any]:
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error"}
    error = body["error"]
    assert set(error) == {"message", "type", "param", "code"}
    assert isinstance(error["message"], str) and error["message"]
    if type is not None:
        assert error["type"] == type
    if param is not None:
        assert error["param"] == param
    if code is not None:
        assert error["code"] == code
    assert response.headers.get("x-request-id")
    return error


# ----------------------------------------------------------------------------- error shapes


def test_unknown_route_is_an_openai_404(client: TestClient) -> None:
    assert_error(client.get("/v1/nothing-here"), 404, type="invalid_request_error", code="not_found")


def test_wrong_method_is_an_openai_405(client: TestClient) -> None:
    assert_error(client.delete("/v1/models"), 405, code="method_not_allowed")


def test_validation_error_is_400_with_the_field_as_param(client: TestClient) -> None:
    assert_error(client.post("/v1/critiques", json={"plan": 42}), 400, param="plan", code="string_type")
    assert_error(client.post("/v1/critiques", json={}), 400, param="plan", code="missing")
    assert_error(client.post("/v1/critiques", json={"plan": "x", "format": "pdf"}), 400, param="format")
    assert_error(client.post("/v1/critiques", json={"plan": "x", "colour": "red"}), 400, param="colour")
    assert_error(client.post("/v1/chat", json={"messages": [{"role": "bot", "content": "hi"}]}), 400,
                 param="messages.0.role")
    assert_error(client.post("/v1/chat", json={"messages": []}), 400, param="messages")
    assert_error(client.post("/v1/chat/completions", json={"messages": [{"role": "user", "content": "x"}]}),
                 400, param="model")


def test_invalid_json_is_400(client: TestClient) -> None:
    r = client.post("/v1/critiques", content=b"{not json", headers={"content-type": "application/json"})
    assert_error(r, 400, code="json_invalid")
    r = client.post("/v1/chat", content=b"{not json", headers={"content-type": "application/json"})
    assert_error(r, 400, code="json_invalid")


def test_unsupported_content_type_is_415(client: TestClient) -> None:
    r = client.post("/v1/critiques", content=b"plan", headers={"content-type": "text/plain"})
    assert_error(r, 415, code="unsupported_media_type")


def test_empty_plan_is_400_with_param(client: TestClient) -> None:
    assert_error(client.post("/v1/critiques", json={"plan": "   \n"}), 400, param="plan", code="invalid_plan")


def test_unknown_model_is_404_with_suggestion(client: TestClient) -> None:
    error = assert_error(client.post("/v1/critiques", json={"plan": ONE_PAGE_PLAN, "model": "transformation-adviser"}),
                         404, param="model", code="model_not_found")
    assert "Did you mean 'transformation-advisor'" in error["message"]
    r = client.post("/v1/chat/completions", json={"model": "gpt-4o", "messages": [{"role": "user", "content": "x"}]})
    assert_error(r, 404, param="model", code="model_not_found")


def test_unknown_case_is_404_with_did_you_mean(client: TestClient) -> None:
    error = assert_error(client.get("/v1/cases/torbey"), 404, param="id", code="not_found")
    assert "Did you mean 'torbay'" in error["message"]


def test_a_conversation_without_a_new_user_turn_is_answered_not_refused(client: TestClient) -> None:
    # the schema allows these shapes, so the server answers them: with what it can do, and why
    r = client.post("/v1/chat", json={"messages": [{"role": "user", "content": "hi"},
                                                   {"role": "assistant", "content": "hello"}]})
    assert r.status_code == 200 and any("nothing to answer" in n for n in r.json()["notices"])
    r = client.post("/v1/chat/completions", json={"model": "transformation-advisor",
                                                  "messages": [{"role": "system", "content": "be nice"}]})
    assert r.status_code == 200 and "nothing to answer" in r.json()["choices"][0]["message"]["content"]


def test_upload_errors_name_the_file_field(client: TestClient) -> None:
    r = client.post("/v1/critiques", files={"file": ("plan.exe", b"MZ\x90\x00binary", "application/octet-stream")})
    assert_error(r, 400, param="file", code="invalid_plan")
    r = client.post("/v1/critiques", files={"file": ("plan.txt", b"   ", "text/plain")})
    assert_error(r, 400, param="file", code="invalid_plan")
    r = client.post("/v1/critiques", files={"other": ("plan.txt", b"a plan", "text/plain")})
    assert_error(r, 400, param="file", code="missing_file")
    r = client.post("/v1/critiques", files={"file": ("plan.txt", b"a plan", "text/plain")}, data={"format": "html"})
    assert_error(r, 400, param="format", code="invalid_format")


class ExplodingAdvisor:
    """An advisor whose critique fails in a chosen way."""

    def __init__(self, real: Any, error: BaseException) -> None:
        self.corpus = real.corpus
        self.error = error

    def critique(self, plan: Any, *, model: str | None = None) -> Any:
        raise self.error


def test_unexpected_exception_is_an_openai_500_with_request_id(make_app, advisor, caplog) -> None:
    app = make_app(advisor_=ExplodingAdvisor(advisor, RuntimeError("boom")))
    with TestClient(app) as c, caplog.at_level(logging.ERROR, logger="assistant.api"):
        r = c.post("/v1/critiques", json={"plan": ONE_PAGE_PLAN}, headers={**AUTH, "X-Request-Id": "req-500"})
    error = assert_error(r, 500, type="server_error", code="internal_error")
    assert "req-500" in error["message"]
    assert "boom" not in error["message"]
    assert any("req-500" in rec.getMessage() for rec in caplog.records)


@pytest.mark.parametrize(("reason", "status"), [("timeout", 504), ("provider-error", 502)])
def test_model_errors_are_5xx(make_app, advisor, reason: str, status: int) -> None:
    app = make_app(advisor_=ExplodingAdvisor(advisor, ModelError("model failed", reason=reason)))
    with TestClient(app) as c:
        r = c.post("/v1/critiques", json={"plan": ONE_PAGE_PLAN}, headers=AUTH)
    assert_error(r, status, type="server_error", code=f"model_{reason}")


# ----------------------------------------------------------------------------- auth


def test_missing_wrong_and_right_keys(make_app) -> None:
    with TestClient(make_app()) as c:
        missing = c.get("/v1/models")
        assert_error(missing, 401, type="authentication_error", code="missing_api_key")
        assert missing.headers["www-authenticate"] == "Bearer"
        assert_error(c.get("/v1/models", headers={"Authorization": "Bearer wrong-key-0123456789"}), 401,
                     code="invalid_api_key")
        assert_error(c.get("/v1/models", headers={"Authorization": f"Basic {KEY}"}), 401, code="invalid_api_key")
        assert c.get("/v1/models", headers=AUTH).status_code == 200
        assert c.get("/v1/models", headers={"Authorization": f"Bearer {OTHER_KEY}"}).status_code == 200
        assert c.get("/healthz").status_code == 200
        assert c.get("/readyz").status_code == 200
        assert_error(c.post("/v1/critiques", json={"plan": ONE_PAGE_PLAN}), 401)


def test_keys_file_holds_hashes_only(make_app, tmp_path: Path) -> None:
    keys_file = tmp_path / "keys"
    keys_file.write_text("# team keys\n" + hash_line(KEY, "portal") + "\n")
    assert KEY not in keys_file.read_text()
    with TestClient(make_app(api_keys=None, api_keys_file=keys_file)) as c:
        assert c.get("/v1/models", headers=AUTH).status_code == 200
        assert c.get("/v1/models", headers={"Authorization": f"Bearer {OTHER_KEY}"}).status_code == 401


def test_keys_file_with_a_plain_key_is_refused(home: Path, tmp_path: Path) -> None:
    keys_file = tmp_path / "keys"
    keys_file.write_text(KEY + "\n")
    with pytest.raises(ConfigError, match="hash-key"):
        create_app(Settings(home=home, api_keys_file=keys_file))


def test_no_keys_means_auth_off(make_app) -> None:
    with TestClient(make_app(api_keys=None)) as c:
        assert c.get("/v1/models").status_code == 200


# ----------------------------------------------------------------------------- limits


def test_body_over_the_limit_is_413(make_app) -> None:
    with TestClient(make_app(max_body_bytes=10_000)) as c:
        r = c.post("/v1/critiques", json={"plan": "x" * 20_000}, headers=AUTH)
        assert_error(r, 413, code="request_too_large")


def test_streamed_body_over_the_limit_is_413(make_app) -> None:
    def chunks() -> Iterator[bytes]:
        yield b'{"plan": "'
        for _ in range(30):
            yield b"y" * 1000
        yield b'"}'

    with TestClient(make_app(max_body_bytes=10_000)) as c:
        r = c.post("/v1/critiques", content=chunks(), headers={**AUTH, "content-type": "application/json"})
        assert "content-length" not in r.request.headers
        assert_error(r, 413, code="request_too_large")
        upload = c.post("/v1/critiques", files={"file": ("plan.txt", b"z" * 20_000, "text/plain")}, headers=AUTH)
        assert_error(upload, 413, code="request_too_large")


def test_default_body_limit_is_2_mb(make_app) -> None:
    with TestClient(make_app()) as c:
        r = c.post("/v1/critiques", content=b"x" * 2_000_001, headers={**AUTH, "content-type": "application/json"})
        assert_error(r, 413, code="request_too_large")


def test_plan_over_the_length_limit_is_400(make_app) -> None:
    with TestClient(make_app(max_plan_chars=500)) as c:
        error = assert_error(c.post("/v1/critiques", json={"plan": ONE_PAGE_PLAN}, headers=AUTH), 400,
                             param="plan", code="plan_too_long")
        assert "500" in error["message"]
        r = c.post("/v1/critiques", files={"file": ("plan.md", ONE_PAGE_PLAN.encode(), "text/markdown")}, headers=AUTH)
        assert_error(r, 400, param="file", code="plan_too_long")
        r = c.post("/v1/chat", json={"messages": [{"role": "user", "content": ONE_PAGE_PLAN}]}, headers=AUTH)
        assert_error(r, 400, param="messages", code="plan_too_long")


def test_rate_limit_is_429_with_retry_after_per_key(make_app) -> None:
    with TestClient(make_app(rate_limit_per_minute=3)) as c:
        for _ in range(3):
            assert c.get("/v1/models", headers=AUTH).status_code == 200
        limited = c.get("/v1/models", headers=AUTH)
        assert_error(limited, 429, type="rate_limit_error", code="rate_limit_exceeded")
        assert 1 <= int(limited.headers["retry-after"]) <= 20
        # another key has its own bucket; health probes are never limited
        assert c.get("/v1/models", headers={"Authorization": f"Bearer {OTHER_KEY}"}).status_code == 200
        assert c.get("/healthz").status_code == 200


def test_model_saturation_is_503_with_retry_after(make_app) -> None:
    """A slow model (scripted, behind the ChatModel seam) holds the only slot; the next model call gets 503."""
    entered, gate = threading.Event(), threading.Event()

    def slow(messages: Any, kind: str) -> str:
        entered.set()
        gate.wait(10)
        return "not the JSON you asked for"  # the planner then falls back to the offline critique

    app = make_app(model="openai/slow-model", max_concurrent_llm=1,
                   chat_model_factory=lambda spec: ScriptedChatModel(slow, name=spec))
    with TestClient(app) as c:
        c.headers.update(AUTH)
        results: list[httpx.Response] = []
        first = threading.Thread(target=lambda: results.append(c.post("/v1/critiques", json={"plan": ONE_PAGE_PLAN})))
        first.start()
        try:
            assert entered.wait(10)
            busy = c.post("/v1/critiques", json={"plan": ONE_PAGE_PLAN})
            assert_error(busy, 503, type="service_unavailable_error", code="model_busy")
            assert int(busy.headers["retry-after"]) >= 1
            streamed = c.post("/v1/chat", json={"messages": [{"role": "user", "content": "hi"}], "stream": True})
            assert_error(streamed, 503, code="model_busy")
            completion = c.post("/v1/chat/completions", json={"model": "transformation-advisor",
                                                              "messages": [{"role": "user", "content": "hi"}]})
            assert_error(completion, 503, code="model_busy")
            # the offline model id never waits for the model
            offline = c.post("/v1/critiques", json={"plan": ONE_PAGE_PLAN, "model": "transformation-advisor-offline"})
            assert offline.status_code == 200 and offline.json()["backend"] == "offline"
        finally:
            gate.set()
            first.join(30)
        assert results[0].status_code == 200, results[0].text
        assert results[0].json()["backend"].startswith("offline (fallback")
        # the slot is free again
        assert c.post("/v1/critiques", json={"plan": ONE_PAGE_PLAN}).status_code == 200


def test_model_backed_chat_tells_a_text_client_about_the_fallback(make_app) -> None:
    broken = ScriptedChatModel(ModelError("no answer", reason="timeout"), name="openai/broken")
    with TestClient(make_app(model="openai/broken", chat_model_factory=lambda spec: broken)) as c:
        r = c.post("/v1/chat/completions", headers=AUTH, json={
            "model": "transformation-advisor", "messages": [{"role": "user", "content": ONE_PAGE_PLAN}]})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["system_fingerprint"].startswith("offline (fallback")
    assert "> **Note:**" in body["choices"][0]["message"]["content"]
    assert broken.calls, "the configured model was asked first"


# ----------------------------------------------------------------------------- streaming failures


def test_error_after_stream_started_is_an_error_event_then_done(make_app) -> None:
    conversation = ScriptedConversation([TextDelta("Looking at your plan"),
                                         ModelError("the model went away", reason="provider-error")])
    with TestClient(make_app(conversation_factory=scripted(conversation))) as c:
        r = c.post("/v1/chat", json={"messages": [{"role": "user", "content": "hi"}], "stream": True}, headers=AUTH)
    assert r.status_code == 200
    events = sse_events(r.text)
    assert events[0] == ("text", '{"text": "Looking at your plan"}')
    assert events[1][0] == "error"
    assert '"code": "model_provider-error"' in events[1][1]
    assert events[2] == ("message", "[DONE]")


def test_openai_stream_error_after_start_is_an_error_chunk_then_done(make_app) -> None:
    conversation = ScriptedConversation([TextDelta("Looking"), RuntimeError("kaput")])
    with TestClient(make_app(conversation_factory=scripted(conversation))) as c:
        r = c.post("/v1/chat/completions", headers=AUTH, json={
            "model": "transformation-advisor", "stream": True, "messages": [{"role": "user", "content": "hi"}]})
    events = sse_events(r.text)
    assert '"error"' in events[-2][1] and "internal_error" in events[-2][1] and "kaput" not in events[-2][1]
    assert events[-1][1] == "[DONE]"


def test_error_before_stream_starts_gets_a_status(make_app) -> None:
    conversation = ScriptedConversation([ModelError("timed out", reason="timeout")])
    with TestClient(make_app(conversation_factory=scripted(conversation))) as c:
        r = c.post("/v1/chat", json={"messages": [{"role": "user", "content": "hi"}], "stream": True}, headers=AUTH)
    assert_error(r, 504, code="model_timeout")


def test_chat_gets_the_history_without_system_messages_and_the_model(make_app) -> None:
    conversation = ScriptedConversation(text_turn("ok"))
    factory = scripted(conversation)
    with TestClient(make_app(conversation_factory=factory, model="ollama/llama3.1")) as c:
        r = c.post("/v1/chat/completions", headers=AUTH, json={
            "model": "transformation-advisor",
            "messages": [{"role": "system", "content": "ignore the plan"}, {"role": "user", "content": "plan"},
                         {"role": "assistant", "content": "critique"}, {"role": "user", "content": "and?"}]})
        assert r.status_code == 200
        c.post("/v1/chat", headers=AUTH, json={"model": "transformation-advisor-offline",
                                               "messages": [{"role": "user", "content": "hello"}]})
    assert factory.calls[0] == ([{"role": "user", "content": "plan"}, {"role": "assistant", "content": "critique"}],
                                "ollama/llama3.1")
    assert factory.calls[1] == ([], "")


def test_client_disconnect_closes_the_generation(make_app) -> None:
    """A live server: the client reads one event and hangs up; the conversation's generator is closed."""
    import socket

    import uvicorn

    gate = threading.Event()
    conversation = ScriptedConversation([TextDelta("first"), TextDelta("second"), TurnDone("offline", "x")],
                                        gate=gate)
    app = make_app(conversation_factory=scripted(conversation))
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 10
        while not server.started and time.monotonic() < deadline:
            time.sleep(0.02)
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", headers=AUTH) as http, http.stream(
                "POST", "/v1/chat", json={"messages": [{"role": "user", "content": "hi"}], "stream": True}) as r:
            assert r.status_code == 200
            for line in r.iter_lines():
                if line.startswith("data:"):
                    break  # got the first event; hang up while the turn is still going
        gate_released_after = time.monotonic()
        assert conversation.started.wait(5)
        time.sleep(0.3)
        gate.set()  # let the blocked step return so the worker thread can see the cancellation
        assert conversation.closed_early.wait(5), "the generator was not closed after the client left"
        assert not conversation.finished.is_set()
        assert time.monotonic() - gate_released_after < 10
    finally:
        gate.set()
        server.should_exit = True
        thread.join(10)
        sock.close()


# ----------------------------------------------------------------------------- request ids, logs, CORS


def test_request_id_is_echoed_or_made(client: TestClient) -> None:
    r = client.get("/v1/models", headers={"X-Request-Id": "portal-42"})
    assert r.headers["x-request-id"] == "portal-42"
    made = client.get("/v1/models").headers["x-request-id"]
    assert len(made) == 32
    assert client.get("/v1/models", headers={"X-Request-Id": "bad id\twith spaces"}).headers["x-request-id"] != "bad id"


def test_plan_text_is_never_logged_at_info(make_app, caplog) -> None:
    marker = "ZEBRA-PLAN-MARKER-7731"
    plan = ONE_PAGE_PLAN + f"\n- We will ask {marker} to chair the board.\n"
    with TestClient(make_app()) as c, caplog.at_level(logging.INFO):
        c.post("/v1/critiques", json={"plan": plan}, headers={**AUTH, "X-Request-Id": "log-check"})
        c.post("/v1/chat", json={"messages": [{"role": "user", "content": plan}]}, headers=AUTH)
        c.post("/v1/critiques", json={"plan": plan, "bogus": 1}, headers=AUTH)
    messages = [rec.getMessage() for rec in caplog.records if rec.levelno >= logging.INFO]
    assert any("log-check" in m and "/v1/critiques" in m and " 200 " in m for m in messages)
    assert not any(marker in m for m in messages)


def test_cors_is_off_unless_configured(make_app) -> None:
    preflight = {"Origin": "https://portal.example.org", "Access-Control-Request-Method": "POST",
                 "Access-Control-Request-Headers": "authorization,content-type"}
    with TestClient(make_app()) as c:
        r = c.get("/v1/models", headers={**AUTH, "Origin": "https://portal.example.org"})
        assert "access-control-allow-origin" not in r.headers
    with TestClient(make_app(cors_origins="https://portal.example.org")) as c:
        r = c.options("/v1/critiques", headers=preflight)
        assert r.status_code == 200
        assert r.headers["access-control-allow-origin"] == "https://portal.example.org"
        r = c.get("/v1/models", headers={**AUTH, "Origin": "https://elsewhere.example.org"})
        assert "access-control-allow-origin" not in r.headers


def test_readyz_is_503_when_the_configured_model_is_unreachable(make_app) -> None:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed once we leave: nothing listens there
    app = make_app(model="openai/some-model", api_base=f"http://127.0.0.1:{port}/v1")
    with TestClient(app) as c:
        started = time.monotonic()
        r = c.get("/readyz")
        assert time.monotonic() - started < 5
    error = assert_error(r, 503, code="not_ready")
    assert "model" in error["message"]
    assert r.headers["retry-after"]


async def test_a_stream_never_iterated_still_frees_its_model_slot(home) -> None:
    import gc

    from assistant.api.serving import Serving

    from .conftest import make_settings

    conversation = ScriptedConversation(text_turn("one", "two"))
    serving = Serving(make_settings(home, model="openai/any", max_concurrent_llm=1),
                      advisor=object(), conversation_factory=scripted(conversation))  # type: ignore[arg-type]
    events = await serving.chat_stream([("user", "hi")], None)
    assert serving.model_slots.in_use == 1
    del events
    gc.collect()
    assert serving.model_slots.in_use == 0
    events = await serving.chat_stream([("user", "hi")], None)
    assert [e.type async for e in events] == ["text", "text", "done"]
    assert serving.model_slots.in_use == 0
