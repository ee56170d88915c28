"""The labelled retrieval set runs, and hybrid search meets its target on the shipped corpus."""

from __future__ import annotations

from pathlib import Path

import pytest

from assistant.errors import UnknownIdError
from assistant.retrieval import Retriever
from assistant.retrieval.evaluate import DEFAULT_QUERIES, evaluate_retrieval, load_queries


def test_the_set_has_at_least_40_labelled_queries() -> None:
    dataset, digest = load_queries()
    assert len(dataset.queries) >= 40 and len(digest) == 64
    assert len({q.id for q in dataset.queries}) == len(dataset.queries)


def test_hybrid_meets_the_target_and_beats_each_alone(shipped_retriever: Retriever) -> None:
    report = evaluate_retrieval(shipped_retriever)
    assert set(report.modes) == {"hybrid", "dense", "bm25"}
    hybrid = report.modes["hybrid"]
    assert hybrid.recall_at_5 >= 0.90, report.table()
    assert hybrid.recall_at_5 >= report.modes["dense"].recall_at_5
    assert hybrid.recall_at_5 >= report.modes["bm25"].recall_at_5
    assert report.hybrid_meets_target
    assert "recall@5" in report.table()
    # the report is a JSON-able record
    again = type(report).model_validate_json(report.model_dump_json())
    assert again.modes["hybrid"].recall_at_5 == hybrid.recall_at_5


def test_a_label_that_names_no_document_is_refused(
    shipped_retriever: Retriever, tmp_path: Path
) -> None:
    bad = tmp_path / "q.yaml"
    bad.write_text(
        "queries:\n  - id: x\n    query: anything at all\n    relevant: [case:torbey]\n",
        encoding="utf-8",
    )
    with pytest.raises(UnknownIdError, match="case:torbay"):
        evaluate_retrieval(shipped_retriever, bad)
    assert DEFAULT_QUERIES.is_file()
