"""The LLM backend: a small ChatModel seam, litellm behind it, and the grounded planner.

Importing this package is cheap: the names below load their modules on first use, and litellm
itself is imported only when a model is first called.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .cache import ResponseCache
    from .litellm_model import LiteLLMChatModel, TextStream, get_chat_model
    from .model import ChatMessage, ChatModel, Completion, Usage
    from .planner import (
        CritiqueRun,
        CritiqueStream,
        GroundingCounts,
        ModelRecord,
        critique_with_model,
        run_critique,
        stream_critique,
    )
    from .prompts import Prompts, PromptStamp, RenderedPrompt, get_prompts
    from .testing import ScriptedChatModel

__all__ = [
    "ChatMessage",
    "ChatModel",
    "Completion",
    "CritiqueRun",
    "CritiqueStream",
    "GroundingCounts",
    "LiteLLMChatModel",
    "ModelRecord",
    "PromptStamp",
    "Prompts",
    "RenderedPrompt",
    "ResponseCache",
    "ScriptedChatModel",
    "TextStream",
    "Usage",
    "critique_with_model",
    "get_chat_model",
    "get_prompts",
    "run_critique",
    "stream_critique",
]

_HOMES = {
    "ResponseCache": "cache",
    "LiteLLMChatModel": "litellm_model", "TextStream": "litellm_model", "get_chat_model": "litellm_model",
    "ChatMessage": "model", "ChatModel": "model", "Completion": "model", "Usage": "model",
    "CritiqueRun": "planner", "CritiqueStream": "planner", "GroundingCounts": "planner", "ModelRecord": "planner",
    "critique_with_model": "planner", "run_critique": "planner", "stream_critique": "planner",
    "PromptStamp": "prompts", "Prompts": "prompts", "RenderedPrompt": "prompts", "get_prompts": "prompts",
    "ScriptedChatModel": "testing",
}


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{home}", __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
