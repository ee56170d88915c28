"""A scripted ChatModel for tests and evals: no network, no litellm.

    model = ScriptedChatModel(['{"verdict": ...}', ModelError("slow", reason="timeout")])

Each call (complete, stream or structured) takes the next script entry: a string is the
answer, an exception is raised, and a callable is called with the messages and the call kind
(``"complete"``, ``"stream"`` or ``"structured"``) to produce either. The last entry repeats.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from .model import ChatMessage, Completion, Usage

__all__ = ["Call", "ScriptedChatModel"]

Reply = str | BaseException | Callable[[Sequence[ChatMessage], str], "str | BaseException"]


@dataclass(frozen=True)
class Call:
    kind: str
    messages: tuple[ChatMessage, ...]
    max_tokens: int | None
    schema: dict[str, Any] | None = None


class ScriptedChatModel:
    def __init__(self, script: Sequence[Reply] | Reply = "", *, name: str = "scripted/test",
                 stream_script: Sequence[Reply] | None = None) -> None:
        self._name = name
        self._script: list[Reply] = list(script) if isinstance(script, list | tuple) else [script]  # type: ignore[list-item]
        self._stream_script: list[Reply] | None = list(stream_script) if stream_script is not None else None
        self.calls: list[Call] = []

    @property
    def name(self) -> str:
        return self._name

    def _next(self, kind: str, messages: Sequence[ChatMessage]) -> str:
        script = self._stream_script if kind == "stream" and self._stream_script is not None else self._script
        entry: Reply = (script.pop(0) if len(script) > 1 else script[0]) if script else ""
        if callable(entry) and not isinstance(entry, BaseException):
            entry = entry(messages, kind)
        if isinstance(entry, BaseException):
            raise entry
        return entry

    def complete(self, messages: Sequence[ChatMessage], *, max_tokens: int | None = None) -> Completion:
        self.calls.append(Call("complete", tuple(messages), max_tokens))
        text = self._next("complete", messages)
        return Completion(text=text, model=self._name, usage=Usage(completion_tokens=len(text.split())))

    def structured(self, messages: Sequence[ChatMessage], schema: dict[str, Any], *,
                   max_tokens: int | None = None) -> Completion:
        self.calls.append(Call("structured", tuple(messages), max_tokens, schema))
        text = self._next("structured", messages)
        return Completion(text=text, model=self._name, usage=Usage(completion_tokens=len(text.split())))

    def stream(self, messages: Sequence[ChatMessage], *, max_tokens: int | None = None) -> Iterator[str]:
        self.calls.append(Call("stream", tuple(messages), max_tokens))
        text = self._next("stream", messages)
        words = text.split(" ")
        for n, word in enumerate(words):
            yield word + (" " if n < len(words) - 1 else "")
