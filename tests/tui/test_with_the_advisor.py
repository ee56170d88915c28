"""The chat with the real conversation object and the offline advisor (no fakes at the seam)."""

from __future__ import annotations

from pathlib import Path

from textual.widgets import TabbedContent

from assistant.tui.app import ChatApp
from assistant.tui.cli import conversation_factory
from assistant.tui.sessions import SessionStore
from assistant.tui.widgets import BalanceView, FoldedAnswer, SourceList

from .conftest import make_store
from .fakes import DATA
from .helpers import answers, send, settle


def make(store: SessionStore, session_id: str | None = None) -> ChatApp:
    from assistant.advice.advisor import get_advisor

    return ChatApp(conversation_factory(None), store, corpus=lambda: get_advisor().corpus, session_id=session_id)


async def test_load_critique_follow_up_and_resume(store_path: Path) -> None:
    store = make_store(store_path)
    app = make(store)
    async with app.run_test(size=(120, 40)) as pilot:
        await send(pilot, f"/load {DATA / 'plan.md'}")
        await settle(pilot, timeout=60)
        critique = app.critique
        assert critique is not None and critique.backend == "offline"
        assert critique.verdict.structural_overuse
        assert app.query_one(BalanceView).critique == critique
        assert app.query_one("#panel", TabbedContent).display
        # every quote in the findings is the plan's own words
        plan = (DATA / "plan.md").read_text()
        assert all(e.quote in plan for f in critique.findings for e in f.evidence)
        await send(pilot, "why did you flag the PMO?")
        assert "PMO" in answers(app)[-1] or "Programme Management Office" in answers(app)[-1]
        await send(pilot, "show me a case like ours")
        assert any(r.startswith("case:") for r in app.query_one(SourceList).references)
        session_id = app.session_id
        assert str(app.query_one("#backend").render()) == "offline"
    store.close()

    store = SessionStore(store_path)
    app = make(store, session_id)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot, timeout=60)
        # the critique's long answer is folded until opened; the last two answers are in full
        assert "Critique of" in str(app.query_one(FoldedAnswer).render())
        assert len(answers(app)) == 2 and app.critique == critique
        await send(pilot, "what would a boundary-spanning role look like for our district nurses?")
        assert "district nurses" in answers(app)[-1]
    store.close()
