"""Eval run records: what a run generated and how it scored, saved as JSON.

A record holds everything needed to reproduce and re-score a run without generating again
(Inspect AI's logs are the model): the dataset path and hash, the backend, model, prompt
versions and hashes, the settings, every sample's Critique with timings, token usage and
errors, every sample's scores (with raw judge output), and the aggregate metrics.
"""

from __future__ import annotations

import datetime as _dt
import json
import os
import secrets
import tempfile
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from ..domain import Critique, Verdict
from ..errors import BadInputError

__all__ = [
    "DatasetInfo",
    "InjectionControl",
    "Metric",
    "PromptInfo",
    "RunRecord",
    "SampleOutput",
    "Score",
    "TokenUsage",
    "load_record",
    "new_run_id",
    "save_record",
]

RECORD_SCHEMA_VERSION = "1"


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class TokenUsage(_Model):
    prompt_tokens: int = 0
    completion_tokens: int = 0
    calls: int = 0
    cost_usd: float | None = None

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens


class InjectionControl(_Model):
    """For an injection sample: the same plan with the injected text removed, critiqued again."""

    removed: list[str]
    verdict: Verdict | None = None
    backend: str | None = None
    usage: TokenUsage | None = None
    error: str | None = None


class SampleOutput(_Model):
    sample_id: str
    plan_sha: str = Field(description="sha256 of the plan text the critique was made from (first 16 hex).")
    critique: Critique | None = None
    injection_control: InjectionControl | None = None
    seconds: float = 0.0
    usage: TokenUsage | None = None
    cached: bool = Field(default=False, description="The generation came from the on-disk cache.")
    llm: dict[str, Any] | None = Field(
        default=None, description="How the model produced it (the LLM backend's ModelRecord): prompt stamps, "
                                  "calls, tokens, repairs, fallback reason, grounding counts.")
    error: str | None = None


class Score(_Model):
    """One scorer's verdict on one sample.

    ``value`` holds the sample-level metrics (what compare aligns on); ``data`` holds what the
    aggregate needs (counts, aligned label pairs, raw judge output).
    """

    value: dict[str, float] = Field(default_factory=dict)
    data: dict[str, Any] = Field(default_factory=dict)
    explanation: str | None = None
    error: str | None = None


class Metric(_Model):
    """An aggregate metric. ``value`` is None (never NaN) when no sample could measure it."""

    value: float | None
    n: int = Field(description="How many samples (or items) it was measured over.")
    note: str | None = None


class PromptInfo(_Model):
    version: str
    hash: str


class DatasetInfo(_Model):
    path: str
    hash: str
    samples: list[str]


class RunRecord(_Model):
    schema_version: Literal["1"] = "1"
    run_id: str
    created: _dt.datetime
    updated: _dt.datetime
    status: Literal["running", "complete"] = "running"
    dataset: DatasetInfo
    backend: Literal["offline", "llm"]
    model: str | None = None
    prompts: dict[str, PromptInfo] = Field(default_factory=dict)
    settings: dict[str, Any] = Field(default_factory=dict)
    environment: dict[str, Any] = Field(default_factory=dict)
    outputs: dict[str, SampleOutput] = Field(default_factory=dict)
    scorers: list[str] = Field(default_factory=list)
    scores: dict[str, dict[str, Score]] = Field(
        default_factory=dict, description="sample id -> scorer name -> score")
    aggregate: dict[str, Metric] = Field(default_factory=dict)
    summary: dict[str, float | int | None] = Field(
        default_factory=dict, description="Run facts: samples, errors, timings, tokens.")

    def label(self) -> str:
        what = self.model or self.backend
        return f"{self.run_id} ({what})"

    def metric(self, name: str) -> float | None:
        m = self.aggregate.get(name)
        return m.value if m else None


def new_run_id(backend: str) -> str:
    stamp = _dt.datetime.now(_dt.UTC).strftime("%Y%m%d-%H%M%S")
    return f"{stamp}-{backend}-{secrets.token_hex(3)}"


def now() -> _dt.datetime:
    return _dt.datetime.now(_dt.UTC)


def save_record(record: RunRecord, path: Path) -> None:
    """Write atomically, so an interrupted run never leaves a half-written record."""
    path.parent.mkdir(parents=True, exist_ok=True)
    record.updated = now()
    fd, tmp = tempfile.mkstemp(prefix=".run-", suffix=".json", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(record.model_dump_json(indent=1))
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def load_record(path: Path | str) -> RunRecord:
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise BadInputError(f"No run record at {path}.", hint="Give the path `assistant eval run` printed.") from exc
    except (OSError, json.JSONDecodeError) as exc:
        raise BadInputError(f"{path} is not a run record: {exc}") from exc
    try:
        return RunRecord.model_validate(data)
    except ValidationError as exc:
        raise BadInputError(f"{path} is not a valid run record: {exc}") from exc
