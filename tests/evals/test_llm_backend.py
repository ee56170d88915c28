"""The llm backend of the runner, through a scripted ChatModel: no network, no litellm."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from assistant.advice.llm.model import ChatMessage
from assistant.advice.llm.testing import ScriptedChatModel
from assistant.domain import Critique
from assistant.evals.runner import RunOptions, run_eval

from .conftest import BALANCED_PLAN, STRUCTURAL_PLAN


def draft_from(critique: Critique) -> str:
    """A well-formed model answer that agrees with the offline critique."""
    return json.dumps({
        "verdict": {"structural_overuse": critique.verdict.structural_overuse, "severity": critique.verdict.severity,
                    "headline": "The plan builds machinery, not working relationships."},
        "findings": [{"id": f.id, "kind": f.kind, "theme": f.theme, "summary": f"Model view: {f.summary}",
                      "evidence": [{"quote": e.quote, "action_id": e.action_id} for e in f.evidence],
                      "citations": list(f.citations)} for f in critique.findings],
        "interventions": [{"id": i.id, "addresses": list(i.addresses), "rationale": f"Model rationale for {i.id}.",
                           "first_steps": ["Name the people who will do it."],
                           "measures": ["A relational coordination survey."], "citations": list(i.citations)}
                          for i in critique.interventions],
    })


def test_llm_run_records_model_usage_prompts_and_reuses_cached_generations(
        home: Path, tiny_dataset: Path, tmp_path: Path, advisor: Any) -> None:
    answers = {"Northside": draft_from(advisor.critique_offline(BALANCED_PLAN)),
               "Riverside": draft_from(advisor.critique_offline(STRUCTURAL_PLAN))}

    def answer(messages: Sequence[ChatMessage], kind: str) -> str:
        text = "\n".join(m.content for m in messages)
        return answers["Northside" if "Northside" in text else "Riverside"]

    model = ScriptedChatModel(answer, name="scripted/eval")
    record, _ = run_eval(RunOptions(dataset=tiny_dataset, backend="llm", chat_model=model,
                                    out=tmp_path / "llm.json", progress=False), advisor=advisor)
    assert record.backend == "llm" and record.model == "scripted/eval"
    assert "critique" in record.prompts and record.prompts["critique"].hash
    for output in record.outputs.values():
        assert output.critique is not None and output.critique.backend == "scripted/eval"
        assert output.usage is not None and output.usage.calls >= 1
        assert output.llm is not None and output.llm["prompts"] and not output.cached
    assert record.summary["fallbacks"] == 0 and record.summary["model_calls"] == len(model.calls)
    assert record.metric("quotes_verbatim") == 1.0
    assert record.metric("injection_unaffected") == 1.0

    calls_before = len(model.calls)
    again, _ = run_eval(RunOptions(dataset=tiny_dataset, backend="llm", chat_model=model,
                                   out=tmp_path / "again.json", progress=False), advisor=advisor)
    assert len(model.calls) == calls_before  # every generation came from the cache
    assert all(o.cached for o in again.outputs.values())
    assert again.summary["cached"] == 3
    assert {k: o.critique for k, o in again.outputs.items()} == {k: o.critique for k, o in record.outputs.items()}


def test_fallbacks_are_counted_and_never_cached(home: Path, tiny_dataset: Path, tmp_path: Path,
                                                advisor: Any) -> None:
    model = ScriptedChatModel("this is not JSON", name="scripted/broken")
    record, _ = run_eval(RunOptions(dataset=tiny_dataset, backend="llm", chat_model=model, limit=1,
                                    out=tmp_path / "broken.json", progress=False), advisor=advisor)
    output = record.outputs["t-balanced"]
    assert output.critique is not None and "fallback" in output.critique.backend
    assert output.llm is not None and output.llm["fallback_reason"]
    assert record.summary["fallbacks"] == 1
    calls = len(model.calls)
    run_eval(RunOptions(dataset=tiny_dataset, backend="llm", chat_model=model, limit=1,
                        out=tmp_path / "broken-again.json", progress=False), advisor=advisor)
    assert len(model.calls) > calls  # a fallback is tried again, not replayed from the cache
