"""The same plan as Markdown, plain text and Word reads to the same actions, balance and verdict."""

from __future__ import annotations

from pathlib import Path

import pytest

from assistant.advice.advisor import Advisor
from assistant.evals.dataset import load_sample
from assistant.evals.render import render_docx
from assistant.reading import read_plan

ROOT = Path(__file__).resolve().parents[2]
REAL = sorted(p for split in ("train", "dev", "test") for p in (ROOT / "evals" / "datasets" / "real" / split).glob("*.yaml"))
WORD = [(p, name) for p in REAL for name in load_sample(p).sample.renderings if name.endswith(".docx")]
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


@pytest.mark.parametrize("path", EXAMPLES, ids=[p.name for p in EXAMPLES])
def test_an_example_plan_reads_the_same_as_markdown_text_and_word(advisor: Advisor, path: Path,
                                                                  tmp_path: Path) -> None:
    markdown = read_plan(path).text
    (tmp_path / "plan.txt").write_text(markdown, encoding="utf-8")
    render_docx(markdown, tmp_path / "plan.docx")
    expected = _reading(advisor, markdown)
    assert _reading(advisor, read_plan(tmp_path / "plan.txt").text) == expected
    assert _reading(advisor, read_plan(tmp_path / "plan.docx").text) == expected


def test_there_are_word_renderings_to_check() -> None:
    assert len(WORD) >= 10
