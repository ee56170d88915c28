"""The eval dataset format: one YAML file per plan with its reference critique.

See ``docs/evals.md`` for how to write one.
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from ..domain import FindingKind, Horizon, Orientation, Theme
from ..errors import BadInputError

__all__ = ["Dataset", "ExpectedFinding", "GoldAction", "Reference", "Sample", "load_dataset"]

Tag = Literal[
    "structural-heavy",
    "balanced",
    "relational-rhetoric",
    "relational-without-structure",
    "injection",
    "short",
    "long",
    "markdown",
    "table",
    "plain",
    "docx",
    "merger",
    "pooled-budget",
    "shared-records",
    "vanguard",
    "neighbourhood-teams",
    "mixed",
]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Setting(_Strict):
    country: str
    organisation_type: str


class ShareBounds(_Strict):
    min: float = Field(ge=0.0, le=1.0)
    max: float = Field(ge=0.0, le=1.0)

    @model_validator(mode="after")
    def _ordered(self) -> ShareBounds:
        if self.min > self.max:
            raise ValueError("min must not exceed max")
        return self


class ExpectedFinding(_Strict):
    kind: FindingKind
    evidence: str = Field(min_length=3, description="An exact substring of the plan.")


class Reference(_Strict):
    structural_overuse: bool
    relational_share: ShareBounds
    neglected_themes: list[Theme] = Field(default_factory=list)
    findings: list[ExpectedFinding] = Field(default_factory=list)
    interventions: list[str] = Field(default_factory=list)
    must_not: list[str] = Field(default_factory=list)
    critique: str

    @field_validator("must_not")
    @classmethod
    def _regexes_compile(cls, v: list[str]) -> list[str]:
        for pattern in v:
            try:
                re.compile(pattern)
            except re.error as exc:
                raise ValueError(f"must_not regex {pattern!r} does not compile: {exc}") from exc
        return v

    @field_validator("critique")
    @classmethod
    def _critique_length(cls, v: str) -> str:
        words = len(v.split())
        if not 150 <= words <= 250:
            raise ValueError(f"reference critique has {words} words; write 150-250")
        return v


class GoldAction(_Strict):
    text: str = Field(min_length=3, description="An exact substring of the plan.")
    theme: Theme
    orientation: Orientation
    horizon: Horizon


class Sample(_Strict):
    id: str = Field(pattern=r"^[a-z0-9]+(-[a-z0-9]+)*$")
    title: str
    setting: Setting
    tags: list[Tag] = Field(default_factory=list)
    plan: str | None = None
    plan_file: str | None = Field(default=None, description="A .docx/.pdf/.md beside the YAML.")
    reference: Reference
    gold_actions: list[GoldAction] = Field(default_factory=list)

    @model_validator(mode="after")
    def _one_plan(self) -> Sample:
        if (self.plan is None) == (self.plan_file is None):
            raise ValueError("give exactly one of plan or plan_file")
        return self


class LoadedSample(BaseModel):
    """A sample with its plan text resolved (read from plan_file where given)."""

    sample: Sample
    text: str
    path: Path


class Dataset(BaseModel):
    path: Path
    samples: list[LoadedSample]

    @property
    def hash(self) -> str:
        h = hashlib.sha256()
        for s in sorted(self.samples, key=lambda s: s.sample.id):
            h.update(s.path.read_bytes())
        return h.hexdigest()[:16]


def load_sample(path: Path) -> LoadedSample:
    from ..reading import read_plan

    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
        sample = Sample.model_validate(data)
    except (yaml.YAMLError, ValidationError) as exc:
        raise BadInputError(f"{path}: {exc}") from exc
    if sample.plan is not None:
        text = sample.plan
    else:
        assert sample.plan_file is not None
        text = read_plan(path.parent / sample.plan_file).text
    if sample.id != path.stem:
        raise BadInputError(f"{path}: id {sample.id!r} must match the file name {path.stem!r}")
    return LoadedSample(sample=sample, text=text, path=path)


def load_dataset(path: Path) -> Dataset:
    path = Path(path)
    files = sorted(path.glob("*.yaml")) if path.is_dir() else [path]
    if not files:
        raise BadInputError(f"No *.yaml samples in {path}.")
    return Dataset(path=path, samples=[load_sample(f) for f in files])
