"""The learned action detector: trained from gold-coded plans, used by the advisor when a model exists."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np

from assistant.advice.advisor import Advisor
from assistant.analysis.detector import FLAG_NAMES, ActionDetector, DetectorModel, segment_features
from assistant.analysis.segment import segment_plan
from assistant.evals.agreement import segment_labels
from assistant.settings import get_settings

ROOT = Path(__file__).resolve().parents[2]
PLAN = """# Neighbourhood teams plan

## Background
Emergency admissions of people over 80 rose by 12 % last year.
We believe that care works best when it is built around the person.

## What we will do
- Appoint a care coordinator in each of the four neighbourhood teams by June 2026.
- District nurses, social workers and GPs will meet every week to plan care for people with complex needs.
- The review panel recommends a single point of access.
"""


def test_segment_labels_mark_segments_holding_a_gold_action() -> None:
    segments = segment_plan(PLAN)
    labels = segment_labels(PLAN, [(s.start, s.end) for s in segments],
                            ["Appoint a care coordinator in each of the four neighbourhood teams by June 2026."])
    marked = [s.text for s, hit in zip(segments, labels, strict=True) if hit]
    assert marked == ["Appoint a care coordinator in each of the four neighbourhood teams by June 2026."]


def test_the_detector_marks_what_its_model_says_and_leaves_headings_alone() -> None:
    embed = Advisor().coder.features.embedder.embed
    segments = segment_plan(PLAN)
    width = segment_features(segments[:1], embed).shape[1]
    # a model that only reads the "dated" flag: the dated segment is the one action
    weights = [0.0] * width
    weights[FLAG_NAMES.index("dated")] = 10.0

    model = DetectorModel(weights=np.array(weights), bias=-5.0, threshold=0.5, meta={})
    ActionDetector(model, embed).mark(segments)
    actions = [s.text for s in segments if s.is_action]
    assert actions == ["Appoint a care coordinator in each of the four neighbourhood teams by June 2026."]
    assert all(not s.is_action for s in segments if s.kind == "heading")


def test_train_detector_command_writes_a_model_the_advisor_then_uses(tmp_path: Path) -> None:
    data = tmp_path / "plans"
    data.mkdir()
    for sample in sorted((ROOT / "evals" / "datasets" / "dev").glob("a-*.yaml"))[:6]:
        (data / sample.name).write_bytes(sample.read_bytes())
    out = get_settings().home / "coder" / "detector.npz"
    done = subprocess.run([sys.executable, "-m", "assistant", "coder", "train-detector", "--dataset", str(data),
                           "--cv", "2"], capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert done.returncode == 0, done.stderr
    assert "cross-validated" in done.stdout and out.exists()
    model = DetectorModel.load(out)
    assert 0.2 <= model.threshold <= 0.8 and model.meta["plans"] == 6 and "f1" in model.meta["cv"]
    advisor = Advisor()
    assert advisor.detector is not None and advisor.detector.model.threshold == model.threshold
    assert advisor.assess(PLAN).analysis.actions
