"""``assistant chat`` on the command line."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from assistant.cli import main
from assistant.tui.sessions import SessionStore


def test_chat_is_registered_without_importing_textual() -> None:
    code = ("import sys; from assistant.cli import build_parser; build_parser(); "
            "print(sorted(m for m in ('textual', 'litellm', 'assistant.tui.app') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True)
    assert out.stdout.strip() == "[]"


def test_chat_help(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(["chat", "--help"])
    assert info.value.code == 0
    out = capsys.readouterr().out
    assert "--model" in out and "--session ID" in out


def test_an_unknown_session_is_bad_input(assistant_home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    store = SessionStore()
    known = store.create("Torbay refresh").id
    store.close()
    assert main(["chat", "--session", known[:-1] + "x"]) == 2
    err = capsys.readouterr().err
    assert "Unknown session" in err and f"Did you mean {known!r}" in err


def test_list_sessions(assistant_home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    store = SessionStore()
    info = store.create("Torbay refresh")
    store.add_message(info.id, "user", "hello")
    store.close()
    assert main(["chat", "--list-sessions"]) == 0
    out = capsys.readouterr().out
    assert info.id in out and "Torbay refresh" in out and "1 message " in out
