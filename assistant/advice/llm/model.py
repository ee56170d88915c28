"""The ChatModel seam: everything the advisor needs from a language model.

``LiteLLMChatModel`` (in ``litellm_model``) is the real one; tests use scripted fakes.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

__all__ = ["ChatMessage", "ChatModel", "Completion", "Usage"]


@dataclass(frozen=True)
class ChatMessage:
    role: str  # system | user | assistant
    content: str


@dataclass
class Usage:
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost_usd: float | None = None
    latency_s: float = 0.0
    cached: bool = False


@dataclass
class Completion:
    text: str
    model: str
    usage: Usage = field(default_factory=Usage)
    raw: Any = None


@runtime_checkable
class ChatModel(Protocol):
    """A chat model. ``structured`` asks for JSON matching ``schema`` (a JSON Schema dict)."""

    @property
    def name(self) -> str: ...

    def complete(self, messages: Sequence[ChatMessage], *, max_tokens: int | None = None) -> Completion: ...

    def stream(self, messages: Sequence[ChatMessage], *, max_tokens: int | None = None) -> Iterator[str]: ...

    def structured(self, messages: Sequence[ChatMessage], schema: dict[str, Any], *,
                   max_tokens: int | None = None) -> Completion: ...
