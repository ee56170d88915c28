"""Searching the shipped corpus through the session index (real ONNX embeddings, embedded Chroma)."""

from __future__ import annotations

from pathlib import Path

import pytest

from assistant.errors import BadInputError, UnknownIdError
from assistant.retrieval import Hit, Retriever

ACCEPTANCE = "boundary-spanning roles between community nurses and social workers"


def test_acceptance_query_ranks_torbay_or_buurtzorg_near_the_top(
    shipped_retriever: Retriever,
) -> None:
    hits = shipped_retriever.search(ACCEPTANCE, k=8)
    top_cases = [h.doc_id for h in hits if h.kind == "case"][:2]
    assert {"case:torbay", "case:buurtzorg"} & set(top_cases), [h.id for h in hits]
    assert any(h.doc_id in ("case:torbay", "case:buurtzorg") for h in hits[:5])
    assert hits[0].doc_id in {
        "code:structure.relational.boundary-spanning-roles",
        "intervention:boundary-spanning-roles",
        "case:torbay",
        "case:buurtzorg",
    }


def test_acceptance_query_among_cases_only(shipped_retriever: Retriever) -> None:
    hits = shipped_retriever.search(ACCEPTANCE, k=3, kind="case")
    assert {"case:torbay", "case:buurtzorg"} & {h.doc_id for h in hits}


def test_each_hit_explains_itself(shipped_retriever: Retriever) -> None:
    hits = shipped_retriever.search("pooled budget and merger of trusts", k=8)
    assert len(hits) == 8
    assert all(isinstance(h, Hit) for h in hits)
    assert [h.score for h in hits] == sorted((h.score for h in hits), reverse=True)
    for h in hits:
        assert h.dense_rank is not None or h.bm25_rank is not None
        assert h.text and h.title and h.id.startswith(h.doc_id)
    both = [h for h in hits if h.dense_rank and h.bm25_rank]
    assert both, "hybrid hits should usually be found by both retrievers"
    as_dict = hits[0].to_dict()
    assert {
        "id",
        "doc_id",
        "kind",
        "title",
        "score",
        "dense_rank",
        "bm25_rank",
        "dense_score",
        "bm25_score",
    } <= set(as_dict)


def test_one_hit_per_document_by_default(shipped_retriever: Retriever) -> None:
    hits = shipped_retriever.search("Torbay Mrs Smith co-ordinator", k=8)
    assert len({h.doc_id for h in hits}) == len(hits)
    chunks = shipped_retriever.search("Torbay Mrs Smith co-ordinator", k=8, group_by_document=False)
    assert len({h.doc_id for h in chunks}) < len(chunks)


@pytest.mark.parametrize("kind", ["case", "intervention", "code", "reference"])
def test_kind_filter(shipped_retriever: Retriever, kind: str) -> None:
    hits = shipped_retriever.search("relational coordination between professions", k=5, kind=kind)
    assert hits and all(h.kind == kind for h in hits)


def test_theme_and_country_filters(shipped_retriever: Retriever) -> None:
    hits = shipped_retriever.search("leaders who stay in post for years", k=6, theme="leadership")
    assert hits and all("leadership" in h.themes for h in hits)
    dutch = shipped_retriever.search("self-managing nurse teams", k=3, country="Netherlands")
    assert [h.doc_id for h in dutch] == ["case:buurtzorg"]


def test_dense_and_bm25_modes_report_only_their_rank(shipped_retriever: Retriever) -> None:
    dense = shipped_retriever.search("huddles", k=3, mode="dense")
    bm25 = shipped_retriever.search("huddles", k=3, mode="bm25")
    assert all(h.dense_rank and h.bm25_rank is None for h in dense)
    assert all(h.bm25_rank and h.dense_rank is None for h in bm25)


def test_bad_search_input_is_reported_with_a_fix(shipped_retriever: Retriever) -> None:
    with pytest.raises(BadInputError, match="empty"):
        shipped_retriever.search("   ")
    with pytest.raises(UnknownIdError, match="Did you mean 'intervention'"):
        shipped_retriever.search("x", kind="interventions")
    with pytest.raises(UnknownIdError, match="people"):
        shipped_retriever.search("x", theme="peopel")
    with pytest.raises(UnknownIdError, match="netherlands"):
        shipped_retriever.search("x", country="Netherland")
    with pytest.raises(BadInputError):
        shipped_retriever.search("x", k=0)


def test_status_of_a_built_index(shipped_retriever: Retriever) -> None:
    status = shipped_retriever.status()
    assert status.built and status.up_to_date
    assert status.mode == "embedded"
    assert status.collection == "corpus__onnx-minilm__all-minilm-l6-v2-qattn-int8-v3"
    assert status.dense_chunks == status.lexical_chunks > 100


def test_filters_that_match_nothing_say_so(shipped_retriever: Retriever) -> None:
    with pytest.raises(
        BadInputError, match="No indexed documents match kind=reference, theme=people"
    ):
        shipped_retriever.search("anything", kind="reference", theme="people")


def test_get_retriever_follows_the_settings(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from assistant.retrieval import get_retriever
    from assistant.settings import get_settings

    first = get_retriever()
    assert get_retriever() is first
    monkeypatch.setenv("ASSISTANT_HOME", str(tmp_path / "elsewhere"))
    get_settings.cache_clear()
    second = get_retriever()
    assert second is not first
    assert str(second.settings.home) == str(tmp_path / "elsewhere")
    second.close()
