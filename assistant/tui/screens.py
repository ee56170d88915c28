"""Screens over the chat: help, open a plan, sessions, a source's full text, small prompts."""

from __future__ import annotations

import os
from pathlib import Path
from typing import ClassVar, Literal, Protocol

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.suggester import Suggester
from textual.widgets import Button, DataTable, Input, Label, Markdown, OptionList, Static
from textual.widgets.option_list import Option

from .sessions import SessionInfo

__all__ = [
    "HELP_MARKDOWN",
    "ConfirmScreen",
    "HelpScreen",
    "OpenPlanScreen",
    "SessionAction",
    "SessionHost",
    "SessionsScreen",
    "SourceScreen",
    "TextPromptScreen",
]

PLAN_SUFFIXES = {".txt", ".md", ".markdown", ".text", ".docx", ".pdf"}

HELP_MARKDOWN = """\
# Transformation Advisor — help

Describe your transformation plan, paste it, or open it from a file. The advisor critiques it
for **over-reliance on structural approaches** (boards, mergers, PMOs, dashboards) and suggests
**relational interventions**, quoting your plan's own words and citing real programmes.

## Getting started
- **Paste** your plan into the box at the bottom and press **Enter**.
- Or press **Ctrl+O** (or type `/load` and a file path) to open a plan: txt, md, docx or pdf.
- Or simply **describe** your plan over a few messages; the advisor will ask about what is missing.
- Then ask follow-up questions in plain language, for example
  *"why did you flag the PMO?"*, *"show me a case like ours"* or
  *"what would a boundary-spanning role look like for our district nurses?"*
- Paste a **revised** plan to see the balance move, before → after.

## Keys
| Key | What it does |
|---|---|
| Enter | send your message |
| Ctrl+J (or Shift+Enter) | new line in your message |
| Esc | stop the answer being written |
| Ctrl+O | open a plan file |
| F2 | go to the critique panel (balance, findings, interventions, sources), and back |
| ← → (on the panel's tabs) | switch tab; ↓ or Tab moves into it |
| Enter (on an intervention or source) | read its full text |
| Esc (in the panel) | back to the message box |
| Tab / Shift+Tab | move between the message box, the conversation and the panel |
| F3 | your saved conversations |
| F4 | export the conversation and latest critique to Markdown |
| F5 | copy the last answer |
| Ctrl+N | start a new conversation |
| F1 | this help |
| Ctrl+P | every command, searchable |
| Ctrl+Q | quit (everything is already saved) |

## Commands (type them in the message box)
| Command | What it does |
|---|---|
| `/load PATH` | open a plan file |
| `/export [PATH]` | save the conversation and the latest critique as Markdown |
| `/copy` | copy the last answer |
| `/sessions` | list, resume, rename or delete saved conversations |
| `/new` | start a new conversation |
| `/rename NAME` | rename this conversation |
| `/help` | this help |
| `/quit` | quit |

## Good to know
- Conversations are saved as they happen, so nothing is lost if the window closes.
- The advisor works offline by default. With a language model configured (`--model`),
  the footer shows the model; if the model fails, the advisor falls back to its offline
  critique and tells you.
- The four themes and the structural/relational balance follow Olaitan (2024); the detailed
  coding scheme is this project's own, not the paper's.

Press **Esc** to close.
"""


class HelpScreen(ModalScreen[None]):
    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape,f1,q", "dismiss", "Close")]

    def compose(self) -> ComposeResult:
        with VerticalScroll(classes="dialog wide") as scroll:
            scroll.border_title = "Help"
            scroll.border_subtitle = "Esc close"
            yield Markdown(HELP_MARKDOWN)

    def action_dismiss(self, result: None = None) -> None:  # type: ignore[override]
        self.dismiss(result)


class SourceScreen(ModalScreen[None]):
    """The full corpus text of a case, intervention, framework or paper."""

    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape,q", "close", "Close")]

    def __init__(self, title: str, markdown: str) -> None:
        super().__init__()
        self.title_text = title
        self.markdown = markdown

    def compose(self) -> ComposeResult:
        with VerticalScroll(classes="dialog wide", id="source") as scroll:
            scroll.border_title = self.title_text
            scroll.border_subtitle = "Esc close · ↑↓ scroll"
            yield Markdown(self.markdown, open_links=False)

    def on_mount(self) -> None:
        self.query_one("#source").focus()

    def action_close(self) -> None:
        self.dismiss(None)


class TextPromptScreen(ModalScreen[str | None]):
    """Ask for one line of text (a session name)."""

    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape", "cancel", "Cancel")]

    def __init__(self, question: str, value: str = "") -> None:
        super().__init__()
        self.question = question
        self.value = value

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog small"):
            yield Label(self.question)
            yield Input(value=self.value, id="answer")
            yield Static("Enter save · Esc cancel", classes="hint")

    @on(Input.Submitted)
    def _submitted(self, event: Input.Submitted) -> None:
        self.dismiss(event.value.strip() or None)

    def action_cancel(self) -> None:
        self.dismiss(None)


class ConfirmScreen(ModalScreen[bool]):
    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape,n", "answer(False)", "No"), Binding("y", "answer(True)", "Yes")]

    def __init__(self, question: str, yes: str = "Yes") -> None:
        super().__init__()
        self.question = question
        self.yes = yes

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog small"):
            yield Label(self.question)
            with Horizontal(classes="buttons"):
                yield Button(self.yes, variant="error", id="yes")
                yield Button("Cancel", id="no")

    @on(Button.Pressed)
    def _pressed(self, event: Button.Pressed) -> None:
        self.dismiss(event.button.id == "yes")

    def action_answer(self, value: bool) -> None:
        self.dismiss(value)


class PathSuggester(Suggester):
    """Completes a path one directory entry at a time (plan files and folders only)."""

    def __init__(self) -> None:
        super().__init__(use_cache=False, case_sensitive=True)

    async def get_suggestion(self, value: str) -> str | None:
        matches = path_matches(value)
        return matches[0] if matches else None


def path_matches(value: str, limit: int = 50) -> list[str]:
    """Folders and plan files that complete ``value`` (as typed: relative, absolute or ``~``)."""
    typed = value or ""
    expanded = os.path.expanduser(typed)
    folder, _, stem = expanded.rpartition(os.sep)
    base = Path(folder or ("/" if expanded.startswith(os.sep) else "."))
    if not folder and expanded.startswith(os.sep):
        base = Path("/")
    try:
        entries = sorted(base.iterdir(), key=lambda p: (not p.is_dir(), p.name.lower()))
    except OSError:
        return []
    prefix = typed[: len(typed) - len(stem)]
    out: list[str] = []
    for entry in entries:
        name = entry.name
        if name.startswith(".") and not stem.startswith("."):
            continue
        if not name.startswith(stem):
            continue
        try:
            is_dir = entry.is_dir()
        except OSError:
            continue
        if is_dir:
            out.append(prefix + name + os.sep)
        elif entry.suffix.lower() in PLAN_SUFFIXES:
            out.append(prefix + name)
        if len(out) >= limit:
            break
    return out


class OpenPlanScreen(ModalScreen[str | None]):
    """Type a path with completion (Tab completes), or pick from the list."""

    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape", "cancel", "Cancel"), Binding("tab", "complete", "Complete", priority=True)]

    def __init__(self, start: str = "") -> None:
        super().__init__()
        self.start = start

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog", id="open-plan") as box:
            box.border_title = "Open a plan"
            box.border_subtitle = "Tab complete · Enter open · Esc cancel"
            yield Label("Path to a plan file (txt, md, docx or pdf):")
            yield Input(value=self.start, placeholder="e.g. plans/our-integration-plan.docx",
                        suggester=PathSuggester(), id="path")
            yield OptionList(id="matches")

    def on_mount(self) -> None:
        self._refresh_matches(self.start)

    @on(Input.Changed, "#path")
    def _changed(self, event: Input.Changed) -> None:
        self._refresh_matches(event.value)

    def _refresh_matches(self, value: str) -> None:
        matches = self.query_one("#matches", OptionList)
        matches.clear_options()
        for match in path_matches(value):
            matches.add_option(Option(match, id=match))

    def action_complete(self) -> None:
        field = self.query_one("#path", Input)
        if not field.has_focus:
            self.focus_next()
            return
        candidates = path_matches(field.value)
        if not candidates:
            return
        common = os.path.commonprefix(candidates)  # noqa: RUF071 (completion is by characters)
        field.value = candidates[0] if len(candidates) == 1 else (common if len(common) > len(field.value)
                                                                  else field.value)
        field.cursor_position = len(field.value)

    @on(Input.Submitted, "#path")
    def _submitted(self, event: Input.Submitted) -> None:
        self._choose(event.value)

    @on(OptionList.OptionSelected, "#matches")
    def _picked(self, event: OptionList.OptionSelected) -> None:
        self._choose(str(event.option.id))

    def _choose(self, value: str) -> None:
        value = value.strip()
        if not value:
            return
        if Path(os.path.expanduser(value)).is_dir():
            field = self.query_one("#path", Input)
            field.value = value if value.endswith(os.sep) else value + os.sep
            field.cursor_position = len(field.value)
            field.focus()
            return
        self.dismiss(value)

    def action_cancel(self) -> None:
        self.dismiss(None)


SessionAction = tuple[Literal["open", "new"], str | None]


class SessionHost(Protocol):
    """What the sessions screen needs from the app."""

    def list_sessions(self) -> list[SessionInfo]: ...

    def rename_session(self, session_id: str, title: str) -> None: ...

    def delete_session(self, session_id: str) -> None: ...


class SessionsScreen(ModalScreen[SessionAction | None]):
    """Saved conversations: open (resume), rename, delete, or start a new one."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "close", "Back"),
        Binding("enter", "open", "Resume", priority=True),
        Binding("r", "rename", "Rename"),
        Binding("d,delete", "delete", "Delete"),
        Binding("n", "new", "New"),
    ]

    def __init__(self, host: SessionHost, current: str | None) -> None:
        super().__init__()
        self.host = host
        self.sessions = host.list_sessions()
        self.current = current

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog wide", id="sessions") as box:
            box.border_title = "Your conversations"
            box.border_subtitle = "Enter resume · r rename · d delete · n new · Esc back"
            yield DataTable(cursor_type="row", zebra_stripes=True, id="table")
            yield Static("", id="empty", classes="hint")

    def on_mount(self) -> None:
        table = self.query_one(DataTable)
        table.add_columns("Last used", "Messages", "Conversation")  # the title last: long ones are cut
        self._fill()
        table.focus()

    def _fill(self, keep: str | None = None) -> None:
        table = self.query_one(DataTable)
        table.clear()
        for info in self.sessions:
            marker = " (open now)" if info.id == self.current else ""
            table.add_row(info.updated_at.astimezone().strftime("%d %b %Y %H:%M"), Text(str(info.messages), justify="right"),
                          info.title + marker, key=info.id)
        self.query_one("#empty", Static).update(
            "" if self.sessions else "No saved conversations yet. They are saved as you talk.")
        rows = [info.id for info in self.sessions]
        if keep in rows:
            table.move_cursor(row=rows.index(keep))

    def _selected(self) -> SessionInfo | None:
        table = self.query_one(DataTable)
        if not self.sessions or table.cursor_row is None or table.cursor_row >= len(self.sessions):
            return None
        return self.sessions[table.cursor_row]

    def action_open(self) -> None:
        info = self._selected()
        if info is not None:
            self.dismiss(("open", info.id))

    def action_new(self) -> None:
        self.dismiss(("new", None))

    def action_close(self) -> None:
        self.dismiss(None)

    def action_rename(self) -> None:
        info = self._selected()
        if info is None:
            return

        def renamed(title: str | None) -> None:
            if title:
                self.host.rename_session(info.id, title)
                self.refresh_sessions(keep=info.id)

        self.app.push_screen(TextPromptScreen(f"New name for “{info.title}”:", info.title), renamed)

    def action_delete(self) -> None:
        info = self._selected()
        if info is None:
            return

        def confirmed(yes: bool | None) -> None:
            if yes:
                self.host.delete_session(info.id)
                self.refresh_sessions()

        self.app.push_screen(ConfirmScreen(f"Delete “{info.title}” and all its messages? This cannot be undone.",
                                           yes="Delete"), confirmed)

    def refresh_sessions(self, keep: str | None = None) -> None:
        self.sessions = self.host.list_sessions()
        self._fill(keep)
