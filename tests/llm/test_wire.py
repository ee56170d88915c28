"""litellm over a real HTTP connection to an OpenAI-compatible server on loopback, with faults."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from assistant.advice.advisor import Advisor
from assistant.advice.llm.cache import ResponseCache
from assistant.advice.llm.litellm_model import LiteLLMChatModel, get_chat_model
from assistant.advice.llm.model import ChatMessage, ChatModel, Usage
from assistant.advice.llm.planner import critique_with_model, stream_critique
from assistant.domain import Critique
from assistant.errors import ConfigError, ModelError
from assistant.reading import PlanDocument
from assistant.settings import Settings

from .fake_openai_server import FakeOpenAIServer
from .helpers import draft_from, dumps

ROOT = Path(__file__).resolve().parents[2]
HELLO = [ChatMessage("system", "Be brief."), ChatMessage("user", "Say hello.")]


def _model(server: FakeOpenAIServer, behaviour: str, **kw: object) -> LiteLLMChatModel:
    options: dict[str, object] = {"timeout": 1.0, "retries": 1, "backoff_s": 0.01, "api_key": "test"}
    options.update(kw)
    return LiteLLMChatModel(f"openai/{behaviour}", api_base=server.api_base, **options)  # type: ignore[arg-type]


def test_plain_completion_with_usage(server: FakeOpenAIServer) -> None:
    server.script("plain", "Hello, leader.")
    completion = _model(server, "plain").complete(HELLO, max_tokens=50)
    assert completion.text == "Hello, leader."
    assert completion.usage.completion_tokens == 2 and completion.usage.prompt_tokens > 0
    assert completion.usage.latency_s > 0 and not completion.usage.cached
    assert completion.usage.cost_usd is None  # an unknown local model has no price, and that is fine
    sent = server.requests[0]
    assert sent["max_tokens"] == 50 and sent["messages"][1] == {"role": "user", "content": "Say hello."}


def test_known_models_are_priced_and_local_ones_are_not() -> None:
    usage = Usage(prompt_tokens=1000, completion_tokens=500)
    assert (LiteLLMChatModel("openai/gpt-4o-mini")._token_cost(usage) or 0) > 0
    assert LiteLLMChatModel("openai/smollm2")._token_cost(usage) is None


def test_streaming_yields_each_delta(server: FakeOpenAIServer) -> None:
    server.script("plain", "one two three four")
    stream = _model(server, "plain").stream(HELLO)
    assert list(stream) == ["one ", "two ", "three ", "four"]
    assert stream.finish_reason == "stop" and stream.text == "one two three four"
    assert stream.usage.completion_tokens >= 4


@pytest.mark.parametrize("behaviour", ["truncated", "cut"])
def test_a_truncated_stream_is_reported_as_cut_off(server: FakeOpenAIServer, behaviour: str) -> None:
    server.script(behaviour, "one two three four five")
    got: list[str] = []
    with pytest.raises(ModelError) as info:
        for piece in _model(server, behaviour).stream(HELLO):
            got.append(piece)
    assert info.value.reason == "cut-off"
    assert len(got) <= 2


def test_a_500_is_retried_then_reported(server: FakeOpenAIServer) -> None:
    with pytest.raises(ModelError) as info:
        _model(server, "error500", retries=2).complete(HELLO)
    assert info.value.reason == "provider-error"
    assert server.count("error500") == 3


def test_a_transient_500_is_survived_by_a_retry(server: FakeOpenAIServer) -> None:
    server.script("flaky", "Recovered.")
    assert _model(server, "flaky").complete(HELLO).text == "Recovered."
    assert server.count("flaky") == 2


def test_a_429_is_rate_limited(server: FakeOpenAIServer) -> None:
    with pytest.raises(ModelError) as info:
        _model(server, "ratelimit").complete(HELLO)
    assert info.value.reason == "rate-limited"
    assert server.count("ratelimit") == 2


def test_a_slow_answer_times_out(server: FakeOpenAIServer) -> None:
    started = time.monotonic()
    with pytest.raises(ModelError) as info:
        _model(server, "slow", timeout=0.3, retries=0).complete(HELLO)
    assert info.value.reason == "timeout"
    assert time.monotonic() - started < 2.5


def test_a_slow_stream_times_out(server: FakeOpenAIServer) -> None:
    with pytest.raises(ModelError) as info:
        list(_model(server, "slow", timeout=0.3, retries=0).stream(HELLO))
    assert info.value.reason == "timeout"


def test_a_malformed_response_is_a_provider_error(server: FakeOpenAIServer) -> None:
    with pytest.raises(ModelError) as info:
        _model(server, "malformed", retries=0).complete(HELLO)
    assert info.value.reason == "provider-error"


def test_json_schema_rejected_with_422_falls_back_to_json_mode(server: FakeOpenAIServer) -> None:
    server.script("reject-schema", '{"ok": true}')
    schema = {"type": "object", "properties": {"ok": {"type": "boolean"}}, "required": ["ok"]}
    model = _model(server, "reject-schema", structured_mode="json_schema")
    assert model.structured(HELLO, schema).text == '{"ok": true}'
    first, second = server.requests
    assert first["response_format"]["type"] == "json_schema"
    assert second["response_format"] == {"type": "json_object", "schema": schema}
    assert '"required":["ok"]' in second["messages"][-1]["content"]  # the schema travels in the prompt
    model.structured(HELLO, schema)  # remembered: no second 422
    assert server.requests[2]["response_format"]["type"] == "json_object"
    assert len(server.requests) == 3


def test_a_server_that_rejects_the_schema_key_gets_plain_json_mode(server: FakeOpenAIServer) -> None:
    server.script("strict-format", '{"ok": true}')
    schema = {"type": "object", "properties": {"ok": {"type": "boolean"}}}
    assert _model(server, "strict-format").structured(HELLO, schema).text == '{"ok": true}'
    assert [r["response_format"] for r in server.requests] == [
        {"type": "json_object", "schema": schema}, {"type": "json_object"}]


def test_unknown_models_get_json_mode_with_the_schema_in_the_prompt(server: FakeOpenAIServer) -> None:
    server.script("plain", "{}")
    _model(server, "plain").structured(HELLO, {"type": "object", "properties": {"x": {"type": "string"}}})
    sent = server.requests[0]
    assert sent["response_format"]["type"] == "json_object" and "schema" in sent["response_format"]
    assert "JSON Schema" in sent["messages"][-1]["content"]


def test_the_cache_answers_repeated_calls_without_the_network(server: FakeOpenAIServer, tmp_path: Path) -> None:
    server.script("plain", "Cached answer.")
    model = _model(server, "plain", cache=ResponseCache(tmp_path))
    first = model.complete(HELLO)
    again = model.complete(HELLO)
    assert again.text == first.text == "Cached answer." and again.usage.cached
    assert server.count() == 1
    model.complete([*HELLO, ChatMessage("user", "And again?")])  # other messages: another key
    model.complete(HELLO, max_tokens=7)  # other parameters: another key
    assert server.count() == 3
    assert list(model.stream(HELLO)) == ["Cached ", "answer."]
    assert list(model.stream(HELLO)) == ["Cached answer."]  # replayed as one chunk
    assert server.count() == 4


def test_failures_are_never_cached(server: FakeOpenAIServer, tmp_path: Path) -> None:
    model = _model(server, "error500", retries=0, cache=ResponseCache(tmp_path))
    for _ in range(2):
        with pytest.raises(ModelError):
            model.complete(HELLO)
    assert server.count() == 2 and not list(tmp_path.rglob("*.json"))


def test_get_chat_model_reads_settings(server: FakeOpenAIServer, tmp_path: Path) -> None:
    settings = Settings(home=tmp_path, model="openai/plain", api_base=server.api_base, cache=True,
                        model_timeout=3.0, model_retries=0, max_tokens=99)
    model = get_chat_model(None, settings)
    assert isinstance(model, LiteLLMChatModel) and isinstance(model, ChatModel)
    assert (model.name, model.api_base, model.timeout, model.retries, model.max_tokens) == (
        "openai/plain", server.api_base, 3.0, 0, 99)
    assert model.cache is not None and model.cache.directory == tmp_path / "llm-cache"
    assert get_chat_model("openai/other", settings).name == "openai/other"
    assert get_chat_model(model, settings) is model
    assert get_chat_model("openai/x", settings.model_copy(update={"cache": False})).cache is None  # type: ignore[attr-defined]


def test_get_chat_model_explains_what_is_wrong(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        get_chat_model(None, Settings(home=tmp_path, model=None))
    assert "ASSISTANT_MODEL" in str(info.value)
    with pytest.raises(ConfigError) as info:
        get_chat_model("olama/llama3.1", Settings(home=tmp_path))
    assert "ollama/llama3.1" in str(info.value)


def _wire_settings(tmp_path: Path, server: FakeOpenAIServer) -> Settings:
    return Settings(home=tmp_path, api_base=server.api_base, model_timeout=1.0, model_retries=0, cache=False)


def test_planner_over_the_wire(server: FakeOpenAIServer, advisor: Advisor, heavy_doc: PlanDocument,
                               heavy_offline: Critique, tmp_path: Path) -> None:
    server.script("plain", dumps(draft_from(heavy_offline)))
    model = get_chat_model("openai/plain", _wire_settings(tmp_path, server))
    critique = critique_with_model(advisor, heavy_doc, model=model)
    assert critique.backend == "openai/plain"
    assert critique.findings[0].summary.startswith("Model view:")


@pytest.mark.parametrize(("behaviour", "reason"), [("error500", "provider-error"), ("slow", "timeout"),
                                                   ("ratelimit", "rate-limited"), ("malformed", "provider-error")])
def test_planner_falls_back_truthfully_over_the_wire(server: FakeOpenAIServer, advisor: Advisor,
                                                     heavy_doc: PlanDocument, tmp_path: Path,
                                                     behaviour: str, reason: str) -> None:
    model = get_chat_model(f"openai/{behaviour}", _wire_settings(tmp_path, server))
    assert critique_with_model(advisor, heavy_doc, model=model).backend == f"offline (fallback: {reason})"


def test_planner_streams_over_the_wire(server: FakeOpenAIServer, advisor: Advisor, heavy_doc: PlanDocument,
                                       heavy_offline: Critique, tmp_path: Path) -> None:
    server.script("plain", "Too much machinery.", dumps(draft_from(heavy_offline)))
    model = get_chat_model("openai/plain", _wire_settings(tmp_path, server))
    events = list(stream_critique(advisor, heavy_doc, model=model))
    kinds = [type(e).__name__ for e in events]
    assert kinds == ["TextDelta", "CritiqueReady", "Citations"]  # the sentence is sent once it is checked
    assert events[0].text == "Too much machinery."  # type: ignore[union-attr]
    assert events[1].critique.backend == "openai/plain"  # type: ignore[union-attr]
    assert server.requests[0]["stream"] is True


def _cli(*args: str, home: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ASSISTANT_")}
    env.update(ASSISTANT_HOME=str(home), ASSISTANT_MODEL_TIMEOUT="2", ASSISTANT_MODEL_RETRIES="0")
    if os.environ.get("ASSISTANT_MODEL_CACHE"):  # the built embedding model, shared between runs
        env["ASSISTANT_MODEL_CACHE"] = os.environ["ASSISTANT_MODEL_CACHE"]
    return subprocess.run([sys.executable, "-m", "assistant", *args], capture_output=True, text=True,
                          env=env, cwd=ROOT, timeout=120, check=False)


def test_cli_critique_with_a_model(server: FakeOpenAIServer, heavy_doc: PlanDocument, heavy_offline: Critique,
                                   tmp_path: Path) -> None:
    server.script("plain", dumps(draft_from(heavy_offline)))
    done = _cli("critique", heavy_doc.source, "--format", "json", "--model", "openai/plain",
                "--api-base", server.api_base, home=tmp_path)
    assert done.returncode == 0, done.stderr
    critique = Critique.model_validate_json(done.stdout)  # stdout is exactly the JSON: litellm printed nothing
    assert critique.backend == "openai/plain"
    assert "Traceback" not in done.stderr


def test_cli_falls_back_without_a_traceback(server: FakeOpenAIServer, heavy_doc: PlanDocument,
                                            tmp_path: Path) -> None:
    done = _cli("critique", heavy_doc.source, "--format", "json", "--model", "openai/error500",
                "--api-base", server.api_base, "--no-cache", home=tmp_path)
    assert done.returncode == 0, done.stderr
    assert Critique.model_validate_json(done.stdout).backend == "offline (fallback: provider-error)"
    assert "offline critique" in done.stderr and "Traceback" not in done.stderr
    assert not (tmp_path / "llm-cache").exists() or not list((tmp_path / "llm-cache").rglob("*.json"))


def test_cli_bad_model_string_is_a_usage_error(tmp_path: Path, heavy_doc: PlanDocument) -> None:
    done = _cli("critique", heavy_doc.source, "--model", "olama/llama3", home=tmp_path)
    assert done.returncode == 2 and "ollama/llama3" in done.stderr and "Traceback" not in done.stderr


def test_the_offline_path_never_imports_litellm(heavy_doc: PlanDocument, tmp_path: Path) -> None:
    code = ("import sys, io, contextlib\nfrom assistant.cli import main\n"
            "with contextlib.redirect_stdout(io.StringIO()):\n"
            f"    rc = main(['critique', {heavy_doc.source!r}, '--format', 'json'])\n"
            "assert rc == 0, rc\nassert 'litellm' not in sys.modules, 'litellm was imported'\n"
            "main(['prompts'])\nassert 'litellm' not in sys.modules\nprint('ok')\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith("ASSISTANT_")} | {"ASSISTANT_HOME": str(tmp_path)}
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, cwd=ROOT,
                          timeout=120, check=False)
    assert done.returncode == 0 and done.stdout.strip().endswith("ok"), done.stderr


def test_prompts_command_lists_versions_and_hashes(tmp_path: Path) -> None:
    done = _cli("prompts", "--format", "json", home=tmp_path)
    assert done.returncode == 0, done.stderr
    listed = {p["name"]: p for p in json.loads(done.stdout)}
    assert {"system", "critique", "chat_turn", "revise", "judge"} <= set(listed)
    assert all(len(p["sha256"]) == 64 and p["version"] for p in listed.values())


def test_cli_critique_ends_within_the_deadline_of_a_trickling_model(server: FakeOpenAIServer,
                                                                   heavy_doc: PlanDocument, tmp_path: Path) -> None:
    done = _cli("critique", heavy_doc.source, "--format", "json", "--model", "openai/trickle",
                "--api-base", server.api_base, "--no-cache", home=tmp_path)  # ASSISTANT_MODEL_TIMEOUT=2
    ended = time.monotonic()
    assert done.returncode == 0, done.stderr
    assert Critique.model_validate_json(done.stdout).backend == "offline (fallback: timeout)"
    # from the model call to the end of the process: the deadline plus the offline critique, not the trickle
    assert server.arrivals and ended - server.arrivals[0] < 2 + 5, f"{ended - server.arrivals[0]:.1f}s"
    assert "Traceback" not in done.stderr
