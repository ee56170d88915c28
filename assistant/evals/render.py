"""Render a Markdown plan as the Word or PDF file a leader would send.

Used to ship real-plan samples in the formats plans arrive in (``renderings:`` in a sample) and to
test that the reader gives the same reading from every format. Handles the Markdown that plans
use: headings, paragraphs, bullet and numbered lists (nested by indentation), pipe tables, block
quotes, ``**bold**`` runs and HTML comments (kept as text, as a pasted comment would be).

    python -m assistant.evals.render SAMPLE.yaml [--formats docx pdf]

writes ``<id>.docx`` / ``<id>.pdf`` beside the sample and adds them to its ``renderings``.
PDF needs the ``fpdf2`` package (in the ``dev`` extra).
"""

from __future__ import annotations

import argparse
import re
from dataclasses import dataclass
from pathlib import Path

__all__ = ["Block", "parse_markdown", "render_docx", "render_pdf"]


@dataclass(frozen=True)
class Block:
    kind: str  # heading | paragraph | bullet | number | table | quote
    text: str = ""
    level: int = 0  # heading level, or list nesting depth
    rows: tuple[tuple[str, ...], ...] = ()


_HEADING = re.compile(r"^(#{1,6})\s+(.*)$")
_BULLET = re.compile(r"^(\s*)[-*+]\s+(.*)$")
_NUMBER = re.compile(r"^(\s*)(\d+)[.)]\s+(.*)$")
_RULE = re.compile(r"^\s*\|?\s*:?-{3,}")


def _cells(line: str) -> tuple[str, ...]:
    return tuple(c.strip() for c in line.strip().strip("|").split("|"))


def parse_markdown(text: str) -> list[Block]:
    """The plan's Markdown as blocks (a paragraph's wrapped lines joined with spaces)."""
    blocks: list[Block] = []
    para: list[str] = []
    table: list[tuple[str, ...]] = []

    def flush() -> None:
        if para:
            blocks.append(Block("paragraph", " ".join(p.strip() for p in para)))
            para.clear()
        if table:
            blocks.append(Block("table", rows=tuple(table)))
            table.clear()

    for line in text.splitlines():
        if not line.strip():
            flush()
            continue
        if line.lstrip().startswith("|"):
            if para:
                flush()
            if not _RULE.match(line):
                table.append(_cells(line))
            continue
        if table:
            flush()
        if m := _HEADING.match(line):
            flush()
            blocks.append(Block("heading", m.group(2).strip(), len(m.group(1))))
        elif m := _BULLET.match(line):
            flush()
            blocks.append(Block("bullet", m.group(2).strip(), len(m.group(1).expandtabs(4)) // 2))
        elif m := _NUMBER.match(line):
            flush()
            blocks.append(Block("number", m.group(3).strip(), len(m.group(1).expandtabs(4)) // 2))
        elif line.lstrip().startswith(">"):
            flush()
            blocks.append(Block("quote", line.lstrip()[1:].strip()))
        elif blocks and blocks[-1].kind in {"bullet", "number"} and not para and line.startswith("  "):
            last = blocks.pop()  # a list item's continuation line, or a paragraph indented under an item
            blocks.append(Block(last.kind, last.text + " " + line.strip(), last.level))
        else:
            para.append(line)
    flush()
    return blocks


_BOLD = re.compile(r"\*\*(.+?)\*\*")


def _runs(text: str) -> list[tuple[str, bool]]:
    """Text split into (piece, bold) runs on ``**...**``."""
    out, at = [], 0
    for m in _BOLD.finditer(text):
        if m.start() > at:
            out.append((text[at:m.start()], False))
        out.append((m.group(1), True))
        at = m.end()
    if at < len(text):
        out.append((text[at:], False))
    return out


def _plain(text: str) -> str:
    return _BOLD.sub(r"\1", text)


def render_docx(markdown: str, path: Path) -> None:
    import docx

    document = docx.Document()
    for block in parse_markdown(markdown):
        if block.kind == "heading":
            document.add_heading(_plain(block.text), level=min(block.level, 4))
        elif block.kind == "table":
            width = max(len(r) for r in block.rows)
            table = document.add_table(rows=len(block.rows), cols=width)
            table.style = "Table Grid"
            for i, row in enumerate(block.rows):
                for j in range(width):
                    table.cell(i, j).text = _plain(row[j]) if j < len(row) else ""
        else:
            style = {"paragraph": None, "quote": "Quote",
                     "bullet": "List Bullet" + (f" {block.level + 1}" if block.level else ""),
                     "number": "List Number" + (f" {block.level + 1}" if block.level else "")}[block.kind]
            paragraph = document.add_paragraph(style=style)
            for piece, bold in _runs(block.text):
                paragraph.add_run(piece).bold = bold
    document.save(str(path))


_FONT = Path("/usr/share/fonts/truetype/dejavu")


def render_pdf(markdown: str, path: Path) -> None:
    from fpdf import FPDF
    from fpdf.enums import TableHeadingsDisplay

    pdf = FPDF(format="A4")
    pdf.set_margins(20, 20, 20)
    pdf.set_auto_page_break(True, margin=20)
    if (_FONT / "DejaVuSans.ttf").is_file():
        pdf.add_font("Body", "", str(_FONT / "DejaVuSans.ttf"))
        pdf.add_font("Body", "B", str(_FONT / "DejaVuSans-Bold.ttf"))
        family = "Body"
    else:  # the core fonts hold Latin-1 only
        family = "Helvetica"

    def clean(s: str) -> str:
        if family != "Helvetica":
            return s
        return s.translate({0x2018: "'", 0x2019: "'", 0x201C: '"', 0x201D: '"', 0x2013: "-", 0x2014: "-",
                            0x2022: "-"}).encode("latin-1", "replace").decode("latin-1")
    pdf.add_page()
    width = pdf.w - pdf.l_margin - pdf.r_margin
    numbers: dict[int, int] = {}
    for block in parse_markdown(markdown):
        if block.kind not in {"number", "bullet"}:
            numbers.clear()
        if block.kind == "heading":
            pdf.set_font(family, "B", {1: 16, 2: 13, 3: 11.5}.get(block.level, 10.5))
            pdf.ln(3)
            pdf.multi_cell(width, 7, clean(_plain(block.text)), align="L", new_x="LMARGIN", new_y="NEXT")
            pdf.ln(1)
        elif block.kind == "table":
            pdf.set_font(family, "", 8.5)
            with pdf.table(width=width, first_row_as_headings=True, line_height=4.6,
                           repeat_headings=TableHeadingsDisplay.NONE) as table:
                n = max(len(r) for r in block.rows)
                for row in block.rows:
                    cells = table.row()
                    for j in range(n):
                        cells.cell(clean(_plain(row[j])) if j < len(row) else "")
            pdf.ln(2)
        else:
            pdf.set_font(family, "", 10)
            indent = 5 * block.level
            if block.kind == "bullet":
                lead = "-" if family == "Helvetica" else "\u2022"
            elif block.kind == "number":
                numbers[block.level] = numbers.get(block.level, 0) + 1
                lead = f"{numbers[block.level]}."
            else:
                lead = ""
            if block.kind == "quote":
                pdf.set_font(family, "", 9.5)
                indent = 8
            pdf.set_x(pdf.l_margin + indent)
            if lead:
                pdf.cell(6, 5, lead)
            pdf.multi_cell(width - indent - (6 if lead else 0), 5, clean(_plain(block.text)), align="L",
                           new_x="LMARGIN", new_y="NEXT")
            pdf.ln(1.5)
    pdf.output(str(path))


def main(argv: list[str] | None = None) -> int:
    import yaml

    parser = argparse.ArgumentParser(prog="python -m assistant.evals.render", description=__doc__.split("\n\n")[0])
    parser.add_argument("samples", nargs="+", type=Path)
    parser.add_argument("--formats", nargs="+", choices=["docx", "pdf"], default=["docx", "pdf"])
    args = parser.parse_args(argv)
    for sample in args.samples:
        data = yaml.safe_load(sample.read_text(encoding="utf-8"))
        names = []
        for fmt in args.formats:
            out = sample.with_suffix("." + fmt)
            (render_docx if fmt == "docx" else render_pdf)(data["plan"], out)
            names.append(out.name)
        text = sample.read_text(encoding="utf-8")
        if "\nrenderings:" not in text:
            text = text.replace("\nsources:", f"\nrenderings: [{', '.join(names)}]\nsources:", 1)
            sample.write_text(text, encoding="utf-8")
        print(f"{sample}: {', '.join(names)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
