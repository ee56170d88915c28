"""The public surface of assistant.advice.llm: fails when it drifts, so changes are deliberate."""

from __future__ import annotations

import subprocess
import sys

import assistant.advice.llm as llm

PUBLIC = {
    "ChatMessage", "ChatModel", "Completion", "CritiqueRun", "CritiqueStream", "GroundingCounts",
    "LiteLLMChatModel", "ModelRecord", "PromptStamp", "Prompts", "RenderedPrompt", "ResponseCache",
    "ScriptedChatModel", "TextStream", "Usage", "critique_with_model", "get_chat_model", "get_prompts",
    "run_critique", "stream_critique",
}


def test_the_public_names_are_declared_and_importable() -> None:
    assert set(llm.__all__) == PUBLIC
    for name in llm.__all__:
        assert getattr(llm, name) is not None


def test_importing_the_package_is_cheap() -> None:
    code = ("import sys, assistant.advice.llm, assistant.advice.llm.cli\n"
            "heavy = [m for m in ('litellm', 'assistant.advice.llm.planner', 'assistant.advice.advisor') "
            "if m in sys.modules]\nprint(heavy)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60)
    assert out.stdout.strip() == "[]"
