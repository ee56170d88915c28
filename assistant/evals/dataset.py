"""The eval dataset format: one YAML file per plan with its reference critique.

See ``docs/evals.md`` for how to write one.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Collection
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from ..domain import FindingKind, Horizon, Orientation, Theme
from ..errors import BadInputError, suggest

__all__ = [
    "Dataset",
    "ExpectedFinding",
    "GoldAction",
    "LoadedSample",
    "Reference",
    "Sample",
    "find_injections",
    "injection_spans",
    "load_dataset",
    "load_sample",
    "real_sample_problems",
    "sample_problems",
    "split_problems",
    "without_injections",
]

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
    "real",
    "pdf",
    "timeline",
    "numbered-list",
    "rag-table",
    "run-in-list",
    "appendix",
    "non-english",
]

NotCodedKind = Literal[
    "context", "belief", "value", "aim", "heading", "attributed", "metadata", "reviewer", "other",
]
"""Why a span of plan text is not an action (``docs/coding-guide.md``)."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Setting(_Strict):
    country: str
    organisation_type: str
    year: int | None = Field(default=None, ge=1990, le=2100, description="The year of the plan it paraphrases.")
    document_type: str | None = Field(default=None, description="e.g. ICS strategy, IJB strategic plan, board paper.")


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
    evidence: list[str] = Field(min_length=1, description="Exact substrings of the plan that show the pattern "
                                "(one string or a list; several when several actions show it).")

    @field_validator("evidence", mode="before")
    @classmethod
    def _one_or_many(cls, v: object) -> object:
        return [v] if isinstance(v, str) else v

    @field_validator("evidence")
    @classmethod
    def _quotes_not_trivial(cls, v: list[str]) -> list[str]:
        for quote in v:
            if len(quote) < 3:
                raise ValueError(f"evidence quote {quote!r} is too short to show anything")
        return v


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
    concrete: bool | None = Field(default=None, description="Names a mechanism: who, what, when or with what resource.")
    note: str | None = Field(default=None, description="Why a borderline call went the way it did.")


class NotCoded(_Strict):
    """Plan text deliberately not coded as an action, and why (borderline and action-like spans)."""

    text: str = Field(min_length=3, description="An exact substring of the plan.")
    kind: NotCodedKind
    note: str | None = None


class Sample(_Strict):
    id: str = Field(pattern=r"^[a-z0-9]+(-[a-z0-9]+)*$")
    title: str
    setting: Setting
    tags: list[Tag] = Field(default_factory=list)
    plan: str | None = None
    plan_file: str | None = Field(default=None, description="A .docx/.pdf/.md beside the YAML.")
    renderings: list[str] = Field(
        default_factory=list,
        description="The same plan as other files beside the YAML (.docx, .pdf, .md, .txt); each must read "
                    "to the same actions, balance and verdict as ``plan``.")
    programme: str | None = Field(default=None, pattern=r"^[a-z0-9]+(-[a-z0-9]+)*$",
                                  description="The real programme a paraphrased plan comes from; "
                                              "no programme may appear in two splits.")
    sources: list[str] = Field(default_factory=list, description="URLs the paraphrase's facts come from.")
    reference: Reference
    gold_actions: list[GoldAction] = Field(default_factory=list)
    not_coded: list[NotCoded] = Field(default_factory=list)
    injections: list[str] = Field(
        default_factory=list,
        description="Injected instructions, each an exact substring of the plan (injection samples). "
                    "When empty, injected sentences are found by pattern.",
    )

    @field_validator("sources")
    @classmethod
    def _urls(cls, v: list[str]) -> list[str]:
        for url in v:
            if not re.match(r"^https?://[^\s/]+\.[^\s]+$", url):
                raise ValueError(f"source {url!r} is not an http(s) URL")
        return v

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


def find_injections(text: str) -> list[tuple[int, int]]:
    """Spans of text that speak to an AI reader instead of the plan's audience: the reader's own
    rule (``assistant.analysis.asides``), so a sample's injections are found as the advisor finds them."""
    from ..analysis.asides import find_asides

    return [(a.start, a.end) for a in find_asides(text)]


def injection_spans(loaded: LoadedSample) -> list[tuple[int, int]]:
    """Where the injected text sits in a sample's plan: its listed injections, else by pattern."""
    if loaded.sample.injections:
        spans = []
        for inj in loaded.sample.injections:
            at = loaded.text.find(inj)
            if at >= 0:
                spans.append((at, at + len(inj)))
        return sorted(spans)
    return find_injections(loaded.text)


def without_injections(loaded: LoadedSample) -> tuple[str, list[str]]:
    """The plan with its injected text removed, and the removed pieces."""
    text, removed = loaded.text, list[str]()
    for start, end in reversed(injection_spans(loaded)):
        removed.insert(0, text[start:end])
        text = text[:start] + text[end:]
    return text, removed


def sample_problems(loaded: LoadedSample, known_interventions: Collection[str] | None = None) -> list[str]:
    """What is wrong with a sample beyond its schema: strings that must be in the plan and are not,
    and (given the library's ids) expected interventions that do not exist."""
    s, text, out = loaded.sample, loaded.text, []
    if known_interventions is not None:
        for iid in s.reference.interventions:
            if iid not in known_interventions:
                hint = suggest(iid, known_interventions)
                out.append(f"{s.id}: reference.interventions: {iid!r} is not in the library"
                           + (f" (did you mean {hint[0]!r}?)" if hint else ""))
    for i, f in enumerate(s.reference.findings):
        for quote in f.evidence:
            if quote not in text:
                out.append(f"{s.id}: reference.findings[{i}] ({f.kind}) evidence is not in the plan: {quote[:70]!r}")
    for i, g in enumerate(s.gold_actions):
        if g.text not in text:
            out.append(f"{s.id}: gold_actions[{i}] text is not in the plan: {g.text[:70]!r}")
    for i, n in enumerate(s.not_coded):
        if n.text not in text:
            out.append(f"{s.id}: not_coded[{i}] text is not in the plan: {n.text[:70]!r}")
    for name in s.renderings:
        if not (loaded.path.parent / name).is_file():
            out.append(f"{s.id}: renderings: {name!r} is not beside the sample")
    for i, inj in enumerate(s.injections):
        if inj not in text:
            out.append(f"{s.id}: injections[{i}] is not in the plan: {inj[:70]!r}")
    if "injection" in s.tags and not injection_spans(loaded):
        out.append(f"{s.id}: tagged injection but no injected text found; list it under `injections:`")
    if s.injections and "injection" not in s.tags:
        out.append(f"{s.id}: lists injections but is not tagged injection")
    return out


REAL_WORDS = (250, 900)
REAL_INTERVENTIONS = (2, 5)


def gold_share(sample: Sample) -> float | None:
    """The relational share of a sample's gold reading: (relational + work_process) / actions."""
    if not sample.gold_actions:
        return None
    return sum(g.orientation != "structural" for g in sample.gold_actions) / len(sample.gold_actions)


def real_sample_problems(loaded: LoadedSample) -> list[str]:
    """What a paraphrased real plan needs beyond any sample (``docs/coding-guide.md``): its sources,
    programme and year; 250-900 words; 2-5 interventions; ``concrete`` on every gold action; a
    relational-share band that holds the gold reading's share."""
    s, out = loaded.sample, []
    if "real" not in s.tags:
        out.append(f"{s.id}: a real-plan sample is tagged 'real'")
    if not s.sources:
        out.append(f"{s.id}: sources: list the URLs the paraphrase's facts come from")
    if s.programme is None:
        out.append(f"{s.id}: programme: name the real programme (a slug) so splits can be kept apart")
    if s.setting.year is None or s.setting.document_type is None:
        out.append(f"{s.id}: setting: give the year and document_type of the plan it paraphrases")
    words = len(loaded.text.split())
    if not REAL_WORDS[0] <= words <= REAL_WORDS[1]:
        out.append(f"{s.id}: plan has {words} words; a real-plan paraphrase has {REAL_WORDS[0]}-{REAL_WORDS[1]}")
    n = len(s.reference.interventions)
    if not REAL_INTERVENTIONS[0] <= n <= REAL_INTERVENTIONS[1]:
        out.append(f"{s.id}: reference.interventions has {n}; give {REAL_INTERVENTIONS[0]}-{REAL_INTERVENTIONS[1]}")
    if not s.gold_actions:
        out.append(f"{s.id}: gold_actions: code every action of the plan")
    missing = [i for i, g in enumerate(s.gold_actions) if g.concrete is None]
    if missing:
        out.append(f"{s.id}: gold_actions{missing[:5]}: say concrete: true or false for every action")
    texts = [g.text for g in s.gold_actions]
    for dup in sorted({t for t in texts if texts.count(t) > 1}):
        out.append(f"{s.id}: gold_actions: {dup[:60]!r} is coded twice")
    share = gold_share(s)
    band = s.reference.relational_share
    if share is not None and not band.min - 1e-9 <= share <= band.max + 1e-9:
        out.append(f"{s.id}: reference.relational_share [{band.min}, {band.max}] does not hold the gold "
                   f"actions' share {share:.2f}")
    return out


def split_problems(splits: dict[str, list[LoadedSample]]) -> list[str]:
    """Programmes (and ids) that appear in more than one split."""
    seen: dict[str, str] = {}
    ids: dict[str, str] = {}
    out = []
    for split, samples in splits.items():
        for loaded in samples:
            s = loaded.sample
            if s.id in ids and ids[s.id] != split:
                out.append(f"{s.id}: the same id is in {ids[s.id]} and {split}")
            ids[s.id] = split
            if s.programme is None:
                continue
            if s.programme in seen and seen[s.programme] != split:
                out.append(f"{s.id}: programme {s.programme!r} is in {seen[s.programme]} and {split}")
            seen.setdefault(s.programme, split)
    return out


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
    if not path.exists():
        raise BadInputError(f"No dataset at {path}: give a directory of *.yaml samples or one sample file.")
    files = sorted(path.glob("*.yaml")) if path.is_dir() else [path]
    if not files:
        raise BadInputError(f"No *.yaml samples in {path}.")
    return Dataset(path=path, samples=[load_sample(f) for f in files])
