"""The eval gate: a run against the bars in ``evals/thresholds.yaml`` (PRODUCT.md section 7)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from ..errors import ConfigError
from ..settings import PACKAGE_ROOT
from .records import RunRecord

__all__ = ["Bar", "BarResult", "KnownMiss", "Thresholds", "check_gate", "default_thresholds_path", "load_thresholds"]


class KnownMiss(BaseModel):
    """A bar the advisor does not meet yet, recorded so the gate still blocks regressions.

    The gate passes such a bar while its metric stays on the right side of ``floor`` (for a
    ``min`` bar, at or above it; for a ``max`` bar, at or below it), fails it past the floor,
    and says when the bar is met so the entry can go. ``--strict`` ignores every known miss.
    """

    model_config = ConfigDict(extra="forbid")

    floor: float
    since: str = Field(description="When it was recorded (a date).")
    note: str = Field(min_length=1, description="Why, and where the work to meet it is tracked.")


class Bar(BaseModel):
    model_config = ConfigDict(extra="forbid")

    min: float | None = None
    max: float | None = None
    why: str | None = None
    known_miss: KnownMiss | None = None

    @model_validator(mode="after")
    def _one_bound(self) -> Bar:
        if self.min is None and self.max is None:
            raise ValueError("a bar needs min or max")
        if self.known_miss is not None:
            floor = self.known_miss.floor
            if self.min is not None and floor > self.min:
                raise ValueError(f"known_miss.floor {floor:g} is above the bar's min {self.min:g}")
            if self.max is not None and floor < self.max:
                raise ValueError(f"known_miss.floor {floor:g} is below the bar's max {self.max:g}")
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
    strict: bool = False

    @property
    def passed(self) -> bool:
        """The bar itself is met."""
        if self.value is None:
            return False
        if self.bar.min is not None and self.value < self.bar.min - 1e-9:
            return False
        return not (self.bar.max is not None and self.value > self.bar.max + 1e-9)

    @property
    def known_miss(self) -> bool:
        """Missed, but recorded as a known miss and no worse than its floor."""
        miss = self.bar.known_miss
        if self.passed or self.strict or miss is None or self.value is None:
            return False
        if self.bar.min is not None:
            return self.value >= miss.floor - 1e-9
        return self.value <= miss.floor + 1e-9

    @property
    def blocks(self) -> bool:
        """What fails the gate: a miss that is not a known one (or is past its floor)."""
        return not self.passed and not self.known_miss

    @property
    def status(self) -> str:
        return "pass" if self.passed else "known miss" if self.known_miss else "MISS"

    def describe(self) -> str:
        want = " and ".join(x for x in (
            f">= {self.bar.min:g}" if self.bar.min is not None else "",
            f"<= {self.bar.max:g}" if self.bar.max is not None else "") if x)
        got = "not measured" if self.value is None else f"{self.value:.3f}"
        why = f"  ({self.bar.why})" if self.bar.why else ""
        text = f"{self.metric} {got}, needs {want}{why}"
        miss = self.bar.known_miss
        if miss is not None and not self.strict:
            if self.passed:
                text += "; now met: remove its known_miss entry"
            elif self.known_miss:
                text += f"; known miss since {miss.since}, floor {miss.floor:g}: {miss.note}"
            else:
                text += f"; fell past its known-miss floor {miss.floor:g}"
        return text


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


def check_gate(record: RunRecord, thresholds: Thresholds, *, strict: bool = False) -> list[BarResult]:
    """Every bar against the run; ``strict`` treats known misses as misses."""
    return [BarResult(metric=name, bar=bar, value=record.metric(name), strict=strict)
            for name, bar in thresholds.bars.items()]
