"""`assistant serve --workers N` on Linux: every worker gets connections, a second server on the
same port is refused, a dead worker is replaced, and stopping the server stops them all."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from assistant.api.workers import PER_WORKER_SOCKETS

from .conftest import KEY
from .test_live import free_port, wait_ready

pytestmark = pytest.mark.skipif(
    not PER_WORKER_SOCKETS,
    reason="per-worker sockets exist only on Linux (SO_REUSEPORT); elsewhere `serve --workers` hands over to "
           "uvicorn's own supervisor, which tests/api/test_cli.py covers")


def _children(pid: int) -> list[int]:
    path = Path(f"/proc/{pid}/task/{pid}/children")
    return [int(p) for p in path.read_text().split()] if path.exists() else []


def _workers(pid: int) -> list[int]:
    """The serve process's worker processes (spawn also starts a resource tracker: skip it)."""
    out = []
    for child in _children(pid):
        try:
            cmdline = Path(f"/proc/{child}/cmdline").read_bytes()
        except OSError:
            continue
        if b"resource_tracker" not in cmdline:
            out.append(child)
    return out


def _established(pid: int, port: int) -> int:
    """How many established TCP connections to ``port`` the process holds."""
    inodes = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            target = os.readlink(fd)
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[8:-1])
    count = 0
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            local_port = int(fields[1].rsplit(":", 1)[1], 16)
            if local_port == port and fields[3] == "01" and fields[9] in inodes:
                count += 1
    return count


def _serve_command(port: int) -> list[str]:
    return [sys.executable, "-m", "assistant", "serve", "--host", "127.0.0.1", "--port", str(port), "--workers", "2"]


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    home = tmp_path_factory.mktemp("workers-home")
    env = {k: v for k, v in os.environ.items() if not k.startswith("ASSISTANT_")}
    env.update({"ASSISTANT_HOME": str(home), "ASSISTANT_API_KEYS": KEY, "PYTHONUNBUFFERED": "1"})
    return env


@pytest.fixture(scope="module")
def served(env: dict[str, str]) -> Iterator[tuple[subprocess.Popen[bytes], int, Path]]:
    port = free_port()
    log = Path(env["ASSISTANT_HOME"]) / "serve.log"
    with open(log, "wb") as out:
        process = subprocess.Popen(_serve_command(port), env=env, stdout=out, stderr=subprocess.STDOUT)
    try:
        wait_ready(f"http://127.0.0.1:{port}", process, log)
        yield process, port, log
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(10)


def test_keep_alive_connections_reach_every_worker(served: tuple[subprocess.Popen[bytes], int, Path]) -> None:
    process, port, _ = served
    workers = _workers(process.pid)
    assert len(workers) == 2
    # 24 keep-alive connections opened together: on one shared socket the first worker to wake
    # takes them all; with a socket each, the kernel spreads them (all on one: p = 2**-23)
    clients = [httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=10) for _ in range(24)]
    try:
        assert all(c.get("/healthz").status_code == 200 for c in clients)
        per_worker = [_established(w, port) for w in workers]
        assert sum(per_worker) == 24 and min(per_worker) > 0, per_worker
    finally:
        for c in clients:
            c.close()


def test_a_second_server_on_the_same_port_is_refused(served: tuple[subprocess.Popen[bytes], int, Path],
                                                     env: dict[str, str]) -> None:
    _, port, _ = served
    second = subprocess.run(_serve_command(port), env=env, capture_output=True, text=True, timeout=60)
    assert second.returncode == 1
    assert f"cannot listen on 127.0.0.1:{port}" in second.stderr and "Traceback" not in second.stderr


def test_a_worker_that_dies_is_replaced_and_stopping_stops_all(
        served: tuple[subprocess.Popen[bytes], int, Path]) -> None:
    process, port, log = served
    first, second = _workers(process.pid)
    os.kill(first, signal.SIGKILL)
    deadline = time.monotonic() + 60
    while True:
        now = _workers(process.pid)
        if len(now) == 2 and first not in now:
            break
        assert time.monotonic() < deadline, f"the dead worker was not replaced: {now}\n{log.read_text()}"
        time.sleep(0.2)
    wait_ready(f"http://127.0.0.1:{port}", process, log)
    assert "exited with code -9; starting another" in log.read_text()
    replacement = next(w for w in now if w != second)
    process.send_signal(signal.SIGTERM)
    assert process.wait(30) == 0
    for pid in (second, replacement):
        assert not Path(f"/proc/{pid}").exists() or "Z" in Path(f"/proc/{pid}/stat").read_text().split()[2]
