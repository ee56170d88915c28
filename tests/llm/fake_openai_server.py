"""A real OpenAI-compatible HTTP server on loopback, with scripted faults, for wire tests.

The model name in the request picks the behaviour (``openai/<behaviour>`` through litellm):

    plain          answer with the scripted reply (streams too when asked)
    truncated      stream two chunks, then drop the connection: no finish_reason, no [DONE]
    cut            stream two chunks, then end the response cleanly: no finish_reason, no [DONE]
    error500       HTTP 500 with an OpenAI-shaped error body
    ratelimit      HTTP 429 with Retry-After: 0
    flaky          HTTP 500 on the first request, then like ``plain``
    slow           sleep ``slow_s`` before answering (to trip the client's timeout)
    malformed      HTTP 200 whose body is not JSON
    reject-schema  HTTP 422 for a json_schema response_format (as llama.cpp's server does), else plain
    strict-format  HTTP 400 for any response_format but a bare {"type": "json_object"}, else plain
    trickle        headers at once, then the answer one byte every ``trickle_s`` (streamed: one SSE chunk
                   of a long answer every ``trickle_s``), for up to ten minutes
    hang           accept the request and never answer (not even headers) until the client leaves
    ratelimit-wait HTTP 429 with Retry-After: 30

``disconnects`` records (behaviour, monotonic time) when a trickling or hanging request saw its
client go away, so tests can measure how soon a cancelled call really stopped.

Replies are scripted per behaviour: ``server.script("plain", "first", "second")`` answers
"first", then "second" for every later request. Every request body is kept in ``requests``.
"""

from __future__ import annotations

import asyncio
import json
import socket
import threading
import time
from collections.abc import AsyncIterator
from typing import Any

import uvicorn
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, PlainTextResponse, Response, StreamingResponse

__all__ = ["FakeOpenAIServer"]


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _error(status: int, message: str, kind: str) -> JSONResponse:
    return JSONResponse({"error": {"message": message, "type": kind, "param": None, "code": None}},
                        status_code=status)


class FakeOpenAIServer:
    """Start with ``with FakeOpenAIServer() as server:``; ``server.api_base`` is the /v1 URL."""

    def __init__(self, *, default_reply: str = "Hello from the fake model.", slow_s: float = 2.0,
                 token_delay_s: float = 0.0, latency_s: float = 0.0, trickle_s: float = 1.0) -> None:
        self.default_reply = default_reply
        self.trickle_s = trickle_s
        self.disconnects: list[tuple[str, float]] = []
        self.arrivals: list[float] = []  # monotonic time each request arrived
        self.slow_s = slow_s
        self.token_delay_s = token_delay_s
        self.latency_s = latency_s
        self.requests: list[dict[str, Any]] = []
        self._scripts: dict[str, list[str]] = {}
        self._lock = threading.Lock()
        self.port = _free_port()
        self.app = self._build_app()
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None

    @property
    def api_base(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def script(self, behaviour: str, *replies: str) -> None:
        with self._lock:
            self._scripts[behaviour] = list(replies)

    def reset(self) -> None:
        with self._lock:
            self._scripts.clear()
            self.requests.clear()
            self.disconnects.clear()
            self.arrivals.clear()

    def count(self, behaviour: str | None = None) -> int:
        return sum(1 for r in self.requests if behaviour is None or r.get("model") == behaviour)

    def _reply(self, behaviour: str) -> str:
        with self._lock:
            queue = self._scripts.get(behaviour)
            if not queue:
                return self.default_reply
            return queue.pop(0) if len(queue) > 1 else queue[0]

    # --- the app -------------------------------------------------------------------------------

    def _build_app(self) -> FastAPI:
        app = FastAPI()

        @app.get("/v1/models")
        async def models() -> dict[str, Any]:
            return {"object": "list", "data": [{"id": "plain", "object": "model", "owned_by": "tests"}]}

        @app.post("/v1/chat/completions")
        async def chat(request: Request) -> Response:
            body = await request.json()
            with self._lock:
                self.requests.append(body)
                self.arrivals.append(time.monotonic())
                seen = sum(1 for r in self.requests if r.get("model") == body.get("model"))
            behaviour = str(body.get("model", "plain"))
            stream = bool(body.get("stream"))
            if self.latency_s:
                await asyncio.sleep(self.latency_s)
            if behaviour == "error500" or (behaviour == "flaky" and seen == 1):
                return _error(500, "The fake server failed on purpose.", "server_error")
            if behaviour == "ratelimit":
                resp = _error(429, "Slow down (fake rate limit).", "rate_limit_exceeded")
                resp.headers["Retry-After"] = "0"
                return resp
            if behaviour == "ratelimit-wait":
                resp = _error(429, "Slow down for a long while (fake rate limit).", "rate_limit_exceeded")
                resp.headers["Retry-After"] = "30"
                return resp
            if behaviour == "hang":
                deadline = time.monotonic() + 600
                while time.monotonic() < deadline and not await request.is_disconnected():
                    await asyncio.sleep(0.05)
                self.disconnects.append((behaviour, time.monotonic()))
                return _error(500, "gave up", "server_error")
            if behaviour == "trickle":
                text = self._reply(behaviour)
                source = self._trickle_sse(text) if stream else self._trickle_json(behaviour, text, body)
                return StreamingResponse(self._watched(behaviour, source),
                                         media_type="text/event-stream" if stream else "application/json")
            if behaviour == "malformed":
                return PlainTextResponse('{"id": "x", "choices": [ {"message": ', media_type="application/json")
            if behaviour == "reject-schema":
                fmt = body.get("response_format") or {}
                if fmt.get("type") == "json_schema":
                    return _error(422, "response_format json_schema is not supported", "invalid_request_error")
            if behaviour == "strict-format":
                fmt = body.get("response_format")
                if fmt is not None and fmt != {"type": "json_object"}:
                    return _error(400, "Unsupported response_format schema", "invalid_request_error")
            if behaviour == "slow":
                await asyncio.sleep(self.slow_s)
            text = self._reply(behaviour)
            if stream:
                return StreamingResponse(self._sse(behaviour, text, truncated=behaviour in ("truncated", "cut"),
                                                   drop=behaviour == "truncated"),
                                         media_type="text/event-stream")
            return JSONResponse(self._completion(behaviour, text, body))

        return app

    @staticmethod
    def _completion(model: str, text: str, body: dict[str, Any]) -> dict[str, Any]:
        prompt_tokens = sum(len(str(m.get("content", "")).split()) for m in body.get("messages", []))
        completion_tokens = len(text.split())
        return {
            "id": "chatcmpl-fake",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": model,
            "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
                      "total_tokens": prompt_tokens + completion_tokens},
        }

    async def _sse(self, model: str, text: str, *, truncated: bool, drop: bool = False) -> AsyncIterator[bytes]:
        words = text.split(" ")
        pieces = [w + (" " if i < len(words) - 1 else "") for i, w in enumerate(words)]
        if truncated:
            pieces = pieces[:2]
        for n, piece in enumerate(pieces):
            chunk = {"id": "chatcmpl-fake", "object": "chat.completion.chunk", "created": int(time.time()),
                     "model": model,
                     "choices": [{"index": 0, "delta": ({"role": "assistant"} if n == 0 else {}) | {"content": piece},
                                  "finish_reason": None}]}
            yield f"data: {json.dumps(chunk)}\n\n".encode()
            if self.token_delay_s:
                await asyncio.sleep(self.token_delay_s)
        if drop:
            raise ConnectionResetError("the fake server drops the stream on purpose")
        if truncated:
            return
        done = {"id": "chatcmpl-fake", "object": "chat.completion.chunk", "created": int(time.time()), "model": model,
                "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]}
        yield f"data: {json.dumps(done)}\n\n".encode()
        yield b"data: [DONE]\n\n"

    async def _watched(self, behaviour: str, source: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
        try:
            async for piece in source:
                yield piece
        finally:
            self.disconnects.append((behaviour, time.monotonic()))

    async def _trickle_json(self, behaviour: str, text: str, body: dict[str, Any]) -> AsyncIterator[bytes]:
        payload = json.dumps(self._completion(behaviour, text, body)).encode()
        deadline = time.monotonic() + 600
        for i in range(len(payload)):
            if time.monotonic() > deadline:
                return
            yield payload[i:i + 1]
            await asyncio.sleep(self.trickle_s)

    async def _trickle_sse(self, text: str) -> AsyncIterator[bytes]:
        deadline = time.monotonic() + 600
        n = 0
        while time.monotonic() < deadline:
            chunk = {"id": "chatcmpl-fake", "object": "chat.completion.chunk", "created": int(time.time()),
                     "model": "trickle", "choices": [{"index": 0, "delta": {"content": f"{text} "},
                                                      "finish_reason": None}]}
            yield f"data: {json.dumps(chunk)}\n\n".encode()
            n += 1
            await asyncio.sleep(self.trickle_s)

    # --- lifecycle -----------------------------------------------------------------------------

    def start(self) -> FakeOpenAIServer:
        config = uvicorn.Config(self.app, host="127.0.0.1", port=self.port, log_level="critical",
                                lifespan="off", access_log=False)
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, name="fake-openai-server", daemon=True)
        self._thread.start()
        deadline = time.monotonic() + 10
        while not self._server.started:
            if time.monotonic() > deadline or not self._thread.is_alive():
                raise RuntimeError("the fake OpenAI server did not start")
            time.sleep(0.01)
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=5)

    def __enter__(self) -> FakeOpenAIServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
