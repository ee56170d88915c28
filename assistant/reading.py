"""Read a plan from a file or stdin: .txt, .md, .docx, .pdf, in any common encoding.

Every failure is a PlanReadError with one line saying what is wrong and what to do.
"""

from __future__ import annotations

import codecs
import io
import re
import sys
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

from .errors import PlanReadError

__all__ = ["PlanDocument", "decode_plan_bytes", "plan_from_text", "read_plan"]

TEXT_SUFFIXES = {".txt", ".md", ".markdown", ".text", ""}
SUPPORTED = "txt, md, docx or pdf"


@dataclass(frozen=True)
class PlanDocument:
    text: str
    source: str
    format: str  # text | markdown | docx | pdf
    encoding: str | None = None

    @property
    def title(self) -> str | None:
        return guess_title(self.text)


def guess_title(text: str) -> str | None:
    for line in text.splitlines():
        stripped = line.strip()
        if not stripped:
            continue
        heading = re.match(r"^#{1,3}\s+(.+?)\s*#*$", stripped)
        if heading:
            return heading.group(1).strip()
        if len(stripped) <= 100 and not stripped.endswith((".", ":", ";")) and not stripped.startswith(("-", "*", "|")):
            return stripped
        return None
    return None


def _looks_binary(data: bytes) -> bool:
    sample = data[:8192]
    if b"\x00" in sample:
        return True
    control = sum(1 for b in sample if b < 9 or 13 < b < 32)
    return control > max(8, len(sample) // 100)


def decode_plan_bytes(data: bytes, *, source: str = "plan") -> tuple[str, str]:
    """Decode plan bytes; returns (text, encoding). UTF-8 (with or without BOM), UTF-16, cp1252."""
    if data.startswith(codecs.BOM_UTF8):
        return data[len(codecs.BOM_UTF8):].decode("utf-8", errors="strict"), "utf-8-sig"
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        try:
            return data.decode("utf-16"), "utf-16"
        except UnicodeDecodeError as exc:
            raise PlanReadError(f"{source} looks like UTF-16 but does not decode ({exc.reason}).",
                                source=source, hint="Save it as UTF-8 and try again.") from exc
    # UTF-16 without a BOM: every other byte is NUL in mostly-ASCII text
    head = data[:4096]
    if len(head) >= 4 and head[1::2].count(0) > len(head) // 4 and head[0::2].count(0) == 0:
        try:
            return data.decode("utf-16-le"), "utf-16-le"
        except UnicodeDecodeError:
            pass
    if len(head) >= 4 and head[0::2].count(0) > len(head) // 4 and head[1::2].count(0) == 0:
        try:
            return data.decode("utf-16-be"), "utf-16-be"
        except UnicodeDecodeError:
            pass
    if _looks_binary(data):
        raise PlanReadError(f"{source} is a binary file, not a plan I can read.",
                            source=source, hint=f"Give a {SUPPORTED} file.")
    try:
        return data.decode("utf-8"), "utf-8"
    except UnicodeDecodeError:
        pass
    try:
        return data.decode("cp1252"), "cp1252"
    except UnicodeDecodeError:
        return data.decode("latin-1"), "latin-1"


def _docx_text(data: bytes, source: str) -> str:
    try:
        import docx
        from docx.opc.exceptions import PackageNotFoundError
    except ImportError as exc:  # pragma: no cover - a core dependency
        raise PlanReadError("Reading .docx needs python-docx.", source=source,
                            hint='pip install "python-docx>=1.1"') from exc
    try:
        document = docx.Document(io.BytesIO(data))
    except (PackageNotFoundError, zipfile.BadZipFile, KeyError, ValueError, OSError) as exc:
        raise PlanReadError(f"{source} is not a readable .docx file.", source=source,
                            hint="Open it in Word and save it again as .docx, or save it as .txt.") from exc
    styles = {st.style_id: (st.name or "").lower() for st in document.styles}
    lines: list[str] = []
    number = 0  # a numbered list runs on across the bullets nested in it, and restarts after other text
    for block in document.element.body.iterchildren():
        tag = block.tag.rsplit("}", 1)[-1]
        if tag == "p":
            text = "".join(t.text or "" for t in block.iter() if t.tag.endswith("}t"))
            style = _paragraph_style(block, styles)
            if text.strip() and style.startswith("heading"):
                level = style.removeprefix("heading").strip()
                text = "#" * (int(level) if level.isdigit() else 1) + " " + text
            elif text.strip() and style == "title":
                text = "# " + text
            elif text.strip() and style.startswith("list number"):
                number += 1
                text = f"{number}. " + text
            elif text.strip() and (style.startswith("list") or block.find(".//" + _W + "numPr") is not None):
                text = "- " + text
            if text.strip() and not style.startswith("list") and block.find(".//" + _W + "numPr") is None:
                number = 0
            lines.append(text)
        elif tag == "tbl":
            # a table reads as a Markdown table: a row per line, its first row the header
            rows = 0
            for row in block.iter():
                if row.tag.endswith("}tr"):
                    cells = []
                    for cell in row.iterchildren():
                        if cell.tag.endswith("}tc"):
                            cells.append(" ".join("".join(t.text or "" for t in p.iter() if t.tag.endswith("}t"))
                                                  for p in cell.iter() if p.tag.endswith("}p")).strip())
                    lines.append("| " + " | ".join(cells) + " |")
                    rows += 1
                    if rows == 1:
                        lines.append("|" + "---|" * len(cells))
            lines.append("")
            number = 0
    return "\n".join(lines)


_W = "{http://schemas.openxmlformats.org/wordprocessingml/2006/main}"


def _paragraph_style(block: Any, styles: dict[str, str]) -> str:
    """The lower-cased style name of a .docx paragraph element ("heading 1", "list bullet", ...)."""
    ppr = block.find(_W + "pPr")
    pstyle = ppr.find(_W + "pStyle") if ppr is not None else None
    if pstyle is None:
        return ""
    return styles.get(pstyle.get(_W + "val") or "", "")


def _pdf_text(data: bytes, source: str) -> str:
    from .pdf_layout import PdfLayoutError, PdfPasswordError, pdf_to_markdown

    try:
        text = pdf_to_markdown(data)
    except PdfPasswordError as exc:
        raise PlanReadError(f"{source} is a password-protected PDF.", source=source,
                            hint="Save an unprotected copy and try again.") from exc
    except PdfLayoutError as exc:
        raise PlanReadError(f"{source} is not a readable PDF.", source=source,
                            hint="Export it again as PDF, or save the plan as .txt or .docx.") from exc
    if not text.strip():
        raise PlanReadError(f"{source} has no extractable text (a scanned PDF?).", source=source,
                            hint="Run it through OCR or copy the text into a .txt file.")
    return text


def _check_text(text: str, source: str, max_chars: int | None) -> str:
    if not text.strip():
        raise PlanReadError(f"{source} is empty: there is no plan text to critique.", source=source,
                            hint="Give a file that contains the plan.")
    if max_chars is not None and len(text) > max_chars:
        raise PlanReadError(f"{source} has {len(text):,} characters, over the limit of {max_chars:,}.",
                            source=source, hint="Split the plan, or raise ASSISTANT_MAX_PLAN_CHARS.")
    return text


def plan_from_text(text: str, *, source: str = "plan", max_chars: int | None = None) -> PlanDocument:
    """A plan given directly as text (the API, the chat)."""
    if "\x00" in text:
        raise PlanReadError(f"{source} contains binary data, not plan text.", source=source,
                            hint=f"Give the text of a {SUPPORTED} plan.")
    text = text.lstrip("\ufeff")
    return PlanDocument(text=_check_text(text, source, max_chars), source=source, format="text")


def plan_from_bytes(data: bytes, *, source: str, suffix: str, max_bytes: int | None = None,
                    max_chars: int | None = None) -> PlanDocument:
    """Read plan bytes whose kind is given by a file suffix (files, uploads)."""
    suffix = suffix.lower()
    if max_bytes is not None and len(data) > max_bytes:
        raise PlanReadError(f"{source} is {len(data):,} bytes, over the limit of {max_bytes:,}.", source=source,
                            hint="Split the plan, or raise ASSISTANT_MAX_PLAN_BYTES.")
    if not data.strip():
        raise PlanReadError(f"{source} is empty: there is no plan text to critique.", source=source,
                            hint="Give a file that contains the plan.")
    if suffix == ".docx" or (data[:2] == b"PK" and suffix not in TEXT_SUFFIXES):
        if suffix != ".docx":
            raise PlanReadError(f"{source} is a zip archive, not a plan.", source=source, hint=f"Give a {SUPPORTED} file.")
        return PlanDocument(_check_text(_docx_text(data, source), source, max_chars), source, "docx")
    if suffix == ".pdf" or data[:5] == b"%PDF-":
        return PlanDocument(_check_text(_pdf_text(data, source), source, max_chars), source, "pdf")
    if suffix not in TEXT_SUFFIXES and suffix not in {".rst", ".csv"}:
        raise PlanReadError(f"{source} has an unsupported file type {suffix!r}.", source=source,
                            hint=f"Give a {SUPPORTED} file.")
    if data[:2] == b"PK":
        raise PlanReadError(f"{source} is a zip archive (perhaps a .docx with the wrong name).",
                            source=source, hint="Rename it to .docx, or save the plan as .txt.")
    text, encoding = decode_plan_bytes(data, source=source)
    fmt = "markdown" if suffix in {".md", ".markdown"} else "text"
    return PlanDocument(_check_text(text, source, max_chars), source, fmt, encoding)


def read_plan(path: str | Path, *, max_bytes: int | None = None, max_chars: int | None = None,
              stdin: BinaryIO | None = None) -> PlanDocument:
    """Read a plan file, or standard input when ``path`` is ``-``."""
    if max_bytes is None or max_chars is None:
        from .settings import get_settings

        settings = get_settings()
        max_bytes = settings.max_plan_bytes if max_bytes is None else max_bytes
        max_chars = settings.max_plan_chars if max_chars is None else max_chars
    if str(path) == "-":
        stream = stdin if stdin is not None else sys.stdin.buffer
        data = stream.read(max_bytes + 1)
        return plan_from_bytes(data, source="standard input", suffix="", max_bytes=max_bytes, max_chars=max_chars)
    p = Path(path)
    source = str(p)
    if not p.exists():
        raise PlanReadError(f"{source} does not exist.", source=source, hint="Check the path and try again.")
    if p.is_dir():
        raise PlanReadError(f"{source} is a directory, not a plan file.", source=source,
                            hint=f"Give a {SUPPORTED} file.")
    try:
        size = p.stat().st_size
        if size > max_bytes:
            raise PlanReadError(f"{source} is {size:,} bytes, over the limit of {max_bytes:,}.", source=source,
                                hint="Split the plan, or raise ASSISTANT_MAX_PLAN_BYTES.")
        data = p.read_bytes()
    except PermissionError as exc:
        raise PlanReadError(f"{source} cannot be read: permission denied.", source=source,
                            hint="Check the file's permissions.") from exc
    except OSError as exc:
        raise PlanReadError(f"{source} cannot be read: {exc.strerror}.", source=source) from exc
    return plan_from_bytes(data, source=source, suffix=p.suffix, max_bytes=max_bytes, max_chars=max_chars)
