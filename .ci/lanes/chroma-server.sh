#!/usr/bin/env bash
# Lane: run the retrieval tests marked chroma_server against a real Chroma server on loopback.
#
# Starts `chroma run` on a free port with a temporary data directory, waits for its heartbeat,
# runs `pytest -m chroma_server tests/retrieval` with ASSISTANT_CHROMA_URL pointing at it, and
# always stops the server and removes its data (trap), whatever the outcome.
# Set BENCH=1 to also print the retrieval benchmark in server mode.
set -euo pipefail
cd "$(dirname "$0")/../.."

PYTHON="${PYTHON:-python}"
tmp="$(mktemp -d -t chroma-lane-XXXXXX)"
source .ci/lanes/lib.sh
cleanup() { stop_server; rm -rf "$tmp"; }
trap cleanup EXIT INT TERM

port="$(free_port)"
url="http://127.0.0.1:${port}"
echo "chroma-server lane: starting chroma on ${url} (data in ${tmp}/data)"
start_server "chroma-server lane" "${tmp}/chroma.log" chroma run --path "${tmp}/data" --host 127.0.0.1 --port "${port}"
wait_ready "chroma-server lane" "${url}/api/v2/heartbeat" 300 0.2
echo "chroma-server lane: server up (pid ${server_pid})"

export ASSISTANT_CHROMA_URL="${url}"
export ASSISTANT_HOME="${tmp}/home"
"$PYTHON" -m pytest -m chroma_server tests/retrieval -q -p no:cacheprovider "$@"

if [[ "${BENCH:-0}" == 1 ]]; then
    "$PYTHON" -m assistant.retrieval.bench --queries 200
fi
