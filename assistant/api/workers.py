"""Several worker processes that really share the load (``assistant serve --workers N``).

uvicorn's own ``--workers`` hands every worker the same listening socket. A worker woken for a
new connection accepts every connection waiting at that moment, so the few long-lived keep-alive
connections that a reverse proxy, a portal or a load generator opens at once can all land on one
worker while the others sit idle (seen here: 2 workers served no more critiques a second than 1).

On Linux each worker here binds its own socket to the address with ``SO_REUSEPORT``, and the
kernel spreads connections across the workers' sockets by a hash of each connection's
addresses. The parent checks first that the port is free (so a second ``assistant serve`` on the
same port fails loudly instead of silently splitting traffic with the first: SO_REUSEPORT lets
sockets of the same user share a port), starts the workers, restarts one that dies, and stops
them all on SIGINT or SIGTERM. Elsewhere, or with port 0, uvicorn's supervisor is used.
"""

from __future__ import annotations

import contextlib
import logging
import multiprocessing
import signal
import socket
import sys
import time
from typing import Any

__all__ = ["PER_WORKER_SOCKETS", "reuse_port_supported", "serve_workers"]

log = logging.getLogger(__name__)

RESTART_PAUSE_S = 1.0  # a worker that dies is restarted after this pause ...
MAX_RESTARTS_PER_MINUTE = 10  # ... unless they keep dying, which means something is wrong


# Linux balances connections across sockets bound with SO_REUSEPORT; other systems either lack it
# or give every connection to the last socket bound.
PER_WORKER_SOCKETS = sys.platform.startswith("linux") and hasattr(socket, "SO_REUSEPORT")


def reuse_port_supported(port: int) -> bool:
    """Whether workers can each bind their own socket on ``port`` and have the kernel balance
    between them (not for port 0, where each worker would get a different port)."""
    return PER_WORKER_SOCKETS and port != 0


def _family(host: str) -> socket.AddressFamily:
    return socket.AF_INET6 if ":" in host.strip("[]") else socket.AF_INET


def _bind(host: str, port: int, *, reuse_port: bool) -> socket.socket:
    sock = socket.socket(_family(host), socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if reuse_port:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind((host.strip("[]"), port))
    return sock


def check_port_free(host: str, port: int) -> None:
    """Raise OSError when something already listens on host:port (including an earlier server
    of ours: a socket bound without SO_REUSEPORT cannot join the ones bound with it)."""
    probe = _bind(host, port, reuse_port=False)
    probe.close()


def _worker(app: str, options: dict[str, Any]) -> None:  # runs in a child process
    import uvicorn

    sock = _bind(options["host"], options["port"], reuse_port=True)
    config = uvicorn.Config(app, factory=True, **options)
    # Ctrl+C reaches every process of the group; uvicorn shuts down, then re-raises it
    with contextlib.suppress(KeyboardInterrupt):
        uvicorn.Server(config).run(sockets=[sock])


def serve_workers(app: str, workers: int, options: dict[str, Any]) -> int:
    """Run ``workers`` processes serving the app factory ``app`` on one address; returns an exit code."""
    check_port_free(options["host"], options["port"])
    context = multiprocessing.get_context("spawn")
    stopping = False

    def stop(signum: int, _frame: object) -> None:
        nonlocal stopping
        stopping = True

    previous = {sig: signal.signal(sig, stop) for sig in (signal.SIGINT, signal.SIGTERM)}

    def start() -> multiprocessing.process.BaseProcess:
        process = context.Process(target=_worker, args=(app, options), name="assistant-api-worker")
        process.start()
        return process

    processes = [start() for _ in range(workers)]
    restarts: list[float] = []
    code = 0
    try:
        while not stopping:
            time.sleep(0.25)
            for i, process in enumerate(processes):
                if process.is_alive() or stopping:
                    continue
                now = time.monotonic()
                restarts = [t for t in restarts if now - t < 60] + [now]
                if len(restarts) > MAX_RESTARTS_PER_MINUTE:
                    print(f"assistant: workers keep exiting (last exit code {process.exitcode}); stopping",
                          file=sys.stderr)
                    stopping, code = True, 1
                    break
                log.warning("API worker %s exited with code %s; starting another", process.pid, process.exitcode)
                time.sleep(RESTART_PAUSE_S)
                processes[i] = start()
    finally:
        for process in processes:
            if process.is_alive():
                process.terminate()  # SIGTERM: uvicorn finishes the requests in flight
        deadline = time.monotonic() + 15
        for process in processes:
            process.join(max(0.0, deadline - time.monotonic()))
            if process.is_alive():
                process.kill()
                process.join()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    return code
