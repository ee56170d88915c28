"""The layout reader turns a PDF into Markdown-like text, whatever fonts and sizes the PDF uses.

The PDFs here are drawn line by line with fpdf2's core fonts (Times, Helvetica; DejaVu Serif for
bullet glyphs), on letter pages in points, at sizes and spacings the eval renderer never uses, so
these tests hold the reader to layout, not to one renderer's output.
"""

from __future__ import annotations

import logging
import re
import subprocess
import sys
from pathlib import Path

import pytest
from fpdf import FPDF

from assistant.errors import PlanReadError
from assistant.pdf_layout import _join, pdf_to_markdown
from assistant.reading import read_plan

from .pdfs import raw_pdf

SERIF = Path("/usr/share/fonts/truetype/dejavu/DejaVuSerif.ttf")


class _Doc(FPDF):
    """A letter-size page in points, written one line at a time, with an optional header and footer."""

    def __init__(self, header: str = "", footer: bool = False) -> None:
        super().__init__(unit="pt", format="letter")
        self.running_header, self.page_footer = header, footer
        self.set_margins(72, 72, 72)
        self.set_auto_page_break(True, 72)
        self.add_page()

    def header(self) -> None:
        if self.running_header:
            self.set_font("Helvetica", "I", 8)
            self.set_y(36)
            self.cell(text=self.running_header)
            self.set_y(72)

    def footer(self) -> None:
        if self.page_footer:
            self.set_font("Helvetica", "", 8)
            self.set_y(-48)
            self.cell(0, 10, f"Page {self.page_no()} of {{nb}}", align="C")

    def text_line(self, text: str, size: float = 11, style: str = "", family: str = "Times", indent: float = 0,
                  after: float = 0, lead: str = "") -> None:
        self.set_font(family, style, size)
        self.set_x(self.l_margin)
        if lead:
            self.cell(14, size * 1.2, lead)
        self.set_x(self.l_margin + indent)
        self.cell(text=text, h=size * 1.2, new_x="LMARGIN", new_y="NEXT")
        if after:
            self.ln(after)

    def data(self) -> bytes:
        return bytes(self.output())


def test_wrapped_lines_join_and_paragraphs_split() -> None:
    doc = _Doc()
    doc.text_line("We will bring the community teams of both councils")
    doc.text_line("together under one manager by April 2025, and we")
    doc.text_line("will review the model after a year.", after=9)
    doc.text_line("Our second paragraph is short.")
    doc.text_line("A third paragraph follows with no space above it, as")
    doc.text_line("Word sets paragraphs when spacing is turned off.")
    text = pdf_to_markdown(doc.data())
    assert text.split("\n\n") == [
        "We will bring the community teams of both councils together under one manager by April 2025, "
        "and we will review the model after a year.",
        "Our second paragraph is short.",
        "A third paragraph follows with no space above it, as Word sets paragraphs when spacing is "
        "turned off.\n",
    ]


def test_heading_levels_follow_the_documents_own_sizes() -> None:
    doc = _Doc()
    doc.text_line("Joint Plan for Care", size=20, style="B", family="Helvetica", after=6)
    doc.text_line("Section one: how the partnership will", size=15, style="B", family="Helvetica")
    doc.text_line("work in practice", size=15, style="B", family="Helvetica", after=4)
    doc.text_line("We will meet monthly and publish the minutes of every meeting.", after=6)
    doc.text_line("Workforce", style="B", after=2)
    doc.text_line("We will recruit forty new care workers by the end of the year.")
    lines = pdf_to_markdown(doc.data()).splitlines()
    assert [ln for ln in lines if ln.startswith("#")] == [
        "# Joint Plan for Care", "## Section one: how the partnership will work in practice", "### Workforce"]
    assert "We will recruit forty new care workers by the end of the year." in lines


def test_a_ruled_table_reads_as_markdown_rows_under_its_header() -> None:
    doc = _Doc()
    doc.text_line("The actions are:", after=6)
    top, xs, heights = doc.get_y(), [72, 260, 400, 540], [16, 30, 16]
    rows = [[["Action"], ["Lead"], ["By"]],
            [["Open two community hubs in the", "north of the county"], ["Director of", "Community Care"],
             ["March 2025"]],
            [["Pool the budgets"], ["Finance director"], ["April 2026"]]]
    doc.set_font("Helvetica", "", 9)
    y = top
    for row, height in zip(rows, heights, strict=True):
        for x0, cell in zip(xs, row, strict=False):
            for k, text in enumerate(cell):
                doc.set_xy(x0 + 3, y + 3 + 11 * k)
                doc.cell(text=text, h=10)
        y += height
    for x in xs:
        doc.line(x, top, x, y)
    edge = top
    for height in [0, *heights]:
        edge += height
        doc.line(xs[0], edge, xs[-1], edge)
    doc.set_xy(72, y + 14)
    doc.text_line("After the table comes a paragraph.")
    text = pdf_to_markdown(doc.data())
    assert ("| Action | Lead | By |\n|---|---|---|\n"
            "| Open two community hubs in the north of the county | Director of Community Care | March 2025 |\n"
            "| Pool the budgets | Finance director | April 2026 |") in text
    assert text.startswith("The actions are:\n\n|") and text.endswith("\n\nAfter the table comes a paragraph.\n")


def test_list_items_with_wrapped_lines() -> None:
    doc = _Doc()
    doc.text_line("We will:")
    doc.text_line("open two hubs in the north of the county, each with", lead="-", indent=14)
    doc.text_line("a team of twelve;", indent=14)
    doc.text_line("close the old office.", lead="-", indent=14, after=6)
    doc.text_line("Agree the budget.", lead="1.", indent=14)
    doc.text_line("Appoint a lead, who will", lead="2.", indent=14)
    doc.text_line("report to the board.", indent=14, after=6)
    doc.text_line("After the list comes a paragraph.")
    assert pdf_to_markdown(doc.data()).splitlines() == [
        "We will:",
        "- open two hubs in the north of the county, each with a team of twelve;",
        "- close the old office.",
        "1. Agree the budget.",
        "2. Appoint a lead, who will report to the board.",
        "",
        "After the list comes a paragraph.",
    ]


@pytest.mark.skipif(not SERIF.is_file(), reason="drawing bullet glyphs needs a Unicode TTF font: DejaVu Serif (Debian fonts-dejavu-core)")
def test_bullet_glyphs_start_items() -> None:
    doc = _Doc()
    doc.add_font("Serif", "", str(SERIF))
    for glyph, item in (("•", "first item"), ("▪", "second item"), ("–", "third item")):
        doc.text_line(item, family="Serif", size=10, lead=glyph, indent=14)
    assert pdf_to_markdown(doc.data()).splitlines() == ["- first item", "- second item", "- third item"]


def test_running_headers_and_page_footers_are_dropped_and_a_sentence_runs_over_the_page() -> None:
    doc = _Doc(header="Joint Plan 2024 - draft for consultation", footer=True)
    words = ("We will work with " + ", ".join(f"partner number {i}" for i in range(160)) + ".").split()
    lines, current = [], ""
    for word in words:
        if len(current) + len(word) > 60:
            lines.append(current)
            current = word
        else:
            current = f"{current} {word}".strip()
    lines.append(current)
    for ln in lines:
        doc.text_line(ln)
    assert doc.page_no() >= 2
    text = pdf_to_markdown(doc.data())
    assert text == " ".join(words) + "\n"


def test_line_end_hyphens() -> None:
    doc = _Doc()
    doc.text_line("We will co-")
    doc.text_line("ordinate discharge with the organi-")
    doc.text_line("sation that runs the wards, and plan short-")
    doc.text_line("and long-term care; the organisation is one of")
    doc.text_line("three, for 2024-")
    doc.text_line("2026.")
    assert pdf_to_markdown(doc.data()) == (
        "We will co-ordinate discharge with the organisation that runs the wards, and plan short- and "
        "long-term care; the organisation is one of three, for 2024-2026.\n")
    assert _join("a tech\u00ad", "nology", set()) == "a technology"
    assert _join("services \u2013", "and care", set()) == "services \u2013 and care"


def test_a_bold_run_in_label_is_kept() -> None:
    doc = _Doc()
    doc.set_font("Times", "", 11)
    doc.multi_cell(0, 13, "**Workforce:** We will train every team leader in coaching.", markdown=True,
                   new_x="LMARGIN", new_y="NEXT")
    doc.ln(6)
    doc.set_x(72)
    doc.cell(14, 13, "-")
    doc.multi_cell(0, 13, "**Digital.** We will share one care record.", markdown=True)
    assert pdf_to_markdown(doc.data()).splitlines() == [
        "**Workforce:** We will train every team leader in coaching.",
        "- **Digital.** We will share one care record."]


def test_spaces_come_back_from_gaps_when_a_pdf_has_no_space_characters() -> None:
    data = raw_pdf(b"BT /F1 12 Tf 72 720 Td [(We) -300 (will) -300 (merge) -300 (the) -300 (trusts.)] TJ ET")
    assert pdf_to_markdown(data) == "We will merge the trusts.\n"


def _odd_pdf() -> bytes:
    """A PDF that reads, but whose font makes pdfminer log a warning."""
    doc = _Doc()
    doc.text_line("We will merge the two trusts in April.")
    return doc.data().replace(b"/BaseFont /Times-Roman", b"/BaseFont /Nope /FirstChar 0 /Widths 99 0 R")


def test_no_third_party_log_line_for_an_odd_or_broken_pdf(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    (tmp_path / "odd.pdf").write_bytes(_odd_pdf())
    assert "merge the two trusts" in read_plan(tmp_path / "odd.pdf").text
    good = _Doc()
    good.text_line("We will merge the two trusts in April.")
    (tmp_path / "cut.pdf").write_bytes(good.data()[:600])
    with pytest.raises(PlanReadError, match="not a readable PDF"):
        read_plan(tmp_path / "cut.pdf")
    assert [r for r in caplog.records if r.name.startswith(("pdfminer", "pdfplumber"))] == []
    assert logging.getLogger("pdfminer").level == logging.NOTSET  # silenced only around the call


def test_nothing_reaches_stderr_for_an_odd_or_broken_pdf(tmp_path: Path) -> None:
    (tmp_path / "odd.pdf").write_bytes(_odd_pdf())
    (tmp_path / "bad.pdf").write_bytes(b"%PDF-1.4\n" + bytes(range(256)) * 8)
    code = ("import sys; from assistant.reading import read_plan; from assistant.errors import PlanReadError\n"
            "print(read_plan(sys.argv[1]).text)\n"
            "try:\n    read_plan(sys.argv[2])\nexcept PlanReadError as e:\n    print(e)\n")
    run = subprocess.run([sys.executable, "-c", code, str(tmp_path / "odd.pdf"), str(tmp_path / "bad.pdf")],
                         capture_output=True, text=True, timeout=120, check=True)
    assert "merge the two trusts" in run.stdout and "not a readable PDF" in run.stdout
    assert run.stderr == ""


def test_password_and_empty_pdfs(tmp_path: Path) -> None:
    locked = _Doc()
    locked.text_line("We will merge the two trusts in April.")
    locked.set_encryption(owner_password="owner", user_password="secret")
    (tmp_path / "locked.pdf").write_bytes(locked.data())
    with pytest.raises(PlanReadError, match="password-protected"):
        read_plan(tmp_path / "locked.pdf")
    restricted = _Doc()  # encrypted only against editing: it opens without a password
    restricted.text_line("We will merge the two trusts in April.")
    restricted.set_encryption(owner_password="owner")
    (tmp_path / "restricted.pdf").write_bytes(restricted.data())
    assert "merge the two trusts" in read_plan(tmp_path / "restricted.pdf").text
    blank = _Doc()
    blank.rect(100, 100, 200, 200)
    (tmp_path / "scan.pdf").write_bytes(blank.data())
    with pytest.raises(PlanReadError, match="no extractable text"):
        read_plan(tmp_path / "scan.pdf")


def test_the_output_has_one_blank_line_between_blocks() -> None:
    doc = _Doc()
    doc.text_line("Plan", size=18, style="B", family="Helvetica", after=6)
    doc.text_line("We will act.", after=6)
    doc.text_line("We will also review.")
    text = pdf_to_markdown(doc.data())
    assert text == "# Plan\nWe will act.\n\nWe will also review.\n"
    assert not re.search(r"\n{3,}", text)


def test_a_superscript_stays_in_its_line() -> None:
    doc = _Doc()
    doc.c_margin = 0
    doc.set_font("Times", "", 11)
    doc.cell(text="We will merge the two trusts", h=13)
    doc.set_font("Times", "", 7)
    doc.set_xy(doc.get_x(), doc.get_y() - 3)
    doc.cell(text="1", h=13)
    doc.set_xy(doc.get_x(), doc.get_y() + 3)
    doc.set_font("Times", "", 11)
    doc.cell(text=" in April, and review the", h=13, new_x="LMARGIN", new_y="NEXT")
    doc.text_line("merger after a year.")
    assert pdf_to_markdown(doc.data()) == "We will merge the two trusts1 in April, and review the merger after a year.\n"


@pytest.mark.parametrize("angle", [90, 270])
def test_a_turned_page_reads_upright(angle: int) -> None:
    doc = _Doc()
    with doc.rotation(angle, x=306, y=396):
        doc.set_xy(200, 300)
        doc.text_line("Actions", size=16, style="B", family="Helvetica")
        doc.set_font("Times", "", 11)
        for text in ("We will open two hubs in the north of", "the county by March 2025."):
            doc.set_x(200)
            doc.cell(text=text, h=13, new_y="NEXT")
    assert pdf_to_markdown(doc.data()) == "# Actions\nWe will open two hubs in the north of the county by March 2025.\n"
