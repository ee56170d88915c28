"""State that breaks does not take the chat with it: damaged, read-only or misplaced sessions
files, and every command on a broken ASSISTANT_HOME exits 0 or 2 with one clear line."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from assistant.cli import main
from assistant.settings import get_settings
from assistant.tui.app import ChatApp
from assistant.tui.sessions import SessionStore

from .conftest import AppMaker, make_store
from .helpers import settle

ROOT = Path(__file__).resolve().parents[2]


def _saved_session(path: Path) -> str:
    store = make_store(path)
    info = store.create("Riverside plan")
    store.add_message(info.id, "user", "# Riverside plan\n- Merge the trusts.")
    store.add_message(info.id, "assistant", "Your plan leans on structure.")
    store.save_state(info.id, {"version": 1, "plan_text": "# Riverside plan"})
    store.close()
    return info.id


def test_a_file_that_is_not_a_database_is_moved_aside(store_path: Path) -> None:
    store_path.parent.mkdir(parents=True)
    store_path.write_bytes(b"this is not a database" * 100)
    store = SessionStore(store_path)
    assert store.notice and "moved aside" in store.notice and store.saving
    assert store.list_sessions() == []
    store.create("fresh")  # a new store, working
    assert list(store_path.parent.glob("sessions.sqlite3.damaged-*"))
    store.close()


def test_a_damaged_page_is_caught_at_open(store_path: Path) -> None:
    _saved_session(store_path)
    data = bytearray(store_path.read_bytes())
    data[4096:8192] = b"\xff" * 4096  # scribble over the second page
    store_path.write_bytes(bytes(data))
    store = SessionStore(store_path)
    assert store.notice and "damaged" in store.notice
    store.close()


def test_damaged_rows_read_as_far_as_they_can(store_path: Path) -> None:
    sid = _saved_session(store_path)
    with sqlite3.connect(store_path) as db:
        db.execute("UPDATE sessions SET state = '{not json' WHERE id = ?", (sid,))
        db.execute("UPDATE messages SET critique = '{\"schema_version\": \"1\"' WHERE session_id = ?", (sid,))
        db.execute("UPDATE messages SET created_at = 'yesterday' WHERE session_id = ?", (sid,))
    store = SessionStore(store_path)
    assert store.load_state(sid) is None
    assert [m.critique for m in store.messages(sid)] == [None, None]
    store.close()


def test_a_home_under_a_file_keeps_the_chat_without_saving(tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    store = SessionStore(blocker / "sessions" / "sessions.sqlite3")
    assert not store.saving and store.notice and "will not be saved" in store.notice
    info = store.create()
    store.add_message(info.id, "user", "hello")  # works, in memory
    assert store.messages(info.id)[0].content == "hello"
    store.close()


def test_a_read_only_home_keeps_what_was_saved_readable(store_path: Path) -> None:
    if os.geteuid() == 0:
        pytest.skip("running as root: a read-only directory does not stop root writing (covered by the "
                    "home-under-a-file test)")
    sid = _saved_session(store_path)
    os.chmod(store_path.parent, 0o500)
    os.chmod(store_path, 0o400)
    try:
        store = SessionStore(store_path)
        assert not store.saving and store.notice
        assert [s.id for s in store.list_sessions()] == [sid]
        store.close()
    finally:
        os.chmod(store_path.parent, 0o700)
        os.chmod(store_path, 0o600)


async def test_the_window_survives_opening_a_damaged_session(make_app: AppMaker, store: SessionStore,
                                                             store_path: Path) -> None:
    info = store.create("Damaged")
    answer = store.add_message(info.id, "assistant", "An answer.")
    store.update_message(answer, critique={"schema_version": "1", "backend": "broken"})
    with sqlite3.connect(store_path) as db:
        db.execute("UPDATE sessions SET state = '{broken' WHERE id = ?", (info.id,))
    app: ChatApp = make_app(session_id=info.id)
    async with app.run_test() as pilot:
        await settle(pilot)
        assert app.session_id == info.id and app.is_running
        await app.resume_session("no-such-session")  # an unknown id: a notification, not a crash
        await settle(pilot)
        assert app.is_running


def _broken_homes(tmp_path: Path) -> dict[str, Path]:
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    corrupt = tmp_path / "corrupt"
    (corrupt / "sessions").mkdir(parents=True)
    (corrupt / "sessions" / "sessions.sqlite3").write_bytes(b"garbage" * 500)
    (corrupt / "index" / "chroma").mkdir(parents=True)
    (corrupt / "index" / "chroma" / "chroma.sqlite3").write_bytes(b"garbage" * 500)
    return {"not a directory": blocker, "under a file": blocker / "home", "corrupt": corrupt}


@pytest.mark.parametrize("command", [("chat", "--list-sessions"), ("search", "torbay"), ("index", "--status"),
                                     ("critique", str(ROOT / "examples" / "plans" / "structural-heavy.md"))])
def test_commands_on_a_broken_home_exit_cleanly(tmp_path: Path, command: tuple[str, ...],
                                                monkeypatch: pytest.MonkeyPatch,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    for name, home in _broken_homes(tmp_path).items():
        monkeypatch.setenv("ASSISTANT_HOME", str(home))
        get_settings.cache_clear()
        code = main(list(command))  # an exception escaping here would be a traceback for the user
        err = capsys.readouterr().err
        assert code in (0, 2), (name, err)
        lines = [line for line in err.splitlines() if line.startswith("assistant:")]
        assert len(lines) <= 1 and (code == 0 or lines), (name, err)


def test_the_command_line_process_shows_no_traceback(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ASSISTANT_")}
    env["ASSISTANT_HOME"] = str(_broken_homes(tmp_path)["under a file"])
    done = subprocess.run([sys.executable, "-m", "assistant", "index"], capture_output=True, text=True, env=env,
                          cwd=ROOT, timeout=120, check=False)
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert done.stderr.strip().count("\n") == 0 and "ASSISTANT_HOME" in done.stderr
