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
server_pid=""

cleanup() {
    if [[ -n "$server_pid" ]] && kill -0 "$server_pid" 2>/dev/null; then
        kill "$server_pid" 2>/dev/null || true
        for _ in $(seq 1 50); do kill -0 "$server_pid" 2>/dev/null || break; sleep 0.1; done
        kill -9 "$server_pid" 2>/dev/null || true
        wait "$server_pid" 2>/dev/null || true
    fi
    rm -rf "$tmp"
}
trap cleanup EXIT INT TERM

port="$("$PYTHON" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
url="http://127.0.0.1:${port}"

echo "chroma-server lane: starting chroma on ${url} (data in ${tmp}/data)"
chroma run --path "${tmp}/data" --host 127.0.0.1 --port "${port}" >"${tmp}/chroma.log" 2>&1 &
server_pid=$!

ready=0
for _ in $(seq 1 300); do
    if ! kill -0 "$server_pid" 2>/dev/null; then
        echo "chroma-server lane: the server exited during start-up:" >&2
        cat "${tmp}/chroma.log" >&2
        exit 1
    fi
    if "$PYTHON" -c "import httpx, sys; sys.exit(0 if httpx.get('${url}/api/v2/heartbeat', timeout=1).status_code == 200 else 1)" 2>/dev/null; then
        ready=1
        break
    fi
    sleep 0.2
done
if [[ "$ready" != 1 ]]; then
    echo "chroma-server lane: no heartbeat from ${url} after 60 s:" >&2
    cat "${tmp}/chroma.log" >&2
    exit 1
fi
echo "chroma-server lane: server up (pid ${server_pid})"

export ASSISTANT_CHROMA_URL="${url}"
export ASSISTANT_HOME="${tmp}/home"
"$PYTHON" -m pytest -m chroma_server tests/retrieval -q -p no:cacheprovider "$@"

if [[ "${BENCH:-0}" == 1 ]]; then
    "$PYTHON" -m assistant.retrieval.bench --queries 200
fi
