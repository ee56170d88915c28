"""Judging a plan on a given reading: a dataset's gold actions (eval --reading gold) or a user's file."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import yaml

from assistant.advice.advisor import Advisor
from assistant.domain import PlanReading, ReadingAction
from assistant.evals.runner import RunOptions, run_eval

ROOT = Path(__file__).resolve().parents[2]
PLAN = """# Riverside community services plan 2025/26

## What we will do
- Merge the two community nursing teams into one service by April 2026.
- Establish a programme management office to track 40 milestones on a monthly dashboard.
- District nurses, social workers and GPs will meet every week to plan care for people with complex needs.
- Report monthly to the board on waiting times and budget.
"""


def test_eval_run_with_the_gold_reading_judges_each_sample_on_its_own_gold_actions(tmp_path: Path) -> None:
    data = tmp_path / "real"
    data.mkdir()
    for path in sorted((ROOT / "evals" / "datasets" / "real" / "dev").glob("*.yaml"))[:3]:
        (data / path.name).write_bytes(path.read_bytes())
    record, _ = run_eval(RunOptions(dataset=data, out=tmp_path / "run.json", progress=False, reading="gold",
                                    scorers=["reading", "verdict_accuracy", "groundedness"]))
    assert record.settings["reading"] == "gold"
    assert record.metric("reading_action_f1") == 1.0 and record.metric("reading_orientation_accuracy") == 1.0
    assert record.metric("quotes_verbatim") == 1.0
    for output in record.outputs.values():
        assert output.critique is not None and output.critique.reading is not None
        assert output.critique.reading.reader == "given"


def test_a_users_corrected_reading_moves_the_balance_and_drops_what_is_not_in_the_plan() -> None:
    advisor = Advisor()
    own = advisor.critique_offline(PLAN)
    actions = [ReadingAction(text=a.text, theme=a.theme, orientation=a.orientation, horizon=a.horizon,
                             concrete=a.concrete) for a in own.actions]
    # the user says the dashboard reporting is not an action, and adds one the plan does not contain
    corrected = [a for a in actions if "Report monthly" not in a.text] + [
        ReadingAction(text="We will co-design the service with carers.", theme="people", orientation="relational")]
    critique = advisor.critique_offline(PLAN, reading=PlanReading(actions=corrected))
    assert critique.reading is not None and critique.reading.reader == "given"
    assert len(critique.actions) == len(actions) - 1
    assert critique.balance.relational_share > own.balance.relational_share
    assert any("not found in the plan" in n and "co-design the service with carers" in n
               for n in critique.reading.notices)
    for finding in critique.findings:
        for ev in finding.evidence:
            assert ev.quote in PLAN


def test_critique_reading_file_from_the_command_line(tmp_path: Path) -> None:
    plan = tmp_path / "plan.md"
    plan.write_text(PLAN, encoding="utf-8")
    reading = tmp_path / "reading.yaml"
    reading.write_text(yaml.safe_dump({"actions": [
        {"text": "Merge the two community nursing teams into one service by April 2026.", "theme": "structure",
         "orientation": "structural", "horizon": "short_term", "concrete": True},
        {"text": "District nurses, social workers and GPs will meet every week to plan care for people with "
                 "complex needs.", "theme": "structure", "orientation": "relational", "concrete": True},
    ]}), encoding="utf-8")
    done = subprocess.run([sys.executable, "-m", "assistant", "critique", str(plan), "--reading", str(reading),
                           "--format", "json"], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    critique = json.loads(done.stdout)
    assert critique["reading"]["reader"] == "given" and len(critique["actions"]) == 2
    assert critique["balance"]["relational_share"] == 0.5
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump({"actions": [{"text": "x", "theme": "culture", "orientation": "relational"}]}))
    done = subprocess.run([sys.executable, "-m", "assistant", "critique", str(plan), "--reading", str(bad)],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 2 and "actions.0.theme" in done.stderr and "Traceback" not in done.stderr
