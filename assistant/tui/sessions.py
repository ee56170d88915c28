"""Chat sessions saved as they happen: SQLite under ``ASSISTANT_HOME/sessions``.

Every message is written (and committed) before the app shows it, and an answer being
streamed is saved as it grows, so a crash or a closed terminal loses nothing that was said.
Alongside the messages each session keeps the conversation object's own state
(``Conversation.to_state()``) so that a resumed session carries on where it stopped.

The database runs in WAL mode; one store may be used from the UI thread and a worker thread.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from ..errors import UnknownIdError

__all__ = ["MessageRecord", "SessionInfo", "SessionStore", "default_store_path"]

Role = Literal["user", "assistant", "note"]
Status = Literal["complete", "streaming", "stopped", "failed"]

SCHEMA = """
CREATE TABLE IF NOT EXISTS sessions (
    id          TEXT PRIMARY KEY,
    title       TEXT NOT NULL,
    created_at  TEXT NOT NULL,
    updated_at  TEXT NOT NULL,
    backend     TEXT,
    state       TEXT
);
CREATE TABLE IF NOT EXISTS messages (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    session_id  TEXT NOT NULL REFERENCES sessions(id) ON DELETE CASCADE,
    role        TEXT NOT NULL,
    content     TEXT NOT NULL,
    status      TEXT NOT NULL DEFAULT 'complete',
    backend     TEXT,
    critique    TEXT,
    created_at  TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS messages_by_session ON messages(session_id, id);
"""

UNTITLED = "New conversation"


def default_store_path() -> Path:
    from ..settings import get_settings

    return Path(get_settings().state_dir("sessions")) / "sessions.sqlite3"


def _now() -> datetime:
    return datetime.now(UTC).replace(microsecond=0)


@dataclass(frozen=True)
class SessionInfo:
    id: str
    title: str
    created_at: datetime
    updated_at: datetime
    backend: str | None
    messages: int


@dataclass(frozen=True)
class MessageRecord:
    id: int
    role: Role
    content: str
    status: Status
    backend: str | None
    critique: dict[str, Any] | None  # the Critique as JSON, on the answer that produced it
    created_at: datetime


class SessionStore:
    """Sessions and their messages. ``clock`` and ``new_id`` are injectable for tests."""

    def __init__(self, path: Path | str | None = None, *, clock: Callable[[], datetime] = _now,
                 new_id: Callable[[], str] | None = None) -> None:
        self.path = Path(path) if path is not None else default_store_path()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._clock = clock
        self._new_id = new_id or (lambda: uuid.uuid4().hex[:8])
        self._lock = threading.RLock()
        self._db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        self._db.row_factory = sqlite3.Row
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.execute("PRAGMA foreign_keys=ON")
        self._db.executescript(SCHEMA)

    def close(self) -> None:
        with self._lock:
            self._db.close()

    @contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    def _stamp(self) -> str:
        return self._clock().isoformat()

    # sessions ---------------------------------------------------------------------------

    def create(self, title: str = UNTITLED, *, backend: str | None = None) -> SessionInfo:
        sid, now = self._new_id(), self._stamp()
        with self._tx() as db:
            db.execute("INSERT INTO sessions (id, title, created_at, updated_at, backend) VALUES (?, ?, ?, ?, ?)",
                       (sid, title, now, now, backend))
        return self.get(sid)

    def get(self, session_id: str) -> SessionInfo:
        with self._lock:
            row = self._db.execute(
                "SELECT s.*, (SELECT COUNT(*) FROM messages m WHERE m.session_id = s.id) AS n "
                "FROM sessions s WHERE s.id = ?", (session_id,)).fetchone()
        if row is None:
            raise UnknownIdError("session", session_id, [s.id for s in self.list_sessions()])
        return _info(row)

    def list_sessions(self) -> list[SessionInfo]:
        """All sessions, most recently used first."""
        with self._lock:
            rows = self._db.execute(
                "SELECT s.*, (SELECT COUNT(*) FROM messages m WHERE m.session_id = s.id) AS n "
                "FROM sessions s ORDER BY s.updated_at DESC, s.rowid DESC").fetchall()
        return [_info(r) for r in rows]

    def rename(self, session_id: str, title: str) -> None:
        title = " ".join(title.split())
        if not title:
            raise ValueError("a session needs a name")
        self.get(session_id)
        with self._tx() as db:
            db.execute("UPDATE sessions SET title = ? WHERE id = ?", (title[:120], session_id))

    def delete(self, session_id: str) -> None:
        self.get(session_id)
        with self._tx() as db:
            db.execute("DELETE FROM messages WHERE session_id = ?", (session_id,))
            db.execute("DELETE FROM sessions WHERE id = ?", (session_id,))

    def save_state(self, session_id: str, state: dict[str, Any], *, backend: str | None = None) -> None:
        with self._tx() as db:
            db.execute("UPDATE sessions SET state = ?, backend = COALESCE(?, backend), updated_at = ? WHERE id = ?",
                       (json.dumps(state), backend, self._stamp(), session_id))

    def load_state(self, session_id: str) -> dict[str, Any] | None:
        with self._lock:
            row = self._db.execute("SELECT state FROM sessions WHERE id = ?", (session_id,)).fetchone()
        if row is None or row["state"] is None:
            return None
        state: dict[str, Any] = json.loads(row["state"])
        return state

    # messages ---------------------------------------------------------------------------

    def add_message(self, session_id: str, role: Role, content: str, *, status: Status = "complete",
                    backend: str | None = None) -> int:
        now = self._stamp()
        with self._tx() as db:
            cur = db.execute(
                "INSERT INTO messages (session_id, role, content, status, backend, created_at) "
                "VALUES (?, ?, ?, ?, ?, ?)", (session_id, role, content, status, backend, now))
            db.execute("UPDATE sessions SET updated_at = ? WHERE id = ?", (now, session_id))
            assert cur.lastrowid is not None
            return cur.lastrowid

    def update_message(self, message_id: int, *, content: str | None = None, status: Status | None = None,
                       backend: str | None = None, critique: dict[str, Any] | None = None) -> None:
        """Grow a streamed answer, or finish it. Only the given fields change."""
        with self._tx() as db:
            db.execute(
                "UPDATE messages SET content = COALESCE(?, content), status = COALESCE(?, status), "
                "backend = COALESCE(?, backend), critique = COALESCE(?, critique) WHERE id = ?",
                (content, status, backend, json.dumps(critique) if critique is not None else None, message_id))

    def messages(self, session_id: str) -> list[MessageRecord]:
        with self._lock:
            rows = self._db.execute("SELECT * FROM messages WHERE session_id = ? ORDER BY id",
                                    (session_id,)).fetchall()
        return [MessageRecord(id=r["id"], role=r["role"], content=r["content"], status=r["status"],
                              backend=r["backend"], critique=json.loads(r["critique"]) if r["critique"] else None,
                              created_at=datetime.fromisoformat(r["created_at"])) for r in rows]

    def set_title_if_untitled(self, session_id: str, title: str) -> bool:
        """Name a session after its plan or first message, unless the user already named it."""
        title = " ".join(title.split())[:80]
        if not title:
            return False
        with self._tx() as db:
            cur = db.execute("UPDATE sessions SET title = ? WHERE id = ? AND title = ?", (title, session_id, UNTITLED))
            return cur.rowcount > 0


def _info(row: sqlite3.Row) -> SessionInfo:
    return SessionInfo(id=row["id"], title=row["title"], created_at=datetime.fromisoformat(row["created_at"]),
                       updated_at=datetime.fromisoformat(row["updated_at"]), backend=row["backend"],
                       messages=row["n"])
