"""Typography and list markers never change how an action is read or coded."""

from __future__ import annotations

import pytest

from assistant.advice.advisor import Advisor

PLAN = """# Northfield neighbourhood care plan 2025/26

## What we'll do
- We'll merge the two community nursing teams into one service by April 2026.
- District nurses, social workers and GPs will meet every week to plan care for people with complex needs.
- The partnership's board will track 12 KPIs on a monthly dashboard - waits, budgets and activity.
- Staff will be "empowered" to work as one team across the borough.
- Recruit 6 care coordinators on fixed-term contracts to March 2026.
"""

CURLY = (PLAN.replace("'", "\u2019").replace(' "', " \u201c").replace('" ', "\u201d ")
         .replace(" - ", " \u2013 ").replace("2025/26", "2025/26").replace("12 KPIs", "12\u00a0KPIs"))


def _reading(advisor: Advisor, plan: str) -> list[tuple[str, str, str, bool]]:
    return [(a.theme, a.orientation, a.horizon, a.concrete) for a in advisor.assess(plan).analysis.actions]


@pytest.fixture(scope="module")
def advisor() -> Advisor:
    return Advisor()


def test_curly_quotes_dashes_and_non_breaking_spaces_change_nothing(advisor: Advisor) -> None:
    assert CURLY != PLAN and len(CURLY) == len(PLAN)
    straight, curly = advisor.assess(PLAN), advisor.assess(CURLY)
    assert _reading(advisor, PLAN) == _reading(advisor, CURLY)
    assert straight.verdict == curly.verdict
    assert [d.kind for d in straight.detections] == [d.kind for d in curly.detections]
    # the plan's own characters are kept in what is quoted back
    for action in curly.analysis.actions:
        assert CURLY[action.start:action.end] == action.text
    assert any("\u2019" in a.text for a in curly.analysis.actions)


@pytest.mark.parametrize("marker", ["*", "+", "\u2022", "1."])
def test_list_markers_change_nothing(advisor: Advisor, marker: str) -> None:
    variant = PLAN.replace("\n- ", f"\n{marker} ")
    assert _reading(advisor, variant) == _reading(advisor, PLAN)
    assert [a.text for a in advisor.assess(variant).analysis.actions] == \
        [a.text for a in advisor.assess(PLAN).analysis.actions]


def _curled(text: str) -> str:
    return text.replace("'", "\u2019").replace(" - ", " \u2013 ")


def test_curly_apostrophes_change_no_reading_across_the_dev_plans(advisor: Advisor) -> None:
    """Before plain typography, five dev plans read differently with curly apostrophes (for example
    "an older persons' and carers' experience survey" went from people/structural to strategy/relational)."""
    from pathlib import Path

    from assistant.evals.dataset import load_sample

    root = Path(__file__).resolve().parents[2] / "evals" / "datasets"
    checked = 0
    for path in sorted((root / "dev").glob("*.yaml")) + sorted((root / "real" / "dev").glob("*.yaml")):
        text = load_sample(path).text
        if _curled(text) == text:
            continue
        checked += 1
        assert _reading(advisor, _curled(text)) == _reading(advisor, text), path.stem
    assert checked >= 20


def _real_plans() -> list[tuple[str, str]]:
    from pathlib import Path

    from assistant.evals.dataset import load_sample

    root = Path(__file__).resolve().parents[2] / "evals" / "datasets" / "real"
    return [(p.stem, load_sample(p).text) for split in ("dev", "test") for p in sorted((root / split).glob("*.yaml"))]


def _codes(advisor: Advisor, plan: str) -> dict[str, tuple[str, str, str]]:
    return {" ".join(a.text.split()): (a.theme, a.orientation, a.code) for a in advisor.assess(plan).analysis.actions}


def _reworded_headings(text: str) -> str:
    """Every Markdown heading's words replaced: "## Our workforce" becomes "## Part 3"."""
    import re

    count = iter(range(1, 10_000))
    return re.sub(r"(?m)^(#{1,6})[ \t]+\S.*$", lambda m: f"{m.group(1)} Part {next(count)}", text)


def test_heading_wording_changes_no_code_across_the_real_plans(advisor: Advisor) -> None:
    """An action is coded from its own words: the heading above it may say anything."""
    changed = 0
    for name, text in _real_plans():
        reworded = _reworded_headings(text)
        if reworded == text:
            continue
        changed += 1
        before, after = _codes(advisor, text), _codes(advisor, reworded)
        common = before.keys() & after.keys()
        assert len(common) >= 0.8 * len(before), name
        assert {k: before[k] for k in common} == {k: after[k] for k in common}, name
    assert changed >= 25


@pytest.mark.parametrize("marker", ["*", "\u2022"])
def test_list_markers_change_no_reading_across_the_real_plans(advisor: Advisor, marker: str) -> None:
    checked = 0
    for name, text in _real_plans():
        variant = text.replace("\n- ", f"\n{marker} ")
        if variant == text:
            continue
        checked += 1
        assert _reading(advisor, variant) == _reading(advisor, text), name
    assert checked >= 20
