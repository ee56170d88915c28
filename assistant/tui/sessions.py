"""Chat sessions saved as they happen: SQLite under ``ASSISTANT_HOME/sessions``.

Every message is written (and committed) before the app shows it, and an answer being
streamed is saved as it grows, so a crash or a closed terminal loses nothing that was said.
Alongside the messages each session keeps the conversation object's own state
(``Conversation.to_state()``) so that a resumed session carries on where it stopped.

The database runs in WAL mode; one store may be used from the UI thread and a worker thread.

State that breaks does not take the chat with it: a sessions file that is not a database (or
fails SQLite's quick check) is moved aside and a fresh one started; a home that cannot be
written (read-only, not a directory) gives a store in memory, which keeps this chat but saves
nothing; ``notice`` says which happened. A damaged row reads as far as it can.
"""

from __future__ import annotations

import json
import logging
import sqlite3
import threading
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from ..errors import AdvisorError, RuntimeFailure, UnknownIdError

__all__ = ["MessageRecord", "SessionInfo", "SessionStore", "SessionStoreError", "default_store_path"]

log = logging.getLogger(__name__)

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


class SessionStoreError(RuntimeFailure):
    """The sessions file failed while in use (damaged on disk, or the disk went away)."""


def default_store_path() -> Path:
    from ..settings import get_settings

    return Path(get_settings().home) / "sessions" / "sessions.sqlite3"


def _now() -> datetime:
    return datetime.now(UTC).replace(microsecond=0)


def _when(value: object) -> datetime:
    try:
        return datetime.fromisoformat(str(value))
    except ValueError:
        return datetime.fromtimestamp(0, UTC)


def _json(value: object) -> Any:
    if not value:
        return None
    try:
        return json.loads(str(value))
    except ValueError:
        log.warning("a damaged value in the sessions file was skipped")
        return None


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
        self._clock = clock
        self._new_id = new_id or (lambda: uuid.uuid4().hex[:8])
        self._lock = threading.RLock()
        self.notice: str | None = None  # what the user must know about this store (moved aside, not saving)
        self.saving = True
        self._db = self._open()

    def _connect(self, target: Path | str) -> sqlite3.Connection:
        db = sqlite3.connect(target, check_same_thread=False, isolation_level=None)
        try:
            db.row_factory = sqlite3.Row
            if target != ":memory:":
                check = db.execute("PRAGMA quick_check").fetchone()
                if check is None or check[0] != "ok":
                    raise sqlite3.DatabaseError(f"quick check failed: {check[0] if check else 'no answer'}")
                db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=NORMAL")
            db.execute("PRAGMA foreign_keys=ON")
            db.executescript(SCHEMA)
        except BaseException:
            db.close()
            raise
        return db

    def _open(self) -> sqlite3.Connection:
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            return self._connect(self.path)
        except sqlite3.OperationalError as exc:  # read-only, locked or unreachable: keep the chat, save nothing
            return self._in_memory(str(exc))
        except sqlite3.DatabaseError as exc:  # not a database, or damaged
            return self._move_aside(exc)
        except OSError as exc:
            return self._in_memory(exc.strerror or str(exc))

    def _move_aside(self, exc: Exception) -> sqlite3.Connection:
        aside = self.path.with_name(f"{self.path.name}.damaged-{_now():%Y%m%d-%H%M%S}")
        try:
            self.path.replace(aside)
            for suffix in ("-wal", "-shm"):
                extra = self.path.with_name(self.path.name + suffix)
                if extra.exists():
                    extra.replace(aside.with_name(aside.name + suffix))
            db = self._connect(self.path)
        except (OSError, sqlite3.Error) as again:
            return self._in_memory(f"the sessions file is damaged ({exc}) and cannot be replaced ({again})")
        log.info("sessions file damaged (%s); moved aside to %s", exc, aside)
        self.notice = (f"The saved sessions file was damaged ({exc}); it was moved aside to {aside} and a new one "
                       "started.")
        return db

    def _in_memory(self, reason: str) -> sqlite3.Connection:
        log.info("sessions cannot be saved under %s: %s", self.path.parent, reason)
        self.saving = False
        self.notice = (f"Sessions cannot be saved under {self.path.parent} ({reason}); this chat works but will not "
                       "be saved. Set ASSISTANT_HOME to a writable directory to save it.")
        db = self._connect(":memory:")
        try:  # show what was saved before, when it can still be read
            with sqlite3.connect(f"file:{self.path}?mode=ro&immutable=1", uri=True) as saved:
                saved.backup(db)
            db.executescript(SCHEMA)
        except (sqlite3.Error, OSError):
            pass
        return db

    def close(self) -> None:
        with self._lock:
            self._db.close()

    @contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        with self._lock, _guarded(self.path):
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
            except BaseException:
                with suppress(sqlite3.Error):
                    self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    def _rows(self, sql: str, params: tuple[Any, ...] = ()) -> list[sqlite3.Row]:
        with self._lock, _guarded(self.path):
            return self._db.execute(sql, params).fetchall()

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
        rows = self._rows("SELECT s.*, (SELECT COUNT(*) FROM messages m WHERE m.session_id = s.id) AS n "
                          "FROM sessions s WHERE s.id = ?", (session_id,))
        row = rows[0] if rows else None
        if row is None:
            raise UnknownIdError("session", session_id, [s.id for s in self.list_sessions()])
        return _info(row)

    def list_sessions(self) -> list[SessionInfo]:
        """All sessions, most recently used first."""
        rows = self._rows("SELECT s.*, (SELECT COUNT(*) FROM messages m WHERE m.session_id = s.id) AS n "
                          "FROM sessions s ORDER BY s.updated_at DESC, s.rowid DESC")
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
        rows = self._rows("SELECT state FROM sessions WHERE id = ?", (session_id,))
        state = _json(rows[0]["state"]) if rows else None
        return state if isinstance(state, dict) else None

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
        rows = self._rows("SELECT * FROM messages WHERE session_id = ? ORDER BY id", (session_id,))
        out: list[MessageRecord] = []
        for r in rows:
            critique = _json(r["critique"])
            out.append(MessageRecord(
                id=r["id"], role=r["role"] if r["role"] in ("user", "assistant", "note") else "note",
                content=str(r["content"] or ""),
                status=r["status"] if r["status"] in ("complete", "streaming", "stopped", "failed") else "failed",
                backend=r["backend"], critique=critique if isinstance(critique, dict) else None,
                created_at=_when(r["created_at"])))
        return out

    def set_title_if_untitled(self, session_id: str, title: str) -> bool:
        """Name a session after its plan or first message, unless the user already named it."""
        title = " ".join(title.split())[:80]
        if not title:
            return False
        with self._tx() as db:
            cur = db.execute("UPDATE sessions SET title = ? WHERE id = ? AND title = ?", (title, session_id, UNTITLED))
            return cur.rowcount > 0


def _info(row: sqlite3.Row) -> SessionInfo:
    return SessionInfo(id=row["id"], title=str(row["title"]), created_at=_when(row["created_at"]),
                       updated_at=_when(row["updated_at"]), backend=row["backend"], messages=row["n"])


@contextmanager
def _guarded(path: Path) -> Iterator[None]:
    """SQLite failures while in use, as one clear error for the faces to show."""
    try:
        yield
    except AdvisorError:
        raise
    except sqlite3.Error as exc:
        raise SessionStoreError(f"The sessions file {path} failed: {exc}.",
                                hint="Restart the chat: a damaged file is moved aside and a new one started.") from exc
