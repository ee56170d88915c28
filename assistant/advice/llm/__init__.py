"""The LLM backend: a small ChatModel seam, litellm behind it, and the grounded planner.

Importing this package is cheap: the names below load their modules on first use, and litellm
itself is imported only when a model is first called.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..._lazy import lazy_exports

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


__getattr__, __dir__ = lazy_exports(__name__, _HOMES, __all__)
