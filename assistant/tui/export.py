"""Export a conversation and its latest critique as one Markdown document."""

from __future__ import annotations

import re
from pathlib import Path

from ..advice.render import critique_markdown
from ..domain import Critique
from .sessions import MessageRecord

__all__ = ["conversation_markdown", "default_export_path"]

SPEAKER = {"user": "You", "assistant": "Advisor", "note": "Note"}
STATUS_NOTE = {"stopped": " *(stopped before it finished)*", "failed": " *(failed)*",
               "streaming": " *(interrupted)*"}


def conversation_markdown(title: str, messages: list[MessageRecord], critique: Critique | None) -> str:
    lines = [f"# {title}", ""]
    if messages:
        lines += ["## Conversation", ""]
    for message in messages:
        if message.role == "note":
            lines += [f"*{message.content}*", ""]
            continue
        lines += [f"**{SPEAKER[message.role]}:**{STATUS_NOTE.get(message.status, '')}", ""]
        body = message.content.strip() or "*(no text)*"
        if message.role == "user":
            body = "\n".join("> " + line if line else ">" for line in body.splitlines())
        lines += [body, ""]
    if critique is not None:
        body = critique_markdown(critique)
        # one document, one title: the critique's headings go one level down
        body = re.sub(r"^(#+) ", lambda m: "#" + m.group(1) + " ", body, flags=re.MULTILINE)
        lines += ["---", "", body.strip(), ""]
    return "\n".join(lines).rstrip() + "\n"


def default_export_path(title: str, folder: Path) -> Path:
    """``<folder>/<title-slug>.md``, numbered if that file already exists (never overwrites)."""
    slug = re.sub(r"[^a-z0-9]+", "-", title.lower()).strip("-")[:80].rstrip("-") or "conversation"
    path = folder / f"{slug}.md"
    n = 2
    while path.exists():
        path = folder / f"{slug}-{n}.md"
        n += 1
    return path
