"""An on-disk cache of model responses, under ``ASSISTANT_HOME/llm-cache``.

Keyed on everything that shapes an answer: the model, the provider base URL, the messages and
the call's parameters. One small JSON file per answer (``ab/abcdef….json``), written
atomically, so concurrent processes never read half a file. Only complete, successful answers
are stored; failures never are.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from .model import ChatMessage, Completion, Usage

__all__ = ["ResponseCache", "cache_key"]

log = logging.getLogger(__name__)
FORMAT = 1


def cache_key(model: str, api_base: str | None, messages: Sequence[ChatMessage],
              params: Mapping[str, Any]) -> str:
    payload = {
        "format": FORMAT,
        "model": model,
        "api_base": api_base,
        "messages": [[m.role, m.content] for m in messages],
        "params": params,
    }
    blob = json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()


class ResponseCache:
    def __init__(self, directory: Path) -> None:
        self.directory = Path(directory)

    def _path(self, key: str) -> Path:
        return self.directory / key[:2] / f"{key}.json"

    def get(self, key: str) -> Completion | None:
        path = self._path(key)
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            usage = data.get("usage", {})
            return Completion(
                text=str(data["text"]),
                model=str(data["model"]),
                usage=Usage(prompt_tokens=int(usage.get("prompt_tokens", 0)),
                            completion_tokens=int(usage.get("completion_tokens", 0)),
                            cost_usd=None, latency_s=0.0, cached=True),
            )
        except FileNotFoundError:
            return None
        except (OSError, ValueError, KeyError, TypeError) as exc:
            log.warning("ignoring unreadable LLM cache entry %s: %s", path.name, exc)
            return None

    def put(self, key: str, completion: Completion) -> None:
        path = self._path(key)
        data = {
            "text": completion.text,
            "model": completion.model,
            "usage": {"prompt_tokens": completion.usage.prompt_tokens,
                      "completion_tokens": completion.usage.completion_tokens},
        }
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=".json")
            try:
                with os.fdopen(fd, "w", encoding="utf-8") as fh:
                    json.dump(data, fh, ensure_ascii=False)
                os.replace(tmp, path)
            except BaseException:
                with contextlib.suppress(OSError):
                    os.unlink(tmp)
                raise
        except OSError as exc:  # a cache that cannot be written must never fail the answer
            log.warning("could not write the LLM cache: %s", exc)

    def clear(self) -> int:
        removed = 0
        for path in self.directory.glob("*/*.json"):
            with contextlib.suppress(OSError):
                path.unlink()
                removed += 1
        return removed
