"""Cross-validate the offline reader on gold-coded plans: the honest figure for what it was fitted on.

    python evals/crossval.py [--folds 5] [--dataset DIR ...] [--out DIR]

The plans of the given datasets (default: the real train and dev splits) are dealt to folds by
programme, so two plans of one programme never sit on both sides. For each fold the coder and the
action detector are refitted, exactly as the shipped ones are (``assistant coder train`` and
``assistant coder train-detector``, with the synthetic dev set and the labelled training actions
beside the fold's plans), in a fold's own ASSISTANT_HOME; then ``assistant eval run`` reads the
held-out plans. The held-out runs are pooled and scored with the scorers' own aggregates.

The ranker is not refitted per fold, so the judgement figures (findings, interventions) of the
plans it was trained on are in-sample; the reading figures and the verdict are out of fold.
Needs the dev extra (scikit-learn). About 7 minutes for 45 plans on two cores.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
REPORTED = ("reading_action_precision", "reading_action_recall", "reading_action_f1", "reading_theme_accuracy",
            "reading_orientation_accuracy", "reading_horizon_accuracy", "reading_concrete_accuracy",
            "verdict_accuracy", "finding_recall", "finding_precision", "evidence_recall", "intervention_recall")


def _assistant(*args: str, home: Path) -> None:
    env = {**os.environ, "ASSISTANT_HOME": str(home)}
    subprocess.run([sys.executable, "-m", "assistant", *args], cwd=ROOT, env=env, check=True,
                   stdout=subprocess.DEVNULL)


def _fold(k: int, base: Path) -> Path:
    home = base / f"f{k}" / "home"
    train, test = base / f"f{k}" / "train", base / f"f{k}" / "test"
    _assistant("coder", "train", "--dataset", "evals/datasets/dev", "--dataset", str(train),
               "--actions", "evals/datasets/train/coded-actions.yaml", home=home)
    _assistant("coder", "train-detector", "--dataset", str(train), "--dataset", "evals/datasets/dev", home=home)
    run = base / f"f{k}" / "run.json"
    _assistant("eval", "run", "--dataset", str(test), "--out", str(run), "--fresh", "--quiet", home=home)
    return run


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dataset", action="append", help="datasets to cross-validate (repeatable)")
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--out", type=Path, help="where to keep the folds (default: a temporary directory)")
    parser.add_argument("--jobs", type=int, default=min(5, os.cpu_count() or 1))
    args = parser.parse_args(argv)
    datasets = args.dataset or ["evals/datasets/real/train", "evals/datasets/real/dev"]
    files = sorted(f for d in datasets for f in (ROOT / d).glob("*.yaml"))
    programme = {f: yaml.safe_load(f.read_text(encoding="utf-8")).get("programme") or f.stem for f in files}
    order = sorted(set(programme.values()))
    base = args.out or Path(tempfile.mkdtemp(prefix="crossval-"))
    for k in range(args.folds):
        for part in ("train", "test"):
            (base / f"f{k}" / part).mkdir(parents=True, exist_ok=True)
    for f in files:
        held = order.index(programme[f]) % args.folds
        for k in range(args.folds):
            link = base / f"f{k}" / ("test" if k == held else "train") / f.name
            if not link.exists():
                link.symlink_to(f)
    with ThreadPoolExecutor(args.jobs) as pool:
        runs = list(pool.map(lambda k: _fold(k, base), range(args.folds)))

    from assistant.evals.records import Score
    from assistant.evals.scorers import resolve_scorers

    scores: dict[str, list[Score]] = defaultdict(list)
    for run in runs:
        for per_sample in json.loads(run.read_text(encoding="utf-8"))["scores"].values():
            for name, score in per_sample.items():
                scores[name].append(Score.model_validate(score))
    pooled = {}
    for scorer in resolve_scorers(None):
        if scores.get(scorer.name):
            pooled.update(scorer.aggregate(scores[scorer.name]))
    print(f"{args.folds}-fold cross-validation by programme over {len(files)} plans ({', '.join(datasets)}); "
          f"folds in {base}")
    for name in REPORTED:
        metric = pooled.get(name)
        if metric is not None and metric.value is not None:
            print(f"  {name:30s} {metric.value:.3f}  (n={metric.n})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
