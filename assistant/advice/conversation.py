"""A conversation about one plan: the object the TUI, the API and the CLI chat with.

Each ``send`` is one turn and yields events (``events.py``): the answer as ``TextDelta``
chunks, then an optional ``CritiqueReady`` (a new or revised critique), ``Citations`` and
``Notice`` events, then exactly one ``TurnDone``. A turn is atomic: the conversation's plan,
critique and turns change only when the turn completes, so a caller that closes the
generator mid-stream (the user cancelled) leaves the conversation as it was.

Without a model every turn is answered offline: the message is routed (``intents.py``) to a
critique, a re-critique with the balance before -> after, an acknowledgement of a described
plan with a question about what is missing, or an answer about a finding, an intervention, a
case or a theme (``answers.py``). With a model, critiques go through the LLM planner and
follow-ups are written by the model from the plan (as delimited data), the critique and the
retrieved corpus text; the critique itself is never changed by what the model writes, and a
model failure falls back to the offline answer with a ``Notice`` saying so. The model's part
of a turn lives in ``model_turns.py``; what a conversation holds between turns in ``turn_state.py``.
"""

from __future__ import annotations

import logging
from collections.abc import Generator, Iterator, Sequence
from dataclasses import replace
from typing import Any

from ..analysis.actions import CodedAction
from ..analysis.segment import segment_plan
from ..domain import Balance, Critique
from ..errors import PlanReadError
from ..reading import PlanDocument, guess_title, plan_from_text
from . import answers
from .advisor import Advisor, Assessment
from .answers import Answer
from .compose import references_for
from .described import (
    acknowledgement,
    actions_for,
    enough_to_critique,
    find_gaps,
    tally,
)
from .events import Citations, CritiqueReady, Event, Notice, TextDelta, TurnDone
from .intents import (
    Intent,
    Statement,
    case_display_name,
    classify,
    described_statements,
    find_theme,
)
from .llm.model import ChatModel
from .model_turns import ModelTurns
from .turn_state import (
    Outcome,
    PlanState,
    Say,
    Turn,
    chunks,
    index_case_search,
    similar_plans,
    state_from_dict,
    state_to_dict,
    text_of,
)

__all__ = ["Conversation", "Turn"]

log = logging.getLogger(__name__)


class Conversation(ModelTurns):
    """One plan, its critique and the turns about them. Not thread-safe: one turn at a time."""

    plan_text: str | None
    critique: Critique | None

    def __init__(self, advisor: Advisor, *, model: ChatModel | None = None) -> None:
        self.advisor = advisor
        self.model = model
        self.turns: list[Turn] = []
        self._state = PlanState()
        self._used_prompts: list[dict[str, str]] = []
        self._record: dict[str, Any] | None = None
        self._assessments: dict[tuple[str, str | None], Assessment] = {}
        self._sync()

    # --- public -------------------------------------------------------------------------------

    @property
    def backend(self) -> str:
        return self.model.name if self.model is not None else "offline"

    def send(self, message: str) -> Iterator[Event]:
        """One turn: answer ``message``. A generator; closing it early cancels the turn."""
        outcome = self._decide(message, self._state)
        return self._run(message, outcome)

    def load_plan(self, doc: PlanDocument) -> Iterator[Event]:
        """Critique a loaded plan file, or re-critique it as a revision of the current plan."""
        state = self._state
        outcome = self._plan_outcome(doc, state, revision=state.critique is not None, source="loaded")
        return self._run(f"(loaded plan: {doc.source})", outcome)

    def to_state(self) -> dict[str, Any]:
        return state_to_dict(self._state, self.backend, self.turns)

    @classmethod
    def from_state(cls, advisor: Advisor, state: dict[str, Any], *, model: ChatModel | None = None) -> Conversation:
        conv = cls(advisor, model=model)
        conv._state, conv.turns = state_from_dict(state)
        conv._sync()
        return conv

    @classmethod
    def from_messages(cls, advisor: Advisor, messages: list[dict[str, str]], *,
                      model: ChatModel | None = None) -> Conversation:
        """Rebuild a conversation from OpenAI-style messages without generating any answer.

        Pass the history *before* the message you are about to ``send()``. User messages
        replay their effect on the plan (a pasted plan is critiqued offline, described
        sentences accumulate, "what do you think?" critiques); assistant messages are kept as
        they were; system messages are ignored.
        """
        conv = cls(advisor, model=model)
        for m in messages:
            role, content = m.get("role"), text_of(m.get("content"))
            if role == "user":
                outcome = conv._decide(content, conv._state)
                state = outcome.state
                if outcome.critique_doc is not None:
                    critique = conv._critique_offline(outcome.critique_doc)
                    state = replace(state, critique=critique, critiqued_text=outcome.critique_doc.text,
                                    before=outcome.previous)
                conv._state = state
                conv.turns.append(Turn("user", content))
            elif role == "assistant":
                state = conv._state
                if state.pending_gap is None:
                    asked = [g.id for g in conv._gaps(state) if g.question in content]
                    if asked:
                        state = replace(state, pending_gap=asked[0],
                                        closed_gaps=tuple(dict.fromkeys([*state.closed_gaps, *asked])))
                conv._state = state
                conv.turns.append(Turn("assistant", content, None, None))
        conv._sync()
        return conv

    # --- deciding a turn ----------------------------------------------------------------------

    def _sync(self) -> None:
        self.plan_text = self._state.plan_text
        self.critique = self._state.critique

    def _assess(self, text: str, title: str | None = None) -> Assessment:
        """The offline analysis of a plan text, cached: a turn may need it several times."""
        key = (text, title if title is not None else guess_title(text))
        found = self._assessments.get(key)
        if found is None:
            found = self.advisor.assess(text, key[1])
            if len(self._assessments) >= 8:
                self._assessments.pop(next(iter(self._assessments)))
            self._assessments[key] = found
        return found

    def _critique_offline(self, doc: PlanDocument, backend: str = "offline") -> Critique:
        return self.advisor.critique_offline(doc, backend=backend, assessment=self._assess(doc.text, doc.title))

    def _doc(self, text: str, source: str = "chat") -> PlanDocument:
        return plan_from_text(text, source=source, max_chars=self.advisor.settings.max_plan_chars)

    def _gaps(self, state: PlanState) -> list[Any]:
        text = state.plan_text
        if not text:
            return []
        return find_gaps(self._assess(text).analysis, state.closed_gaps)

    def _decide(self, message: str, state: PlanState) -> Outcome:
        text = message.strip()
        corpus = self.advisor.corpus
        if not text:
            return Outcome("help", answers.help_answer(state.plan_text is not None), state, model_may_answer=False)
        segments = segment_plan(text)
        intent = classify(text, corpus=corpus, critique=state.critique, has_plan=state.plan_text is not None,
                          describing=state.source in ("none", "described") or bool(state.statements),
                          awaiting_answer=state.pending_gap is not None, segments=segments)
        log.debug("intent %s", intent)
        handler = getattr(self, f"_on_{intent.kind}")
        outcome: Outcome = handler(message, intent, state)
        return outcome

    def _on_plan(self, message: str, intent: Intent, state: PlanState) -> Outcome:
        try:
            doc = self._doc(message.strip("\n"), "pasted plan")
        except PlanReadError as exc:
            return Outcome("plan", Answer(f"{exc.message} {exc.hint or ''}".strip()), state, model_may_answer=False)
        revision = intent.revision
        if state.critique is not None and state.plan_text and not revision:
            revision = similar_plans(state.plan_text, doc.text)
        outcome = self._plan_outcome(doc, state, revision=revision and state.critique is not None, source="pasted")
        if state.critique is not None and not revision:
            outcome.preface = ("This looks like a different plan from the one we were discussing, so I've critiqued "
                               "it from scratch. If it is a revision, say “revised plan” with it and I'll compare "
                               "the two.\n\n")
        return outcome

    def _plan_outcome(self, doc: PlanDocument, state: PlanState, *, revision: bool, source: str) -> Outcome:
        new_state = PlanState(base_text=doc.text, source=source, critique=state.critique,
                               critiqued_text=state.critiqued_text)
        return Outcome("plan", Answer(""), new_state, critique_doc=doc,
                        previous=state.critique if revision else None)

    def _critique_current(self, state: PlanState, intent_name: str, preface: str = "") -> Outcome:
        text = state.plan_text
        if text is None:
            return Outcome(intent_name, answers.no_plan_answer(), state, model_may_answer=False)
        if state.critique is not None and state.critiqued_text == text:
            return Outcome(intent_name, answers.summary_answer(state.critique, self.advisor.corpus), state)
        if state.source == "described" and not self._assess(text).analysis.actions:
            return Outcome(intent_name, Answer(
                "I have nothing to critique yet: you have told me about the setting but not what the plan will "
                "do. Tell me the main things it commits to, for example “we're merging the two community trusts "
                "next April” or “a PMO will track delivery”."), state)
        doc = self._doc(text, "described plan" if state.source == "described" else "plan")
        return Outcome(intent_name, Answer(""), replace(state, pending_gap=None), critique_doc=doc,
                        previous=state.critique, preface=preface)

    def _on_critique(self, message: str, intent: Intent, state: PlanState) -> Outcome:
        return self._critique_current(state, "critique")

    def _on_describe(self, message: str, intent: Intent, state: PlanState) -> Outcome:
        corpus = self.advisor.corpus
        new = [s for s in described_statements(message.strip(), describing=True)
               if s not in state.statements]
        if not new:
            known = described_statements(message.strip(), describing=True)
            if known:
                return Outcome("describe", Answer(
                    "I already have that in the plan: " + "; ".join(f"“{s.text}”" for s in known) + "."), state)
            return self._on_other(message, intent, state)
        source = state.source if state.source != "none" else "described"
        new_state = replace(state, statements=(*state.statements, *new), source=source, pending_gap=None)
        plan_text = new_state.plan_text or ""
        analysis = self._assess(plan_text).analysis
        extra = self._code_unread(new, analysis)
        parts = [acknowledgement(new, analysis, corpus, extra), tally(analysis)]
        if intent.then_critique:
            outcome = self._critique_current(new_state, "describe")
            outcome.preface = "\n\n".join(parts) + "\n\nHere is my critique of the plan as it now stands.\n\n"
            return outcome
        if state.critique is None and source == "described" and enough_to_critique(analysis):
            outcome = self._critique_current(new_state, "describe")
            outcome.preface = ("\n\n".join(parts) + "\n\nThat is enough to go on, so here is my critique of what "
                               "you have described so far. Keep adding to it and ask me to review it again.\n\n")
            return outcome
        if state.critique is not None:
            parts.append("Ask me to review the plan again when you want to see the balance move.")
        else:
            gaps = find_gaps(analysis, state.closed_gaps)
            if gaps:
                parts.append(gaps[0].question)
                new_state = replace(new_state, pending_gap=gaps[0].id,
                                    closed_gaps=(*new_state.closed_gaps, gaps[0].id))
            else:
                parts.append("Say “what do you think?” when you want my critique, or keep describing.")
        return Outcome("describe", Answer("\n\n".join(parts)), new_state)

    def _code_unread(self, new: Sequence[Statement], analysis: Any) -> dict[str, CodedAction]:
        """Code described actions the plan segmenter did not read as commitments ("we are merging ...")."""
        unread = [s.text for s in new if s.kind == "action" and not actions_for(s.text, analysis)]
        if not unread:
            return {}
        out: dict[str, CodedAction] = {}
        for text, assignment in zip(unread, self.advisor.coder.code(unread), strict=True):
            out[text] = CodedAction(
                id="described", start=0, end=len(text), text=text, theme=assignment.theme,
                orientation=assignment.orientation, horizon=self.advisor.horizon.read(text, analysis.base_year),
                code=assignment.code, confidence=assignment.confidence, headings=(), concrete=True,
                cues=assignment.cues)
        return out

    def _on_answer(self, message: str, intent: Intent, state: PlanState) -> Outcome:
        new_state = replace(state, pending_gap=None)
        text = "Understood — I'll take that as a choice, not an oversight."
        gaps = self._gaps(new_state) if state.critique is None else []
        if gaps:
            text += "\n\n" + gaps[0].question
            new_state = replace(new_state, pending_gap=gaps[0].id, closed_gaps=(*new_state.closed_gaps, gaps[0].id))
        elif state.plan_text:
            text += " Say “what do you think?” when you want my critique, or keep describing."
        return Outcome("answer", Answer(text), new_state)

    def _on_finding(self, message: str, intent: Intent, state: PlanState) -> Outcome:
        corpus = self.advisor.corpus
        critique = state.critique
        if critique is None:
            return self._needs_critique(state, "finding")
        finding = next((f for f in critique.findings if f.id == intent.target), None)
        if finding is None:
            if not critique.findings:
                return Outcome("finding", Answer(
                    "I did not flag any overuse pattern in this plan. " + critique.verdict.headline), state)
            listing = "\n".join(f"- **{f.id}** {f.summary}" for f in critique.findings)
            return Outcome("finding", Answer("Which finding do you mean? I flagged:\n\n" + listing
                                              + "\n\nAsk, for example, “why did you flag f1?”"), state)
        return Outcome("finding", answers.finding_answer(finding, critique, corpus), state)

    def _on_intervention(self, message: str, intent: Intent, state: PlanState) -> Outcome:
        assert intent.target is not None
        answer = answers.intervention_answer(intent.target, state.critique, self.advisor.corpus,
                                             audience=intent.audience, plan_text=state.plan_text)
        return Outcome("intervention", answer, state)

    def _on_case(self, message: str, intent: Intent, state: PlanState) -> Outcome:
        corpus = self.advisor.corpus
        if intent.target is not None:
            return Outcome("case", answers.case_answer(intent.target, corpus), state)
        ranked = answers.rank_similar_cases(corpus, plan_text=state.plan_text, critique=state.critique,
                                            query=message, case_search=self._case_search())
        answer = answers.similar_cases_answer(ranked, corpus, has_plan=state.plan_text is not None)
        return Outcome("case", answer, state)

    def _case_search(self) -> answers.CaseSearch | None:
        """The retrieval layer for "cases like ours": the advisor's case finder, else an index that is
        already built; never build one in the middle of a chat turn. None means the lexical fallback."""
        if self.advisor.case_finder is not None:
            return self.advisor.case_finder
        return index_case_search(self.advisor.settings)

    def _on_theme(self, message: str, intent: Intent, state: PlanState) -> Outcome:
        assert intent.target is not None
        if state.critique is None and state.plan_text is not None:
            return self._needs_critique(state, "theme")
        theme = find_theme(intent.target)
        assert theme is not None
        return Outcome("theme", answers.theme_answer(theme, state.critique, self.advisor.corpus), state)

    def _on_changes(self, message: str, intent: Intent, state: PlanState) -> Outcome:
        if state.critique is None:
            return self._needs_critique(state, "changes")
        if state.critiqued_text != state.plan_text:
            return self._critique_current(state, "changes")  # re-critique what was added, with before -> after
        if state.before is None:
            return Outcome("changes", Answer(
                "There is only one version of the plan so far. Paste or load a revised version (or tell me what "
                "you would add) and I'll show how the balance moves."), state)
        text = answers.change_markdown(state.before, state.critique, self.advisor.corpus)
        return Outcome("changes", Answer(text), state)

    def _on_advice(self, message: str, intent: Intent, state: PlanState) -> Outcome:
        if state.critique is None or state.critiqued_text != state.plan_text:
            return self._needs_critique(state, "advice")
        return Outcome("advice", answers.advice_answer(state.critique, self.advisor.corpus), state)

    def _on_reference(self, message: str, intent: Intent, state: PlanState) -> Outcome:
        assert intent.target is not None
        return Outcome("reference", answers.reference_answer(intent.target, self.advisor.corpus), state)

    def _on_framework(self, message: str, intent: Intent, state: PlanState) -> Outcome:
        return Outcome("framework", answers.framework_answer(self.advisor.corpus), state)

    def _on_smalltalk(self, message: str, intent: Intent, state: PlanState) -> Outcome:
        return Outcome("smalltalk", answers.smalltalk_answer(message, state.plan_text is not None), state,
                        model_may_answer=False)

    def _on_help(self, message: str, intent: Intent, state: PlanState) -> Outcome:
        return Outcome("help", answers.help_answer(state.plan_text is not None), state, model_may_answer=False)

    def _on_injection(self, message: str, intent: Intent, state: PlanState) -> Outcome:
        return Outcome("injection", answers.injection_answer(state.critique), state, model_may_answer=False)

    def _on_unknown_id(self, message: str, intent: Intent, state: PlanState) -> Outcome:
        text = f"I don't know a case or intervention called “{intent.unknown}”."
        if intent.suggestions:
            text += " Did you mean " + " or ".join(f"“{s}”" for s in intent.suggestions) + "?"
        else:
            text += " Ask “what can you do?” to see what I can answer."
        return Outcome("unknown_id", Answer(text), state, model_may_answer=False)

    def _on_other(self, message: str, intent: Intent, state: PlanState) -> Outcome:
        if state.plan_text is None:
            return Outcome("other", answers.no_plan_answer(), state)
        if state.critique is None:
            return Outcome("other", Answer(
                "I'm not sure what you're asking. Say “what do you think?” for my critique of the plan so far, "
                "or keep telling me what it will do."), state)
        names = ", ".join(case_display_name(self.advisor.corpus, c[5:]) for c in
                          [r.id for r in state.critique.references if r.kind == "case"][:2])
        hint = (f"why I flagged {state.critique.findings[0].id}, " if state.critique.findings else "")
        text = ("I'm not sure what you're asking. You can ask " + hint + "what an intervention would look like for "
                "your teams, about a theme such as leadership, or about a case" + (f" such as {names}" if names else "")
                + ".\n\n" + f"Where we are: **{state.critique.verdict.headline}**")
        return Outcome("other", Answer(text), state)

    def _needs_critique(self, state: PlanState, intent_name: str) -> Outcome:
        if state.plan_text is None:
            return Outcome(intent_name, answers.no_plan_answer(), state, model_may_answer=False)
        return self._critique_current(state, intent_name,
                                      preface="I haven't critiqued the plan yet, so here is my critique first.\n\n")

    # --- running a turn -----------------------------------------------------------------------

    def _run(self, message: str, outcome: Outcome) -> Iterator[Event]:
        parts: list[str] = []
        citations: list[str] = list(outcome.answer.citations)
        state = outcome.state
        produced: Critique | None = None
        previous_balance: Balance | None = None
        backend = "offline"
        self._used_prompts = []
        self._record = None

        def say(text: str) -> Iterator[Event]:
            parts.append(text)
            for chunk in chunks(text):
                yield TextDelta(chunk)

        if outcome.critique_doc is not None:
            critique, notices = yield from self._critique_turn(outcome, say)
            backend = critique.backend
            previous_balance = outcome.previous.balance if outcome.previous is not None else None
            state = replace(state, critique=critique, critiqued_text=outcome.critique_doc.text,
                            before=outcome.previous)
            produced = critique
            for notice in notices:
                yield notice
            yield CritiqueReady(critique, previous_balance)
            citations += [r.id for r in critique.references]
        elif self.model is not None and outcome.model_may_answer:
            backend, model_citations = yield from self._model_answer(message, outcome, state, say)
            citations += [c for c in model_citations if c not in citations]
        else:
            yield from say(outcome.answer.text)
        references = references_for(self.advisor.corpus, list(dict.fromkeys(citations)))
        if references:
            yield Citations(references)
        for notice in outcome.notices:
            yield notice
        answer = "".join(parts)
        # the turn is complete: commit it, then tell the caller
        self._state = state
        self._sync()
        self.turns.append(Turn("user", message))
        self.turns.append(Turn("assistant", answer, backend, produced, list(self._used_prompts), self._record))
        yield TurnDone(backend, answer)

    def _critique_turn(self, outcome: Outcome, say: Say) -> Generator[Event, None, tuple[Critique, list[Notice]]]:
        """Stream a critique (offline, or through the LLM planner); returns it and the notices to show."""
        doc = outcome.critique_doc
        assert doc is not None
        corpus = self.advisor.corpus
        notices: list[Notice] = []
        if outcome.preface:
            yield from say(outcome.preface)
        critique: Critique | None = None
        fallback: str | None = None
        if self.model is not None:
            critique, fallback = yield from self._model_critique(doc, say, notices, outcome.previous)
        if critique is None:
            backend = "offline" if fallback is None else f"offline (fallback: {fallback})"
            critique = self._critique_offline(doc, backend=backend)
            if outcome.previous is not None:
                yield from say(answers.change_markdown(outcome.previous, critique, corpus) + "\n\n")
            yield from say(answers.critique_narrative(critique))
        elif outcome.previous is not None:
            yield from say("\n\n" + answers.change_markdown(outcome.previous, critique, corpus))
        if outcome.postscript:
            yield from say(outcome.postscript)
        return critique, notices
