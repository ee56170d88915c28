"""`assistant index` and `assistant search` through the real CLI entry point."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from assistant.cli import main


@pytest.fixture
def cli_home(shipped_retriever: object, shared_home: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Point the CLI at the session index (already built) through ASSISTANT_HOME."""
    from assistant.settings import get_settings

    monkeypatch.setenv("ASSISTANT_HOME", str(shared_home))
    monkeypatch.delenv("ASSISTANT_CHROMA_URL", raising=False)
    get_settings.cache_clear()
    return shared_home


def test_search_text_shows_ids_kinds_scores_and_ranks(
    cli_home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(
        ["search", "boundary-spanning roles between community nurses and social workers", "-k", "5"]
    )
    out = capsys.readouterr().out
    assert code == 0
    header = out.splitlines()[0]
    for column in ("id", "kind", "fused", "dense", "bm25", "title"):
        assert column in header
    assert "case:torbay" in out or "case:buurtzorg" in out


def test_search_json_with_filters(cli_home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(
        [
            "search",
            "neighbourhood nursing teams",
            "--kind",
            "case",
            "--theme",
            "structure",
            "--format",
            "json",
            "-k",
            "3",
        ]
    )
    hits = json.loads(capsys.readouterr().out)
    assert code == 0 and len(hits) == 3
    assert all(h["kind"] == "case" and "structure" in h["metadata"]["themes"] for h in hits)
    assert {"id", "doc_id", "title", "score", "dense_rank", "bm25_rank"} <= set(hits[0])


def test_search_bad_theme_exits_2_with_one_line(
    cli_home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(["search", "teams", "--theme", "peopel"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2
    assert err == ["assistant: Unknown theme 'peopel'. Did you mean 'people'?"]


def test_index_status_and_refresh(cli_home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["index", "--status", "--format", "json"]) == 0
    status = json.loads(capsys.readouterr().out)
    assert status["built"] and status["up_to_date"] and status["mode"] == "embedded"
    assert main(["index"]) == 0
    assert "up to date" in capsys.readouterr().out


def test_unreachable_server_exits_1_with_one_line(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import socket

    from assistant.settings import get_settings

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    monkeypatch.setenv("ASSISTANT_CHROMA_URL", f"http://127.0.0.1:{port}")
    monkeypatch.setenv("ASSISTANT_CHROMA_TIMEOUT", "1")
    get_settings.cache_clear()
    assert main(["index", "--status"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "unreachable" in err[0] and f"127.0.0.1:{port}" in err[0]
