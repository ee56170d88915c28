"""The session store: what is saved, when, and that it survives a crash."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from assistant.errors import UnknownIdError
from assistant.tui.sessions import UNTITLED, SessionStore, default_store_path

from .conftest import make_store


def test_the_store_lives_under_assistant_home(assistant_home: Path) -> None:
    assert default_store_path() == assistant_home / "sessions" / "sessions.sqlite3"
    store = SessionStore()
    try:
        assert store.path.exists()
        mode = sqlite3.connect(store.path).execute("PRAGMA journal_mode").fetchone()[0]
        assert mode == "wal"
    finally:
        store.close()


def test_list_rename_delete(store: SessionStore) -> None:
    a = store.create()
    b = store.create("Torbay refresh")
    store.add_message(a.id, "user", "We are merging two trusts.")
    assert [s.id for s in store.list_sessions()] == [a.id, b.id]  # most recently used first
    assert store.get(a.id).title == UNTITLED and store.get(a.id).messages == 1
    assert store.set_title_if_untitled(a.id, "Northfield and Vale")
    assert not store.set_title_if_untitled(b.id, "something else")  # a name the user gave stays
    store.rename(b.id, "  Torbay   refresh 2026 ")
    assert store.get(b.id).title == "Torbay refresh 2026"
    with pytest.raises(ValueError):
        store.rename(b.id, "   ")
    store.delete(a.id)
    assert [s.id for s in store.list_sessions()] == [b.id]
    with pytest.raises(UnknownIdError) as info:
        store.get("s00l")
    assert info.value.exit_code == 2


def test_an_unknown_session_suggests_a_close_one(store: SessionStore) -> None:
    store.create()
    with pytest.raises(UnknownIdError, match="Did you mean 's001'"):
        store.get("s0001")


def test_a_streamed_answer_grows_and_finishes(store: SessionStore) -> None:
    s = store.create()
    answer = store.add_message(s.id, "assistant", "", status="streaming")
    store.update_message(answer, content="Severe structural")
    store.update_message(answer, content="Severe structural overuse.", status="complete", backend="offline",
                         critique={"verdict": "kept as given"})
    [message] = store.messages(s.id)
    assert (message.content, message.status, message.backend) == ("Severe structural overuse.", "complete", "offline")
    assert message.critique == {"verdict": "kept as given"}
    store.save_state(s.id, {"plan_text": "x"}, backend="offline")
    assert store.load_state(s.id) == {"plan_text": "x"}


def test_what_was_said_survives_a_killed_process(store_path: Path) -> None:
    """A process that dies mid-answer (no close, no cleanup) loses nothing that was shown."""
    script = textwrap.dedent(f"""
        import os
        from assistant.tui.sessions import SessionStore
        store = SessionStore({str(store_path)!r})
        s = store.create()
        store.add_message(s.id, "user", "our plan")
        answer = store.add_message(s.id, "assistant", "", status="streaming")
        store.update_message(answer, content="Severe structural overuse")
        os._exit(9)
    """)
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert result.returncode == 9, result.stderr
    store = make_store(store_path)
    try:
        [session] = store.list_sessions()
        messages = store.messages(session.id)
        assert [(m.role, m.content, m.status) for m in messages] == [
            ("user", "our plan", "complete"), ("assistant", "Severe structural overuse", "streaming")]
    finally:
        store.close()
