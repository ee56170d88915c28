"""Limits sized to cost: chat history caps, failed-authentication throttling, and what the schema
allows being what the server accepts."""

from __future__ import annotations

import logging
import time

import pytest
from fastapi.testclient import TestClient

from assistant.api.limits import AuthFailureThrottle
from assistant.api.protocol import ErrorResponse

from .conftest import AUTH, ScriptedConversation, scripted, text_turn


def _error(response, status: int, code: str) -> dict:  # type: ignore[no-untyped-def]
    assert response.status_code == status, response.text
    body = ErrorResponse.model_validate(response.json()).error
    assert body.code == code
    return body.model_dump()


def test_too_many_messages_is_400_before_any_work(make_app) -> None:  # type: ignore[no-untyped-def]
    factory = scripted(ScriptedConversation(text_turn("hi")))
    with TestClient(make_app(conversation_factory=factory, max_chat_messages=10)) as client:
        messages = [{"role": "user" if i % 2 == 0 else "assistant", "content": "x"} for i in range(11)]
        error = _error(client.post("/v1/chat", json={"messages": messages}, headers=AUTH), 400, "too_many_messages")
        assert error["param"] == "messages" and "10" in error["message"]
        assert not factory.calls  # refused before the conversation was rebuilt


def test_a_history_over_the_character_cap_is_413_quickly(make_app) -> None:  # type: ignore[no-untyped-def]
    factory = scripted(ScriptedConversation(text_turn("hi")))
    with TestClient(make_app(conversation_factory=factory, max_chat_chars=100_000)) as client:
        messages = [{"role": "user", "content": "a plan line. " * 3000},
                    {"role": "assistant", "content": "noted " * 10_000},
                    {"role": "user", "content": "and this? " * 3000}]
        began = time.monotonic()
        response = client.post("/v1/chat/completions", json={"model": "transformation-advisor", "messages": messages},
                               headers=AUTH)
        _error(response, 413, "conversation_too_long")
        assert time.monotonic() - began < 1.0 and not factory.calls


def test_failed_keys_are_throttled_per_address(make_app) -> None:  # type: ignore[no-untyped-def]
    with TestClient(make_app(auth_failures_per_minute=5)) as client:
        statuses = [client.get("/v1/models", headers={"Authorization": "Bearer wrong-key-0123456789"}).status_code
                    for _ in range(8)]
        assert statuses[:5] == [401] * 5 and statuses[5:] == [429] * 3
        throttled = client.get("/v1/models", headers=AUTH)  # even the right key waits: the address is throttled
        assert throttled.status_code == 429 and int(throttled.headers["Retry-After"]) >= 1
        assert throttled.json()["error"]["code"] == "too_many_auth_failures"


def test_the_throttle_refills_and_keeps_addresses_apart() -> None:
    now = [0.0]
    throttle = AuthFailureThrottle(2, clock=lambda: now[0])
    throttle.fail("ip:a")
    throttle.fail("ip:a")
    with pytest.raises(Exception, match="Too many failed"):
        throttle.check("ip:a")
    throttle.check("ip:b")  # another address is not affected
    now[0] += 31.0  # a minute's allowance of 2 refills one attempt every 30 s
    throttle.check("ip:a")


@pytest.mark.parametrize("messages", [
    [{"role": "user", "content": "x"}, {"role": "tool", "content": "tool output", "tool_call_id": "t1"}],
    [{"role": "system", "content": "be nice"}],
    [{"role": "user", "content": ""}],
])
def test_shapes_the_schema_allows_are_answered(make_app, messages) -> None:  # type: ignore[no-untyped-def]
    conversation = ScriptedConversation(text_turn("What I can do: critique a plan."))
    with TestClient(make_app(conversation_factory=scripted(conversation))) as client:
        response = client.post("/v1/chat/completions", json={"model": "transformation-advisor-offline",
                                                              "messages": messages}, headers=AUTH)
        assert response.status_code == 200, response.text
        assert response.json()["choices"][0]["message"]["content"]


def test_a_conversation_that_ends_with_the_assistant_gets_a_notice(make_app) -> None:  # type: ignore[no-untyped-def]
    factory = scripted(ScriptedConversation(text_turn("What I can do.")))
    with TestClient(make_app(conversation_factory=factory)) as client:
        response = client.post("/v1/chat", json={"messages": [{"role": "user", "content": "hi"},
                                                              {"role": "assistant", "content": "hello"}]},
                               headers=AUTH)
        assert response.status_code == 200
        assert any("nothing to answer" in n for n in response.json()["notices"])
        assert factory.calls[0][1] == ""  # answered offline: no model is asked about nothing


def test_upload_errors_log_no_user_content(make_app, caplog: pytest.LogCaptureFixture,
                                           capfd: pytest.CaptureFixture[str]) -> None:
    secret = b"CONFIDENTIAL-PLAN-TEXT-4711"
    broken_pdf = b"%PDF-1.7\n1 0 obj << /Length 99999 >> stream\n" + secret + b"\nendstream endobj\n%%EOF"
    uploads = [("plan.pdf", broken_pdf, "application/pdf"), ("plan.png", b"\x89PNG\r\n\x1a\n" + secret, "image/png"),
               ("plan.docx", b"PK\x03\x04" + secret, "application/octet-stream"),
               ("plan.txt", secret + b"\x00\xff\xfe" * 50, "text/plain")]
    with caplog.at_level(logging.DEBUG), TestClient(make_app(log_level="DEBUG")) as client:
        for name, data, kind in uploads:
            response = client.post("/v1/critiques", files={"file": (name, data, kind)}, headers=AUTH)
            assert response.status_code == 400, (name, response.text)
            assert "CONFIDENTIAL" not in response.text
    captured = capfd.readouterr()
    logged = "\n".join(r.getMessage() for r in caplog.records)
    for where in (captured.err, captured.out, logged):
        assert "CONFIDENTIAL" not in where
    assert "Traceback" not in captured.err and "Warning" not in captured.err
