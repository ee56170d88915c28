"""Wire types: the Critique contract (schema_version "1") shared by every face.

These models are exactly PRODUCT.md section 4; ``docs/critique.schema.json`` is generated
from them (``python -m assistant.domain``) and a test fails when the two drift.
"""

from __future__ import annotations

import json
from typing import Literal, get_args

from pydantic import BaseModel, ConfigDict, Field

__all__ = [
    "THEMES",
    "Action",
    "Balance",
    "Critique",
    "Evidence",
    "Finding",
    "FindingKind",
    "Horizon",
    "InterventionAdvice",
    "Orientation",
    "PlanInfo",
    "PlanReading",
    "ReadingAction",
    "ReadingFinding",
    "ReadingInfo",
    "Reference",
    "ReferenceKind",
    "Severity",
    "Theme",
    "ThemeCounts",
    "Verdict",
    "critique_json_schema",
]

Theme = Literal["leadership", "strategy", "structure", "people"]
THEMES: tuple[Theme, ...] = ("leadership", "strategy", "structure", "people")
Orientation = Literal["structural", "relational", "work_process"]
ORIENTATIONS: tuple[Orientation, ...] = ("structural", "relational", "work_process")
Horizon = Literal["short_term", "long_term", "unspecified"]
HORIZONS: tuple[Horizon, ...] = ("short_term", "long_term", "unspecified")
Severity = Literal["none", "mild", "marked", "severe"]
ReferenceKind = Literal["case", "framework", "intervention", "paper"]
FindingKind = Literal[
    "pm-as-product",
    "structure-without-relationship",
    "leadership-as-governance",
    "tokenistic-engagement",
    "short-horizon",
    "training-as-compliance",
    "metrics-only-structural",
    "relational-rhetoric",
    "relational-without-structure",
]
FINDING_KINDS: tuple[FindingKind, ...] = get_args(FindingKind)


class _Wire(BaseModel):
    model_config = ConfigDict(extra="forbid")


class PlanInfo(_Wire):
    title: str | None = Field(description="The plan's title, if it has one.")
    characters: int = Field(ge=0, description="Length of the plan text in characters.")
    actions: int = Field(ge=0, description="Number of actions found in the plan.")


class Verdict(_Wire):
    structural_overuse: bool
    severity: Severity
    headline: str = Field(description="One sentence.")


class ThemeCounts(_Wire):
    structural: int = Field(default=0, ge=0)
    relational: int = Field(default=0, ge=0)
    work_process: int = Field(default=0, ge=0)


class Balance(_Wire):
    relational_share: float = Field(
        ge=0.0, le=1.0, description="(relational + work_process actions) / coded actions."
    )
    themes: dict[Theme, ThemeCounts]
    horizon: dict[Horizon, int]
    neglected_themes: list[Theme]


class Action(_Wire):
    id: str
    text: str = Field(description="Exactly plan[start:end].")
    start: int = Field(ge=0)
    end: int = Field(ge=0)
    theme: Theme
    orientation: Orientation
    horizon: Horizon
    code: str = Field(description="A code id from corpus/framework.yaml.")
    confidence: float = Field(ge=0.0, le=1.0)
    concrete: bool | None = Field(default=None, description="Names a mechanism: who, what, when or with what "
                                                            "resource (PRODUCT.md section 4).")


class Evidence(_Wire):
    quote: str = Field(description="An exact substring of the plan text.")
    action_id: str | None = None


class Finding(_Wire):
    id: str
    kind: FindingKind
    theme: Theme | None = None
    summary: str
    evidence: list[Evidence]
    citations: list[str] = Field(default_factory=list)


class InterventionAdvice(_Wire):
    id: str = Field(description="An intervention id from corpus/interventions.yaml.")
    title: str
    theme: Theme
    addresses: list[str] = Field(description="Finding ids this intervention answers.")
    rationale: str
    first_steps: list[str]
    measures: list[str]
    citations: list[str] = Field(default_factory=list)


class Reference(_Wire):
    id: str
    kind: ReferenceKind
    title: str
    source: str | None = None


class ReadingInfo(_Wire):
    """Who read the plan into actions, and what the user must know about that reading."""

    reader: str = Field(description='"offline", the model that read it, or "given".')
    agreement_with_offline: float | None = Field(default=None, ge=0.0, le=1.0)
    notices: list[str] = Field(default_factory=list, description="Text set aside, an unsupported language, "
                                                                 "a fallback: anything the reader must know.")


class Critique(_Wire):
    schema_version: Literal["1"] = "1"
    backend: str = Field(description='"offline", a model name, or "offline (fallback: <reason>)".')
    plan: PlanInfo
    verdict: Verdict
    balance: Balance
    actions: list[Action]
    findings: list[Finding]
    interventions: list[InterventionAdvice]
    references: list[Reference]
    reading: ReadingInfo | None = None


class ReadingAction(BaseModel):
    """One coded action of a reading (PRODUCT.md section 4b): ``text`` is a span of the plan."""

    model_config = ConfigDict(extra="ignore")
    text: str = Field(min_length=1)
    theme: Theme
    orientation: Orientation
    horizon: Horizon = "unspecified"
    concrete: bool | None = None
    note: str | None = None


class ReadingFinding(BaseModel):
    model_config = ConfigDict(extra="ignore")
    kind: FindingKind
    evidence: list[str] = Field(default_factory=list)


class PlanReading(BaseModel):
    """The Reading contract: a plan turned into coded actions, optionally with a judgement on top.

    One shape for what a model returns, what a user gives (``--reading``), and a dataset's gold
    actions. Texts are located in the plan before use; other top-level keys are ignored.
    """

    model_config = ConfigDict(extra="ignore")
    actions: list[ReadingAction] = Field(default_factory=list)
    findings: list[ReadingFinding] = Field(default_factory=list)
    interventions: list[str] = Field(default_factory=list)


def critique_json_schema() -> str:
    """The committed JSON Schema text for the Critique contract."""
    return json.dumps(Critique.model_json_schema(), indent=2, sort_keys=True) + "\n"


if __name__ == "__main__":
    print(critique_json_schema(), end="")
