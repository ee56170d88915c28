"""The exceptions Transformation Advisor raises.

    AdvisorError                  base of everything we raise on purpose
    ├── BadInputError             the caller used it wrong: fix the input (exit 2, HTTP 4xx)
    │   ├── PlanReadError         a plan file is missing, empty, binary, too large or unreadable
    │   ├── CorpusError           a corpus file is malformed (names the file and the field)
    │   ├── UnknownIdError        an id that does not exist ("did you mean ...?")
    │   └── ConfigError           a setting or option that cannot work
    └── RuntimeFailure            it failed at run time: retry or check the service (exit 1, HTTP 5xx)
        ├── ModelError            the language model timed out, errored or returned garbage
        └── StoreUnavailableError the retrieval index or Chroma server cannot be used

Each edge maps these once: the CLI prints one line on stderr, the API returns an
OpenAI-shaped error body, the TUI shows a notification.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable

__all__ = [
    "AdvisorError",
    "BadInputError",
    "ConfigError",
    "CorpusError",
    "CorpusProblem",
    "ModelError",
    "PlanReadError",
    "RuntimeFailure",
    "StoreUnavailableError",
    "UnknownIdError",
    "suggest",
]


class AdvisorError(Exception):
    """Base class. ``hint`` says what the user can do about it."""

    exit_code = 1

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return f"{self.message} {self.hint}" if self.hint else self.message


class BadInputError(AdvisorError):
    exit_code = 2


class PlanReadError(BadInputError):
    def __init__(self, message: str, *, source: str | None = None, hint: str | None = None) -> None:
        super().__init__(message, hint=hint)
        self.source = source


class CorpusError(BadInputError):
    """One or more problems in corpus files; ``problems`` holds each (file, line, field, message)."""

    def __init__(self, message: str, *, problems: list[CorpusProblem] | None = None) -> None:
        super().__init__(message)
        self.problems = problems or []


class CorpusProblem:
    __slots__ = ("field", "file", "line", "message")

    def __init__(self, file: str, field: str, message: str, line: int | None = None) -> None:
        self.file = file
        self.field = field
        self.message = message
        self.line = line

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line else self.file
        return f"{where}: {self.field}: {self.message}"

    def __repr__(self) -> str:
        return f"CorpusProblem({self!s})"


class UnknownIdError(BadInputError):
    def __init__(self, kind: str, value: str, known: Iterable[str]) -> None:
        self.kind = kind
        self.value = value
        self.suggestions = suggest(value, known)
        hint = f"Did you mean {' or '.join(repr(s) for s in self.suggestions)}?" if self.suggestions else None
        super().__init__(f"Unknown {kind} {value!r}.", hint=hint)


class ConfigError(BadInputError):
    """A setting, option or trained model that cannot work as configured."""


class RuntimeFailure(AdvisorError):
    exit_code = 1


class ModelError(RuntimeFailure):
    """``reason`` is a short machine-friendly word: timeout, provider-error, invalid-output, ..."""

    def __init__(self, message: str, *, reason: str, hint: str | None = None) -> None:
        super().__init__(message, hint=hint)
        self.reason = reason


class StoreUnavailableError(RuntimeFailure):
    """The retrieval index, the Chroma server or the embedding model cannot be used."""


def suggest(value: str, known: Iterable[str], n: int = 3) -> list[str]:
    """Close matches for a mistyped id, best first; also matches on the part after a ``kind:`` prefix."""
    known = list(known)
    out = difflib.get_close_matches(value, known, n=n, cutoff=0.6)
    if not out:
        tails = {k.split(":", 1)[-1]: k for k in known}
        out = [tails[m] for m in difflib.get_close_matches(value.split(":", 1)[-1], list(tails), n=n, cutoff=0.6)]
    if not out:
        out = [k for k in known if value.lower() in k.lower()][:n]
    return out
