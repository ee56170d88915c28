"""Deadlines and cancellation for model calls, enforced whatever the provider does.

A provider's own timeout is a gap between bytes, not a deadline: a server that sends its
headers and then one byte a second never trips it. So every model call runs as a task on one
background event loop (``ModelLoop``), where it can be cut off exactly:

    connect      seconds to open the connection            (httpx's connect timeout)
    first byte   seconds until the first byte, and the longest gap between bytes after it
    total        seconds for the whole call, retries and backoff included

A ``Cancellation`` is a switch a face holds for one request or turn (the API flips it when the
client disconnects, the chat window when the user presses Escape): flipping it cancels every
model call made under it at once. ``cancellable`` and ``time_budget`` bind one to the current
context, so the core code between the face and the model needs no extra parameters.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextvars
import threading
import time
from collections.abc import Awaitable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from typing import Any, TypeVar

__all__ = [
    "Cancellation",
    "Deadline",
    "ModelCancelled",
    "ModelTimedOut",
    "cancellable",
    "close_on_model_loop",
    "current_cancellation",
    "remaining_budget",
    "run_on_model_loop",
    "time_budget",
]

T = TypeVar("T")


class ModelTimedOut(Exception):
    """A model call passed its deadline (``stage``: connect, first-byte or total)."""

    def __init__(self, stage: str, seconds: float) -> None:
        super().__init__(f"{stage.replace('-', ' ')} deadline reached")
        self.stage = stage
        self.seconds = seconds


class ModelCancelled(Exception):
    """The caller went away (a closed connection, a cancelled turn) and the call was stopped."""


@dataclass(frozen=True)
class Deadline:
    """The three limits of one model call, in seconds."""

    total_s: float
    connect_s: float = 5.0
    first_byte_s: float | None = None  # None: the total

    def ends_at(self, started: float | None = None) -> float:
        end = (started if started is not None else time.monotonic()) + self.total_s
        budget = _budget.get()
        return min(end, budget) if budget is not None else end

    def httpx_timeout(self, remaining_s: float) -> Any:
        """The transport's own limits for a call with ``remaining_s`` left (httpx.Timeout)."""
        import httpx

        remaining_s = max(0.05, remaining_s)
        read = min(remaining_s, self.first_byte_s or remaining_s)
        return httpx.Timeout(remaining_s, connect=min(self.connect_s, remaining_s), read=read)


class Cancellation:
    """Cancels the model calls made under it; thread-safe, one-way."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._futures: set[concurrent.futures.Future[Any]] = set()
        self._event = threading.Event()

    @property
    def cancelled(self) -> bool:
        return self._event.is_set()

    def cancel(self) -> None:
        with self._lock:
            self._event.set()
            futures = list(self._futures)
        for future in futures:
            future.cancel()

    def wait(self, seconds: float) -> bool:
        """Sleep up to ``seconds``; True when cancelled meanwhile."""
        return self._event.wait(max(0.0, seconds))

    def _track(self, future: concurrent.futures.Future[Any]) -> None:
        with self._lock:
            if self._event.is_set():
                future.cancel()
            else:
                self._futures.add(future)

    def _untrack(self, future: concurrent.futures.Future[Any]) -> None:
        with self._lock:
            self._futures.discard(future)


_current: contextvars.ContextVar[Cancellation | None] = contextvars.ContextVar("model_cancellation", default=None)
_budget: contextvars.ContextVar[float | None] = contextvars.ContextVar("model_budget", default=None)


def current_cancellation() -> Cancellation | None:
    return _current.get()


@contextmanager
def cancellable(cancellation: Cancellation | None) -> Iterator[Cancellation | None]:
    """Model calls made inside (in this thread or context) stop when ``cancellation`` is cancelled."""
    token = _current.set(cancellation)
    try:
        yield cancellation
    finally:
        _current.reset(token)


@contextmanager
def time_budget(seconds: float | None) -> Iterator[None]:
    """All model calls inside end within ``seconds`` from now (nested budgets only shrink)."""
    if seconds is None:
        yield
        return
    end = time.monotonic() + seconds
    outer = _budget.get()
    token = _budget.set(min(end, outer) if outer is not None else end)
    try:
        yield
    finally:
        _budget.reset(token)


def remaining_budget() -> float | None:
    end = _budget.get()
    return None if end is None else end - time.monotonic()


class _ModelLoop:
    """One daemon thread running an asyncio loop for every model call of the process."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None

    def loop(self) -> asyncio.AbstractEventLoop:
        with self._lock:
            if self._loop is None or self._loop.is_closed():
                loop = asyncio.new_event_loop()
                thread = threading.Thread(target=loop.run_forever, name="model-calls", daemon=True)
                thread.start()
                self._loop = loop
            return self._loop


_LOOP = _ModelLoop()


def run_on_model_loop(make: Any, *, ends_at: float, stage: str = "total") -> Any:
    """Run ``make()`` (a coroutine factory) on the model loop until ``ends_at`` (monotonic).

    Raises ``ModelTimedOut`` at the deadline and ``ModelCancelled`` when the current
    ``Cancellation`` fires; either way the task is cancelled, which closes its connection.
    """
    cancellation = _current.get()
    if cancellation is not None and cancellation.cancelled:
        raise ModelCancelled("cancelled before the call")
    seconds = ends_at - time.monotonic()
    if seconds <= 0:
        raise ModelTimedOut(stage, 0.0)

    async def bounded() -> Any:
        limit = asyncio.timeout(seconds)
        try:
            async with limit:
                coro: Awaitable[Any] = make()
                return await coro
        except TimeoutError:
            if limit.expired():
                raise ModelTimedOut(stage, seconds) from None
            raise

    future = asyncio.run_coroutine_threadsafe(bounded(), _LOOP.loop())
    if cancellation is not None:
        cancellation._track(future)
    try:
        return future.result(timeout=seconds + 1.0)
    except concurrent.futures.TimeoutError as exc:  # the loop itself is stuck: never wait longer
        future.cancel()
        raise ModelTimedOut(stage, seconds) from exc
    except concurrent.futures.CancelledError as exc:
        raise ModelCancelled("the call was cancelled") from exc
    finally:
        if cancellation is not None:
            cancellation._untrack(future)


def close_on_model_loop(stream: Any) -> None:
    """Close a provider's async stream on the model loop, releasing its connection; best effort,
    and done even when the current turn was cancelled."""
    aclose = getattr(stream, "aclose", None)
    if aclose is None:
        return
    token = _current.set(None)
    try:
        with suppress(Exception):  # the connection is gone either way
            run_on_model_loop(aclose, ends_at=time.monotonic() + 2.0, stage="close")
    finally:
        _current.reset(token)
