"""Cut the corpus into retrievable chunks with stable ids and flat metadata.

    case:torbay#overview                 name, place, years, lessons, balance
    case:torbay#structure-relational     the case's coded actions for one theme and orientation
    case:torbay#outcomes                 outcome claims and sustainment
    case:torbay#what-worked              one chunk per body section (``## What worked``)
    intervention:boundary-spanning-roles
    code:structure.relational.boundary-spanning-roles
    framework:gittell-rmoc               references keep their own ids

A chunk longer than ``max_chars`` is split at paragraph, then sentence, boundaries into
``<id>``, ``<id>-2``, ... (or ``#part-2`` for documents without a section). The default
keeps each chunk inside the embedding model's 256-token window and far below the 16 KiB
per-document limit of Chroma's hosted service.

Metadata values are scalars, as Chroma requires: ``themes`` is a comma-joined string and
each theme also gets a boolean ``theme_<name>`` field that filters can use.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Literal, Protocol

from ..domain import THEMES
from ..knowledge.models import Case, Code, Framework, Intervention, ReferenceEntry

__all__ = [
    "CHUNK_KINDS",
    "MAX_CHUNK_CHARS",
    "Chunk",
    "ChunkKind",
    "CorpusLike",
    "chunk_corpus",
    "slugify",
]

ChunkKind = Literal["case", "intervention", "code", "reference"]
CHUNK_KINDS: tuple[ChunkKind, ...] = ("case", "intervention", "code", "reference")
MAX_CHUNK_CHARS = 1200
MetadataValue = str | int | float | bool


class CorpusLike(Protocol):
    """What chunking needs from ``assistant.knowledge.Corpus``."""

    @property
    def framework(self) -> Framework: ...

    @property
    def codes(self) -> Mapping[str, Code]: ...

    @property
    def interventions(self) -> Mapping[str, Intervention]: ...

    @property
    def references(self) -> Mapping[str, ReferenceEntry]: ...

    @property
    def cases(self) -> Mapping[str, Case]: ...


@dataclass(frozen=True)
class Chunk:
    id: str
    doc_id: str
    kind: ChunkKind
    title: str
    section: str
    text: str
    themes: tuple[str, ...] = ()
    country: str | None = None
    confidence: str | None = None
    orientation: str | None = None
    extra: Mapping[str, MetadataValue] = field(default_factory=dict)

    @property
    def metadata(self) -> dict[str, MetadataValue]:
        """Flat scalar metadata for Chroma (and for the lexical index's filters)."""
        meta: dict[str, MetadataValue] = {
            "kind": self.kind,
            "doc_id": self.doc_id,
            "title": self.title,
            "section": self.section,
            "themes": ",".join(self.themes),
        }
        for theme in self.themes:
            meta[f"theme_{theme}"] = True
        if self.country:
            meta["country"] = self.country
            meta["country_key"] = country_key(self.country)
        if self.confidence:
            meta["confidence"] = self.confidence
        if self.orientation:
            meta["orientation"] = self.orientation
        meta.update(self.extra)
        return meta

    @property
    def content_hash(self) -> str:
        """Changes when the text or any metadata changes; drives the incremental refresh."""
        payload = json.dumps({"text": self.text, "meta": self.metadata}, sort_keys=True)
        return hashlib.sha256(payload.encode()).hexdigest()[:20]


_COUNTRY_ALIASES = {
    "usa": "united states",
    "us": "united states",
    "united states of america": "united states",
    "holland": "netherlands",
    "the netherlands": "netherlands",
    "nederland": "netherlands",
    "deutschland": "germany",
    "nz": "new zealand",
    "aotearoa": "new zealand",
}


def country_key(country: str) -> str:
    """The filterable form of a country: its main name, lowercased, without any parenthesis
    (``Netherlands (with pilots in England)`` -> ``netherlands``); common aliases folded."""
    main = re.sub(r"\(.*?\)", " ", country).split(",")[0]
    key = " ".join(main.lower().split())
    return _COUNTRY_ALIASES.get(key, key)


def slugify(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-") or "section"


_SENTENCE_END = re.compile(r"(?<=[.!?;])\s+")


def split_text(text: str, max_chars: int) -> list[str]:
    """Pieces of at most ``max_chars``, cut at paragraph, line, sentence, then word boundaries."""
    text = text.strip()
    if len(text) <= max_chars:
        return [text] if text else []
    for pattern in (r"\n\s*\n", r"\n", _SENTENCE_END.pattern, r"\s+"):
        parts = [p.strip() for p in re.split(pattern, text) if p.strip()]
        if len(parts) > 1:
            break
    else:
        return [text[i : i + max_chars] for i in range(0, len(text), max_chars)]
    pieces: list[str] = []
    current = ""
    joiner = "\n" if "\n" in text else " "
    for part in parts:
        for sub in split_text(part, max_chars) if len(part) > max_chars else [part]:
            candidate = f"{current}{joiner}{sub}" if current else sub
            if len(candidate) <= max_chars:
                current = candidate
            else:
                pieces.append(current)
                current = sub
    if current:
        pieces.append(current)
    return pieces


def _emit(base: Chunk, body: str, max_chars: int, *, part_sep: str) -> Iterator[Chunk]:
    """Yield ``base`` with ``body`` under a one-line header, split to fit ``max_chars``."""
    header = f"{base.title} — {base.section}" if base.section else base.title
    budget = max(200, max_chars - len(header) - 2)
    for n, piece in enumerate(split_text(body, budget), start=1):
        chunk_id = base.id if n == 1 else f"{base.id}{part_sep}{n}"
        yield Chunk(
            id=chunk_id,
            doc_id=base.doc_id,
            kind=base.kind,
            title=base.title,
            section=base.section,
            text=f"{header}\n{piece}",
            themes=base.themes,
            country=base.country,
            confidence=base.confidence,
            orientation=base.orientation,
            extra=base.extra,
        )


def _bullets(items: list[str]) -> str:
    return "\n".join(f"- {item}" for item in items)


def _theme_label(framework: Framework, theme: str) -> str:
    return next((t.label for t in framework.themes if t.id == theme), theme.capitalize())


def _orientation_label(framework: Framework, orientation: str) -> str:
    return next(
        (o.label for o in framework.orientations if o.id == orientation),
        orientation.replace("_", " "),
    )


def _case_sections(body: str) -> Iterator[tuple[str, str]]:
    """(heading, text) for each ``## Heading`` section of a case body."""
    heading: str | None = None
    lines: list[str] = []
    for line in body.splitlines():
        match = re.match(r"^##\s+(.+?)\s*#*\s*$", line)
        if match:
            if heading is not None and "\n".join(lines).strip():
                yield heading, "\n".join(lines).strip()
            heading, lines = match.group(1).strip(), []
        else:
            lines.append(line)
    if heading is None:
        if body.strip():
            yield "Summary", body.strip()
    elif "\n".join(lines).strip():
        yield heading, "\n".join(lines).strip()


def case_chunks(
    case: Case, codes: Mapping[str, Code], framework: Framework, max_chars: int
) -> Iterator[Chunk]:
    doc_id = case.ref_id
    themes = tuple(case.themes)

    def base(
        slug: str,
        section: str,
        themes: tuple[str, ...] = themes,
        orientation: str | None = None,
        extra: Mapping[str, MetadataValue] | None = None,
    ) -> Chunk:
        return Chunk(
            id=f"{doc_id}#{slug}",
            doc_id=doc_id,
            kind="case",
            title=case.name,
            section=section,
            text="",
            themes=themes,
            country=case.country,
            confidence=case.confidence,
            orientation=orientation,
            extra=extra or {},
        )

    overview = (
        f"{case.name}. {case.country}, {case.years}. {case.organisation_type}.\n"
        f"Lessons:\n{_bullets(case.lessons)}\n"
        f"Balance (relational share {case.balance.relational_share:.2f}): {case.balance.reasoning}"
    )
    yield from _emit(base("overview", "Overview"), overview, max_chars, part_sep="-")

    for theme in THEMES:
        coding = case.coding.get(theme)
        if coding is None:
            continue
        for orientation, notes in (
            ("structural", coding.structural),
            ("relational", coding.relational),
        ):
            if not notes:
                continue
            lines = []
            for note in notes:
                code = codes.get(note.code)
                label = (
                    code.label
                    if code is not None
                    else note.code.rsplit(".", 1)[-1].replace("-", " ")
                )
                lines.append(f"- {note.note} ({label})")
            section = f"{_theme_label(framework, theme)}, {_orientation_label(framework, orientation).lower()} actions"
            chunk = base(
                f"{theme}-{orientation}",
                section,
                themes=(theme,),
                orientation=orientation,
                extra={"codes": ",".join(sorted({n.code for n in notes}))},
            )
            yield from _emit(chunk, "\n".join(lines), max_chars, part_sep="-")

    outcomes = (
        "Outcomes:\n"
        + _bullets([o.claim + ("" if o.confirmed else " (unconfirmed)") for o in case.outcomes])
        + f"\nSustainment: {case.sustainment}"
    )
    yield from _emit(
        base("outcomes", "Outcomes and sustainment"), outcomes, max_chars, part_sep="-"
    )

    seen: set[str] = {"overview", "outcomes"}
    for heading, text in _case_sections(case.body):
        slug = slugify(heading)
        while slug in seen:
            slug += "-x"
        seen.add(slug)
        yield from _emit(base(slug, heading), text, max_chars, part_sep="-")


def intervention_chunks(item: Intervention, max_chars: int) -> Iterator[Chunk]:
    body = (
        f"{item.summary}\n"
        f"Answers: {', '.join(k.replace('-', ' ') for k in item.answers)}.\n"
        f"First steps:\n{_bullets(item.first_steps)}\n"
        f"Measures:\n{_bullets(item.measures)}\n"
        f"Pitfalls:\n{_bullets(item.pitfalls)}"
    )
    base = Chunk(
        id=f"intervention:{item.id}",
        doc_id=f"intervention:{item.id}",
        kind="intervention",
        title=item.title,
        section="",
        text="",
        themes=tuple(item.themes),
        extra={"answers": ",".join(item.answers)},
    )
    yield from _emit(base, body, max_chars, part_sep="#part-")


def code_chunks(code: Code, framework: Framework, max_chars: int) -> Iterator[Chunk]:
    body = (
        f"{_theme_label(framework, code.theme)}, {_orientation_label(framework, code.orientation).lower()} code. "
        f"{code.definition}\n"
        f"Cue phrases: {'; '.join(code.cues)}.\n"
        f"Examples:\n{_bullets(code.examples)}"
    )
    base = Chunk(
        id=f"code:{code.id}",
        doc_id=f"code:{code.id}",
        kind="code",
        title=code.label,
        section="",
        text="",
        themes=(code.theme,),
        orientation=code.orientation,
    )
    yield from _emit(base, body, max_chars, part_sep="#part-")


def reference_chunks(ref: ReferenceEntry, max_chars: int) -> Iterator[Chunk]:
    year = f", {ref.year}" if ref.year else ""
    body = f"{ref.authors}{year}. {ref.summary}"
    base = Chunk(
        id=ref.id,
        doc_id=ref.id,
        kind="reference",
        title=ref.title,
        section="",
        text="",
        extra={"reference_kind": ref.kind},
    )
    yield from _emit(base, body, max_chars, part_sep="#part-")


def chunk_corpus(corpus: CorpusLike, *, max_chars: int = MAX_CHUNK_CHARS) -> list[Chunk]:
    """Every chunk of the corpus, in a stable order; ids are unique."""
    chunks: list[Chunk] = []
    for case in sorted(corpus.cases.values(), key=lambda c: c.id):
        chunks.extend(case_chunks(case, corpus.codes, corpus.framework, max_chars))
    for item in sorted(corpus.interventions.values(), key=lambda i: i.id):
        chunks.extend(intervention_chunks(item, max_chars))
    for code in sorted(corpus.codes.values(), key=lambda c: c.id):
        chunks.extend(code_chunks(code, corpus.framework, max_chars))
    for ref in sorted(corpus.references.values(), key=lambda r: r.id):
        chunks.extend(reference_chunks(ref, max_chars))
    ids = [c.id for c in chunks]
    if len(ids) != len(set(ids)):
        dupes = sorted({i for i in ids if ids.count(i) > 1})
        raise ValueError(f"duplicate chunk ids: {dupes[:5]}")
    return chunks
