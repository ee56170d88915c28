"""A small on-disk JSON cache, for LLM generations and judge answers during evals.

Keys are any JSON-able value (model, prompt versions and hashes, the input); the file name is
the sha256 of the key's canonical JSON, so a change of model, prompt or plan misses the cache.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from pathlib import Path
from typing import Any

__all__ = ["JsonCache", "cache_key"]


def cache_key(key: Any) -> str:
    canonical = json.dumps(key, sort_keys=True, ensure_ascii=False, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()


class JsonCache:
    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    def _path(self, key: Any) -> Path:
        digest = cache_key(key)
        return self.root / digest[:2] / f"{digest}.json"

    def get(self, key: Any) -> dict[str, Any] | None:
        path = self._path(key)
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError):
            return None
        return data if isinstance(data, dict) else None

    def put(self, key: Any, value: dict[str, Any]) -> None:
        path = self._path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".", suffix=".json", dir=path.parent)
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(value, fh, ensure_ascii=False)
        os.replace(tmp, path)
