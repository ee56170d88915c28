"""A live `assistant serve` on loopback, driven by real OpenAI clients: the openai SDK and litellm."""

from __future__ import annotations

import contextlib
import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import openai
import pytest

from assistant.domain import Critique

from .conftest import KEY, ONE_PAGE_PLAN


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_ready(base: str, process: subprocess.Popen[bytes], log: Path, timeout: float = 90) -> None:
    """Wait until a started `assistant serve` answers /readyz; fail with its log if it exits or hangs."""
    deadline = time.monotonic() + timeout
    while True:
        if process.poll() is not None:
            pytest.fail(f"assistant serve exited with {process.returncode}:\n{log.read_text()}")
        with contextlib.suppress(httpx.TransportError):  # not listening yet: ask again
            if httpx.get(base + "/readyz", timeout=2).status_code == 200:
                return
        if time.monotonic() > deadline:
            pytest.fail(f"assistant serve did not become ready:\n{log.read_text()}")
        time.sleep(0.2)


@pytest.fixture(scope="module")
def live_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    home = tmp_path_factory.mktemp("live-home")
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("ASSISTANT_")}
    env.update({"ASSISTANT_HOME": str(home), "ASSISTANT_API_KEYS": KEY, "LITELLM_LOCAL_MODEL_COST_MAP": "True",
                "PYTHONUNBUFFERED": "1"})
    log_path = Path(home) / "server.log"
    with open(log_path, "wb") as log:
        process = subprocess.Popen([sys.executable, "-m", "assistant", "serve", "--host", "127.0.0.1",
                                    "--port", str(port)], env=env, stdout=log, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        wait_ready(base, process, log_path)
        yield base
    finally:
        process.terminate()
        try:
            process.wait(15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(5)


@pytest.fixture
def sdk(live_server: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=live_server + "/v1", api_key=KEY, max_retries=0, timeout=60)


def test_openai_sdk_lists_models(sdk: openai.OpenAI) -> None:
    ids = [m.id for m in sdk.models.list()]
    assert ids == ["transformation-advisor", "transformation-advisor-offline"]


def test_openai_sdk_gets_a_critique(sdk: openai.OpenAI) -> None:
    completion = sdk.chat.completions.create(
        model="transformation-advisor", messages=[{"role": "user", "content": ONE_PAGE_PLAN}])
    assert completion.object == "chat.completion"
    assert completion.choices[0].finish_reason == "stop"
    content = completion.choices[0].message.content or ""
    assert "**Sources**" in content
    assert completion.system_fingerprint == "offline"
    assert completion.usage is not None and completion.usage.completion_tokens > 0


def test_openai_sdk_streams_a_follow_up(sdk: openai.OpenAI) -> None:
    first = sdk.chat.completions.create(model="transformation-advisor-offline",
                                        messages=[{"role": "user", "content": ONE_PAGE_PLAN}])
    stream = sdk.chat.completions.create(
        model="transformation-advisor-offline", stream=True,
        messages=[{"role": "user", "content": ONE_PAGE_PLAN},
                  {"role": "assistant", "content": first.choices[0].message.content or ""},
                  {"role": "user", "content": "What would a boundary-spanning role look like for our district nurses?"}])
    pieces: list[str] = []
    finish: list[str] = []
    for chunk in stream:
        assert chunk.object == "chat.completion.chunk"
        for choice in chunk.choices:
            if choice.delta.content:
                pieces.append(choice.delta.content)
            if choice.finish_reason:
                finish.append(choice.finish_reason)
    assert len(pieces) > 2
    assert finish == ["stop"]
    assert "boundary" in "".join(pieces).lower()


def test_openai_sdk_sees_openai_errors(live_server: str, sdk: openai.OpenAI) -> None:
    with pytest.raises(openai.NotFoundError) as not_found:
        sdk.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": "hi"}])
    assert not_found.value.code == "model_not_found"
    bad_key = openai.OpenAI(base_url=live_server + "/v1", api_key="not-the-key-123456", max_retries=0)
    with pytest.raises(openai.AuthenticationError):
        bad_key.models.list()


def test_litellm_as_a_client(live_server: str) -> None:
    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
    import litellm

    kwargs = {"model": "openai/transformation-advisor", "api_base": live_server + "/v1", "api_key": KEY,
              "messages": [{"role": "user", "content": ONE_PAGE_PLAN}], "num_retries": 0, "timeout": 60}
    response = litellm.completion(**kwargs)
    plain = response.choices[0].message.content
    assert plain and "**Sources**" in plain
    streamed = "".join(chunk.choices[0].delta.content or "" for chunk in litellm.completion(stream=True, **kwargs))
    assert streamed == plain  # offline is deterministic: the stream says exactly what the plain call did


def test_json_critique_and_sse_chat_over_http(live_server: str) -> None:
    headers = {"Authorization": f"Bearer {KEY}", "X-Request-Id": "live-1"}
    with httpx.Client(base_url=live_server, headers=headers, timeout=60) as http:
        r = http.post("/v1/critiques", json={"plan": ONE_PAGE_PLAN})
        assert r.status_code == 200 and r.headers["x-request-id"] == "live-1"
        Critique.model_validate(r.json())
        events: list[str] = []
        with http.stream("POST", "/v1/chat", json={"messages": [{"role": "user", "content": ONE_PAGE_PLAN}],
                                                    "stream": True}) as stream:
            for line in stream.iter_lines():
                if line.startswith("event:"):
                    events.append(line.split(":", 1)[1].strip())
                elif line.startswith("data:") and line[5:].strip() == "[DONE]":
                    events.append("[DONE]")
        assert events[0] == "text" and "critique" in events and events[-2:] == ["done", "[DONE]"]
        health = httpx.get(live_server + "/healthz")
        assert json.loads(health.text) == {"status": "ok"}
