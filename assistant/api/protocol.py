"""Wire types of the HTTP API: requests, responses and the error body.

Our own endpoints are strict (unknown fields are a 400). The OpenAI-compatible ones accept and
ignore the many sampling fields OpenAI clients send (temperature, top_p, user, ...), because
Open WebUI, LibreChat and the SDKs send them whether or not a server uses them.
"""

from __future__ import annotations

import time
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictBool

from ..domain import Balance, Critique, Reference, Theme
from ..knowledge.models import (
    Code,
    FindingKindDef,
    HorizonCues,
    Intervention,
    OrientationDef,
    ThemeDef,
)

__all__ = [
    "MODEL_IDS",
    "OFFLINE_MODEL_ID",
    "SERVED_MODEL_ID",
    "CaseSummary",
    "ChatAnswer",
    "ChatCompletionChoice",
    "ChatCompletionChunk",
    "ChatCompletionRequest",
    "ChatCompletionResponse",
    "ChatMessageIn",
    "ChatRequest",
    "ChunkChoice",
    "ChunkDelta",
    "CompletionMessage",
    "CompletionUsage",
    "CritiqueRequest",
    "ErrorBody",
    "ErrorResponse",
    "FrameworkProvenance",
    "FrameworkResponse",
    "Health",
    "MarkdownCritique",
    "ModelCard",
    "ModelList",
    "OpenAIMessage",
    "Readiness",
]

SERVED_MODEL_ID = "transformation-advisor"  # the configured model (ASSISTANT_MODEL) or offline
OFFLINE_MODEL_ID = "transformation-advisor-offline"  # always the deterministic offline backend
MODEL_IDS = (SERVED_MODEL_ID, OFFLINE_MODEL_ID)

ModelField = Field(
    default=None,
    description=f"{SERVED_MODEL_ID!r} (the server's configured model, offline when none is configured) "
                f"or {OFFLINE_MODEL_ID!r}; null means {SERVED_MODEL_ID!r}.",
    examples=[None, OFFLINE_MODEL_ID],
)


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


# ----------------------------------------------------------------------------- errors


class ErrorBody(BaseModel):
    message: str
    type: str = Field(description="invalid_request_error, authentication_error, rate_limit_error, "
                                  "server_error or service_unavailable_error.")
    param: str | None = Field(default=None, description="The request field the error is about.")
    code: str | None = Field(default=None, description="A machine-friendly reason.")


class ErrorResponse(BaseModel):
    """The OpenAI error shape, used for every 4xx and 5xx."""

    error: ErrorBody


# ----------------------------------------------------------------------------- critiques


class CritiqueRequest(_Strict):
    plan: str = Field(min_length=1, description="The plan text (Markdown or plain text).")
    model: str | None = ModelField
    format: Literal["json", "markdown"] = Field(
        default="json", description="json: the Critique contract; markdown: {\"markdown\": \"...\"}."
    )


class MarkdownCritique(_Strict):
    markdown: str


# ----------------------------------------------------------------------------- chat


class ChatMessageIn(_Strict):
    role: Literal["system", "user", "assistant"]
    content: str


class ChatRequest(_Strict):
    messages: list[ChatMessageIn] = Field(
        min_length=1,
        description="The whole conversation so far; the last message is the user's new turn (a plan "
                    "or a follow-up). The server keeps no session state.",
    )
    stream: StrictBool = Field(default=False, description="Answer as server-sent events.")
    model: str | None = ModelField


class ChatAnswer(_Strict):
    answer: str = Field(description="The turn's narrative, Markdown.")
    backend: str
    critique: Critique | None = Field(default=None, description="Set when the turn critiqued a plan.")
    previous_balance: Balance | None = Field(
        default=None, description="The balance before a revised plan was re-critiqued."
    )
    citations: list[Reference] = Field(default_factory=list)
    notices: list[str] = Field(default_factory=list, description="Things the reader must be told "
                                                                 "(for example a fallback to offline).")


# ----------------------------------------------------------------------------- OpenAI-compatible


class TextPart(BaseModel):
    model_config = ConfigDict(extra="allow")
    type: str
    text: str | None = None


class OpenAIMessage(BaseModel):
    model_config = ConfigDict(extra="allow")
    role: Literal["system", "developer", "user", "assistant", "tool", "function"]
    content: str | list[TextPart] | None = None
    name: str | None = None

    def text(self) -> str:
        if self.content is None:
            return ""
        if isinstance(self.content, str):
            return self.content
        return "\n".join(part.text for part in self.content if part.type == "text" and part.text)


class StreamOptions(BaseModel):
    model_config = ConfigDict(extra="allow")
    include_usage: bool = False


class ChatCompletionRequest(BaseModel):
    model_config = ConfigDict(extra="allow")
    model: str = Field(description=f"{SERVED_MODEL_ID!r} or {OFFLINE_MODEL_ID!r}.", examples=[SERVED_MODEL_ID])
    messages: list[OpenAIMessage] = Field(min_length=1)
    stream: bool | None = False
    stream_options: StreamOptions | None = None
    n: int | None = Field(default=None, ge=1, le=1, description="Only 1 is supported.")


class CompletionUsage(BaseModel):
    """Token counts are estimates (about four characters a token): the offline backend has no tokenizer."""

    prompt_tokens: int = 0
    completion_tokens: int = 0
    total_tokens: int = 0


class CompletionMessage(BaseModel):
    role: Literal["assistant"] = "assistant"
    content: str


class ChatCompletionChoice(BaseModel):
    index: int = 0
    message: CompletionMessage
    finish_reason: Literal["stop", "length"] = "stop"
    logprobs: None = None


class ChatCompletionResponse(BaseModel):
    id: str
    object: Literal["chat.completion"] = "chat.completion"
    created: int = Field(default_factory=lambda: int(time.time()))
    model: str
    system_fingerprint: str | None = Field(default=None, description="The backend that answered.")
    choices: list[ChatCompletionChoice]
    usage: CompletionUsage


class ChunkDelta(BaseModel):
    role: Literal["assistant"] | None = None
    content: str | None = None


class ChunkChoice(BaseModel):
    index: int = 0
    delta: ChunkDelta
    finish_reason: Literal["stop", "length"] | None = None
    logprobs: None = None


class ChatCompletionChunk(BaseModel):
    id: str
    object: Literal["chat.completion.chunk"] = "chat.completion.chunk"
    created: int
    model: str
    system_fingerprint: str | None = None
    choices: list[ChunkChoice]
    usage: CompletionUsage | None = None


class ModelCard(BaseModel):
    id: str
    object: Literal["model"] = "model"
    created: int
    owned_by: str = "transformation-advisor"
    description: str | None = None


class ModelList(BaseModel):
    object: Literal["list"] = "list"
    data: list[ModelCard]


# ----------------------------------------------------------------------------- knowledge


class FrameworkProvenance(_Strict):
    statement: str = Field(description="What comes from Olaitan (2024) and what is this project's own.")
    from_paper: list[str]
    ours: list[str]
    paper: str
    anchors: list[str]


class FrameworkResponse(_Strict):
    """The coding scheme. It opens with its provenance: the codes are ours, not the paper's."""

    provenance: FrameworkProvenance
    themes: list[ThemeDef]
    orientations: list[OrientationDef]
    codes: list[Code]
    finding_kinds: list[FindingKindDef]
    horizon: HorizonCues


class InterventionList(_Strict):
    interventions: list[Intervention]


class CaseSummary(_Strict):
    id: str
    ref: str = Field(description="The id citations use, e.g. 'case:torbay'.")
    name: str
    country: str
    years: str
    organisation_type: str
    confidence: Literal["high", "medium", "low"]
    themes: list[Theme]
    relational_share: float


class CaseList(_Strict):
    cases: list[CaseSummary]


# ----------------------------------------------------------------------------- health


class Health(_Strict):
    status: Literal["ok"] = "ok"


class Readiness(_Strict):
    status: Literal["ready", "not_ready"]
    checks: dict[str, Any] = Field(description="Each check's result: corpus, advisor, model.")
