"""Versioned prompt templates (``prompts/*.j2``): render them and say which version was used.

Each template opens with a version comment, ``{# version: critique-v1 #}``. A rendered prompt
carries that version and a sha256 of the template's source (and of any template it extends or
includes), so every answer and every eval record can say exactly which prompt produced it,
even when someone edits a template without bumping its version.
"""

from __future__ import annotations

import functools
import hashlib
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jinja2
import jinja2.meta
from pydantic import BaseModel, ConfigDict

from ...errors import ConfigError, UnknownIdError
from ...settings import shipped_prompts_path

__all__ = ["PromptInfo", "PromptStamp", "Prompts", "RenderedPrompt", "get_prompts", "stamps"]

VERSION = re.compile(r"\A\s*\{#-?\s*version:\s*([A-Za-z0-9_.:-]+)\s*-?#\}")
SUFFIX = ".j2"


class PromptStamp(BaseModel):
    """Which prompt produced an answer: recorded with every answer and eval record."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str
    version: str
    sha256: str


@dataclass(frozen=True)
class PromptInfo:
    name: str
    version: str
    sha256: str
    path: Path

    @property
    def stamp(self) -> PromptStamp:
        return PromptStamp(name=self.name, version=self.version, sha256=self.sha256)


@dataclass(frozen=True)
class RenderedPrompt:
    name: str
    version: str
    sha256: str
    text: str

    @property
    def stamp(self) -> PromptStamp:
        return PromptStamp(name=self.name, version=self.version, sha256=self.sha256)


class Prompts:
    """The prompt templates in one directory (the shipped ``prompts/`` by default)."""

    def __init__(self, directory: Path | None = None) -> None:
        self.directory = Path(directory) if directory is not None else shipped_prompts_path()
        if not self.directory.is_dir():
            raise ConfigError(f"Prompt directory {self.directory} does not exist.",
                              hint="Reinstall the package or point at a directory of .j2 templates.")
        self._env = jinja2.Environment(
            loader=jinja2.FileSystemLoader(str(self.directory)),
            autoescape=False,
            undefined=jinja2.StrictUndefined,
            trim_blocks=True,
            lstrip_blocks=True,
            keep_trailing_newline=False,
            auto_reload=True,
        )

    def names(self) -> list[str]:
        return sorted(p.name[: -len(SUFFIX)] for p in self.directory.glob(f"*{SUFFIX}"))

    def info(self, name: str) -> PromptInfo:
        path = self.directory / f"{name}{SUFFIX}"
        if not path.is_file():
            raise UnknownIdError("prompt", name, self.names())
        source = path.read_text(encoding="utf-8")
        match = VERSION.match(source)
        if not match:
            raise ConfigError(f"Prompt {path} has no version comment.",
                              hint="Start it with a line like {# version: " + name + "-v1 #}.")
        digest = hashlib.sha256()
        for part in self._sources(name, source):
            digest.update(part.encode("utf-8"))
        return PromptInfo(name=name, version=match.group(1), sha256=digest.hexdigest(), path=path)

    def available(self) -> list[PromptInfo]:
        return [self.info(n) for n in self.names()]

    def render(self, name: str, /, **context: Any) -> RenderedPrompt:
        info = self.info(name)
        try:
            text = self._env.get_template(f"{name}{SUFFIX}").render(**context)
        except jinja2.TemplateError as exc:
            raise ConfigError(f"Prompt {name!r} failed to render: {exc}") from exc
        return RenderedPrompt(name=name, version=info.version, sha256=info.sha256, text=text.strip() + "\n")

    @functools.lru_cache(maxsize=128)  # noqa: B019 - a handful of templates, one Prompts per process
    def _references(self, name: str, source: str) -> tuple[str, ...]:
        try:
            parsed = self._env.parse(source)
        except jinja2.TemplateSyntaxError as exc:
            raise ConfigError(f"Prompt {name!r} is not valid Jinja: {exc}") from exc
        return tuple(sorted(r for r in jinja2.meta.find_referenced_templates(parsed) if r))

    def _sources(self, name: str, source: str, seen: frozenset[str] = frozenset()) -> Iterable[str]:
        """The template's source, then the sources of the templates it extends or includes."""
        yield source
        for ref in self._references(name, source):
            if ref in seen:
                continue
            path = self.directory / ref
            if path.is_file():
                yield from self._sources(ref, path.read_text(encoding="utf-8"), seen | {ref})


@functools.cache
def _default() -> Prompts:
    return Prompts()


def get_prompts(directory: Path | None = None) -> Prompts:
    """The shipped prompts (cached), or those in ``directory``."""
    return _default() if directory is None else Prompts(directory)


def stamps(rendered: Sequence[RenderedPrompt] | Mapping[str, RenderedPrompt]) -> list[PromptStamp]:
    """Distinct stamps of the prompts used for one answer, in first-used order."""
    items = rendered.values() if isinstance(rendered, Mapping) else rendered
    out: list[PromptStamp] = []
    for r in items:
        if r.stamp not in out:
            out.append(r.stamp)
    return out
