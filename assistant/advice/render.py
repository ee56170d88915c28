"""Render a Critique for people: Markdown for a board paper, rich text for a terminal."""

from __future__ import annotations

from ..domain import THEMES, Balance, Critique

__all__ = ["balance_change_markdown", "critique_markdown", "critique_text"]

KIND_TITLES = {
    "pm-as-product": "Project management as the product",
    "structure-without-relationship": "Structure without relationship",
    "leadership-as-governance": "Leadership as governance only",
    "tokenistic-engagement": "Tokenistic engagement",
    "short-horizon": "Short horizon",
    "training-as-compliance": "Training as compliance",
    "metrics-only-structural": "Only structural metrics",
    "relational-rhetoric": "Relational rhetoric",
    "relational-without-structure": "Relational work without structure",
}
ORIENTATION_LABEL = {"structural": "structural", "relational": "relational", "work_process": "joint improvement"}


def _pct(x: float) -> str:
    return f"{round(100 * x)}%"


def critique_markdown(critique: Critique) -> str:
    """A Markdown critique a director could paste into a board paper."""
    v, b = critique.verdict, critique.balance
    title = critique.plan.title or "the plan"
    lines = [f"# Critique of {title}", "", f"**{v.headline}**", ""]
    lines += [
        f"- Structural overuse: **{'yes' if v.structural_overuse else 'no'}** (severity: {v.severity})",
        f"- Relational share of actions: **{_pct(b.relational_share)}** of {critique.plan.actions} actions",
        f"- Horizon: {b.horizon.get('short_term', 0)} short-term, {b.horizon.get('long_term', 0)} long-term, "
        f"{b.horizon.get('unspecified', 0)} unspecified",
    ]
    if b.neglected_themes:
        lines.append(f"- Themes with no relational action: {', '.join(b.neglected_themes)}")
    lines += ["", "## Balance by theme", "", "| Theme | Structural | Relational | Joint improvement |",
              "|---|---:|---:|---:|"]
    for t in THEMES:
        c = b.themes[t]
        lines.append(f"| {t.capitalize()} | {c.structural} | {c.relational} | {c.work_process} |")
    if critique.findings:
        lines += ["", "## What we found", ""]
        for f in critique.findings:
            lines.append(f"### {f.id}. {KIND_TITLES.get(f.kind, f.kind)}")
            lines += ["", f.summary, ""]
            for e in f.evidence:
                lines.append(f"> “{e.quote}”" + (f" ({e.action_id})" if e.action_id else ""))
                lines.append("")
            if f.citations:
                lines += [f"Sources: {', '.join(f.citations)}", ""]
    if critique.interventions:
        lines += ["## What to do about it", ""]
        if len(critique.interventions) > 1:
            lines += ["In order of fit to this plan: start with the first.", ""]
        for i in critique.interventions:
            lines += [f"### {i.title}", "", i.rationale, "", "First steps:", ""]
            lines += [f"{n}. {s}" for n, s in enumerate(i.first_steps, start=1)]
            if i.measures:
                lines += ["", "How to measure it:", ""] + [f"- {m}" for m in i.measures]
            if i.citations:
                lines += ["", f"Sources: {', '.join(i.citations)}"]
            lines.append("")
    if critique.references:
        lines += ["## References", ""]
        for r in critique.references:
            lines.append(f"- `{r.id}` {r.title}" + (f" — {r.source}" if r.source else ""))
    lines += ["", "---", "",
              f"*Produced by Transformation Advisor ({critique.backend}). Themes and the structural/relational "
              "balance follow Olaitan (2024); the detailed coding scheme is this project's own "
              "operationalisation, not the paper's.*", ""]
    return "\n".join(lines)


def balance_change_markdown(before: Balance, after: Balance) -> str:
    """Before -> after, for a revised plan."""
    lines = [f"Relational share: {_pct(before.relational_share)} -> {_pct(after.relational_share)}", ""]
    for t in THEMES:
        x, y = before.themes[t], after.themes[t]
        if x != y:
            lines.append(f"- {t.capitalize()}: structural {x.structural} -> {y.structural}, relational "
                         f"{x.relational + x.work_process} -> {y.relational + y.work_process}")
    return "\n".join(lines)


def _bar(structural: int, relational: int, width: int = 24) -> str:
    total = structural + relational
    if total == 0:
        return "·" * width
    s = round(width * structural / total)
    return "█" * s + "░" * (width - s)


def critique_text(critique: Critique, *, color: bool = True, width: int = 100) -> str:
    """A terminal rendering with per-theme structural/relational bars (rich markup when color)."""
    from io import StringIO

    from rich.console import Console
    from rich.markdown import Markdown
    from rich.table import Table

    out = StringIO()
    console = Console(file=out, force_terminal=color, no_color=not color, width=width, highlight=False)
    v, b = critique.verdict, critique.balance
    style = {"none": "green", "mild": "yellow", "marked": "dark_orange", "severe": "red"}[v.severity]
    console.print(f"[bold]{critique.plan.title or 'Plan'}[/bold]  [dim]({critique.backend})[/dim]")
    console.print(f"[bold {style}]{v.headline}[/bold {style}]")
    console.print()
    table = Table(title=f"Balance — relational share {_pct(b.relational_share)}", show_edge=False)
    table.add_column("Theme")
    table.add_column("structural █  relational ░")
    table.add_column("S", justify="right")
    table.add_column("R", justify="right")
    table.add_column("J", justify="right")
    for t in THEMES:
        c = b.themes[t]
        table.add_row(t, _bar(c.structural, c.relational + c.work_process), str(c.structural), str(c.relational),
                      str(c.work_process))
    console.print(table)
    console.print(f"Horizon: {b.horizon.get('short_term', 0)} short-term · {b.horizon.get('long_term', 0)} long-term · "
                  f"{b.horizon.get('unspecified', 0)} unspecified   (S structural, R relational, J joint improvement)")
    body = critique_markdown(critique).split("## What we found", 1)
    if len(body) == 2:
        console.print(Markdown("## What we found" + body[1]))
    elif critique.interventions:
        console.print(Markdown("## What to do about it" + critique_markdown(critique).split("## What to do about it", 1)[1]))
    return out.getvalue()
