"""The same plan as Markdown, plain text, Word and PDF reads to the same actions, balance and verdict."""

from __future__ import annotations

from pathlib import Path

import pytest

from assistant.advice.advisor import Advisor
from assistant.evals.dataset import load_sample
from assistant.evals.render import render_docx, render_pdf
from assistant.reading import read_plan

ROOT = Path(__file__).resolve().parents[2]
REAL = sorted(p for split in ("train", "dev", "test") for p in (ROOT / "evals" / "datasets" / "real" / split).glob("*.yaml"))
WORD = [(p, name) for p in REAL for name in load_sample(p).sample.renderings if name.endswith(".docx")]
PDF = [(p, name) for p in REAL for name in load_sample(p).sample.renderings if name.endswith(".pdf")]
EXAMPLES = sorted((ROOT / "examples" / "plans").glob("*.md"))


@pytest.fixture(scope="module")
def advisor() -> Advisor:
    return Advisor()


def _reading(advisor: Advisor, text: str) -> tuple[list[str], object, bool, str]:
    a = advisor.assess(text)
    return ([" ".join(x.text.split()) for x in a.analysis.actions], a.verdict.relational_share,
            a.verdict.structural_overuse, a.verdict.severity)


@pytest.mark.parametrize(("path", "name"), WORD, ids=[n for _, n in WORD])
def test_a_real_plan_reads_the_same_from_word(advisor: Advisor, path: Path, name: str) -> None:
    assert _reading(advisor, read_plan(path.parent / name).text) == _reading(advisor, load_sample(path).text)


@pytest.mark.parametrize(("path", "name"), PDF, ids=[n for _, n in PDF])
def test_a_real_plan_reads_the_same_from_pdf(advisor: Advisor, path: Path, name: str) -> None:
    assert _reading(advisor, read_plan(path.parent / name).text) == _reading(advisor, load_sample(path).text)


@pytest.mark.parametrize("path", EXAMPLES, ids=[p.name for p in EXAMPLES])
def test_an_example_plan_reads_the_same_as_markdown_text_word_and_pdf(advisor: Advisor, path: Path,
                                                                      tmp_path: Path) -> None:
    markdown = read_plan(path).text
    (tmp_path / "plan.txt").write_text(markdown, encoding="utf-8")
    render_docx(markdown, tmp_path / "plan.docx")
    render_pdf(markdown, tmp_path / "plan.pdf")
    expected = _reading(advisor, markdown)
    assert _reading(advisor, read_plan(tmp_path / "plan.txt").text) == expected
    assert _reading(advisor, read_plan(tmp_path / "plan.docx").text) == expected
    assert _reading(advisor, read_plan(tmp_path / "plan.pdf").text) == expected


def test_there_are_word_and_pdf_renderings_to_check() -> None:
    assert len(WORD) >= 10
    assert len(PDF) >= 10
