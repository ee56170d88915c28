"""Cue phrases: word-boundary matching, and the cheap pre-check never changes what matches."""

from __future__ import annotations

from pathlib import Path

import yaml

from assistant.analysis.cues import compile_cue, find_cues
from assistant.knowledge import load_corpus

ROOT = Path(__file__).resolve().parents[2]


def test_cues_match_whole_words_with_flexible_hyphens_and_plurals() -> None:
    cue = compile_cue("multi-disciplinary team")
    assert cue.key == "disciplinary"  # the longest word
    for text in ["Weekly Multidisciplinary Teams meet", "a multi disciplinary team", "the MULTI-DISCIPLINARY TEAMS"]:
        assert cue.search(text.lower(), text), text
    assert not cue.search("multidisciplinary teamwork")  # whole words only
    assert not cue.search("a team")
    assert find_cues("Our Care Coordinator meets the GP", [compile_cue("care coordinator"), compile_cue("huddle")])[0][1:] == (
        4, 20)


def test_the_pre_check_agrees_with_the_pattern_on_every_corpus_cue() -> None:
    corpus = load_corpus()
    cues = [compile_cue(c) for code in corpus.codes.values() for c in code.cues]
    texts = [a["text"] for a in yaml.safe_load((ROOT / "evals/datasets/train/coded-actions.yaml").read_text(
        encoding="utf-8"))["actions"]]
    texts += [ex for code in corpus.codes.values() for ex in code.examples]
    matched = 0
    for text in texts:
        lowered = text.lower()
        for cue in cues:
            fast = cue.search(lowered) is not None
            assert fast == (cue.pattern.search(lowered) is not None), (cue.phrase, text)
            matched += fast
    assert matched > len(texts)  # the corpus's cues do fire on real action texts
