"""Load the corpus (framework, interventions, references, cases) from one or more directories.

The shipped corpus comes first; a user corpus (``ASSISTANT_CORPUS_PATH`` or ``--corpus``) is
layered over it: its entries add to the shipped ones or replace them by id. Every problem is
reported with its file, line (where YAML tells us) and field, all at once.
"""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

from ..domain import FINDING_KINDS
from ..errors import CorpusError, CorpusProblem
from .models import (
    Case,
    Code,
    Framework,
    Intervention,
    InterventionsFile,
    ReferenceEntry,
    ReferencesFile,
)

__all__ = ["Corpus", "load_corpus", "validate_corpus"]

_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml when available: ~10x faster
MIN_CODES_PER_CELL = {"structural": 5, "relational": 5, "work_process": 2}


@dataclass(frozen=True)
class Corpus:
    framework: Framework
    codes: dict[str, Code]
    interventions: dict[str, Intervention]
    references: dict[str, ReferenceEntry]
    cases: dict[str, Case]
    paths: tuple[Path, ...]
    files: tuple[Path, ...]
    case_files: dict[str, Path] = field(default_factory=dict)

    @property
    def fingerprint(self) -> str:
        """A hash of every corpus file's bytes: changes when any file changes."""
        h = hashlib.sha256()
        for f in self.files:
            h.update(str(f.name).encode())
            h.update(f.read_bytes())
        return h.hexdigest()[:16]

    def reference_ids(self) -> set[str]:
        """Every id a citation may use: case:<id>, intervention:<id>, framework:/paper: ids."""
        ids = set(self.references)
        ids.update(c.ref_id for c in self.cases.values())
        ids.update(f"intervention:{i}" for i in self.interventions)
        return ids


class _Problems:
    def __init__(self) -> None:
        self.items: list[CorpusProblem] = []

    def add(self, file: Path | str, fld: str, message: str, line: int | None = None) -> None:
        self.items.append(CorpusProblem(str(file), fld, message, line))


class _LazyNode:
    """The YAML node tree of a text, composed only when a problem needs a line number."""

    def __init__(self, text: str) -> None:
        self.text = text
        self._node: yaml.Node | None = None

    def resolve(self) -> yaml.Node | None:
        if self._node is None:
            self._node = yaml.compose(self.text, Loader=_LOADER)
        return self._node


def _yaml_with_lines(text: str, path: Path, problems: _Problems) -> tuple[Any, Any]:
    try:
        data = yaml.load(text, Loader=_LOADER)
        node = _LazyNode(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        problems.add(path, "(yaml)", f"not valid YAML: {getattr(exc, 'problem', exc)}",
                     mark.line + 1 if mark is not None else None)
        return None, None
    return data, node


def _line_of(node: Any, loc: Sequence[int | str]) -> int | None:
    """The 1-based line of the YAML node at ``loc`` (or of its nearest existing parent)."""
    if isinstance(node, _LazyNode):
        node = node.resolve()
    line = node.start_mark.line + 1 if node is not None else None
    for part in loc:
        if isinstance(node, yaml.MappingNode):
            nxt = next((v for k, v in node.value if getattr(k, "value", None) == part), None)
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int) and part < len(node.value):
            nxt = node.value[part]
        else:
            nxt = None
        if nxt is None:
            break
        node = nxt
        line = node.start_mark.line + 1
    return line


def _fmt_loc(loc: Sequence[int | str]) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "(root)"


def _validate(model: type[BaseModel], data: Any, path: Path, node: yaml.Node | None,
              problems: _Problems, *, line_offset: int = 0) -> Any:
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        for err in exc.errors():
            loc = [p for p in err["loc"] if isinstance(p, int | str)]
            line = _line_of(node, loc)
            problems.add(path, _fmt_loc(loc), err["msg"], (line + line_offset) if line else None)
        return None


def _read_text(path: Path, problems: _Problems) -> str | None:
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        problems.add(path, "(file)", f"cannot be read: {exc}")
        return None


def _load_case(path: Path, problems: _Problems) -> Case | None:
    text = _read_text(path, problems)
    if text is None:
        return None
    if not text.startswith("---"):
        problems.add(path, "(front matter)", "must start with a '---' YAML front matter block", 1)
        return None
    parts = text.split("\n---", 1)
    if len(parts) != 2:
        problems.add(path, "(front matter)", "front matter is not closed by a '---' line", 1)
        return None
    front = parts[0][3:]
    body = parts[1].split("\n", 1)[1] if "\n" in parts[1] else ""
    data, node = _yaml_with_lines(front, path, problems)
    if data is None:
        return None
    if not isinstance(data, dict):
        problems.add(path, "(front matter)", "must be a mapping of fields", 1)
        return None
    if "body" in data:
        problems.add(path, "body", "the body is the Markdown after the front matter, not a field")
        return None
    case: Case | None = _validate(Case, {**data, "body": body.strip()}, path, node, problems, line_offset=1)
    if case is not None:
        if case.id != path.stem:
            problems.add(path, "id", f"id {case.id!r} must match the file name {path.stem!r}",
                         _line_of(node, ["id"]))
        words = len(body.split())
        if words < 150:
            problems.add(path, "(body)", f"body has {words} words; write at least 300")
    return case


def _parse_dir(directory: Path, problems: _Problems) -> dict[str, Any]:
    out: dict[str, Any] = {"files": []}
    fw = directory / "framework.yaml"
    if fw.exists():
        out["files"].append(fw)
        text = _read_text(fw, problems)
        if text is not None:
            out["framework"] = (*_yaml_with_lines(text, fw, problems), fw)
    for name, model in (("interventions", InterventionsFile), ("references", ReferencesFile)):
        p = directory / f"{name}.yaml"
        if p.exists():
            out["files"].append(p)
            text = _read_text(p, problems)
            if text is None:
                continue
            data, node = _yaml_with_lines(text, p, problems)
            if data is not None:
                parsed = _validate(model, data, p, node, problems)
                if parsed is not None:
                    out[name] = (parsed, p, node)
    cases: dict[str, tuple[Case, Path]] = {}
    for p in sorted((directory / "cases").glob("*.md")) if (directory / "cases").is_dir() else []:
        out["files"].append(p)
        case = _load_case(p, problems)
        if case is not None:
            cases[case.id] = (case, p)
    out["cases"] = cases
    return out


def _merge_framework(layers: list[tuple[Any, yaml.Node | None, Path]], problems: _Problems) -> Framework | None:
    """The shipped framework, with a user framework's codes and finding kinds added or replaced by id."""
    base_data, base_node, base_path = layers[0]
    framework: Framework | None = _validate(Framework, base_data, base_path, base_node, problems)
    if framework is None:
        return None
    codes = {c.id: c for c in framework.codes}
    for data, node, path in layers[1:]:
        if not isinstance(data, dict):
            problems.add(path, "(root)", "must be a mapping")
            continue
        for i, raw in enumerate(data.get("codes") or []):
            code = _validate(Code, raw, path, _line_node(node, ["codes", i]), problems)
            if code is not None:
                codes[code.id] = code
        unknown = set(data) - {"codes"}
        for key in sorted(unknown):
            problems.add(path, key, "a user framework.yaml may only add codes", _line_of(node, [key]))
    return framework.model_copy(update={"codes": list(codes.values())})


def _line_node(node: Any, loc: Sequence[int | str]) -> Any:
    if isinstance(node, _LazyNode):
        node = node.resolve()
    for part in loc:
        if isinstance(node, yaml.MappingNode):
            node = next((v for k, v in node.value if getattr(k, "value", None) == part), None)
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int) and part < len(node.value):
            node = node.value[part]
        else:
            return None
    return node


def _check_references(corpus: Corpus, problems: _Problems, locate: dict[str, tuple[Path, yaml.Node | None]]) -> None:
    codes = corpus.codes
    fw_path, fw_node = locate["framework"]
    iv_path, iv_node = locate.get("interventions", (Path("interventions.yaml"), None))
    ref_ids = set(corpus.references)
    case_ids = {c.ref_id for c in corpus.cases.values()}

    # framework: coverage, cross-references
    for theme in ("leadership", "strategy", "structure", "people"):
        for orientation, minimum in MIN_CODES_PER_CELL.items():
            n = sum(1 for c in codes.values() if c.theme == theme and c.orientation == orientation)
            if n < minimum:
                problems.add(fw_path, "codes", f"{theme} x {orientation} has {n} codes; at least {minimum} needed")
    seen: set[str] = set()
    for i, code in enumerate(corpus.framework.codes):
        if code.id in seen:
            problems.add(fw_path, f"codes[{i}].id", f"duplicate code id {code.id!r}", _line_of(fw_node, ["codes", i, "id"]))
        seen.add(code.id)
        for j, nm in enumerate(code.near_misses):
            if nm.belongs_to not in codes:
                problems.add(fw_path, f"codes[{i}].near_misses[{j}].belongs_to",
                             f"unknown code {nm.belongs_to!r}", _line_of(fw_node, ["codes", i, "near_misses", j, "belongs_to"]))
        for j, a in enumerate(code.anchors):
            if a not in ref_ids:
                problems.add(fw_path, f"codes[{i}].anchors[{j}]", f"unknown reference {a!r}",
                             _line_of(fw_node, ["codes", i, "anchors", j]))
    for i, kind_def in enumerate(corpus.framework.finding_kinds):
        for j, iv_id in enumerate(kind_def.interventions):
            if iv_id not in corpus.interventions:
                problems.add(fw_path, f"finding_kinds[{i}].interventions[{j}]", f"unknown intervention {iv_id!r}",
                             _line_of(fw_node, ["finding_kinds", i, "interventions", j]))
        for j, a in enumerate(kind_def.anchors):
            if a not in ref_ids:
                problems.add(fw_path, f"finding_kinds[{i}].anchors[{j}]", f"unknown reference {a!r}",
                             _line_of(fw_node, ["finding_kinds", i, "anchors", j]))
    if corpus.framework.provenance.paper not in ref_ids:
        problems.add(fw_path, "provenance.paper", f"unknown reference {corpus.framework.provenance.paper!r}")
    for j, a in enumerate(corpus.framework.provenance.anchors):
        if a not in ref_ids:
            problems.add(fw_path, f"provenance.anchors[{j}]", f"unknown reference {a!r}")

    # interventions
    for i, iv in enumerate(corpus.interventions.values()):
        for j, c in enumerate(iv.cases):
            if c not in case_ids:
                problems.add(iv_path, f"interventions[{i}].cases[{j}]", f"unknown case {c!r}",
                             _line_of(iv_node, ["interventions", i, "cases", j]))
        for j, r in enumerate(iv.references):
            if r not in ref_ids:
                problems.add(iv_path, f"interventions[{i}].references[{j}]", f"unknown reference {r!r}",
                             _line_of(iv_node, ["interventions", i, "references", j]))
    covered = {k for iv in corpus.interventions.values() for k in iv.answers}
    for kind in FINDING_KINDS:
        if kind not in covered:
            problems.add(iv_path, "interventions", f"no intervention answers finding kind {kind!r}")

    # cases
    for case in corpus.cases.values():
        path = corpus.case_files.get(case.id, Path(f"cases/{case.id}.md"))
        for theme, coding in case.coding.items():
            for orient in ("structural", "relational"):
                for j, note in enumerate(getattr(coding, orient)):
                    if note.code not in codes:
                        problems.add(path, f"coding.{theme}.{orient}[{j}].code", f"unknown code {note.code!r}")


@functools.lru_cache(maxsize=8)
def _load_cached(paths: tuple[Path, ...], stamp: tuple[tuple[str, float, int], ...]) -> Corpus:
    problems = _Problems()
    layers = [_parse_dir(p, problems) for p in paths]
    fw_layers = [layer["framework"] for layer in layers if "framework" in layer and layer["framework"][0] is not None]
    if not fw_layers:
        if not problems.items:
            problems.add(paths[0] / "framework.yaml", "(file)", "missing: every corpus needs a framework.yaml")
        raise CorpusError(_summary(problems), problems=problems.items)
    framework = _merge_framework(fw_layers, problems)
    interventions: dict[str, Intervention] = {}
    references: dict[str, ReferenceEntry] = {}
    cases: dict[str, Case] = {}
    case_files: dict[str, Path] = {}
    locate: dict[str, tuple[Path, yaml.Node | None]] = {"framework": (fw_layers[0][2], fw_layers[0][1])}
    for layer in layers:
        if "interventions" in layer:
            parsed, p, node = layer["interventions"]
            locate.setdefault("interventions", (p, node))
            _dupes(p, "interventions", [i.id for i in parsed.interventions], problems, node)
            interventions.update({i.id: i for i in parsed.interventions})
        if "references" in layer:
            parsed, p, node = layer["references"]
            _dupes(p, "references", [r.id for r in parsed.references], problems, node)
            references.update({r.id: r for r in parsed.references})
        for cid, (case, p) in layer["cases"].items():
            cases[cid] = case
            case_files[cid] = p
    if framework is None:
        raise CorpusError(_summary(problems), problems=problems.items)
    corpus = Corpus(
        framework=framework,
        codes={c.id: c for c in framework.codes},
        interventions=interventions,
        references=references,
        cases=cases,
        paths=paths,
        files=tuple(f for layer in layers for f in layer["files"]),
        case_files=case_files,
    )
    _check_references(corpus, problems, locate)
    if problems.items:
        raise CorpusError(_summary(problems), problems=problems.items)
    return corpus


def _dupes(path: Path, key: str, ids: list[str], problems: _Problems, node: yaml.Node | None) -> None:
    seen: set[str] = set()
    for i, x in enumerate(ids):
        if x in seen:
            problems.add(path, f"{key}[{i}].id", f"duplicate id {x!r}", _line_of(node, [key, i, "id"]))
        seen.add(x)


def _summary(problems: _Problems) -> str:
    n = len(problems.items)
    first = problems.items[0] if problems.items else None
    return f"The corpus has {n} problem{'s' if n != 1 else ''}" + (f"; first: {first}" if first else "")


def _stamp(paths: Iterable[Path]) -> tuple[tuple[str, float, int], ...]:
    out = []
    for root in paths:
        for f in [root / "framework.yaml", root / "interventions.yaml", root / "references.yaml",
                  *sorted((root / "cases").glob("*.md"))]:
            if f.exists():
                st = f.stat()
                out.append((str(f), st.st_mtime, st.st_size))
    return tuple(out)


def load_corpus(paths: Sequence[Path] | None = None) -> Corpus:
    """Load and validate the corpus; raises CorpusError listing every problem.

    Cached per process while no file changes (keyed on paths, mtimes and sizes).
    """
    if paths is None:
        from ..settings import get_settings

        paths = get_settings().corpus_paths
    resolved = tuple(Path(p).resolve() for p in paths)
    for p in resolved:
        if not p.is_dir():
            raise CorpusError(f"Corpus directory {p} does not exist.",
                              problems=[CorpusProblem(str(p), "(directory)", "does not exist")])
    return _load_cached(resolved, _stamp(resolved))


def validate_corpus(paths: Sequence[Path] | None = None) -> list[CorpusProblem]:
    """Every problem in the corpus (empty when it is valid)."""
    try:
        load_corpus(paths)
    except CorpusError as exc:
        return exc.problems
    return []
