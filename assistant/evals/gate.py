"""The eval gate: a run against the bars in ``evals/thresholds.yaml`` (PRODUCT.md section 7)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from ..errors import ConfigError
from ..settings import PACKAGE_ROOT
from .records import RunRecord

__all__ = ["Bar", "BarResult", "Thresholds", "check_gate", "default_thresholds_path", "load_thresholds"]


class Bar(BaseModel):
    model_config = ConfigDict(extra="forbid")

    min: float | None = None
    max: float | None = None
    why: str | None = None

    @model_validator(mode="after")
    def _one_bound(self) -> Bar:
        if self.min is None and self.max is None:
            raise ValueError("a bar needs min or max")
        return self


class Thresholds(BaseModel):
    model_config = ConfigDict(extra="forbid")

    source: str | None = None
    bars: dict[str, Bar] = Field(min_length=1)


@dataclass(frozen=True)
class BarResult:
    metric: str
    bar: Bar
    value: float | None

    @property
    def passed(self) -> bool:
        if self.value is None:
            return False
        if self.bar.min is not None and self.value < self.bar.min - 1e-9:
            return False
        return not (self.bar.max is not None and self.value > self.bar.max + 1e-9)

    def describe(self) -> str:
        want = " and ".join(x for x in (
            f">= {self.bar.min:g}" if self.bar.min is not None else "",
            f"<= {self.bar.max:g}" if self.bar.max is not None else "") if x)
        got = "not measured" if self.value is None else f"{self.value:.3f}"
        why = f"  ({self.bar.why})" if self.bar.why else ""
        return f"{self.metric} {got}, needs {want}{why}"


def default_thresholds_path() -> Path:
    for candidate in (PACKAGE_ROOT.parent / "evals" / "thresholds.yaml", Path.cwd() / "evals" / "thresholds.yaml"):
        if candidate.is_file():
            return candidate
    raise ConfigError("No evals/thresholds.yaml found.", hint="Pass --thresholds PATH.")


def load_thresholds(path: Path | None = None) -> Thresholds:
    path = path or default_thresholds_path()
    try:
        return Thresholds.model_validate(yaml.safe_load(Path(path).read_text(encoding="utf-8")))
    except FileNotFoundError as exc:
        raise ConfigError(f"No thresholds file at {path}.") from exc
    except (yaml.YAMLError, ValidationError) as exc:
        raise ConfigError(f"{path}: {exc}") from exc


def check_gate(record: RunRecord, thresholds: Thresholds) -> list[BarResult]:
    return [BarResult(metric=name, bar=bar, value=record.metric(name)) for name, bar in thresholds.bars.items()]
