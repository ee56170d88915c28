"""Export a conversation and its latest critique as one Markdown document.

The critique comes first (it is what goes into a board paper), then the conversation as a
transcript. Headings inside the critique and the answers are moved down a level or two so the
document keeps one outline.
"""

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
HEADING = re.compile(r"^(#{1,6}) ", re.MULTILINE)


def demote(markdown: str, levels: int) -> str:
    """Move every heading ``levels`` down (never below level 6). Fenced code is left alone."""
    out: list[str] = []
    fenced = False
    for line in markdown.splitlines():
        if line.lstrip().startswith(("```", "~~~")):
            fenced = not fenced
        elif not fenced:
            line = HEADING.sub(lambda m: "#" * min(6, len(m.group(1)) + levels) + " ", line)
        out.append(line)
    return "\n".join(out)


def conversation_markdown(title: str, messages: list[MessageRecord], critique: Critique | None) -> str:
    lines = [f"# {title}", ""]
    if critique is not None:
        lines += [demote(critique_markdown(critique), 1).strip(), ""]
    if messages:
        if critique is not None:
            lines += ["---", ""]
        lines += ["## Conversation", ""]
    for message in messages:
        if message.role == "note":
            lines += [f"*{message.content}*", ""]
            continue
        lines += [f"**{SPEAKER[message.role]}:**{STATUS_NOTE.get(message.status, '')}", ""]
        body = message.content.strip() or "*(no text)*"
        if message.role == "user":
            body = "\n".join("> " + line if line else ">" for line in body.splitlines())
        else:
            body = demote(body, 2)
        lines += [body, ""]
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
