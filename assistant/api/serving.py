"""The API's logic: turn requests into calls on the core and the core's events into answers.

Everything here is HTTP-free: routes.py parses requests and formats responses. The advisor and
the conversation are synchronous (CPU work, blocking model calls); they run in worker threads.
A streamed turn is the conversation's sync generator advanced one event at a time in a worker
thread; when the client goes away (``threads.py``) the model call in flight is cancelled at
once and the generator closed. Limits sized to cost: a chat history is capped in messages and
characters before anything is replayed.
"""

from __future__ import annotations

import functools
import logging
import threading
import time
import weakref
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import PurePath
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

import anyio
import anyio.to_thread
from starlette.types import Receive

from ..advice.events import Citations, CritiqueReady, Event, Notice, TextDelta, TurnDone
from ..advice.llm.deadline import Cancellation
from ..domain import Balance, Critique, Reference
from ..errors import AdvisorError, UnknownIdError
from ..reading import PlanDocument, plan_from_bytes, plan_from_text
from ..settings import Settings, get_settings
from .errors import UNAVAILABLE, APIError, from_advisor_error
from .limits import AuthFailureThrottle, ModelSlots, RateLimiter
from .protocol import (
    MODEL_IDS,
    OFFLINE_MODEL_ID,
    SERVED_MODEL_ID,
    CaseList,
    CaseSummary,
    ChatAnswer,
    FrameworkProvenance,
    FrameworkResponse,
    InterventionList,
    ModelCard,
    ModelList,
    Readiness,
)
from .threads import Lease, iterate_in_thread, run_in_thread

if TYPE_CHECKING:
    from ..advice.advisor import Advisor
    from ..advice.llm.model import ChatModel
    from ..knowledge import Corpus
    from ..knowledge.models import Case

__all__ = ["ConversationLike", "Serving", "TurnResult", "iterate_in_thread"]

NO_TURN_NOTICE = ("The conversation did not end with a message from you, so there was nothing to answer; "
                  "send your plan or question as the last message.")

log = logging.getLogger("assistant.api")
T = TypeVar("T")
WARM_UP_PLAN = "Warm-up plan\n\n- We will hold weekly huddles between district nurses and social workers.\n"


class ConversationLike(Protocol):
    """What the API needs of ``assistant.advice.conversation.Conversation``."""

    def send(self, message: str) -> Iterator[Event]: ...


# (advisor, earlier messages, litellm model string or '' for offline) -> a conversation to send() to
ConversationFactory = Callable[[Any, list[dict[str, str]], str], ConversationLike]
# a litellm model string -> the ChatModel that calls it
ChatModelFactory = Callable[[str], "ChatModel"]


@dataclass
class TurnResult:
    """A finished turn, gathered from its events."""

    answer: str = ""
    backend: str = "offline"
    critique: Critique | None = None
    previous_balance: Balance | None = None
    citations: list[Reference] = field(default_factory=list)
    notices: list[str] = field(default_factory=list)

    def add(self, event: Event) -> None:
        if isinstance(event, TextDelta):
            self.answer += event.text
        elif isinstance(event, CritiqueReady):
            self.critique, self.previous_balance = event.critique, event.previous
        elif isinstance(event, Citations):
            self.citations.extend(r for r in event.references if r.id not in {c.id for c in self.citations})
        elif isinstance(event, Notice):
            self.notices.append(event.message)
        elif isinstance(event, TurnDone):
            self.backend = event.backend
            self.answer = event.answer or self.answer

    def to_answer(self) -> ChatAnswer:
        return ChatAnswer(answer=self.answer, backend=self.backend, critique=self.critique,
                          previous_balance=self.previous_balance, citations=self.citations,
                          notices=self.notices)


def references_footer(references: Sequence[Reference]) -> str:
    """Citations as Markdown, for faces that can only show text (OpenAI clients)."""
    if not references:
        return ""
    lines = ["", "", "**Sources**", ""]
    for ref in references:
        lines.append(f"- [{ref.title}]({ref.source}) ({ref.id})" if ref.source else f"- {ref.title} ({ref.id})")
    return "\n".join(lines)


class Serving:
    """Per-app state and logic: the advisor, limits, and the knowledge views."""

    def __init__(self, settings: Settings | None = None, *, advisor: Advisor | None = None,
                 conversation_factory: ConversationFactory | None = None,
                 chat_model_factory: ChatModelFactory | None = None) -> None:
        self._own_settings = settings is not None
        self.settings = settings or get_settings()
        self._advisor = advisor
        self._advisor_lock = threading.Lock()
        self.load_error: Exception | None = None
        self._conversation_factory = conversation_factory
        self._chat_model_factory = chat_model_factory
        self._chat_models: dict[str, ChatModel] = {}
        self._chat_models_lock = threading.Lock()
        self.rate_limiter = RateLimiter(self.settings.rate_limit_per_minute)
        self.auth_failures = AuthFailureThrottle(self.settings.auth_failures_per_minute)
        self.model_slots = ModelSlots(self.settings.max_concurrent_llm)
        self.started = int(time.time())
        self._probe: tuple[float, dict[str, Any]] | None = None

    # ------------------------------------------------------------------ the advisor

    def advisor(self) -> Advisor:
        """The advisor, built on first use (blocking: call from a worker thread)."""
        if self._advisor is not None:
            return self._advisor
        with self._advisor_lock:
            if self._advisor is None:
                try:
                    if self._own_settings:
                        from ..advice.advisor import Advisor

                        self._advisor = Advisor(self.settings)
                    else:
                        from ..advice.advisor import get_advisor

                        self._advisor = get_advisor()
                    self.load_error = None
                except AdvisorError as exc:
                    self.load_error = exc
                    raise
            return self._advisor

    @property
    def loaded(self) -> bool:
        return self._advisor is not None

    def warm_up(self) -> None:
        """Load the advisor and run one tiny critique, so the first request pays nothing."""
        try:
            self.advisor().critique(WARM_UP_PLAN, model="")
        except Exception as exc:  # reported by /readyz; requests will retry the load
            self.load_error = exc
            log.error("advisor failed to load: %s", exc, exc_info=not isinstance(exc, AdvisorError))

    @property
    def corpus(self) -> Corpus:
        return self.advisor().corpus

    # ------------------------------------------------------------------ models

    def resolve_model(self, requested: str | None) -> str:
        """The litellm model string for an API model id; '' means the offline backend."""
        if requested is None or requested == SERVED_MODEL_ID:
            return self.settings.model or ""
        if requested == OFFLINE_MODEL_ID:
            return ""
        raise UnknownIdError("model", requested, MODEL_IDS)

    def models(self) -> ModelList:
        served = (f"The configured model ({self.settings.model}) grounded by the advisor."
                  if self.settings.model else "The offline advisor (no model is configured).")
        return ModelList(data=[
            ModelCard(id=SERVED_MODEL_ID, created=self.started, description=served),
            ModelCard(id=OFFLINE_MODEL_ID, created=self.started,
                      description="The deterministic offline advisor: same plan, same critique."),
        ])

    def chat_model(self, spec: str) -> ChatModel:
        """One ChatModel per model string, reused (litellm is imported only here, on the model path)."""
        with self._chat_models_lock:
            model = self._chat_models.get(spec)
            if model is None:
                if self._chat_model_factory is not None:
                    model = self._chat_model_factory(spec)
                else:
                    from ..advice.llm.litellm_model import get_chat_model

                    model = get_chat_model(spec, self.settings)
                self._chat_models[spec] = model
            return model

    def conversation(self, messages: list[dict[str, str]], model: str) -> ConversationLike:
        """A conversation rebuilt from the client's earlier messages (blocking: replays their effect)."""
        if self._conversation_factory is not None:
            return self._conversation_factory(self.advisor(), messages, model)
        from ..advice.conversation import Conversation

        conversation: ConversationLike = Conversation.from_messages(
            self.advisor(), messages, model=self.chat_model(model) if model else None)
        return conversation

    # ------------------------------------------------------------------ plans

    def check_plan_length(self, text: str, param: str) -> None:
        limit = self.settings.max_plan_chars
        if len(text) > limit:
            raise APIError(400, f"The plan has {len(text):,} characters, over the limit of {limit:,}.",
                           param=param, code="plan_too_long")

    def plan_from_text(self, text: str, param: str = "plan") -> PlanDocument:
        self.check_plan_length(text, param)
        try:
            return plan_from_text(text)
        except AdvisorError as exc:
            raise from_advisor_error(exc, param=param) from exc

    async def plan_from_upload(self, data: bytes, filename: str | None) -> PlanDocument:
        name = PurePath(filename or "upload.txt").name
        try:
            doc = await anyio.to_thread.run_sync(functools.partial(
                plan_from_bytes, data, source=name, suffix=PurePath(name).suffix,
                max_bytes=self.settings.max_plan_bytes))
        except AdvisorError as exc:
            raise from_advisor_error(exc, param="file") from exc
        self.check_plan_length(doc.text, "file")
        return doc

    # ------------------------------------------------------------------ critiques

    async def critique(self, doc: PlanDocument, requested_model: str | None, param: str = "plan",
                       receive: Receive | None = None) -> Critique:
        model = self._model(requested_model)
        if not model:
            return await self._run(lambda: self.advisor().critique(doc, model=""), uses_model=False, param=param)

        def with_model() -> Critique:
            from ..advice.llm.planner import critique_with_model

            return critique_with_model(self.advisor(), doc, model=self.chat_model(model))

        return await self._run(with_model, uses_model=True, param=param, receive=receive)

    def critique_markdown(self, critique: Critique) -> str:
        from ..advice.render import critique_markdown

        text: str = critique_markdown(critique)
        return text

    # ------------------------------------------------------------------ chat

    def _model(self, requested: str | None) -> str:
        try:
            return self.resolve_model(requested)
        except UnknownIdError as exc:
            raise from_advisor_error(exc, param="model") from exc

    def check_history(self, messages: Sequence[tuple[str, str]], param: str) -> None:
        """A conversation the server can afford to replay: at most ``max_chat_messages`` messages and
        ``max_chat_chars`` characters (400 and 413), each user message within the plan limit."""
        settings = self.settings
        if len(messages) > settings.max_chat_messages:
            raise APIError(400, f"The conversation has {len(messages):,} messages, over the limit of "
                                f"{settings.max_chat_messages:,}: send the plan and the latest turns only.",
                           param=param, code="too_many_messages")
        for role, content in messages:
            if role == "user":
                self.check_plan_length(content, param)
        total = sum(len(content) for _, content in messages)
        if total > settings.max_chat_chars:
            raise APIError(413, f"The conversation has {total:,} characters, over the limit of "
                                f"{settings.max_chat_chars:,}: send the plan and the latest turns only.",
                           param=param, code="conversation_too_long")

    def _split_turn(self, messages: Sequence[tuple[str, str]], param: str) -> tuple[list[dict[str, str]], str, bool]:
        """(earlier messages, the new user message, whether there is one); system messages are dropped:
        the advisor has its own. A conversation that does not end with the user's message has no
        new turn: it is answered with what the advisor can do, and a notice says why."""
        self.check_history(messages, param)
        turns = [(role, content) for role, content in messages if role in ("user", "assistant")]
        history = [{"role": role, "content": content} for role, content in turns]
        if not turns or turns[-1][0] != "user":
            return history, "", False
        return history[:-1], turns[-1][1], True

    def _turn(self, messages: Sequence[tuple[str, str]], model: str, param: str) -> Iterator[Event]:
        history, message, has_turn = self._split_turn(messages, param)

        def events() -> Iterator[Event]:
            conversation = self.conversation(history, model if has_turn else "")
            turn = conversation.send(message)
            try:
                yield from turn
                if not has_turn:
                    yield Notice(NO_TURN_NOTICE, "info")
            finally:
                close = getattr(turn, "close", None)
                if close is not None:
                    close()

        return events()

    async def chat(self, messages: Sequence[tuple[str, str]], requested_model: str | None,
                   param: str = "messages", receive: Receive | None = None) -> TurnResult:
        model = self._model(requested_model)
        events = self._turn(messages, model, param)

        def run() -> TurnResult:
            result = TurnResult()
            for event in events:
                result.add(event)
            return result

        return await self._run(run, uses_model=bool(model), param=param, receive=receive)

    async def chat_stream(self, messages: Sequence[tuple[str, str]], requested_model: str | None,
                          param: str = "messages") -> AsyncIterator[Event]:
        """The turn's events. Errors before the first event raise here (so they get a status);
        later ones come out of the iterator as exceptions for the route to send as an error event."""
        model = self._model(requested_model)
        events = self._turn(messages, model, param)
        lease = Lease(self.model_slots if model else None)
        stream = iterate_in_thread(events, Cancellation())
        try:
            first = await stream.__anext__()
        except StopAsyncIteration:
            first = None
        except BaseException as exc:
            await stream.aclose()
            lease.release()
            if isinstance(exc, AdvisorError):
                raise from_advisor_error(exc, param=param) from exc
            raise

        async def rest() -> AsyncGenerator[Event, None]:
            try:
                if first is not None:
                    yield first
                    async for event in stream:
                        yield event
            finally:
                await stream.aclose()
                lease.release()

        answer = rest()
        weakref.finalize(answer, lease.release)  # a stream that is never iterated still frees its slot
        return answer

    async def _run(self, work: Callable[[], T], *, uses_model: bool, param: str,
                   receive: Receive | None = None) -> T:
        """Run ``work`` in a worker thread; with a model, in a model slot, and a client that
        disconnects (seen on ``receive``) cancels the model call."""
        try:
            if uses_model:
                with self.model_slots.hold():
                    return await run_in_thread(work, Cancellation(), receive)
            return await anyio.to_thread.run_sync(work)
        except AdvisorError as exc:
            raise from_advisor_error(exc, param=param) from exc

    # ------------------------------------------------------------------ knowledge

    @functools.cached_property
    def framework(self) -> FrameworkResponse:
        fw = self.corpus.framework
        p = fw.provenance
        return FrameworkResponse(
            provenance=FrameworkProvenance(statement=p.statement, from_paper=list(p.from_paper),
                                           ours=list(p.ours), paper=p.paper, anchors=list(p.anchors)),
            themes=list(fw.themes), orientations=list(fw.orientations), codes=list(fw.codes),
            finding_kinds=list(fw.finding_kinds), horizon=fw.horizon,
        )

    def interventions(self) -> InterventionList:
        return InterventionList(interventions=list(self.corpus.interventions.values()))

    def cases(self) -> CaseList:
        return CaseList(cases=[
            CaseSummary(id=c.id, ref=c.ref_id, name=c.name, country=c.country, years=c.years,
                        organisation_type=c.organisation_type, confidence=c.confidence, themes=c.themes,
                        relational_share=c.balance.relational_share)
            for c in sorted(self.corpus.cases.values(), key=lambda c: c.id)
        ])

    def case(self, case_id: str) -> Case:
        cases = self.corpus.cases
        key = case_id.removeprefix("case:")
        if key not in cases:
            raise from_advisor_error(UnknownIdError("case", case_id, sorted(cases)), param="id")
        return cases[key]

    # ------------------------------------------------------------------ health

    async def readiness(self) -> Readiness:
        checks: dict[str, Any] = {}
        ready = True
        if self.loaded:
            corpus = self.corpus
            checks["advisor"] = {"ok": True}
            checks["corpus"] = {"ok": True, "codes": len(corpus.codes), "cases": len(corpus.cases),
                                "interventions": len(corpus.interventions)}
        else:
            ready = False
            checks["advisor"] = {"ok": False, "error": str(self.load_error) if self.load_error else "loading"}
        if self.settings.model:
            probe = await self.probe_model()
            checks["model"] = probe
            ready = ready and probe["ok"] is not False
        else:
            checks["model"] = {"ok": True, "configured": None, "backend": "offline"}
        return Readiness(status="ready" if ready else "not_ready", checks=checks)

    async def probe_model(self, timeout_s: float = 2.0, cache_s: float = 10.0) -> dict[str, Any]:
        """Is the configured model's endpoint answering? One bounded HTTP request, cached briefly.

        Any HTTP answer counts as reachable (even 401: the server is there). Without an
        ``ASSISTANT_API_BASE`` there is nothing cheap to ask, so it is reported unchecked.
        """
        now = time.monotonic()
        if self._probe is not None and now - self._probe[0] < cache_s:
            return self._probe[1]
        model = self.settings.model or ""
        base = self.settings.api_base or ("http://127.0.0.1:11434" if model.startswith(("ollama/", "ollama_chat/")) else None)
        result: dict[str, Any]
        if base is None:
            result = {"ok": None, "configured": model, "checked": False,
                      "detail": "no ASSISTANT_API_BASE to probe"}
        else:
            import httpx

            url = base.rstrip("/") + ("/models" if base.rstrip("/").endswith("/v1") else "")
            try:
                async with httpx.AsyncClient(timeout=timeout_s) as client:
                    response = await client.get(url)
                result = {"ok": response.status_code < 500, "configured": model, "checked": True,
                          "status": response.status_code}
            except httpx.HTTPError as exc:
                result = {"ok": False, "configured": model, "checked": True, "error": type(exc).__name__}
        self._probe = (now, result)
        return result

    def not_ready_error(self, readiness: Readiness) -> APIError:
        failing = sorted(name for name, check in readiness.checks.items() if check.get("ok") is False)
        return APIError(503, f"Not ready: {', '.join(failing)}.", type=UNAVAILABLE, code="not_ready",
                        headers={"Retry-After": "2"})
