"""The API's one edge for errors: every failure becomes an OpenAI-shaped body.

    {"error": {"message": "...", "type": "...", "param": "... or null", "code": "... or null"}}

``APIError`` is what the API's own layers raise (auth, limits, wire checks); ``from_advisor_error``
maps the core's exception tree once: bad input -> 4xx, run-time failures -> 5xx.
"""

from __future__ import annotations

from ..errors import (
    AdvisorError,
    BadInputError,
    ConfigError,
    CorpusError,
    ModelError,
    PlanReadError,
    StoreUnavailableError,
    UnknownIdError,
)
from .protocol import ErrorBody, ErrorResponse

__all__ = ["APIError", "from_advisor_error"]

# The error ``type`` values we use, after OpenAI's.
INVALID_REQUEST = "invalid_request_error"
AUTHENTICATION = "authentication_error"
RATE_LIMIT = "rate_limit_error"
SERVER = "server_error"
UNAVAILABLE = "service_unavailable_error"


class APIError(Exception):
    """An error with everything needed to answer it: status, body fields and extra headers."""

    def __init__(self, status: int, message: str, *, type: str = INVALID_REQUEST,
                 param: str | None = None, code: str | None = None,
                 headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.type = type
        self.param = param
        self.code = code
        self.headers = headers or {}

    def body(self) -> ErrorResponse:
        return ErrorResponse(error=ErrorBody(message=self.message, type=self.type, param=self.param,
                                             code=self.code))


_MODEL_STATUS = {"timeout": 504}


def from_advisor_error(exc: AdvisorError, *, param: str | None = None) -> APIError:
    """Map one of the core's exceptions to an APIError; ``param`` names the request field it concerns."""
    message = str(exc)
    if isinstance(exc, UnknownIdError):
        code = "model_not_found" if exc.kind == "model" else "not_found"
        return APIError(404, message, param=param, code=code)
    if isinstance(exc, PlanReadError):
        return APIError(400, message, param=param, code="invalid_plan")
    if isinstance(exc, CorpusError | ConfigError):
        # The server's own corpus or configuration is wrong: not the caller's fault.
        return APIError(500, message, type=SERVER, code="server_misconfigured")
    if isinstance(exc, BadInputError):
        return APIError(400, message, param=param, code="invalid_input")
    if isinstance(exc, ModelError):
        return APIError(_MODEL_STATUS.get(exc.reason, 502), message, type=SERVER, code=f"model_{exc.reason}")
    if isinstance(exc, StoreUnavailableError):
        return APIError(503, message, type=UNAVAILABLE, code="store_unavailable",
                        headers={"Retry-After": "5"})
    return APIError(500, message, type=SERVER, code="runtime_failure")
