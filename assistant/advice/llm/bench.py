"""Benchmark: what the LLM backend adds on top of the bare litellm call.

    python -m assistant.advice.llm.bench [--latency 1.0] [--runs 10] [--plan FILE] [--json]

Starts a loopback OpenAI-compatible server (in a subprocess) that answers after a fixed
artificial latency, then measures, with the offline analysis of the plan done once beforehand
(every backend needs it; it is the offline benchmark's business):

* **overhead**: ``run_critique`` end to end (prompt rendering, the structured call, parsing,
  validation, merging, grounding) against the bare ``litellm.completion`` call with the same
  messages; reported as a share of our wall time (target < 5 %);
* **first-token delay**: from ``stream_critique(...)`` to its first ``TextDelta``, against
  from the bare streaming ``litellm.completion`` to its first content chunk (target < 100 ms).

Medians over ``--runs`` after one warm-up. The server never leaves 127.0.0.1.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

__all__ = ["main", "run_bench"]

TOKENS = 40
TOKEN_DELAY_S = 0.002


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# --- the server (run in its own process, so it does not compete with the client for the GIL) ---

def serve(port: int, latency: float, reply_file: Path) -> None:
    import uvicorn
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import JSONResponse, Response, StreamingResponse
    from starlette.routing import Route

    reply = reply_file.read_text(encoding="utf-8")
    narrative = " ".join(["word"] * TOKENS)

    async def models(_: Request) -> Response:
        return JSONResponse({"object": "list", "data": [{"id": "bench", "object": "model"}]})

    async def chat(request: Request) -> Response:
        body = await request.json()
        await asyncio.sleep(latency)
        if body.get("stream"):
            return StreamingResponse(_sse(narrative), media_type="text/event-stream")
        return JSONResponse({
            "id": "bench", "object": "chat.completion", "created": int(time.time()), "model": "bench",
            "choices": [{"index": 0, "message": {"role": "assistant", "content": reply}, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 1000, "completion_tokens": 500, "total_tokens": 1500}})

    async def _sse(text: str) -> AsyncIterator[bytes]:
        for n, word in enumerate(text.split(" ")):
            chunk = {"id": "bench", "object": "chat.completion.chunk", "created": 0, "model": "bench",
                     "choices": [{"index": 0, "delta": {"content": word + " "}, "finish_reason": None}]}
            yield f"data: {json.dumps(chunk)}\n\n".encode()
            if n:
                await asyncio.sleep(TOKEN_DELAY_S)
        end = {"id": "bench", "object": "chat.completion.chunk", "created": 0, "model": "bench",
               "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]}
        yield f"data: {json.dumps(end)}\n\n".encode()
        yield b"data: [DONE]\n\n"

    app = Starlette(routes=[Route("/v1/models", models), Route("/v1/chat/completions", chat, methods=["POST"])])
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", access_log=False)


# --- the client -----------------------------------------------------------------------------------

def _draft_reply(critique: Any) -> str:
    """A well-formed model answer that agrees with the offline critique (the realistic good case)."""
    return json.dumps({
        "verdict": {"structural_overuse": critique.verdict.structural_overuse,
                    "severity": critique.verdict.severity, "headline": "A benchmark headline."},
        "findings": [{"id": f.id, "kind": f.kind, "theme": f.theme, "summary": f.summary,
                      "evidence": [{"quote": e.quote, "action_id": e.action_id} for e in f.evidence],
                      "citations": f.citations} for f in critique.findings],
        "interventions": [{"id": i.id, "addresses": i.addresses, "rationale": i.rationale,
                           "first_steps": i.first_steps, "measures": i.measures, "citations": i.citations}
                          for i in critique.interventions],
    })


def run_bench(*, latency: float = 1.0, runs: int = 10, plan: Path | None = None) -> dict[str, Any]:
    import tempfile

    import httpx

    from ...reading import read_plan
    from ...settings import Settings, shipped_corpus_path
    from ..advisor import Advisor
    from .litellm_model import LiteLLMChatModel, _compact_schema, import_litellm
    from .planner import DRAFT_SCHEMA, critique_messages, run_critique, stream_critique

    plan = plan or shipped_corpus_path().parent / "examples" / "plans" / "structural-heavy.md"
    with tempfile.TemporaryDirectory() as home:
        settings = Settings(home=Path(home), cache=False, model=None)
        advisor = Advisor(settings=settings)
        doc = read_plan(plan)
        assessment = advisor.assess(doc.text, doc.title)
        offline = advisor.critique_offline(doc, assessment=assessment)
        reply = Path(home) / "reply.json"
        reply.write_text(_draft_reply(offline), encoding="utf-8")
        port = _free_port()
        server = subprocess.Popen([sys.executable, "-m", "assistant.advice.llm.bench", "--serve", str(port),
                                   "--latency", str(latency), "--reply", str(reply)],
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            api_base = f"http://127.0.0.1:{port}/v1"
            deadline = time.monotonic() + 30
            while True:
                try:
                    if httpx.get(f"{api_base}/models", timeout=1).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                if time.monotonic() > deadline or server.poll() is not None:
                    raise RuntimeError("the benchmark server did not start")
                time.sleep(0.1)
            litellm = import_litellm()
            model = LiteLLMChatModel("openai/bench", api_base=api_base, api_key="bench", timeout=latency + 30,
                                     retries=0, cache=None)
            messages, _ = critique_messages(doc, assessment, offline, advisor.corpus, output="json")
            wire = [{"role": m.role, "content": m.content} for m in messages]
            wire[-1]["content"] += ("\n\nAnswer with one JSON object matching this JSON Schema:\n"
                                    + _compact_schema(DRAFT_SCHEMA))
            narrative_msgs, _ = critique_messages(doc, assessment, offline, advisor.corpus, output="narrative")
            narrative_wire = [{"role": m.role, "content": m.content} for m in narrative_msgs]
            common = {"api_base": api_base, "api_key": "bench", "timeout": latency + 30, "max_retries": 0,
                      "num_retries": 0, "max_tokens": settings.max_tokens}

            def bare() -> float:
                t = time.perf_counter()
                litellm.completion(model="openai/bench", messages=wire, response_format={"type": "json_object"},
                                   **common)
                return time.perf_counter() - t

            def ours() -> float:
                t = time.perf_counter()
                run = run_critique(advisor, doc, model=model, assessment=assessment)
                elapsed = time.perf_counter() - t
                if run.critique.backend != "openai/bench":
                    raise RuntimeError(f"benchmark run fell back: {run.record.error}")
                return elapsed

            def bare_first_token() -> float:
                t = time.perf_counter()
                for chunk in litellm.completion(model="openai/bench", messages=narrative_wire, stream=True,
                                                **common):
                    if chunk.choices and chunk.choices[0].delta.content:
                        first = time.perf_counter() - t
                        break
                return first

            def our_first_token() -> float:
                t = time.perf_counter()
                stream = stream_critique(advisor, doc, model=model, assessment=assessment)
                first = None
                for event in stream:
                    if first is None and type(event).__name__ == "TextDelta":
                        first = time.perf_counter() - t
                stream.close()
                assert first is not None
                return first

            for fn in (bare, ours, bare_first_token, our_first_token):  # warm up: imports, connections
                fn()
            samples: dict[str, list[float]] = {"bare": [], "ours": [], "bare_ft": [], "ours_ft": []}
            for _ in range(runs):  # interleaved, so drift in machine load hits both alike
                samples["bare"].append(bare())
                samples["ours"].append(ours())
                samples["bare_ft"].append(bare_first_token())
                samples["ours_ft"].append(our_first_token())
        finally:
            server.terminate()
            server.wait(timeout=10)
    med = {k: statistics.median(v) for k, v in samples.items()}
    t0 = time.perf_counter()
    advisor.assess(doc.text, doc.title)
    assess_s = time.perf_counter() - t0
    return {
        "latency_s": latency, "runs": runs, "plan": str(plan),
        "bare_call_s": round(med["bare"], 4), "ours_s": round(med["ours"], 4),
        "overhead_ms": round(1000 * (med["ours"] - med["bare"]), 1),
        "overhead_pct_of_wall": round(100 * (med["ours"] - med["bare"]) / med["ours"], 2),
        "bare_first_token_ms": round(1000 * med["bare_ft"], 1),
        "ours_first_token_ms": round(1000 * med["ours_ft"], 1),
        "first_token_delay_ms": round(1000 * (med["ours_ft"] - med["bare_ft"]), 1),
        "offline_analysis_ms": round(1000 * assess_s, 1),
        "targets": {"overhead_pct_of_wall": "< 5", "first_token_delay_ms": "< 100"},
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m assistant.advice.llm.bench", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--latency", type=float, default=1.0, help="the fake model's fixed latency in seconds")
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--plan", type=Path, help="plan file (default: examples/plans/structural-heavy.md)")
    parser.add_argument("--json", action="store_true", help="print the result as JSON")
    parser.add_argument("--serve", type=int, metavar="PORT", help=argparse.SUPPRESS)
    parser.add_argument("--reply", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.serve:
        serve(args.serve, args.latency, args.reply)
        return 0
    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
    result = run_bench(latency=args.latency, runs=args.runs, plan=args.plan)
    if args.json:
        print(json.dumps(result, indent=2))
        return 0
    ok_overhead = result["overhead_pct_of_wall"] < 5
    ok_first = result["first_token_delay_ms"] < 100
    print(f"LLM backend benchmark: fake model latency {result['latency_s']} s, {result['runs']} runs (medians)")
    print(f"  bare litellm call      {1000 * result['bare_call_s']:8.1f} ms")
    print(f"  run_critique           {1000 * result['ours_s']:8.1f} ms")
    print(f"  overhead               {result['overhead_ms']:8.1f} ms = {result['overhead_pct_of_wall']:.2f} % of wall "
          f"time  (target < 5 %)  {'ok' if ok_overhead else 'MISSED'}")
    print(f"  first token, bare      {result['bare_first_token_ms']:8.1f} ms")
    print(f"  first token, ours      {result['ours_first_token_ms']:8.1f} ms")
    print(f"  first-token delay      {result['first_token_delay_ms']:8.1f} ms  (target < 100 ms)  "
          f"{'ok' if ok_first else 'MISSED'}")
    print(f"  (offline analysis of the plan, done once before and common to every backend: "
          f"{result['offline_analysis_ms']:.1f} ms)")
    return 0 if ok_overhead and ok_first else 1


if __name__ == "__main__":
    sys.exit(main())
