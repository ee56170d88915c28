from __future__ import annotations

import io
from pathlib import Path

import pytest

from assistant.errors import PlanReadError
from assistant.reading import plan_from_text, read_plan

from .pdfs import raw_pdf

PLAN = "We will establish an integrated care board. Staff will learn together in monthly sessions."


def test_utf8_bom_utf16_and_cp1252(tmp_path: Path) -> None:
    cases = {
        "bom.txt": ("\ufeff" + PLAN).encode("utf-8"),
        "u16.txt": PLAN.encode("utf-16"),
        "win.txt": ("Café – " + PLAN).encode("cp1252"),
    }
    for name, data in cases.items():
        (tmp_path / name).write_bytes(data)
    assert read_plan(tmp_path / "bom.txt").text == PLAN
    assert read_plan(tmp_path / "u16.txt").text == PLAN
    doc = read_plan(tmp_path / "win.txt")
    assert doc.text.startswith("Café – ") and doc.encoding == "cp1252"


def test_docx_with_headings_bullets_and_table(tmp_path: Path) -> None:
    import docx

    d = docx.Document()
    d.add_heading("Workforce", 1)
    d.add_paragraph("Train all staff on the new record.", style="List Bullet")
    t = d.add_table(rows=1, cols=2)
    t.rows[0].cells[0].text = "Pool the budgets"
    t.rows[0].cells[1].text = "April 2026"
    d.save(tmp_path / "plan.docx")
    text = read_plan(tmp_path / "plan.docx").text
    assert "# Workforce" in text
    assert "- Train all staff on the new record." in text
    assert "Pool the budgets | April 2026" in text


def test_pdf(tmp_path: Path) -> None:
    pdf = _tiny_pdf("We will merge the two trusts in April.")
    (tmp_path / "plan.pdf").write_bytes(pdf)
    assert "merge the two trusts" in read_plan(tmp_path / "plan.pdf").text


def _tiny_pdf(line: str) -> bytes:
    """A valid one-page PDF with a line of text."""
    return raw_pdf(f"BT /F1 12 Tf 72 720 Td ({line}) Tj ET".encode())


@pytest.mark.parametrize(
    ("name", "data", "message"),
    [
        ("empty.txt", b"", "is empty"),
        ("blank.md", b"  \n\t \n", "is empty"),
        ("binary.txt", bytes(range(256)) * 4, "binary"),
        ("fake.docx", b"not a zip at all", "not a readable .docx"),
        ("broken.pdf", b"%PDF-1.4 garbage", "not a readable PDF"),
        ("image.png", b"\x89PNG\r\n\x1a\n" + b"\x00" * 40, "unsupported file type"),
    ],
)
def test_bad_files_give_one_clear_error(tmp_path: Path, name: str, data: bytes, message: str) -> None:
    (tmp_path / name).write_bytes(data)
    with pytest.raises(PlanReadError) as err:
        read_plan(tmp_path / name)
    assert message in str(err.value)


def test_missing_and_oversized(tmp_path: Path) -> None:
    with pytest.raises(PlanReadError, match="does not exist"):
        read_plan(tmp_path / "nope.txt")
    (tmp_path / "big.txt").write_text(PLAN * 100)
    with pytest.raises(PlanReadError, match="over the limit"):
        read_plan(tmp_path / "big.txt", max_bytes=1000)


def test_stdin_and_text() -> None:
    doc = read_plan("-", stdin=io.BytesIO(PLAN.encode()))
    assert doc.text == PLAN and doc.source == "standard input"
    with pytest.raises(PlanReadError):
        plan_from_text("   ")
