"""Read a PDF as Markdown-like text, from its layout: the shape the .docx reader gives.

pdfplumber (pdfminer.six underneath) gives every character with its box, size and font. Ruled
tables come from pdfplumber's table finder, read cell by cell; other characters are grouped into
lines by baseline (a superscript joins its line), with a space wherever two characters sit further
apart than a fraction of the font size. A turned page is turned back. A line or two set apart at
the top or bottom edge that recurs on most pages (digits aside), or a page number, is dropped.

All else is measured against the document's own statistics, never a fixed font or size: the body
size is the most common size by characters; a heading is a line set larger, or a short line wholly
in bold, and the largest heading style is level 1. The line pitch is the smallest common distance
between body lines; a wider gap, a list marker, a short line ending a sentence or a change of
style starts a new block. Wrapped lines are joined with a space, over a page break too while the
sentence runs on; a line-end hyphen stays (``co-ordinate``) unless the document has the word
unhyphenated elsewhere, and keeps its space before a conjunction (``short- and long-term``).

Output: ``#`` headings, ``- `` and ``1. `` items, ``| a | b |`` rows under a ``|---|`` rule,
``**Label:**`` where a block opens with a bold label, a blank line between blocks. One column of
text per page is assumed: columns side by side are read across, line by line.
"""

from __future__ import annotations

import io
import logging
import re
import threading
import warnings
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from itertools import pairwise
from typing import Any, TypeVar

__all__ = ["PdfLayoutError", "PdfPasswordError", "pdf_to_markdown"]


class PdfLayoutError(Exception):
    """The bytes are not a PDF that can be read."""


class PdfPasswordError(PdfLayoutError):
    """The PDF cannot be opened without a password."""


T = TypeVar("T")
Box = tuple[float, float, float, float]  # x0, top, x1, bottom
_Tables = Sequence[Sequence[Sequence[Box | None]]]  # tables, as rows of cell boxes (None: a merged cell)
_Raw = tuple[float, list[dict[str, Any]], _Tables]  # a page's height, characters and tables
_BOLD_FONT = re.compile(r"bold|black|heavy|demi|,b$", re.I)
_GLYPH = re.compile(r"^[•▪◦●■□‣►➢✓·\uf0a7\uf0b7\uf0d8\uf076]\s*(?=\S)")  # never starts a wrapped line
_DASH = re.compile(r"^[-–*]\s+(?=\S)")  # may be a sentence's dash wrapped to the line start
_NUMBER = re.compile(r"^\(?(\d{1,2})[.)]\s+(?=\S)")
_PAGE_NUMBER = re.compile(r"^(?:page\s+)?\d{1,4}(?:\s*(?:of|/)\s*\d{1,4})?$|^[-–]\s*\d{1,4}\s*[-–]$", re.I)
_ENDS_SENTENCE = re.compile(r"[.!?:][\"'”’)\]]*$")
_ENDS_CLAUSE = re.compile(r"[.!?:;,][\"'”’)\]]*$")
_WORD = re.compile(r"[^\W\d_]+(?:-[^\W\d_]+)*")
_SPACE_AFTER_HYPHEN = {"and", "or", "nor", "to", "as", "und", "og", "et", "en", "e", "y"}


@dataclass
class _Line:
    page: int
    top: float
    bottom: float
    x0: float
    x1: float
    text: str
    size: float  # the most common size of its characters, to half a point
    bold: list[bool]  # per character of text

    @property
    def all_bold(self) -> bool:
        return all(b for b, ch in zip(self.bold, self.text, strict=True) if ch.isalnum())


@dataclass
class _Table:
    page: int
    top: float
    bottom: float
    rows: list[list[list[str]]]  # row, cell, the cell's lines


@dataclass
class _Block:
    kind: str  # heading | para | item | table
    lines: list[str] = field(default_factory=list)
    style: tuple[float, bool] = (0.0, False)
    marker: str = ""
    x0: float = 0.0
    rows: list[list[list[str]]] = field(default_factory=list)


_quiet_lock, _quiet_depth, _saved_levels = threading.Lock(), 0, dict[str, int]()


@contextmanager
def _quiet() -> Iterator[None]:
    """pdfminer logs warnings about odd PDFs; none may reach the user (re-entrant across threads)."""
    global _quiet_depth
    with _quiet_lock:
        if _quiet_depth == 0:
            for name in ("pdfminer", "pdfplumber"):
                _saved_levels[name] = logging.getLogger(name).level
                logging.getLogger(name).setLevel(logging.CRITICAL + 1)
        _quiet_depth += 1
    try:
        with warnings.catch_warnings(action="ignore"):
            yield
    finally:
        with _quiet_lock:
            _quiet_depth -= 1
            if _quiet_depth == 0:
                for name, level in _saved_levels.items():
                    logging.getLogger(name).setLevel(level)


def _turn(box: Box, direction: tuple[int, int], width: float, height: float) -> Box:
    """A box on a page whose text runs in ``direction``, as it is on the page turned upright."""
    x0, top, x1, bottom = box
    return {(0, -1): (top, width - x1, bottom, width - x0), (0, 1): (height - bottom, x0, height - top, x1),
            (-1, 0): (width - x1, height - bottom, width - x0, height - top)}.get(direction, box)


def _upright(page: Any) -> _Raw:
    """A page's height, characters and tables (rows of cell boxes), turned so its text reads upright."""
    def way(c: dict[str, Any]) -> tuple[int, int]:
        a, b = c.get("matrix", (1, 0))[:2]
        return (round(a / (abs(a) + abs(b) or 1)), round(b / (abs(a) + abs(b) or 1)))

    chars = page.chars
    direction = Counter(way(c) for c in chars).most_common(1)[0][0] if chars else (1, 0)
    tables = [[list(row.cells) for row in t.rows] for t in page.find_tables()]
    if direction == (1, 0):
        return float(page.height), [c for c in chars if c.get("upright", True)], tables
    w, h = float(page.width), float(page.height)
    turned = []
    for c in chars:
        if way(c) == direction:
            x0, top, x1, bottom = _turn((c["x0"], c["top"], c["x1"], c["bottom"]), direction, w, h)
            turned.append({**c, "x0": x0, "top": top, "x1": x1, "bottom": bottom, "size": bottom - top})
    regrouped = [[sorted(row, key=lambda b: b[0]) for row in _rows_by(  # rows became columns: regroup
        [_turn(b, direction, w, h) for row in t for b in row if b], lambda b: b[1], lambda b: 1.0)] for t in tables]
    return (w if direction[1] else h), turned, regrouped


def _extract(data: bytes) -> list[_Raw]:
    import pdfplumber
    from pdfminer.pdfdocument import PDFEncryptionError, PDFPasswordIncorrect

    try:
        with _quiet(), pdfplumber.open(io.BytesIO(data)) as pdf:
            return [_upright(page) for page in pdf.pages]
    except Exception as exc:  # a malformed PDF can make pdfminer raise almost anything
        cause = exc.args[0] if exc.args and isinstance(exc.args[0], Exception) else exc
        if isinstance(cause, PDFPasswordIncorrect | PDFEncryptionError):
            raise PdfPasswordError(str(cause)) from exc
        raise PdfLayoutError(f"{type(cause).__name__}: {cause}") from exc


def _rows_by(items: list[T], at: Callable[[T], float], tolerance: Callable[[T], float]) -> list[list[T]]:
    """Items in rows: sorted by ``at``, a row running on while ``at`` stays within ``tolerance``."""
    rows: list[list[T]] = []
    for item in sorted(items, key=at):
        if rows and at(item) - at(rows[-1][0]) <= tolerance(item):
            rows[-1].append(item)
        else:
            rows.append([item])
    return rows


def _lines(chars: list[dict[str, Any]], page: int) -> list[_Line]:
    """Characters grouped into lines by baseline, left to right, spaces put back from the gaps."""
    rows = _rows_by(chars, lambda c: float(c["bottom"]), lambda c: max(1.0, 0.25 * c["size"]))
    for i in range(len(rows) - 1, -1, -1):  # a superscript or subscript joins the line it sits in
        small, top, bottom = max(c["size"] for c in rows[i]), min(c["top"] for c in rows[i]), rows[i][0]["bottom"]
        for j in (i + 1, i - 1):
            if 0 <= j < len(rows) and rows[j] and small < min(c["size"] for c in rows[j]) and \
                    min(c["top"] for c in rows[j]) - 1 <= (top + bottom) / 2 <= max(c["bottom"] for c in rows[j]) + 1:
                rows[j].extend(rows[i])
                rows[i] = []
                break
    out = []
    for row in filter(None, rows):
        text, bold, sizes, prev, space = "", [], Counter[float](), None, False
        for c in sorted(row, key=lambda c: c["x0"]):
            if not c["text"].strip():
                space = True
                continue
            if prev is not None and c["text"] == prev["text"] and abs(c["x0"] - prev["x0"]) < 1:
                continue  # the same glyph drawn twice (a fake bold, a shadow)
            if prev is not None and (space or c["x0"] - prev["x1"] > 0.15 * c["size"]):
                text += " "
                bold.append(bold[-1])
            text += c["text"]
            bold.extend([bool(_BOLD_FONT.search(c.get("fontname") or ""))] * len(c["text"]))
            sizes[round(c["size"] * 2) / 2] += 1
            prev, space = c, False
        ink = [c for c in row if c["text"].strip()]
        if ink:
            out.append(_Line(page, min(c["top"] for c in ink), max(c["bottom"] for c in ink), min(c["x0"] for c in ink),
                             max(c["x1"] for c in ink), text, sizes.most_common(1)[0][0], bold))
    return out


def _inside(c: dict[str, Any], box: Box) -> bool:
    x, y = (c["x0"] + c["x1"]) / 2, (c["top"] + c["bottom"]) / 2
    return bool(box[0] <= x <= box[2] and box[1] <= y <= box[3])


def _page_items(number: int, chars: list[dict[str, Any]], found: _Tables) -> list[_Line | _Table]:
    items: list[_Line | _Table] = []
    boxes = []
    for rows in found:
        if len(rows) < 2 or max(len(r) for r in rows) < 2:
            continue  # a framed box of text, not a table
        present = [b for row in rows for b in row if b]
        x0s, tops, x1s, bottoms = zip(*present, strict=True)
        box = (min(x0s), min(tops), max(x1s), max(bottoms))
        boxes.append(box)
        within = [c for c in chars if _inside(c, box)]
        cells = [[[ln.text for ln in _lines([c for c in within if _inside(c, cell)], number)] if cell else []
                  for cell in row] for row in rows]
        items.append(_Table(number, box[1], box[3], cells))
    items.extend(_lines([c for c in chars if not any(_inside(c, b) for b in boxes)], number))
    return sorted(items, key=lambda i: i.top)


def _drop_running_lines(pages: list[list[_Line | _Table]], heights: list[float]) -> None:
    """Drop headers and footers: a line or two set apart at the top or bottom edge of a page that
    recurs on most pages (digits aside), or a page number."""
    def edge(page: list[_Line | _Table], height: float) -> Iterator[_Line]:
        for run, at_top in ((page, True), (page[::-1], False)):
            for k in (1, 2):
                lines = [i for i in run[:k] if isinstance(i, _Line)]
                if len(run) <= k or len(lines) < k:
                    break
                gap = run[k].top - lines[-1].bottom if at_top else lines[-1].top - run[k].bottom
                if gap > 1.5 * (lines[-1].bottom - lines[-1].top) and all(
                        i.top < 0.12 * height if at_top else i.bottom > 0.88 * height for i in lines):
                    yield from lines
                    break

    def key(line: _Line) -> str:
        return re.sub(r"\d+", "#", " ".join(line.text.lower().split()))

    edges = [list(edge(p, h)) for p, h in zip(pages, heights, strict=True)]
    counts = Counter(k for e in edges for k in {key(ln) for ln in e})
    for page, lines in zip(pages, edges, strict=True):
        for ln in lines:
            if (len(pages) >= 2 and counts[key(ln)] >= max(2, (len(pages) + 1) // 2)) or _PAGE_NUMBER.match(ln.text):
                page.remove(ln)


def _join(a: str, b: str, vocab: set[str]) -> str:
    """Two wrapped lines as one: a space between, or none after a hyphen that belongs to the word."""
    if a.endswith("\u00ad"):  # a soft hyphen marks a break inside a word
        return a[:-1] + b
    stem, first = re.search(r"(\w+)[-\u2010]$", a), re.match(r"\w+", b)
    if stem and first:
        if first.group().lower() in _SPACE_AFTER_HYPHEN:  # "short-" + "and long-term"
            return a + " " + b
        whole, hyphened = (stem.group(1) + first.group()).lower(), f"{stem.group(1)}-{first.group()}".lower()
        return a[:-1] + b if whole in vocab and hyphened not in vocab else a + b
    return a + b if re.search(r"\w[–—]$", a) else a + " " + b  # "2024–" + "2026"


def _marker(line: _Line) -> tuple[str, int, bool] | None:
    """A list item's marker as output, where its text starts, and whether it is unambiguous."""
    for pattern, sure in ((_GLYPH, True), (_DASH, False), (_NUMBER, False)):
        if m := pattern.match(line.text):
            return (f"{m.group(1)}. " if pattern is _NUMBER else "- "), m.end(), sure
    return None


def _run_in(line: _Line, start: int) -> str:
    """The line's text from ``start``, with a bold run-in label there written ``**Label:**``."""
    text, end = line.text, start
    while end < len(text) and line.bold[end]:
        end += 1
    label = text[start:end].rstrip()
    if label and end < len(text) and text[end] == ":" and not label.endswith(":"):
        label, end = label + ":", end + 1
    if not label or end >= len(text) or label[-1] not in ":." or len(label.split()) > 8:
        return text[start:]
    return f"**{label}** {text[end:].lstrip()}"


class _Layout:
    """The document's statistics, and its lines gathered into blocks."""

    def __init__(self, pages: list[list[_Line | _Table]]) -> None:
        self.pages = pages
        lines = [i for p in pages for i in p if isinstance(i, _Line)]
        cells = [t for p in pages for i in p if isinstance(i, _Table) for row in i.rows for c in row for t in c]
        self.vocab = {w.lower() for t in [ln.text for ln in lines] + cells for w in _WORD.findall(t)}
        sizes = Counter(size for ln in lines for size in [ln.size] * len(ln.text))
        self.body = sizes.most_common(1)[0][0] if sizes else 0.0
        # a size that sets much of the text is body text too (a plan's lists set larger than its notes)
        self.text_sizes = {s for s, n in sizes.items() if n > 0.4 * sizes[self.body]}
        pitches = Counter(round(b.top - a.top) for a, b in pairwise(lines)
                          if a.page == b.page and a.size == b.size == self.body and 0 < b.top - a.top < 3 * self.body)
        common = sorted(p for p, n in pitches.items() if n >= 0.15 * sum(pitches.values()))
        self.pitch = common[0] if common else 1.25 * self.body
        body = [ln for ln in lines if ln.size == self.body]
        self.bold_body = sum(len(ln.text) for ln in body if ln.all_bold) > sum(len(ln.text) for ln in body) / 2
        self.left = {p: min((ln.x0 for ln in body if ln.page == p), default=0.0) for p in range(len(pages))}
        self.right = {p: max((ln.x1 for ln in body if ln.page == p), default=0.0) for p in range(len(pages))}

    def style(self, ln: _Line) -> tuple[float, bool] | None:
        if ln.size > self.body and ln.size not in self.text_sizes and len(ln.text.split()) <= 40:
            return (ln.size, ln.all_bold)
        if (ln.size == self.body and ln.all_bold and not self.bold_body and len(ln.text.split()) <= 12 and not _GLYPH.match(ln.text)
                and (not _ENDS_CLAUSE.search(ln.text) or ln.text.endswith(":"))):
            return (ln.size, True)
        return None

    def blocks(self) -> list[_Block]:
        blocks: list[_Block] = []
        prev: _Line | None = None  # the line before, unless a table came between
        for page in self.pages:
            for n, item in enumerate(page):
                last = blocks[-1] if blocks else None
                if isinstance(item, _Table):
                    if last and last.kind == "table" and prev is None and n == 0 and len(item.rows[0]) == len(last.rows[0]):
                        last.rows.extend(item.rows[1:] if item.rows[0] == last.rows[0] else item.rows)  # runs on
                    else:
                        blocks.append(_Block("table", rows=item.rows))
                    prev = None
                    continue
                same_page = prev is not None and prev.page == item.page
                gap = item.top - prev.top if prev and same_page else 0.0
                broken = prev is None or (same_page and (gap > self.pitch + max(1.0, 0.15 * self.body)
                                                         or prev.size != item.size))
                heading = self.style(item)
                if heading and heading[0] == self.body and not (
                        broken or (last and last.kind == "heading") or (prev and _ENDS_SENTENCE.search(prev.text))):
                    heading = None  # a bold line inside a paragraph
                if heading:
                    if last and last.kind == "heading" and last.style == heading and same_page and gap <= 2 * item.size:
                        last.lines.append(item.text)
                    else:
                        blocks.append(_Block("heading", [item.text], heading))
                    prev = item
                    continue
                marker = _marker(item)
                goes_on = prev is not None and last is not None and last.kind in {"para", "item"}
                if goes_on and prev is not None and not same_page:  # the first line of a page
                    goes_on = prev.page == item.page - 1 and n == 0 and prev.size == item.size and (
                        not _ENDS_SENTENCE.search(prev.text) or item.text[:1].islower())
                elif goes_on and prev is not None:
                    short = prev.x1 < self.right[prev.page] - 0.15 * (self.right[prev.page] - self.left[prev.page])
                    goes_on = not broken and not (short and _ENDS_SENTENCE.search(prev.text))
                if marker and goes_on and last is not None and prev is not None:
                    goes_on = not (marker[2] or _ENDS_CLAUSE.search(prev.text) or (
                        last.kind == "item" and abs(last.x0 - item.x0) < 2 and (last.marker == "- ") == (marker[0] == "- ")))
                if goes_on and last is not None:
                    last.lines.append(item.text)
                elif marker:
                    blocks.append(_Block("item", [_run_in(item, marker[1])], marker=marker[0], x0=item.x0))
                else:
                    blocks.append(_Block("para", [_run_in(item, 0)], x0=item.x0))
                prev = item
        return blocks

    def joined(self, lines: list[str]) -> str:
        text = lines[0] if lines else ""
        for more in lines[1:]:
            text = _join(text, more, self.vocab)
        return text

    def markdown(self) -> str:
        blocks = self.blocks()
        styles = sorted({b.style for b in blocks if b.kind == "heading"}, key=lambda s: (-s[0], not s[1]))
        out: list[str] = []
        for i, block in enumerate(blocks):
            before = blocks[i - 1].kind if i else "heading"
            if not (before == "heading" or (block.kind == "item" and before in {"item", "para"})):
                out.append("")
            if block.kind == "heading":
                out.append("#" * min(6, styles.index(block.style) + 1) + " " + self.joined(block.lines))
            elif block.kind == "table":
                for r, row in enumerate(block.rows):
                    out.append("| " + " | ".join(self.joined(c).replace("|", "/") for c in row) + " |")
                    out.extend(["|" + "---|" * len(row)] if r == 0 else [])
            else:
                out.append(block.marker + self.joined(block.lines))
        return "\n".join(out).strip() + "\n" if blocks else ""


def pdf_to_markdown(data: bytes) -> str:
    """The text of a PDF as Markdown-like blocks; "" when it has none. Raises PdfLayoutError."""
    raw = _extract(data)
    pages = [_page_items(n, chars, tables) for n, (_, chars, tables) in enumerate(raw)]
    _drop_running_lines(pages, [h for h, _, _ in raw])
    return _Layout(pages).markdown()
