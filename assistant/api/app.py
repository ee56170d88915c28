"""``create_app``: the FastAPI application, its middleware and its one error edge.

Middleware, outermost first: CORS (only when ``ASSISTANT_CORS_ORIGINS`` is set) -> request id,
access log and last-resort 500 -> body-size limit -> FastAPI. Every 4xx and 5xx, including
FastAPI's own 404, 405 and validation errors, leaves as an OpenAI-shaped error body.

The access log (logger ``assistant.api``, INFO) records method, path, status, time, request id
and the caller's key id. It never records a request body: plan text is never logged at INFO.
"""

from __future__ import annotations

import logging
import re
import threading
import time
import uuid
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ..errors import AdvisorError
from ..settings import Settings
from .errors import INVALID_REQUEST, SERVER, APIError, from_advisor_error
from .limits import BodySizeLimitMiddleware
from .protocol import ErrorBody, ErrorResponse
from .routes import EXTRA_SCHEMAS, health_router, v1_router
from .security import KeyRing, load_keys
from .serving import ChatModelFactory, ConversationFactory, Serving

__all__ = ["create_app"]

log = logging.getLogger("assistant.api")
_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")

DESCRIPTION = """\
Critiques integrated health-and-care transformation plans for **overuse of structural
approaches** and suggests **relational interventions**, grounded in a coded framework (this
project's operationalisation, inspired by Olaitan 2024) and a corpus of coded real programmes.

Send `Authorization: Bearer <key>` on every `/v1` route. Errors are OpenAI-shaped:
`{"error": {"message", "type", "param", "code"}}`. `/v1/chat/completions` and `/v1/models` speak
the OpenAI protocol (model ids `transformation-advisor`, `transformation-advisor-offline`).
"""


def _error_response(error: APIError, request_id: str | None = None) -> JSONResponse:
    headers = dict(error.headers)
    if request_id:
        headers["X-Request-Id"] = request_id
    return JSONResponse(error.body().model_dump(), status_code=error.status, headers=headers)


_HTTP_CODES = {404: "not_found", 405: "method_not_allowed", 406: "not_acceptable", 413: "request_too_large",
               415: "unsupported_media_type"}


def _param_of(loc: Sequence[Any]) -> str | None:
    parts = [str(p) for p in loc]
    if parts and parts[0] in ("body", "query", "path", "header", "cookie"):
        parts = parts[1:]
    return ".".join(parts) or None


def _install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(APIError)
    async def api_error(request: Request, exc: APIError) -> JSONResponse:
        return _error_response(exc)

    @app.exception_handler(AdvisorError)
    async def advisor_error(request: Request, exc: AdvisorError) -> JSONResponse:
        return _error_response(from_advisor_error(exc))

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = list(exc.errors())
        first = errors[0] if errors else {"loc": (), "msg": "Invalid request."}
        param = _param_of(first.get("loc", ()))
        message = f"{param}: {first.get('msg')}" if param else str(first.get("msg"))
        if first.get("type") == "json_invalid":
            message, param = "The body is not valid JSON.", None
        if len(errors) > 1:
            message += f" (and {len(errors) - 1} more problem{'s' if len(errors) > 2 else ''})"
        return _error_response(APIError(400, message, param=param, code=str(first.get("type") or "invalid")))

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        status = exc.status_code
        message = exc.detail if isinstance(exc.detail, str) else "Request failed."
        if status == 404 and message == "Not Found":
            message = f"No route {request.url.path!r}. See /docs for the API."
        elif status == 405:
            message = f"Method {request.method} is not allowed on {request.url.path!r}."
        error = APIError(status, message, type=INVALID_REQUEST if status < 500 else SERVER,
                         code=_HTTP_CODES.get(status, f"http_{status}"), headers=dict(exc.headers or {}))
        return _error_response(error)


class RequestContextMiddleware:
    """Request ids (``X-Request-Id``, echoed or made), the access log, and the last-resort 500."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        incoming = next((v.decode("latin-1") for k, v in scope.get("headers", []) if k == b"x-request-id"), "")
        request_id = incoming if _REQUEST_ID.match(incoming) else uuid.uuid4().hex
        state = scope.setdefault("state", {})
        state["request_id"] = request_id
        started = time.perf_counter()
        status = 0

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                headers = [(k, v) for k, v in message.get("headers", []) if k.lower() != b"x-request-id"]
                headers.append((b"x-request-id", request_id.encode()))
                message = {**message, "headers": headers}
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        except Exception:
            log.exception("unhandled error (request %s %s %s)", request_id, scope.get("method"), scope.get("path"))
            if status == 0:
                error = APIError(500, f"Internal error (request id {request_id}).", type=SERVER,
                                 code="internal_error")
                await _error_response(error)(scope, receive, send_with_id)
        finally:
            log.info("%s %s %s %d %.1fms key=%s", request_id, scope.get("method"), scope.get("path"), status,
                     (time.perf_counter() - started) * 1000, state.get("key_id", "-"))


def _openapi(app: FastAPI) -> dict[str, Any]:
    """FastAPI's schema, corrected: validation errors are 400 OpenAI bodies, not 422s."""
    if app.openapi_schema:
        return app.openapi_schema
    from fastapi.openapi.utils import get_openapi

    schema = get_openapi(title=app.title, version=app.version, description=app.description, routes=app.routes)
    components = schema.setdefault("components", {}).setdefault("schemas", {})
    for model in EXTRA_SCHEMAS:
        model_schema = model.model_json_schema(ref_template="#/components/schemas/{model}")
        for name, definition in model_schema.pop("$defs", {}).items():
            components.setdefault(name, definition)
        components.setdefault(model.__name__, model_schema)
    error_ref = {"$ref": "#/components/schemas/ErrorResponse"}
    components.setdefault("ErrorResponse", ErrorResponse.model_json_schema(ref_template="#/components/schemas/{model}"))
    components["ErrorResponse"].pop("$defs", None)
    components.setdefault("ErrorBody", ErrorBody.model_json_schema())
    for path in schema.get("paths", {}).values():
        for operation in path.values():
            responses = operation.get("responses", {})
            if responses.pop("422", None) is not None:
                responses.setdefault("400", {"description": "Invalid request (the field is in error.param).",
                                             "content": {"application/json": {"schema": error_ref}}})
    for name in ("HTTPValidationError", "ValidationError"):
        components.pop(name, None)
    app.openapi_schema = schema
    return schema


def create_app(settings: Settings | None = None, *, advisor: Any = None,
               conversation_factory: ConversationFactory | None = None,
               chat_model_factory: ChatModelFactory | None = None, warm_up: bool = True) -> FastAPI:
    """The API app. ``advisor``, ``conversation_factory`` and ``chat_model_factory`` let tests plug in
    fakes at the core's seams; by default the
    process-wide advisor is loaded (and warmed) in the background at startup, so /healthz answers at
    once and /readyz turns ready when loading is done."""
    serving = Serving(settings, advisor=advisor, conversation_factory=conversation_factory,
                      chat_model_factory=chat_model_factory)
    settings = serving.settings
    keys: KeyRing = load_keys(settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if warm_up:
            threading.Thread(target=serving.warm_up, name="advisor-warm-up", daemon=True).start()
        if not keys.enabled:
            log.warning("no API keys configured: authentication is off")
        yield

    app = FastAPI(title="Transformation Advisor API", version="1", description=DESCRIPTION, lifespan=lifespan)
    app.state.serving = serving
    app.state.keys = keys
    app.state.settings = settings
    _install_error_handlers(app)
    app.include_router(health_router)
    app.include_router(v1_router)
    app.openapi = lambda: _openapi(app)  # type: ignore[method-assign]

    app.add_middleware(BodySizeLimitMiddleware, max_bytes=settings.max_body_bytes)
    app.add_middleware(RequestContextMiddleware)
    if settings.cors_origins:
        from fastapi.middleware.cors import CORSMiddleware

        origins = [o.strip() for o in settings.cors_origins.split(",") if o.strip()]
        app.add_middleware(CORSMiddleware, allow_origins=origins, allow_methods=["GET", "POST", "OPTIONS"],
                           allow_headers=["Authorization", "Content-Type", "X-Request-Id"],
                           expose_headers=["X-Request-Id", "Retry-After"], allow_credentials=False)
    return app
