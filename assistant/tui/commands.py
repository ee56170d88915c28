"""The chat window's commands: slash commands, key actions, the sessions list and the sources.

``ChatCommands`` is the base of ``ChatApp`` (app.py), which holds the conversation, the turns and
the layout; everything here acts on the window through them.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError
from textual import on
from textual.app import App
from textual.containers import VerticalScroll
from textual.screen import Screen
from textual.widgets import Markdown, OptionList

from ..domain import Balance, Critique
from ..errors import AdvisorError
from ..knowledge import Corpus
from .corpus_text import entry_markdown, entry_title, is_openable
from .export import conversation_markdown, default_export_path
from .screens import HelpScreen, OpenPlanScreen, SessionAction, SessionsScreen, SourceScreen
from .sessions import UNTITLED, MessageRecord, SessionInfo, SessionStore
from .turns import copy_text
from .widgets import (
    AssistantMessage,
    CritiqueCard,
    CritiquePanel,
    FoldedAnswer,
    NoteMessage,
    PromptInput,
    SourceList,
    UserMessage,
)

__all__ = ["ChatCommands"]

RECENT_ANSWERS = 2  # a resumed conversation shows its last answers in full...
FOLD_CHARACTERS = 3000  # ...and folds earlier long ones (a critique) until they are opened


WIDE = 110  # from this width the critique panel sits beside the conversation


class ChatCommands(App[None]):
    """Commands and actions; the state and the steps they use are ChatApp's."""

    store: SessionStore
    session_id: str | None
    critique: Critique | None
    previous_balance: Balance | None
    last_answer: str | None
    export_dir: Path | None

    if TYPE_CHECKING:  # provided by the class this is mixed into (declared for the type checker only)
        @property
        def corpus(self) -> Corpus:
            ...

        async def load_plan_file(self, path: str) -> None:
            ...

        async def action_cancel(self) -> None:
            ...

        async def _show_welcome(self) -> None:
            ...

        def _prepare_conversation(self) -> Any:
            ...

        def _reset_conversation(self, state: dict[str, Any] | None) -> None:
            ...

        def _set_backend(self, backend: str) -> None:
            ...

        async def _show_critique(self, critique: Critique, previous: Balance | None, *, announce: bool) -> None:
            ...

    def action_toggle_panel(self) -> None:
        """F2: go to the critique panel (its tabs), or from it back to the message box."""
        if self.critique is None:
            self.notify("No critique yet: paste or open a plan first.")
            return
        panel = self.query_one("#panel", CritiquePanel)
        if panel.display and panel.has_focus_within:
            self.action_back_to_chat()
            return
        self._show_panel(True)
        panel.query_one("Tabs").focus()

    def action_back_to_chat(self) -> None:
        if not self._is_wide():
            self._show_panel(False)
        self.query_one("#prompt", PromptInput).focus()

    @on(OptionList.OptionSelected, "#interventions, #sources")
    def _open_source(self, event: OptionList.OptionSelected) -> None:
        if event.option.id:
            self.open_source(event.option.id)

    @on(Markdown.LinkClicked)
    def _link_clicked(self, event: Markdown.LinkClicked) -> None:
        href = event.href
        if href.startswith(("case:", "intervention:", "framework:", "paper:")):
            self.open_source(href)
        else:
            self.open_url(href)

    def open_source(self, ref_id: str) -> None:
        """Show a case, intervention, framework or paper in full, from the corpus."""
        corpus = self.corpus
        if not is_openable(corpus, ref_id):
            self.notify(f"{ref_id} is not in the corpus.", severity="warning")
            return
        self.push_screen(SourceScreen(entry_title(corpus, ref_id), entry_markdown(corpus, ref_id)))

    async def run_slash_command(self, line: str) -> bool:
        """Run ``/command args``. Returns True when the input should be cleared."""
        name, _, arg = line[1:].partition(" ")
        name, arg = name.lower().strip(), arg.strip()
        if name in ("load", "open"):
            if arg:
                await self.load_plan_file(arg)
            else:
                self.action_open_plan()
            return True
        if name == "export":
            self.export(arg or None)
            return True
        if name == "copy":
            self.action_copy_answer()
            return True
        if name == "sessions":
            self.action_sessions()
            return True
        if name == "new":
            await self.action_new_session()
            return True
        if name == "rename":
            if not arg:
                self.notify("Give the new name, for example /rename Torbay refresh 2026.", severity="warning")
                return False
            if self.session_id is None:
                self.notify("Nothing to rename yet: start the conversation first.", severity="warning")
                return False
            self.rename_session(self.session_id, arg)
            return True
        if name == "help":
            self.action_help()
            return True
        if name in ("quit", "exit"):
            self.exit()
            return True
        known = ("/load", "/export", "/copy", "/sessions", "/new", "/rename", "/help", "/quit")
        from ..errors import suggest

        close = suggest("/" + name, known)
        hint = f" Did you mean {close[0]}?" if close else " Type /help to see the commands."
        self.notify(f"There is no command /{name}.{hint}", severity="warning")
        return False

    def action_open_plan(self) -> None:
        def chosen(path: str | None) -> None:
            if path:
                self.call_later(self.load_plan_file, path)

        self.push_screen(OpenPlanScreen(), chosen)

    def action_help(self) -> None:
        self.push_screen(HelpScreen())

    def action_export(self) -> None:
        self.export(None)

    def export(self, path: str | None) -> Path | None:
        """Write the conversation and the latest critique as Markdown; returns where."""
        if self.session_id is None:
            self.notify("Nothing to export yet.", severity="warning")
            return None
        info = self.store.get(self.session_id)
        text = conversation_markdown(info.title, self.store.messages(self.session_id), self.critique)
        if path:
            target = Path(os.path.expanduser(path))
            if target.is_dir():
                target = default_export_path(info.title, target)
            elif not target.suffix:
                target = target.with_suffix(".md")
        else:
            target = default_export_path(info.title, self.export_dir or Path.cwd())
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(text, encoding="utf-8")
        except OSError as exc:
            self.notify(f"Could not write {target}: {exc.strerror or exc}", title="Export failed", severity="error")
            return None
        self.notify(f"Saved to {target.resolve()}", title="Exported")
        return target

    def action_copy_answer(self) -> None:
        if not self.last_answer:
            self.notify("There is no answer to copy yet.", severity="warning")
            return
        how = copy_text(self, self.last_answer)
        extra = "" if how == "system" else " (if nothing arrives, your terminal blocks this: use F4 to export)"
        self.notify(f"Copied the last answer ({len(self.last_answer):,} characters){extra}.", timeout=5)

    def action_sessions(self) -> None:
        def chosen(result: SessionAction | None) -> None:
            if result is None:
                return
            action, session_id = result
            if action == "new":
                self.call_later(self.action_new_session)
            elif session_id is not None and session_id != self.session_id:
                self.call_later(self.resume_session, session_id)

        self.push_screen(SessionsScreen(self, self.session_id), chosen)

    # sessions ------------------------------------------------------------------------------

    def list_sessions(self) -> list[SessionInfo]:
        return self.store.list_sessions()

    def rename_session(self, session_id: str, title: str) -> None:
        self.store.rename(session_id, title)
        if session_id == self.session_id:
            self.sub_title = self.store.get(session_id).title
        self.notify(f"Renamed to “{self.store.get(session_id).title}”.", timeout=4)

    def delete_session(self, session_id: str) -> None:
        self.store.delete(session_id)
        if session_id == self.session_id:
            self.call_later(self.action_new_session)
        self.notify("Conversation deleted.", timeout=4)

    async def action_new_session(self) -> None:
        await self.action_cancel()
        self.session_id = None
        self.sub_title = UNTITLED
        await self._clear()
        await self._show_welcome()
        self._reset_conversation(None)
        self._prepare_conversation()
        self.query_one("#prompt", PromptInput).focus()

    async def _clear(self) -> None:
        await self.query_one("#conversation", VerticalScroll).remove_children()
        self.critique = None
        self.previous_balance = None
        self.last_answer = None
        self._show_panel(False)
        self.query_one("#sources", SourceList).show([], replace=True)
        self.refresh_bindings()

    async def resume_session(self, session_id: str) -> None:
        """Show a saved conversation and carry on from where it stopped."""
        await self.action_cancel()
        try:
            info = self.store.get(session_id)
            messages = self.store.messages(session_id)
        except AdvisorError as exc:  # a damaged sessions file: say so, keep the window
            self.notify(str(exc), title="Cannot open that conversation", severity="error", timeout=10)
            return
        self.session_id = session_id
        self.sub_title = info.title
        await self._clear()
        critiques: list[Critique] = []
        widgets: list[Any] = []
        answers = [m.id for m in messages if m.role == "assistant"]
        shown_in_full = set(answers[-RECENT_ANSWERS:])
        for record in messages:
            widgets.extend(self._widgets_for(record, critiques, fold=record.id not in shown_in_full))
        await self.query_one("#conversation", VerticalScroll).mount_all(widgets)
        self.last_answer = next((m.content for m in reversed(messages) if m.role == "assistant" and m.content),
                                None)
        if critiques:
            previous = critiques[-2].balance if len(critiques) > 1 else None
            await self._show_critique(critiques[-1], previous, announce=False)
        self._reset_conversation(self.store.load_state(session_id))
        self._prepare_conversation()
        self.query_one("#conversation", VerticalScroll).anchor()
        self.query_one("#prompt", PromptInput).focus()
        if info.backend:
            self._set_backend(info.backend)

    def _widgets_for(self, record: MessageRecord, critiques: list[Critique], *, fold: bool) -> list[Any]:
        if record.role == "user":
            return [UserMessage(record.content)]
        if record.role == "note":
            return [NoteMessage(record.content)]
        status = {"stopped": "stopped", "failed": "failed", "streaming": "interrupted"}.get(record.status)
        long = len(record.content) > FOLD_CHARACTERS
        out: list[Any] = [FoldedAnswer(record.content, status=status) if fold and long
                          else AssistantMessage(record.content, status=status)]
        if record.critique is not None:
            try:
                critique = Critique.model_validate(record.critique)
            except ValidationError:  # a damaged saved critique: show the answer without it
                return out
            out.append(CritiqueCard(critique, critiques[-1].balance if critiques else None))
            critiques.append(critique)
        return out

    def _show_panel(self, show: bool) -> None:
        """Beside the conversation when wide; instead of it when narrow."""
        self.query_one("#panel").display = show
        self.query_one("#chat").display = not (show and not self._is_wide())

    def get_default_screen(self) -> Screen[Any]:
        return _MainScreen(id="_default")

    def layout_for_width(self) -> None:
        """Called when the window is resized (the main screen gets the resize, not the app)."""
        if self.critique is None:
            return
        # wide: side by side; narrow: keep whichever of the two the leader was looking at
        self._show_panel(self._is_wide() or not self.query_one("#chat").display)

    def _is_wide(self) -> bool:
        return self.size.width >= WIDE


class _MainScreen(Screen[Any]):
    def on_resize(self) -> None:
        app = self.app
        if isinstance(app, ChatCommands):
            app.layout_for_width()
