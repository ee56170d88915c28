"""The chat's widgets: the message input, the messages, and the critique panel's views.

Views only render what the core returned (a Critique, a Balance); they compute no advice.
"""

from __future__ import annotations

from typing import ClassVar

from rich.console import Group, RenderableType
from rich.text import Text
from textual import events
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.message import Message
from textual.widgets import Collapsible, Markdown, OptionList, Static, TabbedContent, TextArea
from textual.widgets.option_list import Option

from ..advice.render import KIND_TITLES
from ..domain import THEMES, Balance, Critique, Finding, InterventionAdvice, Reference

__all__ = [
    "AssistantMessage",
    "BalanceView",
    "CritiqueCard",
    "CritiquePanel",
    "FindingsView",
    "FoldedAnswer",
    "InterventionList",
    "NoteMessage",
    "PromptInput",
    "SourceList",
    "UserMessage",
    "balance_renderable",
    "pct",
]

STRUCTURAL, RELATIONAL, JOINT = "█", "▓", "▒"
SEVERITY_WORDS = {"none": "no structural overuse", "mild": "mild structural overuse",
                  "marked": "marked structural overuse", "severe": "severe structural overuse"}
PLAN_PREVIEW_LINES = 6


def pct(x: float) -> str:
    return f"{round(100 * x)}%"


class PromptInput(TextArea):
    """A multi-line message box: Enter sends; Shift+Enter or Ctrl+J starts a new line.

    Pasted text keeps its line breaks, so a whole plan can be pasted and sent at once.
    """

    class Submitted(Message):
        def __init__(self, text: str) -> None:
            super().__init__()
            self.text = text

    class ScrollConversation(Message):
        """Page Up / Page Down while typing scroll the conversation, not this small box."""

        def __init__(self, pages: int) -> None:
            super().__init__()
            self.pages = pages

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id, soft_wrap=True, tab_behavior="focus", show_line_numbers=False,
                         placeholder="Paste or describe your plan, or ask a question.")
        self.border_subtitle = "Enter send · Ctrl+J new line"

    async def _on_key(self, event: events.Key) -> None:
        if event.key == "enter":
            event.stop()
            event.prevent_default()
            self.post_message(self.Submitted(self.text))
            return
        if event.key in ("pageup", "pagedown"):
            event.stop()
            event.prevent_default()
            self.post_message(self.ScrollConversation(-1 if event.key == "pageup" else 1))
            return
        if event.key in ("shift+enter", "ctrl+j"):
            event.stop()
            event.prevent_default()
            start, end = self.selection
            self._replace_via_keyboard("\n", start, end)
            return
        await super()._on_key(event)


class UserMessage(Static):
    """What the leader said. A long paste (a plan) shows its first lines, and folds the rest."""

    def __init__(self, content: str) -> None:
        super().__init__(classes="message user")
        self.content_text = content
        self.border_title = "You"

    def compose(self) -> ComposeResult:
        lines = self.content_text.splitlines()
        if len(lines) <= PLAN_PREVIEW_LINES + 2:
            yield Static(Text(self.content_text), classes="body")
            return
        yield Static(Text("\n".join(lines[:PLAN_PREVIEW_LINES])), classes="body")
        rest = len(lines) - PLAN_PREVIEW_LINES
        with Collapsible(title=f"{rest} more lines ({len(self.content_text):,} characters)", collapsed=True):
            yield Static(Text("\n".join(lines[PLAN_PREVIEW_LINES:])), classes="body")


class AssistantMessage(Markdown):
    """An answer, streamed in as Markdown."""

    def __init__(self, content: str = "", *, status: str | None = None) -> None:
        super().__init__(content, classes="message assistant", open_links=False)
        self.border_title = "Advisor"
        if status:
            self.set_status(status)

    def set_status(self, status: str | None) -> None:
        self.border_subtitle = status or ""
        self.set_class(status in ("stopped", "failed"), "-interrupted")


class FoldedAnswer(Static, can_focus=True):
    """An earlier long answer in a resumed conversation, opened on demand (Enter or a click).

    Laying out a long Markdown answer takes a second or more; a resumed conversation shows its
    latest answers in full and keeps earlier critiques folded, so it opens at once.
    """

    BINDINGS: ClassVar[list[BindingType]] = [Binding("enter,space", "open", "Show in full")]

    def __init__(self, content: str, *, status: str | None = None) -> None:
        super().__init__(classes="message assistant folded")
        self.content_text = content
        self.status = status
        self.border_title = "Advisor"
        self.border_subtitle = "Enter or click to show in full"

    def render(self) -> RenderableType:
        first = next((line.strip("#*> ").strip() for line in self.content_text.splitlines() if line.strip()), "")
        lines = self.content_text.count("\n") + 1
        text = Text()
        text.append("▶ ", style="bold")
        text.append(first, style="bold")
        text.append(f"\n  an earlier answer, {lines} lines, folded", style="italic")
        return text

    async def action_open(self) -> None:
        answer = AssistantMessage(self.content_text, status=self.status)
        await self.parent.mount(answer, after=self)  # type: ignore[union-attr]
        await self.remove()
        answer.scroll_visible(top=True, animate=False)

    async def on_click(self) -> None:
        await self.action_open()


class NoteMessage(Static):
    """A short line from the app itself (a plan was loaded, a session resumed)."""

    def __init__(self, content: str) -> None:
        super().__init__(Text(content), classes="message note")


class CritiqueCard(Static):
    """The verdict in one glance, under the answer that produced the critique."""

    def __init__(self, critique: Critique, previous: Balance | None = None) -> None:
        super().__init__(classes="message card")
        self.critique = critique
        self.previous = previous

    def render(self) -> RenderableType:
        c, b = self.critique, self.critique.balance
        text = Text()
        text.append("Critique ready: ", style="bold")
        text.append(SEVERITY_WORDS[c.verdict.severity])
        text.append(" · relational share ")
        if self.previous is not None:
            text.append(f"{pct(self.previous.relational_share)} → ")
        text.append(pct(b.relational_share), style="bold")
        text.append(f" · {_count(len(c.findings), 'finding')} · {_count(len(c.interventions), 'intervention')}")
        text.append("\nSee the balance, findings and interventions in the critique panel (F2).", style="italic")
        return text


BAR_STYLES = ("#d08a2e", "#3fa37a", "#4d8fc9")  # structural, relational, joint improvement


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"


def _bar(counts: tuple[int, int, int], scale: int, width: int) -> Text:
    """structural / relational / joint improvement, to a common scale so the themes compare.

    Each kind has its own glyph as well as its own colour, so the bars still read with NO_COLOR.
    """
    bar = Text()
    if scale <= 0:
        return bar
    cells = [round(width * n / scale) for n in counts]
    for n, count, glyph, style in zip(cells, counts, (STRUCTURAL, RELATIONAL, JOINT), BAR_STYLES, strict=True):
        if count and not n:
            n = 1  # something, however small, is visible
        bar.append(glyph * n, style=style)
    return bar


def balance_renderable(balance: Balance, previous: Balance | None = None, *, width: int = 40,
                       severity: str | None = None) -> RenderableType:
    """The balance view: relational share, per-theme structural vs relational bars, horizon."""
    structural_style, relational_style, joint_style = BAR_STYLES
    label_w = 11
    bar_w = max(8, width - label_w - 12)
    out: list[RenderableType] = []

    head = Text()
    head.append("Relational share ", style="bold")
    if previous is not None:
        head.append(f"{pct(previous.relational_share)} → ")
    head.append(pct(balance.relational_share), style="bold")
    if severity:
        head.append(f"\n{SEVERITY_WORDS.get(severity, severity).capitalize()}")
    out.append(head)
    share = Text()
    filled = round(bar_w * balance.relational_share)
    share.append(" " * label_w)
    share.append(RELATIONAL * filled, style=relational_style)
    share.append("░" * (bar_w - filled))
    out.append(share)

    legend = Text("\n")
    legend.append(f"{STRUCTURAL} structural  ", style=structural_style)
    legend.append(f"{RELATIONAL} relational  ", style=relational_style)
    legend.append(f"{JOINT} joint improvement", style=joint_style)
    out.append(legend)

    totals = {t: (balance.themes[t].structural, balance.themes[t].relational, balance.themes[t].work_process)
              for t in THEMES}
    scale = max([sum(v) for v in totals.values()] + [1])
    if previous is not None:
        scale = max([scale] + [previous.themes[t].structural + previous.themes[t].relational
                               + previous.themes[t].work_process for t in THEMES])
    for theme in THEMES:
        row = Text()
        row.append(f"{theme.capitalize():<{label_w}}", style="bold")
        if sum(totals[theme]):
            row.append_text(_bar(totals[theme], scale, bar_w))
        else:
            row.append("no actions", style="dim italic")
        s, r, j = totals[theme]
        detail = Text(f"\n{'':<{label_w}}{s} structural · {r} relational · {j} joint", style="dim")
        if previous is not None:
            p = previous.themes[theme]
            if (p.structural, p.relational, p.work_process) != (s, r, j):
                detail.append(f"\n{'':<{label_w}}was {p.structural} · {p.relational} · {p.work_process}")
        row.append_text(detail)
        out.append(row)

    h = balance.horizon
    horizon = Text("\nHorizon  ", style="bold")
    horizon.append(f"{h.get('short_term', 0)} short-term · {h.get('long_term', 0)} long-term · "
                   f"{h.get('unspecified', 0)} unspecified")
    if previous is not None and previous.horizon != balance.horizon:
        ph = previous.horizon
        horizon.append(f"\n{'':9}(was {ph.get('short_term', 0)} · {ph.get('long_term', 0)} · "
                       f"{ph.get('unspecified', 0)})", style="dim")
    out.append(horizon)
    if balance.neglected_themes:
        out.append(Text(f"\nThemes with no relational action: {', '.join(balance.neglected_themes)}"))
    return Group(*out)


class CritiquePanel(TabbedContent):
    """Balance, findings, interventions and sources. ← → switch tabs; Esc goes back to the chat."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "app.back_to_chat", "Back"),
        Binding("down", "into_tab", "Into the tab", show=False),
    ]

    def action_into_tab(self) -> None:
        """↓ on the tabs moves into the open tab (its list, or its scrolling text)."""
        pane = self.get_pane(self.active) if self.active else None
        if pane is None:
            return
        for widget in pane.query("*"):
            if widget.focusable:
                widget.focus()
                return


class BalanceView(Static):
    """Per-theme structural vs relational bars, relational share and horizon (before → after on a revision)."""

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.critique: Critique | None = None
        self.previous: Balance | None = None

    def show(self, critique: Critique, previous: Balance | None) -> None:
        self.critique, self.previous = critique, previous
        self.refresh(layout=True)

    def render(self) -> RenderableType:
        if self.critique is None:
            return Text("No critique yet. Paste or load a plan to see its balance.", style="italic")
        return balance_renderable(self.critique.balance, self.previous, width=self.size.width or 40,
                                  severity=self.critique.verdict.severity)


def findings_markdown(critique: Critique) -> str:
    if not critique.findings:
        return "No overuse patterns were found in this plan."
    parts: list[str] = []
    for finding in critique.findings:
        parts.append(_finding_markdown(finding))
    return "\n\n".join(parts)


def _finding_markdown(finding: Finding) -> str:
    theme = f" ({finding.theme})" if finding.theme else ""
    lines = [f"### {KIND_TITLES.get(finding.kind, finding.kind)}{theme}", "", finding.summary, ""]
    for evidence in finding.evidence:
        lines += [f"> “{evidence.quote}”", ""]
    return "\n".join(lines)


class FindingsView(Markdown):
    def show(self, critique: Critique) -> None:
        self.update(findings_markdown(critique))


def _intervention_prompt(item: InterventionAdvice, titles: dict[str, str]) -> Text:
    text = Text()
    text.append(item.title, style="bold")
    text.append(f"\n{item.rationale}\n")
    text.append("First steps\n", style="bold")
    for n, step in enumerate(item.first_steps, 1):
        text.append(f"{n}. {step}\n")
    cases = [titles.get(c, c) for c in item.citations if c.startswith("case:")]
    if cases:
        text.append("Cases: ", style="bold")
        text.append("; ".join(cases) + "\n")
    text.append("Enter: read the full intervention", style="italic dim")
    return text


class InterventionList(OptionList):
    """Suggested interventions with first steps and cited cases; Enter opens the full text."""

    def show(self, critique: Critique) -> None:
        titles = {r.id: r.title for r in critique.references}
        self.clear_options()
        for item in critique.interventions:
            self.add_option(Option(_intervention_prompt(item, titles), id=f"intervention:{item.id}"))
        if critique.interventions:
            self.highlighted = 0


class SourceList(OptionList):
    """Cases, frameworks and papers cited so far; Enter opens the full text."""

    KIND_ORDER: ClassVar[dict[str, int]] = {"case": 0, "intervention": 1, "framework": 2, "paper": 3}

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.references: dict[str, Reference] = {}

    def show(self, references: list[Reference], *, replace: bool = False) -> None:
        if replace:
            self.references = {}
        for ref in references:
            self.references.setdefault(ref.id, ref)
        self.clear_options()
        for ref in sorted(self.references.values(), key=lambda r: (self.KIND_ORDER.get(r.kind, 9), r.title)):
            prompt = Text()
            prompt.append(f"{ref.kind.capitalize()}: ", style="bold")
            prompt.append(ref.title)
            self.add_option(Option(prompt, id=ref.id))
        if self.references:
            self.highlighted = 0
