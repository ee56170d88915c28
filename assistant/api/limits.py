"""Limits that keep one server healthy: body size, per-key request rate, failed authentication
per client address, concurrent model calls.

All are per process. With N workers the rate limit a key sees is up to N times the
setting (each worker keeps its own buckets) and up to N x ``max_concurrent_llm`` model calls
run at once; docs/api.md says so and how to size them.
"""

from __future__ import annotations

import json
import math
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .errors import RATE_LIMIT, UNAVAILABLE, APIError
from .protocol import ErrorBody, ErrorResponse

__all__ = ["AuthFailureThrottle", "BodySizeLimitMiddleware", "ModelSlots", "RateLimiter"]


def _too_large(limit: int) -> bytes:
    body = ErrorResponse(error=ErrorBody(
        message=f"The request body is over the limit of {limit:,} bytes.",
        type="invalid_request_error", param=None, code="request_too_large"))
    return json.dumps(body.model_dump()).encode()


class BodySizeLimitMiddleware:
    """Refuse request bodies over ``max_bytes`` with 413, whether or not they declare a length.

    A declared ``Content-Length`` over the limit is refused before reading anything. A body that
    grows past the limit while streaming stops being read; whatever the app then answers is
    replaced by the 413 (the app only sees a broken body).
    """

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        for name, value in scope.get("headers", []):
            if name == b"content-length":
                try:
                    declared = int(value)
                except ValueError:
                    declared = 0
                if declared > self.max_bytes:
                    await self._reject(send)
                    return
        received = 0
        exceeded = False
        responded = False

        async def limited_receive() -> Message:
            nonlocal received, exceeded
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    exceeded = True
                    raise _BodyTooLarge
            return message

        async def guarded_send(message: Message) -> None:
            nonlocal responded
            if exceeded:
                if not responded:
                    responded = True
                    await self._reject(send)
                return
            await send(message)

        with suppress(_BodyTooLarge):
            await self.app(scope, limited_receive, guarded_send)
        if exceeded and not responded:
            await self._reject(send)

    async def _reject(self, send: Send) -> None:
        body = _too_large(self.max_bytes)
        await send({"type": "http.response.start", "status": 413,
                    "headers": [(b"content-type", b"application/json"),
                                (b"content-length", str(len(body)).encode()),
                                (b"connection", b"close")]})
        await send({"type": "http.response.body", "body": body})


class _BodyTooLarge(Exception):
    """Raised inside the body reader once a request passes ``max_body_bytes``."""


@dataclass
class _Bucket:
    tokens: float
    updated: float


class RateLimiter:
    """A token bucket per caller: ``per_minute`` requests a minute, bursts up to ``per_minute``."""

    def __init__(self, per_minute: int, *, clock: Callable[[], float] | None = None) -> None:
        self.capacity = float(per_minute)
        self.rate = per_minute / 60.0
        self._clock = clock or time.monotonic
        self._buckets: dict[str, _Bucket] = {}
        self._lock = threading.Lock()
        self._last_sweep = self._clock()

    def take(self, caller: str) -> float:
        """Take one request for ``caller``; returns the tokens left, or raises a 429 APIError."""
        now = self._clock()
        with self._lock:
            if now - self._last_sweep > 300:
                self._sweep(now)
            bucket = self._buckets.get(caller)
            if bucket is None:
                bucket = self._buckets[caller] = _Bucket(self.capacity, now)
            bucket.tokens = min(self.capacity, bucket.tokens + (now - bucket.updated) * self.rate)
            bucket.updated = now
            if bucket.tokens < 1.0:
                wait = max(1, math.ceil((1.0 - bucket.tokens) / self.rate))
                raise APIError(429, f"Rate limit reached ({int(self.capacity)} requests a minute). "
                                    f"Retry in {wait} s.", type=RATE_LIMIT, code="rate_limit_exceeded",
                               headers={"Retry-After": str(wait),
                                        "X-RateLimit-Limit-Requests": str(int(self.capacity)),
                                        "X-RateLimit-Remaining-Requests": "0"})
            bucket.tokens -= 1.0
            return bucket.tokens

    def peek(self, caller: str) -> None:
        """Raise the 429 that ``take`` would, without taking anything."""
        now = self._clock()
        with self._lock:
            bucket = self._buckets.get(caller)
            if bucket is None:
                return
            tokens = min(self.capacity, bucket.tokens + (now - bucket.updated) * self.rate)
            if tokens < 1.0:
                wait = max(1, math.ceil((1.0 - tokens) / self.rate))
                raise APIError(429, f"Too many failed API-key attempts from this address. Retry in {wait} s.",
                               type=RATE_LIMIT, code="too_many_auth_failures", headers={"Retry-After": str(wait)})

    def _sweep(self, now: float) -> None:
        """Forget callers whose buckets have refilled: they cost nothing to recreate."""
        full = self.capacity / self.rate
        for caller in [c for c, b in self._buckets.items() if now - b.updated > full]:
            del self._buckets[caller]
        self._last_sweep = now


class AuthFailureThrottle:
    """At most ``per_minute`` failed API-key attempts a minute per client address (bursts up to the
    same); past that the address gets 429 with ``Retry-After`` before its key is even looked at."""

    def __init__(self, per_minute: int, *, clock: Callable[[], float] | None = None) -> None:
        self._bucket = RateLimiter(per_minute, clock=clock)

    def check(self, address: str) -> None:
        """Raise 429 when ``address`` has used up its failed attempts."""
        self._bucket.peek(address)

    def fail(self, address: str) -> None:
        """Count one failed attempt (never raises: the 401 is answered, the next attempt waits)."""
        with suppress(APIError):
            self._bucket.take(address)


class ModelSlots:
    """At most ``limit`` language-model calls at once in this process; the next gets a 503.

    ``Retry-After`` is the recent average call time, so a client waits about one call's worth.
    Works across threads and event loops (a plain semaphore, never blocking).
    """

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._semaphore = threading.BoundedSemaphore(limit)
        self._lock = threading.Lock()
        self._in_use = 0
        self._average_s = 5.0

    @property
    def in_use(self) -> int:
        return self._in_use

    def acquire(self) -> None:
        if not self._semaphore.acquire(blocking=False):
            wait = max(1, min(60, math.ceil(self._average_s)))
            raise APIError(503, f"The model is busy ({self.limit} calls in progress). Retry in {wait} s.",
                           type=UNAVAILABLE, code="model_busy", headers={"Retry-After": str(wait)})
        with self._lock:
            self._in_use += 1

    def release(self, duration_s: float | None = None) -> None:
        with self._lock:
            self._in_use -= 1
            if duration_s is not None:
                self._average_s = 0.8 * self._average_s + 0.2 * duration_s
        self._semaphore.release()

    @contextmanager
    def hold(self) -> Iterator[None]:
        self.acquire()
        started = time.monotonic()
        try:
            yield
        finally:
            self.release(time.monotonic() - started)
