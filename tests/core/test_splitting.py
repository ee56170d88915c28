"""A sentence is split only where its parts would be coded differently (docs/coding-guide.md)."""

from __future__ import annotations

import pytest

from assistant.advice.advisor import Advisor


@pytest.fixture(scope="module")
def advisor() -> Advisor:
    return Advisor()


def _actions(advisor: Advisor, item: str) -> list[str]:
    return [a.text for a in advisor.assess(f"# Plan\n\n- {item}\n").analysis.actions]


@pytest.mark.parametrize("item", [
    "Merge corporate services and remove duplicate functions.",
    "We will build integrated community teams around groups of GP practices, reporting monthly to the Board.",
    "We will set up a new joint committee and pool budgets under a section 75 agreement.",
])
def test_parts_with_the_same_code_stay_one_action(advisor: Advisor, item: str) -> None:
    assert _actions(advisor, item) == [item]


@pytest.mark.parametrize(("item", "parts"), [
    ("We will merge the two trusts and train staff together in joint sessions every month.",
     ["We will merge the two trusts", "train staff together in joint sessions every month"]),
    ("We will merge the two community trusts into one organisation; district nurses and social workers "
     "will meet every week to plan care together.",
     ["We will merge the two community trusts into one organisation",
      "district nurses and social workers will meet every week to plan care together"]),
])
def test_a_structural_and_a_relational_part_are_two_actions(advisor: Advisor, item: str, parts: list[str]) -> None:
    assert _actions(advisor, item) == parts
