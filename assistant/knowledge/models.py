"""Pydantic models of the corpus files: framework.yaml, interventions.yaml, references.yaml and
cases/*.md front matter. ``docs/corpus.md`` documents the same shapes for people."""

from __future__ import annotations

import re
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, HttpUrl, field_validator, model_validator

from ..domain import FINDING_KINDS, THEMES, FindingKind, Orientation, Theme

__all__ = [
    "Case",
    "CaseCoding",
    "CaseNote",
    "CaseOutcome",
    "CaseSource",
    "Code",
    "FindingKindDef",
    "Framework",
    "HorizonCues",
    "Intervention",
    "InterventionsFile",
    "NearMiss",
    "OrientationDef",
    "Provenance",
    "ReferenceEntry",
    "ReferencesFile",
    "ThemeDef",
    "in_sentence",
]

CODE_ID = re.compile(r"^(leadership|strategy|structure|people)\.(structural|relational|work_process)\.[a-z0-9]+(-[a-z0-9]+)*$")
SLUG = re.compile(r"^[a-z0-9]+(-[a-z0-9]+)*$")
REF_ID = re.compile(r"^(framework|paper):[a-z0-9]+(-[a-z0-9]+)*$")
CASE_REF = re.compile(r"^case:[a-z0-9]+(-[a-z0-9]+)*$")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def in_sentence(label: str) -> str:
    """A title-case label for use inside a sentence: "Shared records and IT" -> "shared records
    and IT" (words with two or more capitals, such as IT, KPIs or NHS, keep their case)."""
    return " ".join(w if sum(c.isupper() for c in w) > 1 else w.lower() for w in label.split(" "))


def _nonblank(values: list[str]) -> list[str]:
    for v in values:
        if not v or not v.strip():
            raise ValueError("entries must not be empty")
    return values


class Provenance(_Strict):
    statement: str = Field(min_length=80)
    from_paper: list[str] = Field(min_length=1)
    ours: list[str] = Field(min_length=1)
    paper: str = Field(pattern=REF_ID.pattern)
    anchors: list[str] = Field(min_length=1)


class ThemeDef(_Strict):
    id: Theme
    label: str
    definition: str = Field(min_length=20)


class OrientationDef(_Strict):
    id: Orientation
    label: str
    definition: str = Field(min_length=20)


class NearMiss(_Strict):
    text: str = Field(min_length=5)
    belongs_to: str = Field(pattern=CODE_ID.pattern)
    why: str | None = None


class Code(_Strict):
    id: str = Field(pattern=CODE_ID.pattern)
    label: str
    definition: str = Field(min_length=20)
    cues: list[str] = Field(min_length=6)
    examples: list[str] = Field(min_length=3)
    near_misses: list[NearMiss] = Field(min_length=2)
    anchors: list[str] = Field(min_length=1)

    _cues_nonblank = field_validator("cues", "examples")(_nonblank)

    @property
    def theme(self) -> Theme:
        return self.id.split(".")[0]  # type: ignore[return-value]

    @property
    def orientation(self) -> Orientation:
        return self.id.split(".")[1]  # type: ignore[return-value]

    @model_validator(mode="after")
    def _near_misses_elsewhere(self) -> Code:
        for nm in self.near_misses:
            if nm.belongs_to == self.id:
                raise ValueError(f"near miss {nm.text!r} names this code itself")
        return self


class FindingKindDef(_Strict):
    id: FindingKind
    label: str
    definition: str = Field(min_length=20)
    recognise: str = Field(min_length=20)
    examples: list[str] = Field(min_length=2)
    interventions: list[str] = Field(min_length=1)
    anchors: list[str] = Field(default_factory=list)


class HorizonCues(_Strict):
    short_term: list[str] = Field(min_length=3)
    long_term: list[str] = Field(min_length=3)


class Framework(_Strict):
    provenance: Provenance
    themes: list[ThemeDef]
    orientations: list[OrientationDef]
    codes: list[Code]
    finding_kinds: list[FindingKindDef]
    horizon: HorizonCues

    @model_validator(mode="after")
    def _complete(self) -> Framework:
        if sorted(t.id for t in self.themes) != sorted(THEMES):
            raise ValueError(f"themes must be exactly {list(THEMES)}")
        if sorted(k.id for k in self.finding_kinds) != sorted(FINDING_KINDS):
            missing = set(FINDING_KINDS) - {k.id for k in self.finding_kinds}
            raise ValueError(f"finding_kinds must list each of the nine kinds once; missing {sorted(missing)}")
        return self


class Intervention(_Strict):
    id: str = Field(pattern=SLUG.pattern)
    title: str
    themes: list[Theme] = Field(min_length=1)
    summary: str = Field(min_length=60)
    answers: list[FindingKind] = Field(min_length=1)
    first_steps: list[str] = Field(min_length=3, max_length=5)
    measures: list[str] = Field(min_length=1)
    pitfalls: list[str] = Field(min_length=1)
    cases: list[str] = Field(default_factory=list)
    references: list[str] = Field(default_factory=list)

    _steps_nonblank = field_validator("first_steps", "measures", "pitfalls")(_nonblank)

    @field_validator("cases")
    @classmethod
    def _case_ids(cls, v: list[str]) -> list[str]:
        for c in v:
            if not CASE_REF.match(c):
                raise ValueError(f"{c!r} is not a case id like 'case:torbay'")
        return v


class InterventionsFile(_Strict):
    interventions: list[Intervention]


class ReferenceEntry(_Strict):
    id: str = Field(pattern=REF_ID.pattern)
    kind: Literal["framework", "paper"]
    title: str
    authors: str
    year: int | None = Field(default=None, ge=1900, le=2100)
    url: HttpUrl
    summary: str = Field(min_length=20)

    @model_validator(mode="after")
    def _prefix_matches_kind(self) -> ReferenceEntry:
        if not self.id.startswith(self.kind + ":"):
            raise ValueError(f"id {self.id!r} must start with '{self.kind}:'")
        return self


class ReferencesFile(_Strict):
    references: list[ReferenceEntry]


class CaseSource(_Strict):
    url: HttpUrl
    title: str | None = None


class CaseNote(_Strict):
    note: str = Field(min_length=10)
    code: str = Field(pattern=CODE_ID.pattern)


class CaseCoding(_Strict):
    structural: list[CaseNote] = Field(default_factory=list)
    relational: list[CaseNote] = Field(default_factory=list)


class CaseOutcome(_Strict):
    claim: str = Field(min_length=10)
    source: HttpUrl | None = None
    confirmed: bool = True


class CaseBalance(_Strict):
    relational_share: float = Field(ge=0.0, le=1.0)
    reasoning: str = Field(min_length=20)


class Case(_Strict):
    id: str = Field(pattern=SLUG.pattern)
    name: str
    country: str
    years: str
    organisation_type: str
    sources: list[CaseSource] = Field(min_length=1)
    confidence: Literal["high", "medium", "low"]
    coding: dict[Theme, CaseCoding]
    balance: CaseBalance
    outcomes: list[CaseOutcome] = Field(min_length=1)
    sustainment: str = Field(min_length=20)
    lessons: list[str] = Field(min_length=1)
    unconfirmed: list[str] = Field(default_factory=list)
    body: str = ""

    @property
    def ref_id(self) -> str:
        return f"case:{self.id}"

    @property
    def themes(self) -> list[Theme]:
        return [t for t in THEMES if t in self.coding and (self.coding[t].structural or self.coding[t].relational)]
