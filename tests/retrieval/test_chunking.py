"""Chunk ids are stable and unique, chunks fit the size limit, metadata is flat."""

from __future__ import annotations

from assistant.knowledge import load_corpus
from assistant.retrieval.chunking import MAX_CHUNK_CHARS, chunk_corpus, country_key, split_text
from assistant.settings import shipped_corpus_path


def test_shipped_corpus_chunks() -> None:
    chunks = chunk_corpus(load_corpus([shipped_corpus_path()]))
    ids = {c.id for c in chunks}
    assert len(ids) == len(chunks)
    for expected in (
        "case:torbay#what-worked",
        "case:torbay#structure-relational",
        "case:torbay#overview",
        "intervention:boundary-spanning-roles",
        "code:structure.relational.boundary-spanning-roles",
        "framework:gittell-rmoc",
        "paper:olaitan-2024",
    ):
        assert expected in ids
    assert {c.kind for c in chunks} == {"case", "intervention", "code", "reference"}
    for c in chunks:
        assert len(c.text) <= MAX_CHUNK_CHARS
        assert c.id.startswith(c.doc_id)
        assert all(isinstance(v, str | int | float | bool) for v in c.metadata.values())
    torbay = next(c for c in chunks if c.id == "case:torbay#structure-relational")
    assert torbay.metadata["theme_structure"] is True
    assert torbay.metadata["orientation"] == "relational"
    assert torbay.metadata["country_key"] == "england"
    assert "boundary-spanning-roles" in str(torbay.metadata["codes"])


def test_chunking_is_deterministic() -> None:
    corpus = load_corpus([shipped_corpus_path()])
    a = [(c.id, c.content_hash) for c in chunk_corpus(corpus)]
    b = [(c.id, c.content_hash) for c in chunk_corpus(corpus)]
    assert a == b


def test_long_sections_are_split_at_sentence_boundaries() -> None:
    text = " ".join(f"Sentence number {i} is about integrated care." for i in range(100))
    pieces = split_text(text, 300)
    assert len(pieces) > 1 and all(len(p) <= 300 for p in pieces)
    assert all(p.endswith(".") for p in pieces)
    assert " ".join(pieces) == text


def test_small_limit_gives_numbered_parts() -> None:
    chunks = chunk_corpus(load_corpus([shipped_corpus_path()]), max_chars=400)
    ids = {c.id for c in chunks}
    assert "case:torbay#what-worked" in ids and "case:torbay#what-worked-2" in ids
    assert all(len(c.text) <= 400 for c in chunks)


def test_country_key() -> None:
    assert country_key("Netherlands (with pilots in England)") == "netherlands"
    assert country_key("USA") == "united states"
