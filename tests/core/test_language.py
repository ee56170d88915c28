"""A plan the offline reader cannot read gets a clear notice, never a verdict (least of all "balanced")."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from assistant.advice.advisor import Advisor
from assistant.analysis.language import plan_language
from assistant.errors import PlanReadError

DUTCH = """# Regioplan Zorg en Welzijn 2025-2027

## Wat wij gaan doen
- Wij gaan de wijkteams in de gemeente versterken met twee extra wijkverpleegkundigen per team.
- De huisartsen en de wijkverpleging werken elke week samen in een multidisciplinair overleg.
- Het budget voor de Wmo wordt voor 2026 verhoogd met 5 procent.
- De gemeente en de zorgverzekeraar sluiten een convenant over de inzet van de praktijkondersteuner.
- Wij zullen de inwoners betrekken bij het ontwerp van de nieuwe toegang tot zorg en ondersteuning.
- Er komt een regionale stuurgroep die elk kwartaal de voortgang bespreekt.
"""
FRENCH = ("Nous allons créer une communauté professionnelle territoriale de santé avec les médecins et les "
          "infirmiers du territoire. Le budget sera voté par le conseil pour les trois prochaines années et "
          "les équipes se réuniront chaque semaine pour organiser les parcours des patients les plus fragiles. "
          "Une coordinatrice sera recrutée pour animer le réseau et les usagers seront associés à la démarche.")


def test_a_dutch_plan_is_refused_with_a_notice_naming_its_language() -> None:
    assert plan_language(DUTCH) == "nl"
    with pytest.raises(PlanReadError, match=r"appears to be written in Dutch.*English plans only"):
        Advisor().critique_offline(DUTCH)


def test_the_cli_says_so_in_one_line_and_gives_no_verdict(tmp_path: Path) -> None:
    plan = tmp_path / "plan.md"
    plan.write_text(DUTCH, encoding="utf-8")
    done = subprocess.run([sys.executable, "-m", "assistant", "critique", str(plan), "--format", "json"],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 2
    assert "Dutch" in done.stderr and "Traceback" not in done.stderr
    assert done.stdout == ""


@pytest.mark.parametrize(("text", "expected"), [
    (FRENCH, "fr"),
    ("We will open two community hubs by March 2026 and the teams will meet every week with the GP practices "
     "of the Riverside and Northfield networks to plan care for people with complex needs, supported by the "
     "council's social workers and the voluntary sector. The programme board will review progress each quarter.",
     None),
    ("Zorg en Welzijn", None),  # too short to say
])
def test_plan_language(text: str, expected: str | None) -> None:
    assert plan_language(text) == expected


def test_an_english_plan_about_a_dutch_programme_is_read() -> None:
    text = ("The Integraal Zorgakkoord (IZA) asks each region to write a regioplan. We will set up a regional "
            "steering group with the zorgkantoor, the gemeenten and the huisartsen by June 2025, and the wijkteams "
            "will meet every week with the district nurses to plan care for older people living at home.")
    assert plan_language(text) is None
    assert Advisor().assess(text).analysis.actions
