"""Which segments of a plan are actions: a small learned model over the segmenter's signals.

The segmenter (``segment.py``) cuts a plan into sentences, list items and table rows and marks
each with rule signals (commitment and imperative verbs, aspirations, background, tentative or
negated wording, metadata, run-in headings, headings above it). Those rules were written for
plans in one voice; real plans hide commitments in short bullets and table rows and wrap context,
beliefs and relational rhetoric in "will" sentences. This model weighs the same signals, plus
where the segment sits (list, table, section) and what it says (its MiniLM sentence embedding),
learned from gold-coded plans (``assistant coder train-detector``). Logistic regression; numpy
inference, so deterministic; weights ship in ``data/detector.npz`` with the data they saw and
their cross-validated figures.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from .coder import CODER_MAX_TOKENS
from .segment import (
    ACTION_HEADINGS,
    ASPIRATION,
    BACKGROUND,
    COMMITMENT,
    IMPERATIVE,
    METADATA,
    NEGATION,
    NON_ACTION_HEADINGS,
    RUN_IN_HEADING,
    TENTATIVE,
    Segment,
)

__all__ = ["FLAG_NAMES", "ActionDetector", "DetectorFit", "DetectorModel", "segment_features", "train_detector"]

SHIPPED_DETECTOR = Path(__file__).resolve().parent / "data" / "detector.npz"
DETECTOR_MAX_TOKENS = CODER_MAX_TOKENS  # the same cut as the coder's, so an action's vector is embedded once
KINDS = ("sentence", "bullet", "table_row")

# A segment that reports what someone else proposes, or that speaks to a reader of the document
# rather than for the plan's authors.
ATTRIBUTED = re.compile(r"\b(recommend(?:s|ed|ation)?|propos(?:es|ed|al)|suggest(?:s|ed)|calls? for|argues?|"
                        r"according to|the review|the report|the panel|the commission|the inquiry)\b", re.I)
DATED = re.compile(r"\b(?:19|20)\d\d\b|\b(?:by|from|until|before|in|within)\s+(?:january|february|march|april|"
                   r"may|june|july|august|september|october|november|december|q[1-4]|year|spring|summer|autumn|"
                   r"winter|the end of|\d+\s+(?:months?|years?|weeks?))\b|\bq[1-4]\b", re.I)
QUANTITY = re.compile(r"\d|%|£|€|\$|\bper cent\b", re.I)
WE = re.compile(r"^(?:we|our|the (?:partnership|board|ics|icb|ijb|council|trust|programme|partners?))\b", re.I)
STATIVE = re.compile(r"\b(?:is|are|was|were|has|have|had)\b", re.I)
MODAL_WEAK = re.compile(r"\b(?:should|would|could|can|may|might)\b", re.I)
RHETORIC = re.compile(r"\b(?:culture|trust|collaborat\w*|together|one team|relationships?|partnership|"
                      r"empower\w*|values?|compassion\w*|person-centred|joined[- ]up)\b", re.I)


def _flags(seg: Segment) -> list[float]:
    text = seg.text.strip()
    words = text.split()
    under_context = any(NON_ACTION_HEADINGS.search(h) for h in seg.headings[-2:])
    under_action = any(ACTION_HEADINGS.search(h) for h in seg.headings[-2:])
    return [
        *(1.0 if seg.kind == k else 0.0 for k in KINDS),
        1.0 if seg.is_action else 0.0,
        1.0 if COMMITMENT.search(text) else 0.0,
        1.0 if IMPERATIVE.match(text) else 0.0,
        1.0 if ASPIRATION.search(text) else 0.0,
        1.0 if BACKGROUND.search(text) else 0.0,
        1.0 if TENTATIVE.search(text) else 0.0,
        1.0 if NEGATION.search(text) else 0.0,
        1.0 if METADATA.match(text) else 0.0,
        1.0 if RUN_IN_HEADING.match(text) else 0.0,
        1.0 if under_context else 0.0,
        1.0 if under_action else 0.0,
        1.0 if ATTRIBUTED.search(text) else 0.0,
        1.0 if DATED.search(text) or DATED.search(seg.context) else 0.0,
        1.0 if QUANTITY.search(text) else 0.0,
        1.0 if WE.match(text) else 0.0,
        1.0 if STATIVE.search(text) else 0.0,
        1.0 if MODAL_WEAK.search(text) else 0.0,
        1.0 if RHETORIC.search(text) else 0.0,
        1.0 if text.endswith(":") else 0.0,
        1.0 if text.endswith("?") else 0.0,
        float(np.log1p(len(words))) / 4.0,
        1.0 if len(words) <= 4 else 0.0,
    ]


FLAG_NAMES = (*KINDS, "rules", "commitment", "imperative", "aspiration", "background", "tentative", "negated",
              "metadata", "run-in heading", "under context heading", "under action heading", "attributed", "dated",
              "quantity", "we", "stative", "weak modal", "relational vocabulary", "ends with colon", "question",
              "log length", "four words or fewer")
N_FLAGS = len(FLAG_NAMES)


def segment_features(segments: Sequence[Segment], embed: Any) -> NDArray[np.float64]:
    """Rule signals and position flags, then the sentence embedding, for each segment."""
    if not segments:
        return np.zeros((0, N_FLAGS))
    flags = np.array([_flags(s) for s in segments], dtype=np.float64)
    texts = [s.text.strip() for s in segments]
    try:
        emb = embed(texts, max_tokens=DETECTOR_MAX_TOKENS)
    except TypeError:  # an embedder without a truncation option
        emb = embed(texts)
    return np.hstack([flags, np.asarray(emb, dtype=np.float64)])


@dataclass(frozen=True)
class DetectorModel:
    weights: NDArray[np.float64]  # [features]
    bias: float
    threshold: float
    meta: dict[str, Any]

    def save(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        np.savez_compressed(path, weights=self.weights.astype(np.float32),
                            header=np.frombuffer(json.dumps({"bias": self.bias, "threshold": self.threshold,
                                                             "meta": self.meta}).encode(), dtype=np.uint8))

    @classmethod
    def load(cls, path: Path) -> DetectorModel:
        with np.load(path) as data:
            header = json.loads(bytes(data["header"]).decode())
            return cls(weights=data["weights"].astype(np.float64), bias=float(header["bias"]),
                       threshold=float(header["threshold"]), meta=header.get("meta", {}))


class ActionDetector:
    """Marks each non-heading segment as an action or not (``Segment.is_action``)."""

    def __init__(self, model: DetectorModel, embed: Any) -> None:
        self.model = model
        self.embed = embed

    def probabilities(self, segments: Sequence[Segment]) -> NDArray[np.float64]:
        x = segment_features(segments, self.embed)
        if x.shape[1] != self.model.weights.shape[0]:
            return np.array([1.0 if s.is_action else 0.0 for s in segments])
        return 1.0 / (1.0 + np.exp(-(x @ self.model.weights + self.model.bias)))

    def mark(self, segments: Sequence[Segment]) -> None:
        candidates = [s for s in segments if s.kind != "heading" and not s.negated]
        if not candidates:
            return
        for seg, p in zip(candidates, self.probabilities(candidates), strict=True):
            action = bool(p >= self.model.threshold)
            if action != seg.is_action:
                seg.reason = f"detector: {'commits' if action else 'commits to nothing'} (p={p:.2f})"
            seg.is_action = action


@dataclass(frozen=True)
class DetectorFit:
    model: DetectorModel
    cv: dict[str, float]


def _prf(y: NDArray[np.bool_], p: NDArray[np.bool_]) -> tuple[float, float, float]:
    tp = float(np.sum(y & p))
    prec = tp / max(1.0, float(np.sum(p)))
    rec = tp / max(1.0, float(np.sum(y)))
    return prec, rec, 2 * prec * rec / (prec + rec) if prec + rec else 0.0


def train_detector(plans: Sequence[tuple[Sequence[Segment], Sequence[bool], float]], embed: Any, *,
                   folds: int = 5, c: float = 1.0, meta: dict[str, Any] | None = None) -> DetectorFit:
    """Fit the detector on segmented plans with their labels (is this segment a gold action?) and a
    weight per plan; choose the probability threshold that maximises F1 across ``folds``
    plan-grouped folds, and report those out-of-fold figures. Needs scikit-learn."""
    from sklearn.linear_model import LogisticRegression

    xs, ys, ws, groups = [], [], [], []
    for g, (segments, labels, weight) in enumerate(plans):
        keep = [i for i, s in enumerate(segments) if s.kind != "heading" and not s.negated]
        if not keep:
            continue
        xs.append(segment_features([segments[i] for i in keep], embed))
        ys += [bool(labels[i]) for i in keep]
        ws += [weight] * len(keep)
        groups += [g] * len(keep)
    x, y, w, grp = np.vstack(xs), np.array(ys), np.array(ws), np.array(groups)

    def fit(idx: NDArray[np.int_]) -> LogisticRegression:
        clf = LogisticRegression(C=c, max_iter=4000, class_weight="balanced")
        clf.fit(x[idx], y[idx], sample_weight=w[idx])
        return clf

    oof = np.zeros(len(y))
    fold_of = grp % folds
    for k in range(folds):
        train, test = np.where(fold_of != k)[0], np.where(fold_of == k)[0]
        if len(test) and len(set(y[train].tolist())) == 2:
            oof[test] = fit(train).predict_proba(x[test])[:, 1]
    grid = np.round(np.arange(0.2, 0.81, 0.025), 3)
    scores = [_prf(y, oof >= t)[2] for t in grid]
    threshold = float(grid[int(np.argmax(scores))])
    p, r, f = _prf(y, oof >= threshold)
    rules = _prf(y, x[:, FLAG_NAMES.index("rules")] > 0.5)  # the segmenter's own rule decision, for comparison
    final = fit(np.arange(len(y)))
    cv = {"folds": folds, "segments": len(y), "threshold": threshold, "precision": round(p, 3),
          "recall": round(r, 3), "f1": round(f, 3), "rules_precision": round(rules[0], 3),
          "rules_recall": round(rules[1], 3), "rules_f1": round(rules[2], 3)}
    model = DetectorModel(weights=final.coef_[0].astype(np.float64), bias=float(final.intercept_[0]),
                          threshold=threshold, meta={**(meta or {}), "cv": cv, "C": c})
    return DetectorFit(model, cv)
