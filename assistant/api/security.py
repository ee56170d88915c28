"""API keys: loaded once, held only as hashes, checked in constant time.

Keys come from ``ASSISTANT_API_KEYS`` (comma-separated plain keys, hashed as soon as they are
read) or ``ASSISTANT_API_KEYS_FILE`` (one ``sha256:<hex>`` line per key, optionally followed by
``# a label``; make a line with ``assistant serve --hash-key``). With no keys configured, auth
is off, which ``assistant serve`` allows only on a loopback address unless told otherwise.

Keys are long random tokens, so one round of SHA-256 is enough: there is nothing to brute-force
that a slow hash would protect (the same choice GitHub and Stripe make for API tokens).
"""

from __future__ import annotations

import hashlib
import re
import secrets
from dataclasses import dataclass
from pathlib import Path

from ..errors import ConfigError
from ..settings import Settings
from .errors import AUTHENTICATION, APIError

__all__ = ["KeyRing", "Principal", "hash_key", "hash_line", "load_keys", "new_key"]

PREFIX = "sha256:"
_HASH_LINE = re.compile(r"^sha256:([0-9a-f]{64})(?:\s+#\s*(.*))?$")
MIN_KEY_LENGTH = 16


def hash_key(key: str) -> str:
    return PREFIX + hashlib.sha256(key.encode("utf-8")).hexdigest()


def hash_line(key: str, label: str | None = None) -> str:
    """The line to put in ``ASSISTANT_API_KEYS_FILE`` for ``key``."""
    key = key.strip()
    if len(key) < MIN_KEY_LENGTH:
        raise ConfigError(f"An API key must be at least {MIN_KEY_LENGTH} characters.",
                          hint="Leave the input empty to have one generated.")
    return hash_key(key) + (f"  # {label}" if label else "")


def new_key() -> str:
    return "ta-" + secrets.token_urlsafe(32)


@dataclass(frozen=True)
class Principal:
    """Who is calling: ``key_id`` is a short, non-secret prefix of the key's hash (for logs and limits)."""

    key_id: str
    label: str | None = None


@dataclass(frozen=True)
class _Entry:
    digest: bytes
    label: str | None


class KeyRing:
    """The accepted keys' hashes. ``enabled`` is false when no keys are configured (auth off)."""

    def __init__(self, hashes: list[tuple[str, str | None]] | None = None) -> None:
        self._entries = [_Entry(bytes.fromhex(h.removeprefix(PREFIX)), label) for h, label in hashes or []]

    @property
    def enabled(self) -> bool:
        return bool(self._entries)

    def __len__(self) -> int:
        return len(self._entries)

    def check(self, presented: str) -> Principal | None:
        """The principal for ``presented``, or None. Compares against every key, in constant time."""
        digest = hashlib.sha256(presented.encode("utf-8")).digest()
        match: _Entry | None = None
        for entry in self._entries:
            if secrets.compare_digest(entry.digest, digest):
                match = entry
        if match is None:
            return None
        return Principal(key_id=match.digest.hex()[:8], label=match.label)

    def authenticate(self, authorization: str | None) -> Principal | None:
        """Check an ``Authorization`` header; None when auth is off; raises a 401 APIError."""
        if not self.enabled:
            return None
        challenge = {"WWW-Authenticate": "Bearer"}
        if not authorization:
            raise APIError(401, "Missing API key: send 'Authorization: Bearer <key>'.", type=AUTHENTICATION,
                           code="missing_api_key", headers=challenge)
        scheme, _, token = authorization.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise APIError(401, "Malformed Authorization header: use 'Authorization: Bearer <key>'.",
                           type=AUTHENTICATION, code="invalid_api_key", headers=challenge)
        principal = self.check(token.strip())
        if principal is None:
            raise APIError(401, "Invalid API key.", type=AUTHENTICATION, code="invalid_api_key",
                           headers=challenge)
        return principal


def _read_keys_file(path: Path) -> list[tuple[str, str | None]]:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"Cannot read the API keys file {path}: {exc.strerror}.",
                          hint="Check ASSISTANT_API_KEYS_FILE.") from exc
    out: list[tuple[str, str | None]] = []
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        match = _HASH_LINE.match(line)
        if match is None:
            raise ConfigError(f"{path}:{number}: not a hashed key line (expected 'sha256:<64 hex>  # label').",
                              hint="Keys are stored hashed: make each line with 'assistant serve --hash-key'.")
        out.append((PREFIX + match.group(1), (match.group(2) or "").strip() or None))
    if not out:
        raise ConfigError(f"The API keys file {path} has no keys.",
                          hint="Add lines made with 'assistant serve --hash-key', or unset ASSISTANT_API_KEYS_FILE.")
    return out


def load_keys(settings: Settings) -> KeyRing:
    """The configured keys (env and file together); an empty ring means auth is off."""
    hashes: list[tuple[str, str | None]] = []
    if settings.api_keys:
        for key in settings.api_keys.split(","):
            key = key.strip()
            if not key:
                continue
            if len(key) < MIN_KEY_LENGTH:
                raise ConfigError(f"An API key in ASSISTANT_API_KEYS is shorter than {MIN_KEY_LENGTH} characters.",
                                  hint="Use long random keys, e.g. from 'assistant serve --hash-key'.")
            hashes.append((hash_key(key), None))
    if settings.api_keys_file is not None:
        hashes.extend(_read_keys_file(Path(settings.api_keys_file)))
    return KeyRing(hashes)
