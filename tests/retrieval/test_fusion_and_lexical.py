"""Reciprocal rank fusion and the BM25 tokenizer, without any store."""

from __future__ import annotations

import pytest

from assistant.retrieval.lexical import LexicalIndex, tokenize
from assistant.retrieval.search import Ranked, SearchConfig, fuse

DOCS = {"a#1": "a", "a#2": "a", "b": "b", "c": "c", "d": "d"}


def test_rrf_scores_and_order() -> None:
    dense = Ranked(["b", "a#1", "c"], [0.9, 0.8, 0.7])
    bm25 = Ranked(["b", "a#2", "d"], [5.0, 4.0, 3.0])
    out = fuse(dense, bm25, doc_of=DOCS, k=10, config=SearchConfig())
    assert [doc for _, doc, *_ in out] == ["b", "a", "c", "d"]
    _chunk, _doc, score, d, b = out[0]
    assert score == pytest.approx(2 / 61)
    assert d == (1, 0.9) and b == (1, 5.0)
    assert out[1][2] == pytest.approx(2 / 62) and out[1][3] == (2, 0.8) and out[1][4] == (2, 4.0)
    # c (dense 3) and d (bm25 3) tie on score and best rank: the id breaks the tie
    assert out[2][2] == out[3][2]


def test_ties_break_deterministically_and_best_chunk_is_chosen_by_fused_chunk_score() -> None:
    dense = Ranked(["b", "a#1"], [0.9, 0.8])
    bm25 = Ranked(["a#2", "b"], [5.0, 4.0])
    out = fuse(dense, bm25, doc_of=DOCS, k=10, config=SearchConfig())
    assert [x[1] for x in out] == ["a", "b"]  # equal scores and best ranks: ordered by id
    assert out[0][0] == "a#2"  # a#2 (bm25 1) beats a#1 (dense 2) at chunk level


def test_weights_shift_the_order() -> None:
    dense = Ranked(["c", "d"], [0.9, 0.8])
    bm25 = Ranked(["d", "c"], [2.0, 1.0])
    only_bm25 = fuse(dense, bm25, doc_of=DOCS, k=2, config=SearchConfig(dense_weight=0.0))
    only_dense = fuse(dense, bm25, doc_of=DOCS, k=2, config=SearchConfig(bm25_weight=0.0))
    assert [x[1] for x in only_bm25] == ["d", "c"]
    assert [x[1] for x in only_dense] == ["c", "d"]


def test_ungrouped_keeps_chunks() -> None:
    dense = Ranked(["a#1", "a#2"], [0.9, 0.8])
    out = fuse(dense, None, doc_of=DOCS, k=5, config=SearchConfig(), group_by_document=False)
    assert [x[0] for x in out] == ["a#1", "a#2"]


def test_unknown_ids_are_ignored() -> None:
    out = fuse(Ranked(["stale", "b"], [0.9, 0.5]), None, doc_of=DOCS, k=5, config=SearchConfig())
    assert [x[1] for x in out] == ["b"] and out[0][3] == (1, 0.5)


def test_tokenizer_folds_forms_together() -> None:
    assert tokenize("nurses") == tokenize("nurse") == tokenize("nursing")
    assert tokenize("co-ordinator")[0] == tokenize("coordination")[0]
    assert tokenize("the and of") == []


def test_bm25_mask_filters() -> None:
    from assistant.retrieval.chunking import Chunk

    chunks = [
        Chunk(
            id="x",
            doc_id="x",
            kind="case",
            title="X",
            section="",
            text="district nurses huddle daily",
        ),
        Chunk(
            id="y", doc_id="y", kind="code", title="Y", section="", text="nurses and social workers"
        ),
    ]
    index = LexicalIndex.build(chunks)
    assert [i for i, _ in index.search("nurses", 5)] == [0, 1] or [
        i for i, _ in index.search("nurses", 5)
    ] == [1, 0]
    assert [i for i, _ in index.search("nurses", 5, index.mask({"kind": "code"}))] == [1]
    assert index.search("zebra", 5) == []
