"""HTTP only: parse requests, call ``Serving``, format responses (JSON, SSE, OpenAI chunks)."""

from __future__ import annotations

import json
import logging
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import PurePath
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request, Security
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import ValidationError
from sse_starlette import EventSourceResponse, ServerSentEvent
from starlette.datastructures import UploadFile

from ..advice.events import Citations, CritiqueReady, Event, Notice, TextDelta
from ..domain import Critique, Reference
from ..errors import AdvisorError
from ..knowledge.models import Case
from .errors import SERVER, APIError, from_advisor_error
from .protocol import (
    CaseList,
    ChatAnswer,
    ChatCompletionChoice,
    ChatCompletionChunk,
    ChatCompletionRequest,
    ChatCompletionResponse,
    ChatRequest,
    ChunkChoice,
    ChunkDelta,
    CompletionMessage,
    CompletionUsage,
    CritiqueRequest,
    ErrorResponse,
    FrameworkResponse,
    Health,
    InterventionList,
    MarkdownCritique,
    ModelList,
    OpenAIMessage,
    Readiness,
)
from .security import Principal
from .serving import Serving, TurnResult, references_footer

__all__ = ["health_router", "v1_router"]

log = logging.getLogger("assistant.api")
bearer = HTTPBearer(auto_error=False, description="An API key: 'Authorization: Bearer <key>'.")


def get_serving(request: Request) -> Serving:
    serving: Serving = request.app.state.serving
    return serving


ServingDep = Annotated[Serving, Depends(get_serving)]


async def authorize(request: Request,
                    _credentials: Annotated[HTTPAuthorizationCredentials | None, Security(bearer)]) -> Principal | None:
    """Check the API key (when keys are configured), then the caller's rate limit. Failed attempts
    are throttled per client address: past the limit, even a right key waits (429)."""
    serving = get_serving(request)
    address = "ip:" + (request.client.host if request.client else "unknown")
    authorization = request.headers.get("authorization")
    if authorization and request.app.state.keys.enabled:  # a missing key costs nothing: always a plain 401
        serving.auth_failures.check(address)
    try:
        principal: Principal | None = request.app.state.keys.authenticate(authorization)
    except APIError as exc:
        if exc.status == 401 and authorization:
            serving.auth_failures.fail(address)
        raise
    if principal is not None:
        request.state.key_id = principal.key_id
        caller = "key:" + principal.key_id
    else:
        caller = address
    serving.rate_limiter.take(caller)
    return principal


def _errors(*statuses: int) -> dict[int | str, dict[str, Any]]:
    return {status: {"model": ErrorResponse, "description": _ERROR_DESCRIPTIONS[status]} for status in statuses}


_ERROR_DESCRIPTIONS = {
    400: "Invalid request (the field is in error.param).",
    401: "Missing or invalid API key.",
    404: "Unknown id or model (error.message suggests close matches).",
    413: "Request body too large.",
    415: "Unsupported content type.",
    429: "Rate limit reached; see Retry-After.",
    500: "Server error.",
    502: "The language model failed.",
    503: "Busy or not ready; see Retry-After.",
    504: "The language model timed out.",
}
COMMON = (400, 401, 413, 429, 500)
MODEL_ERRORS = (404, 502, 503, 504)

health_router = APIRouter(tags=["health"])
v1_router = APIRouter(prefix="/v1", dependencies=[Depends(authorize)], responses=_errors(*COMMON))


# ----------------------------------------------------------------------------- health


@health_router.head("/healthz", include_in_schema=False)
@health_router.get("/healthz", response_model=Health, summary="Liveness: the process answers")
async def healthz() -> Health:
    return Health()


@health_router.head("/readyz", include_in_schema=False)
@health_router.get("/readyz", response_model=Readiness, summary="Readiness: advisor loaded, model reachable",
                   responses=_errors(503))
async def readyz(serving: ServingDep) -> Readiness:
    readiness = await serving.readiness()
    if readiness.status != "ready":
        raise serving.not_ready_error(readiness)
    return readiness


# ----------------------------------------------------------------------------- critiques

_UPLOAD_SCHEMA = {
    "type": "object",
    "required": ["file"],
    "properties": {
        "file": {"type": "string", "format": "binary", "description": "A .txt, .md, .docx or .pdf plan."},
        "model": {"type": "string", "enum": ["transformation-advisor", "transformation-advisor-offline"]},
        "format": {"type": "string", "enum": ["json", "markdown"], "default": "json"},
    },
}
# What an uploaded plan may be; the schema says so (multipart encoding) and the server goes by it when
# the file name has no known suffix.
PLAN_MEDIA_TYPES = {"text/plain": ".txt", "text/markdown": ".md", "application/pdf": ".pdf",
                    "application/vnd.openxmlformats-officedocument.wordprocessingml.document": ".docx"}
_CRITIQUE_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {"schema": {"$ref": "#/components/schemas/CritiqueRequest"}},
            "multipart/form-data": {"schema": _UPLOAD_SCHEMA, "encoding": {"file": {"contentType": ", ".join(
                PLAN_MEDIA_TYPES)}}},
        },
    }
}
_CRITIQUE_OK = {
    "description": "The Critique (format json), or {\"markdown\": ...} (format markdown).",
    "content": {"application/json": {"schema": {"anyOf": [{"$ref": "#/components/schemas/Critique"},
                                                          {"$ref": "#/components/schemas/MarkdownCritique"}]}}},
}


def _validation_error(exc: ValidationError, prefix: str = "body") -> RequestValidationError:
    errors = [{**e, "loc": (prefix, *e["loc"])} for e in exc.errors(include_url=False, include_context=False)]
    return RequestValidationError(errors)


def _upload_name(upload: UploadFile) -> str:
    """The upload's file name, with the suffix its declared media type implies when its own says nothing
    we read (a part named "plan" or "file.bin" sent as text/markdown is read as Markdown)."""
    name = PurePath(upload.filename or "upload").name or "upload"
    declared = (upload.content_type or "").split(";")[0].strip().lower()
    if PurePath(name).suffix.lower() not in PLAN_MEDIA_TYPES.values() and declared in PLAN_MEDIA_TYPES:
        return PurePath(name).stem + PLAN_MEDIA_TYPES[declared]
    return name


def _form_text(value: str | UploadFile | None, param: str) -> str | None:
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise APIError(400, f"The form field {param!r} must be text.", param=param, code="invalid_form")
    return value


@v1_router.post("/critiques", summary="Critique a plan (JSON text or a file upload)", tags=["critiques"],
                response_model=None, openapi_extra=_CRITIQUE_BODY,
                responses={200: _CRITIQUE_OK, **_errors(*MODEL_ERRORS, 415)})
async def create_critique(request: Request, serving: ServingDep) -> Response:
    content_type = request.headers.get("content-type", "application/json").split(";")[0].strip().lower()
    if content_type == "multipart/form-data":
        async with request.form(max_files=1, max_fields=8) as form:
            upload = form.get("file")
            if not isinstance(upload, UploadFile):
                raise APIError(400, "Upload the plan in the multipart field 'file'.", param="file",
                               code="missing_file")
            model = _form_text(form.get("model"), "model")
            fmt = _form_text(form.get("format"), "format") or "json"
            if fmt not in ("json", "markdown"):
                raise APIError(400, f"Unknown format {fmt!r}: use 'json' or 'markdown'.", param="format",
                               code="invalid_format")
            data = await upload.read()
            doc = await serving.plan_from_upload(data, _upload_name(upload))
        param = "file"
    elif content_type == "application/json" or content_type.endswith("+json"):
        try:
            payload = CritiqueRequest.model_validate_json(await request.body())
        except ValidationError as exc:
            raise _validation_error(exc) from exc
        model, fmt = payload.model, payload.format
        doc = serving.plan_from_text(payload.plan)
        param = "plan"
    else:
        raise APIError(415, f"Unsupported content type {content_type!r}: send application/json or "
                            "multipart/form-data.", code="unsupported_media_type")
    critique = await serving.critique(doc, model, param=param, receive=request.receive)
    if fmt == "markdown":
        try:
            text = serving.critique_markdown(critique)
        except AdvisorError as exc:
            raise from_advisor_error(exc) from exc
        return Response(MarkdownCritique(markdown=text).model_dump_json(), media_type="application/json")
    return Response(critique.model_dump_json(), media_type="application/json")


# ----------------------------------------------------------------------------- chat



def _json_data(schema: dict[str, Any]) -> dict[str, Any]:
    return {"type": "string", "contentMediaType": "application/json", "contentSchema": schema}


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


_UNNAMED = {"const": "message"}  # an event without an ``event:`` line is a "message" event
_DONE_EVENT = {"type": "object", "required": ["data"], "properties": {"event": _UNNAMED, "data": {"const": "[DONE]"}}}


def _named_event(name: str, data: dict[str, Any]) -> dict[str, Any]:
    return {"type": "object", "required": ["event", "data"],
            "properties": {"event": {"const": name}, "data": _json_data(data)}}


_OBJECT = {"type": "object"}
# OpenAPI 3.1: for text/event-stream, ``schema`` describes one event (fields event, data, id, retry).
_CHAT_SSE = {"text/event-stream": {"schema": {"oneOf": [
    _named_event("text", {"type": "object", "required": ["text"], "properties": {"text": {"type": "string"}}}),
    _named_event("critique", {"type": "object", "required": ["critique"],
                              "properties": {"critique": _ref("Critique")}}),
    _named_event("citations", {"type": "object", "required": ["references"],
                               "properties": {"references": {"type": "array", "items": _ref("Reference")}}}),
    _named_event("notice", {"type": "object", "required": ["message", "level"]}),
    _named_event("done", {"type": "object", "required": ["backend", "answer"]}),
    _named_event("error", _ref("ErrorResponse")),
    _DONE_EVENT,
]}}}
_OPENAI_SSE = {"text/event-stream": {"schema": {"oneOf": [
    {"type": "object", "required": ["data"],
     "properties": {"event": _UNNAMED, "data": {"allOf": [{"not": {"const": "[DONE]"}},
                                       _json_data({"anyOf": [_ref("ChatCompletionChunk"), _ref("ErrorResponse")]})]}}},
    _DONE_EVENT,
]}}}


def _error_payload(exc: BaseException, request_id: str | None) -> dict[str, Any]:
    if isinstance(exc, APIError):
        error = exc
    elif isinstance(exc, AdvisorError):
        error = from_advisor_error(exc)
    else:
        log.error("stream failed (request %s)", request_id, exc_info=exc)
        error = APIError(500, f"Internal error (request id {request_id}).", type=SERVER, code="internal_error")
    return error.body().model_dump()


def _sse_event(event: Event) -> ServerSentEvent:
    data: dict[str, Any]
    if isinstance(event, TextDelta):
        data = {"text": event.text}
    elif isinstance(event, CritiqueReady):
        data = {"critique": event.critique.model_dump(mode="json"),
                "previous_balance": event.previous.model_dump(mode="json") if event.previous else None}
    elif isinstance(event, Citations):
        data = {"references": [r.model_dump(mode="json") for r in event.references]}
    elif isinstance(event, Notice):
        data = {"message": event.message, "level": event.level}
    else:
        data = {"backend": event.backend, "answer": event.answer}
    return ServerSentEvent(data=json.dumps(data, ensure_ascii=False), event=event.type)


async def _chat_sse(events: AsyncIterator[Event], request_id: str | None) -> AsyncIterator[ServerSentEvent]:
    try:
        async for event in events:
            yield _sse_event(event)
    except Exception as exc:
        yield ServerSentEvent(data=json.dumps(_error_payload(exc, request_id)), event="error")
    yield ServerSentEvent(data="[DONE]")


@v1_router.post("/chat", summary="One chat turn: a plan or a follow-up; JSON or server-sent events",
                tags=["chat"], response_model=ChatAnswer,
                responses={200: {"content": _CHAT_SSE, "description": "A ChatAnswer, or with stream: true, events "
                                 "delta*, critique?, citations?, notice*, done, then data: [DONE]."},
                           **_errors(*MODEL_ERRORS)})
async def chat(body: ChatRequest, request: Request, serving: ServingDep) -> Response:
    messages = [(m.role, m.content) for m in body.messages]
    if body.stream:
        events = await serving.chat_stream(messages, body.model)
        return EventSourceResponse(_chat_sse(events, request.state.request_id), sep="\n", ping=15)
    result = await serving.chat(messages, body.model, receive=request.receive)
    return Response(result.to_answer().model_dump_json(), media_type="application/json")


# ----------------------------------------------------------------------------- OpenAI-compatible


def _openai_messages(messages: list[OpenAIMessage]) -> list[tuple[str, str]]:
    roles = {"developer": "system"}
    return [(roles.get(m.role, m.role), m.text()) for m in messages if m.role in ("system", "developer", "user",
                                                                                    "assistant")]


def _tail(result: TurnResult) -> str:
    """What a text-only client should see after the narrative: notices, then sources."""
    parts = [f"\n\n> **Note:** {notice}" for notice in result.notices]
    references = result.citations or (result.critique.references if result.critique else [])
    return "".join(parts) + references_footer(references)


def _estimate_tokens(text: str) -> int:
    return max(1, len(text) // 4) if text else 0


def _usage(prompt: list[tuple[str, str]], completion: str) -> CompletionUsage:
    p = sum(_estimate_tokens(content) for _, content in prompt)
    c = _estimate_tokens(completion)
    return CompletionUsage(prompt_tokens=p, completion_tokens=c, total_tokens=p + c)


async def _openai_sse(events: AsyncIterator[Event], body: ChatCompletionRequest, prompt: list[tuple[str, str]],
                      completion_id: str, created: int, request_id: str | None) -> AsyncIterator[ServerSentEvent]:
    def chunk(delta: ChunkDelta, finish: str | None = None, fingerprint: str | None = None) -> ServerSentEvent:
        c = ChatCompletionChunk(id=completion_id, created=created, model=body.model, system_fingerprint=fingerprint,
                                choices=[ChunkChoice(delta=delta, finish_reason=finish)])  # type: ignore[arg-type]
        return ServerSentEvent(data=c.model_dump_json(exclude_none=True))

    result = TurnResult()
    streamed = ""
    try:
        yield chunk(ChunkDelta(role="assistant", content=""))
        async for event in events:
            result.add(event)
            if isinstance(event, TextDelta) and event.text:
                streamed += event.text
                yield chunk(ChunkDelta(content=event.text))
        if not streamed and result.answer:
            streamed = result.answer  # a turn that only reported its answer at the end
            yield chunk(ChunkDelta(content=result.answer))
        tail = _tail(result)
        if tail:
            streamed += tail
            yield chunk(ChunkDelta(content=tail))
        yield chunk(ChunkDelta(), finish="stop", fingerprint=result.backend)
        if body.stream_options is not None and body.stream_options.include_usage:
            usage = ChatCompletionChunk(id=completion_id, created=created, model=body.model, choices=[],
                                        usage=_usage(prompt, streamed))
            yield ServerSentEvent(data=usage.model_dump_json(exclude_none=True))
    except Exception as exc:
        yield ServerSentEvent(data=json.dumps(_error_payload(exc, request_id)))
    yield ServerSentEvent(data="[DONE]")


@v1_router.post("/chat/completions", summary="OpenAI-compatible chat completions", tags=["openai"],
                response_model=ChatCompletionResponse,
                responses={200: {"content": _OPENAI_SSE, "description": "A chat.completion, or with stream: true, "
                                 "chat.completion.chunk events then data: [DONE]."},
                           **_errors(*MODEL_ERRORS)})
async def chat_completions(body: ChatCompletionRequest, request: Request,
                           serving: ServingDep) -> Response:
    prompt = _openai_messages(body.messages)
    completion_id = "chatcmpl-" + uuid.uuid4().hex
    created = int(time.time())
    if body.stream:
        events = await serving.chat_stream(prompt, body.model)
        return EventSourceResponse(
            _openai_sse(events, body, prompt, completion_id, created, request.state.request_id), sep="\n", ping=15)
    result = await serving.chat(prompt, body.model, receive=request.receive)
    content = result.answer + _tail(result)
    response = ChatCompletionResponse(
        id=completion_id, created=created, model=body.model, system_fingerprint=result.backend,
        choices=[ChatCompletionChoice(message=CompletionMessage(content=content))],
        usage=_usage(prompt, content))
    return Response(response.model_dump_json(), media_type="application/json")


@v1_router.get("/models", response_model=ModelList, summary="OpenAI-compatible model list", tags=["openai"])
async def list_models(serving: ServingDep) -> ModelList:
    return serving.models()


# ----------------------------------------------------------------------------- knowledge


@v1_router.get("/framework", response_model=FrameworkResponse, tags=["knowledge"],
               summary="The coding scheme, opening with its provenance (our codes, inspired by Olaitan 2024)")
def framework(serving: ServingDep) -> Response:
    return Response(serving.framework.model_dump_json(), media_type="application/json")


@v1_router.get("/interventions", response_model=InterventionList, tags=["knowledge"],
               summary="The relational intervention library")
def interventions(serving: ServingDep) -> Response:
    return Response(serving.interventions().model_dump_json(), media_type="application/json")


@v1_router.get("/cases", response_model=CaseList, tags=["knowledge"], summary="The coded real programmes")
def cases(serving: ServingDep) -> Response:
    return Response(serving.cases().model_dump_json(), media_type="application/json")


@v1_router.get("/cases/{case_id}", response_model=Case, tags=["knowledge"], summary="One coded programme",
               responses=_errors(404))
def case(case_id: str, serving: ServingDep) -> Response:
    return Response(serving.case(case_id).model_dump_json(), media_type="application/json")


# Referenced by the critiques route's hand-written OpenAPI body; app.py adds them to the schema.
EXTRA_SCHEMAS = (CritiqueRequest, Critique, MarkdownCritique, ChatCompletionChunk, Reference)
