"""The real ChatModel: any model litellm reaches (OpenAI, Azure, Ollama, vLLM, llama.cpp, ...).

litellm costs seconds to import, so it is imported on first use, never on the offline path,
with ``LITELLM_LOCAL_MODEL_COST_MAP=True`` set first (unless the user set it) so that it does
not try to fetch its cost map from the internet.

Every call runs under one deadline (connect, first byte, total; ``deadline.py``) that holds
whatever the provider sends, retries and backoff included, and stops at once when the current
``Cancellation`` fires. Every failure leaves this module as a ``ModelError`` whose ``reason`` is
one of ``timeout``, ``rate-limited``, ``provider-error``, ``cut-off`` (a stream that broke off),
``cancelled`` or ``invalid-output``.
"""

from __future__ import annotations

import email.utils
import json
import logging
import os
import threading
import time
from collections.abc import Iterator, Sequence
from types import ModuleType
from typing import Any, Literal

from ...errors import ConfigError, ModelError, suggest
from ...settings import Settings, get_settings
from .cache import ResponseCache, cache_key
from .deadline import (
    Deadline,
    ModelCancelled,
    ModelTimedOut,
    close_on_model_loop,
    current_cancellation,
    run_on_model_loop,
)
from .model import ChatMessage, ChatModel, Completion, Usage

__all__ = ["LiteLLMChatModel", "TextStream", "get_chat_model", "import_litellm"]

log = logging.getLogger(__name__)

# How structured output is asked for, best first; a provider that rejects one gets the next.
#   json_schema         OpenAI's response_format json_schema (providers litellm knows support it)
#   json_object_schema  JSON mode plus the schema in response_format, which llama.cpp's servers use
#                       to constrain decoding to the schema (others ignore it or reject it)
#   json_object         plain JSON mode
#   prompt              no response_format at all
# In every mode but json_schema the schema is also written into the prompt.
StructuredMode = Literal["json_schema", "json_object_schema", "json_object", "prompt"]
NEXT_MODE: dict[StructuredMode, StructuredMode] = {
    "json_schema": "json_object_schema", "json_object_schema": "json_object", "json_object": "prompt"}
MAX_BACKOFF_S = 8.0
# What one answer may hold: a model that floods its output is cut off and the rest is ignored.
MAX_ANSWER_CHARS = 200_000
_import_lock = threading.Lock()
_litellm: ModuleType | None = None


def import_litellm() -> ModuleType:
    """Import litellm once, offline-safe and quiet (it must never print to our stdout)."""
    global _litellm
    if _litellm is not None:
        return _litellm
    with _import_lock:
        if _litellm is None:
            os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
            try:
                import litellm
            except ImportError as exc:  # pragma: no cover - litellm is a hard dependency
                raise ConfigError("The LLM backend needs litellm.", hint='pip install "litellm>=1.60"') from exc
            litellm.suppress_debug_info = True
            litellm.telemetry = False
            if logging.getLogger().getEffectiveLevel() > logging.DEBUG:
                # litellm's own loggers log requests (plan text included) when chatty: only at -vv
                for name in ("LiteLLM", "LiteLLM Router", "LiteLLM Proxy"):
                    logging.getLogger(name).setLevel(logging.WARNING)
            _litellm = litellm
    return _litellm


def _messages(messages: Sequence[ChatMessage]) -> list[dict[str, str]]:
    return [{"role": m.role, "content": m.content} for m in messages]


def _compact_schema(schema: dict[str, Any]) -> str:
    """The schema without titles and descriptions: what a model needs, in few tokens."""

    def strip(node: Any) -> Any:
        if isinstance(node, dict):
            return {k: strip(v) for k, v in node.items() if k not in ("title", "description", "examples")}
        if isinstance(node, list):
            return [strip(v) for v in node]
        return node

    return json.dumps(strip(schema), separators=(",", ":"))


def _retry_after(exc: BaseException) -> float | None:
    response = getattr(exc, "response", None)
    headers = getattr(response, "headers", None)
    if not headers:
        return None
    value = headers.get("retry-after")
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        parsed = email.utils.parsedate_to_datetime(value)
        return max(0.0, parsed.timestamp() - time.time()) if parsed else None


def _short(exc: BaseException, limit: int = 200) -> str:
    text = " ".join(str(exc).split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def map_error(exc: BaseException, model: str) -> tuple[ModelError, bool]:
    """A litellm (or httpx/openai) exception as our ModelError, and whether retrying may help."""
    names = {cls.__name__ for cls in type(exc).__mro__}
    status = getattr(exc, "status_code", None)
    if "ContextWindowExceededError" in names:
        return ModelError(f"The plan and evidence do not fit {model}'s context window.", reason="provider-error",
                          hint="Use a model with a larger context, or a shorter plan."), False
    if names & {"Timeout", "APITimeoutError", "TimeoutException", "ReadTimeout", "TimeoutError"} or status == 408:
        return ModelError(f"{model} did not answer in time.", reason="timeout",
                          hint="Raise ASSISTANT_MODEL_TIMEOUT or try again."), True
    if "RateLimitError" in names or status == 429:
        return ModelError(f"{model} is rate-limiting us.", reason="rate-limited",
                          hint="Wait a moment or raise the provider quota."), True
    if names & {"AuthenticationError", "PermissionDeniedError"} or status in (401, 403):
        return ModelError(f"{model} refused our credentials: {_short(exc)}", reason="provider-error",
                          hint="Check ASSISTANT_API_KEY (or the provider's own key variable)."), False
    if "NotFoundError" in names or status == 404:
        return ModelError(f"{model} was not found at the provider: {_short(exc)}", reason="provider-error",
                          hint="Check the model name and ASSISTANT_API_BASE."), False
    if "BadRequestError" in names or status in (400, 422):
        return ModelError(f"{model} rejected the request: {_short(exc)}", reason="provider-error"), False
    if "JSONSchemaValidationError" in names or "APIResponseValidationError" in names:
        return ModelError(f"{model} returned output we cannot read: {_short(exc)}", reason="invalid-output"), False
    return ModelError(f"{model} failed: {_short(exc)}", reason="provider-error",
                      hint="Check that the model server is running and reachable."), True


def _rejects_response_format(exc: BaseException) -> bool:
    """A 400/422 that says the provider does not accept this response_format (llama.cpp: 422)."""
    names = {cls.__name__ for cls in type(exc).__mro__}
    if "ContextWindowExceededError" in names:
        return False
    status = getattr(exc, "status_code", None)
    if status not in (400, 422) and not names & {"BadRequestError", "UnprocessableEntityError"}:
        return False
    text = str(exc).lower()
    return status == 422 or any(w in text for w in ("response_format", "json_schema", "json_object", "schema"))


class TextStream:
    """An iterator of text deltas that, once exhausted, knows the usage and the finish reason."""

    def __init__(self, source: Iterator[str], model: str) -> None:
        self._source = source
        self.model = model
        self.usage = Usage()
        self.finish_reason: str | None = None
        self.parts: list[str] = []

    def __iter__(self) -> TextStream:
        return self

    def __next__(self) -> str:
        return next(self._source)

    @property
    def text(self) -> str:
        return "".join(self.parts)

    def close(self) -> None:
        close = getattr(self._source, "close", None)
        if close is not None:
            close()


class LiteLLMChatModel:
    """A ChatModel over ``litellm.completion`` with timeouts, retries, caching and accounting."""

    def __init__(self, model: str, *, api_base: str | None = None, api_key: str | None = None,
                 timeout: float = 60.0, retries: int = 1, max_tokens: int = 2048,
                 temperature: float | None = None, cache: ResponseCache | None = None,
                 backoff_s: float = 0.5, structured_mode: StructuredMode | None = None,
                 connect_timeout: float = 5.0, first_byte_timeout: float | None = None) -> None:
        self.model = model
        self.api_base = api_base
        self.api_key = api_key
        self.timeout = timeout
        self.deadline = Deadline(total_s=timeout, connect_s=min(connect_timeout, timeout),
                                 first_byte_s=min(first_byte_timeout, timeout) if first_byte_timeout else None)
        self.retries = retries
        self.max_tokens = max_tokens
        self.temperature = temperature
        self.cache = cache
        self.backoff_s = backoff_s
        self._mode: StructuredMode | None = structured_mode
        self._cost_known: bool | None = None

    def __repr__(self) -> str:
        return f"LiteLLMChatModel({self.model!r}, api_base={self.api_base!r})"

    @property
    def name(self) -> str:
        return self.model

    # --- the ChatModel seam ------------------------------------------------------------------

    def complete(self, messages: Sequence[ChatMessage], *, max_tokens: int | None = None) -> Completion:
        params = self._params(max_tokens)
        return self._cached("complete", messages, params, lambda: self._complete(messages, params))

    def structured(self, messages: Sequence[ChatMessage], schema: dict[str, Any], *,
                   max_tokens: int | None = None) -> Completion:
        params = self._params(max_tokens)
        key_params = {**params, "schema": schema}
        return self._cached("structured", messages, key_params,
                            lambda: self._structured(messages, schema, params))

    def stream(self, messages: Sequence[ChatMessage], *, max_tokens: int | None = None) -> TextStream:
        params = self._params(max_tokens)
        key = self._key("stream", messages, params)
        cached = self.cache.get(key) if self.cache is not None and key else None
        if cached is not None:
            out = TextStream(iter([cached.text] if cached.text else []), self.model)
            out.usage, out.finish_reason, out.parts = cached.usage, "stop", [cached.text]
            return out
        holder: list[TextStream] = []
        out = TextStream(self._stream(messages, params, holder, key, self.deadline.ends_at()), self.model)
        holder.append(out)
        return out

    # --- internals ---------------------------------------------------------------------------

    def _params(self, max_tokens: int | None) -> dict[str, Any]:
        params: dict[str, Any] = {"max_tokens": max_tokens or self.max_tokens}
        if self.temperature is not None:
            params["temperature"] = self.temperature
        return params

    def _key(self, kind: str, messages: Sequence[ChatMessage], params: dict[str, Any]) -> str | None:
        if self.cache is None:
            return None
        return cache_key(self.model, self.api_base, messages, {"kind": kind, **params})

    def _cached(self, kind: str, messages: Sequence[ChatMessage], key_params: dict[str, Any],
                call: Any) -> Completion:
        key = self._key(kind, messages, key_params)
        if self.cache is not None and key:
            hit = self.cache.get(key)
            if hit is not None:
                log.debug("LLM cache hit (%s)", kind)
                return hit
        completion: Completion = call()
        if self.cache is not None and key and completion.text:
            self.cache.put(key, completion)
        return completion

    def _call(self, messages: Sequence[ChatMessage], params: dict[str, Any], *, stream: bool = False,
              ends_at: float | None = None) -> Any:
        """One litellm call with our retries and backoff, all within one deadline; raises ModelError.

        The call runs on the model loop (``deadline.py``), so it ends at the deadline or when the
        current ``Cancellation`` fires, whatever the provider sends or withholds.
        """
        litellm = import_litellm()
        end = ends_at if ends_at is not None else self.deadline.ends_at()
        attempt = 0
        while True:
            remaining = end - time.monotonic()

            def call(remaining: float = remaining) -> Any:
                return litellm.acompletion(
                    model=self.model, messages=_messages(messages), api_base=self.api_base, api_key=self.api_key,
                    timeout=self.deadline.httpx_timeout(remaining), stream=stream, num_retries=0, max_retries=0,
                    **params)

            try:
                if remaining <= 0:
                    raise ModelTimedOut("total", self.deadline.total_s)
                return run_on_model_loop(call, ends_at=end)
            except ModelTimedOut as exc:
                log.warning("model call stopped at its deadline (%s) after %d attempt(s)", exc.stage, attempt + 1)
                raise ModelError(f"{self.model} did not answer within {self.deadline.total_s:g} s ({exc}).",
                                 reason="timeout", hint="Raise ASSISTANT_MODEL_TIMEOUT or try again.") from exc
            except ModelCancelled as exc:
                raise ModelError(f"the call to {self.model} was cancelled.", reason="cancelled") from exc
            except Exception as exc:
                if "response_format" in params and _rejects_response_format(exc):
                    raise
                error, retryable = map_error(exc, self.model)
                delay = min(MAX_BACKOFF_S, self.backoff_s * (2 ** attempt))
                after = _retry_after(exc)
                if after is not None:
                    delay = min(MAX_BACKOFF_S, max(delay, after))
                if not retryable or attempt >= self.retries or time.monotonic() + delay >= end:
                    log.warning("model call failed (%s) after %d attempt(s)", error.reason, attempt + 1)
                    raise error from exc
                log.info("model call failed (%s); retrying in %.2fs", error.reason, delay)
                cancellation = current_cancellation()
                if cancellation is not None:
                    if cancellation.wait(delay):
                        raise ModelError(f"the call to {self.model} was cancelled.", reason="cancelled") from exc
                else:
                    time.sleep(delay)
                attempt += 1

    def _completion_of(self, response: Any, started: float) -> Completion:
        choice = response.choices[0]
        text = (getattr(choice.message, "content", None) or "")[:MAX_ANSWER_CHARS]
        usage = getattr(response, "usage", None)
        return Completion(
            text=text,
            model=self.model,
            usage=Usage(prompt_tokens=int(getattr(usage, "prompt_tokens", 0) or 0),
                        completion_tokens=int(getattr(usage, "completion_tokens", 0) or 0),
                        cost_usd=self._cost(response), latency_s=time.perf_counter() - started),
            raw=response,
        )

    def _priced(self) -> bool:
        """Does litellm's (local) cost map know this model? Local models are free and unlisted."""
        if self._cost_known is None:
            litellm = import_litellm()
            tail = self.model.split("/", 1)[-1]
            self._cost_known = self.model in litellm.model_cost or tail in litellm.model_cost
        return self._cost_known

    def _cost(self, response: Any) -> float | None:
        if not self._priced():
            return None
        try:
            return float(import_litellm().completion_cost(completion_response=response))
        except Exception:  # cost is accounting, never a reason to fail an answer
            return None

    def _token_cost(self, usage: Usage) -> float | None:
        """The price of a streamed answer from its token counts (streams carry no cost of their own)."""
        if not self._priced():
            return None
        try:
            prompt, completion = import_litellm().cost_per_token(model=self.model, prompt_tokens=usage.prompt_tokens,
                                                        completion_tokens=usage.completion_tokens)
            return float(prompt) + float(completion)
        except Exception:
            return None

    def _complete(self, messages: Sequence[ChatMessage], params: dict[str, Any]) -> Completion:
        started = time.perf_counter()
        return self._completion_of(self._call(messages, params), started)

    def _structured_mode(self) -> StructuredMode:
        if self._mode is None:
            litellm = import_litellm()
            try:
                supported = bool(litellm.supports_response_schema(model=self.model))
            except Exception:
                supported = False
            self._mode = "json_schema" if supported else "json_object_schema"
        return self._mode

    def _structured(self, messages: Sequence[ChatMessage], schema: dict[str, Any],
                    params: dict[str, Any]) -> Completion:
        end = self.deadline.ends_at()
        while True:
            mode = self._structured_mode()
            call_params = dict(params)
            call_messages = list(messages)
            if mode == "json_schema":
                call_params["response_format"] = {
                    "type": "json_schema", "json_schema": {"name": "answer", "schema": schema, "strict": False}}
            else:
                if mode == "json_object_schema":
                    call_params["response_format"] = {"type": "json_object", "schema": schema}
                elif mode == "json_object":
                    call_params["response_format"] = {"type": "json_object"}
                last = call_messages[-1]
                call_messages[-1] = ChatMessage(
                    last.role, f"{last.content}\n\nAnswer with one JSON object matching this JSON Schema:\n"
                               f"{_compact_schema(schema)}")
            started = time.perf_counter()
            try:
                response = self._call(call_messages, call_params, ends_at=end)
            except ModelError:
                raise
            except Exception as exc:  # the provider rejected this response_format: step down once
                if mode == "prompt":  # pragma: no cover - _call only re-raises with a response_format
                    raise map_error(exc, self.model)[0] from exc
                log.info("%s rejected response_format %s; using %s", self.model, mode, NEXT_MODE[mode])
                self._mode = NEXT_MODE[mode]
                continue
            return self._completion_of(response, started)

    def _stream(self, messages: Sequence[ChatMessage], params: dict[str, Any], holder: list[TextStream],
                key: str | None, end: float) -> Iterator[str]:
        started = time.perf_counter()
        first_byte_end = min(end, time.monotonic() + (self.deadline.first_byte_s or self.deadline.total_s))
        response = self._call(messages, params, stream=True, ends_at=first_byte_end)
        out = holder[0]
        chunks = 0
        chars = 0
        iterator = response.__aiter__()
        try:
            while True:
                gap = self.deadline.first_byte_s or self.deadline.total_s
                stage = "first-byte" if chunks == 0 and gap < self.deadline.total_s else "total"
                try:
                    chunk = run_on_model_loop(iterator.__anext__, ends_at=min(end, time.monotonic() + gap),
                                              stage=stage)
                except StopAsyncIteration:
                    break
                choices = getattr(chunk, "choices", None) or []
                if choices:
                    delta = getattr(choices[0], "delta", None)
                    piece = getattr(delta, "content", None) if delta is not None else None
                    reason = getattr(choices[0], "finish_reason", None)
                    if reason:
                        out.finish_reason = str(reason)
                    if piece:
                        chunks += 1
                        chars += len(piece)
                        out.parts.append(piece)
                        yield piece
                        if chars > MAX_ANSWER_CHARS:
                            out.finish_reason = "length"
                            break
                usage = getattr(chunk, "usage", None)
                if usage is not None and getattr(usage, "completion_tokens", None):
                    out.usage.prompt_tokens = int(getattr(usage, "prompt_tokens", 0) or 0)
                    out.usage.completion_tokens = int(usage.completion_tokens or 0)
        except ModelTimedOut as exc:
            raise ModelError(f"{self.model}'s stream was stopped at its deadline after {chunks} chunk(s) ({exc}).",
                             reason="timeout", hint="Raise ASSISTANT_MODEL_TIMEOUT or try again.") from exc
        except ModelCancelled as exc:
            raise ModelError(f"the stream from {self.model} was cancelled.", reason="cancelled") from exc
        except Exception as exc:
            error, _ = map_error(exc, self.model)
            if error.reason == "provider-error":
                error = ModelError(f"{self.model}'s stream broke off after {chunks} chunk(s): {_short(exc)}",
                                   reason="cut-off")
            raise error from exc
        finally:
            close_on_model_loop(response)
        if out.finish_reason is None:
            raise ModelError(f"{self.model}'s stream ended without finishing ({chunks} chunk(s)).",
                             reason="cut-off")
        if not out.usage.completion_tokens:
            out.usage.completion_tokens = chunks  # providers that send no usage: about one token a chunk
        out.usage.latency_s = time.perf_counter() - started
        out.usage.cost_usd = self._token_cost(out.usage)
        if self.cache is not None and key and out.text and out.finish_reason != "length":
            self.cache.put(key, Completion(text=out.text, model=self.model, usage=out.usage))


def get_chat_model(spec: str | ChatModel | None = None, settings: Settings | None = None, *,
                   api_base: str | None = None) -> ChatModel:
    """Resolve a ChatModel: an instance as is, else a litellm model string (``--model`` or
    ``ASSISTANT_MODEL``) with ``ASSISTANT_API_BASE`` and ``ASSISTANT_API_KEY``."""
    if spec is not None and not isinstance(spec, str):
        return spec
    settings = settings or get_settings()
    model = (spec or settings.model or "").strip()
    if not model:
        raise ConfigError("No model is configured.",
                          hint="Pass --model or set ASSISTANT_MODEL to a litellm model string, "
                               "e.g. openai/gpt-4o-mini or ollama/llama3.1.")
    base = api_base or settings.api_base
    litellm = import_litellm()
    try:
        litellm.get_llm_provider(model=model, api_base=base)
    except Exception as exc:
        provider = model.split("/", 1)[0] if "/" in model else model
        close = suggest(provider, [str(p.value if hasattr(p, "value") else p) for p in litellm.provider_list])
        hint = (f"Did you mean {' or '.join(repr(c + '/' + model.split('/', 1)[-1]) for c in close)}?" if close
                else "Prefix the model with its provider, e.g. openai/<name> for an OpenAI-compatible server.")
        raise ConfigError(f"litellm does not know the provider of model {model!r}.", hint=hint) from exc
    key = settings.api_key.get_secret_value() if settings.api_key is not None else None
    if key is None and base:
        key = "no-key"  # local OpenAI-compatible servers ignore the key, but the client insists on one
    cache = ResponseCache(settings.state_dir("llm-cache")) if settings.cache else None
    return LiteLLMChatModel(model, api_base=base, api_key=key, timeout=settings.model_timeout,
                            retries=settings.model_retries, max_tokens=settings.max_tokens, cache=cache,
                            connect_timeout=settings.model_connect_timeout,
                            first_byte_timeout=settings.model_first_byte_timeout)
