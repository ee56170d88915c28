# Shared plumbing for the CI lanes that start a server on loopback. Source it; it defines:
#   free_port                      print a free TCP port on 127.0.0.1
#   start_server NAME LOG CMD...   start CMD in the background (its pid in $server_pid)
#   wait_ready NAME URL TRIES STEP wait until URL answers 200; fail with the server's log
#   stop_server                    stop it (TERM, then KILL after 5 s); safe to call twice
# The caller sets PYTHON and registers `trap stop_server EXIT INT TERM` (plus its own cleanup).

server_pid=""
server_log=""

free_port() {
    "$PYTHON" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

start_server() {
    local name="$1" log="$2"
    shift 2
    server_log="$log"
    "$@" >"$log" 2>&1 &
    server_pid=$!
    echo "$name: started (pid ${server_pid})"
}

wait_ready() {
    local name="$1" url="$2" tries="$3" step="$4"
    for _ in $(seq 1 "$tries"); do
        if ! kill -0 "$server_pid" 2>/dev/null; then
            echo "$name: the server exited during start-up:" >&2
            cat "$server_log" >&2
            return 1
        fi
        if "$PYTHON" -c "import httpx, sys; sys.exit(0 if httpx.get('${url}', timeout=1).status_code == 200 else 1)" 2>/dev/null; then
            return 0
        fi
        sleep "$step"
    done
    echo "$name: no answer from ${url} in time:" >&2
    tail -50 "$server_log" >&2
    return 1
}

stop_server() {
    if [[ -n "$server_pid" ]] && kill -0 "$server_pid" 2>/dev/null; then
        kill "$server_pid" 2>/dev/null || true
        for _ in $(seq 1 50); do kill -0 "$server_pid" 2>/dev/null || break; sleep 0.1; done
        kill -9 "$server_pid" 2>/dev/null || true
        wait "$server_pid" 2>/dev/null || true
    fi
    server_pid=""
}
