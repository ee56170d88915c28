"""The core's blocking work, run from the event loop so that a client that leaves stops it.

The advisor and the conversation are synchronous (CPU work, blocking model calls), so they run
in worker threads. Each request gets a ``Cancellation`` (``advice/llm/deadline.py``) bound to
its work: when the client disconnects (a cancelled stream, or an ``http.disconnect`` while a
plain request is still working) it is cancelled, which stops the model call at once; the
worker then finishes with the offline fallback and its result is dropped.
"""

from __future__ import annotations

import functools
import threading
import time
from collections.abc import AsyncGenerator, Callable, Iterator
from typing import TypeVar

import anyio
import anyio.to_thread
from starlette.types import Receive

from ..advice.llm.deadline import Cancellation, cancellable
from .limits import ModelSlots

__all__ = ["Lease", "iterate_in_thread", "run_in_thread"]

T = TypeVar("T")
_END = object()


def _call_under(cancellation: Cancellation, work: Callable[[], T]) -> T:
    with cancellable(cancellation):
        return work()


async def run_in_thread(work: Callable[[], T], cancellation: Cancellation, receive: Receive | None = None) -> T:
    """``work()`` in a worker thread under ``cancellation``; a client disconnect (seen on
    ``receive`` once the request body has been read) cancels it."""
    if receive is None:
        return await anyio.to_thread.run_sync(functools.partial(_call_under, cancellation, work))
    result: list[T] = []
    async with anyio.create_task_group() as group:

        async def watch() -> None:
            while True:
                message = await receive()
                if message["type"] == "http.disconnect":
                    cancellation.cancel()
                    return

        group.start_soon(watch)
        try:
            result.append(await anyio.to_thread.run_sync(functools.partial(_call_under, cancellation, work)))
        finally:
            group.cancel_scope.cancel()
    return result[0]


async def iterate_in_thread(generator: Iterator[T], cancellation: Cancellation | None = None) -> AsyncGenerator[T, None]:
    """Advance a sync generator in worker threads. Cancelling or closing this cancels the model
    call in flight at once (so the step returns quickly), then closes the generator."""
    cancellation = cancellation or Cancellation()
    busy = threading.Lock()

    def step() -> object:
        with busy, cancellable(cancellation):
            return next(generator, _END)

    def close() -> None:
        with busy:
            close_generator = getattr(generator, "close", None)
            if close_generator is not None:
                close_generator()

    try:
        while True:
            item = await anyio.to_thread.run_sync(step, abandon_on_cancel=True)
            if item is _END:
                return
            yield item  # type: ignore[misc]
    finally:
        cancellation.cancel()
        with anyio.CancelScope(shield=True):
            await anyio.to_thread.run_sync(close)


class Lease:
    """A model slot held for one streamed turn, released exactly once however the stream ends."""

    def __init__(self, slots: ModelSlots | None) -> None:
        self._slots = slots
        self._started = time.monotonic()
        self._lock = threading.Lock()
        if slots is not None:
            slots.acquire()

    def release(self) -> None:
        with self._lock:
            slots, self._slots = self._slots, None
        if slots is not None:
            slots.release(time.monotonic() - self._started)
