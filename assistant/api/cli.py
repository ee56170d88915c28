"""``assistant serve``: run the HTTP API with uvicorn. Heavy imports happen inside the handler."""

from __future__ import annotations

import argparse
import ipaddress
import socket
import sys
from typing import Any

__all__ = ["add_parsers", "is_loopback"]

APP_FACTORY = "assistant.api.app:create_app"


def add_parsers(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "serve",
        help="run the HTTP API (JSON critiques, streaming chat, OpenAI-compatible endpoint)",
        description="Serve the advisor over HTTP. API keys come from ASSISTANT_API_KEYS or "
                    "ASSISTANT_API_KEYS_FILE; without keys the server only binds a loopback address "
                    "unless --insecure-no-auth is given. See docs/api.md.",
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8000, help="port (default 8000)")
    parser.add_argument("--workers", type=int, default=1,
                        help="worker processes (default 1); with more than one, use a Chroma server "
                             "(ASSISTANT_CHROMA_URL) and note that limits are per worker")
    parser.add_argument("--insecure-no-auth", action="store_true",
                        help="allow a non-loopback --host with no API keys configured (anyone can call it)")
    parser.add_argument("--hash-key", action="store_true",
                        help="read an API key on standard input (or generate one if the input is empty) "
                             "and print the line for ASSISTANT_API_KEYS_FILE, then exit")
    parser.add_argument("--label", help="with --hash-key: a label written after the hash")
    parser.set_defaults(handler=serve)


def is_loopback(host: str) -> bool:
    if host in ("localhost", "ip6-localhost"):
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        try:
            return all(ipaddress.ip_address(info[4][0]).is_loopback
                       for info in socket.getaddrinfo(host, None))
        except (OSError, ValueError):
            return False


def _hash_key(args: argparse.Namespace) -> int:
    from .security import hash_line, new_key

    if sys.stdin.isatty():
        import getpass

        key = getpass.getpass("API key (empty to generate one): ")
    else:
        key = sys.stdin.readline()
    key = key.strip()
    if not key:
        key = new_key()
        print(f"new API key (give it to the client; it is not stored): {key}", file=sys.stderr)
    print(hash_line(key, args.label))
    return 0


def serve(args: argparse.Namespace) -> int:
    if args.hash_key:
        return _hash_key(args)
    if args.workers < 1:
        print("assistant: --workers must be at least 1", file=sys.stderr)
        return 2
    from ..settings import get_settings
    from .security import load_keys

    settings = get_settings()
    keys = load_keys(settings)  # a bad keys file is a ConfigError: one line, exit 2
    if not keys.enabled and not args.insecure_no_auth and not is_loopback(args.host):
        print(f"assistant: refusing to serve on {args.host} without API keys. Set ASSISTANT_API_KEYS or "
              "ASSISTANT_API_KEYS_FILE (see 'assistant serve --hash-key'), bind 127.0.0.1, or pass "
              "--insecure-no-auth if something in front of this server does the authentication.",
              file=sys.stderr)
        return 2
    if not keys.enabled:
        print("assistant: no API keys configured: authentication is off", file=sys.stderr)
    if args.workers > 1 and not settings.chroma_url:
        print("assistant: note: the embedded retrieval index is not safe to open from several processes; "
              "with --workers > 1 run a Chroma server and set ASSISTANT_CHROMA_URL (docs/api.md)", file=sys.stderr)

    import copy

    import uvicorn
    from uvicorn.config import LOGGING_CONFIG

    log_level = settings.log_level.lower() if args.verbose == 0 else ("info" if args.verbose == 1 else "debug")
    # Our access log (logger "assistant.api": request id, status, time, key id) replaces uvicorn's,
    # and the logging config travels to every worker process.
    log_config = copy.deepcopy(LOGGING_CONFIG)
    log_config["loggers"]["assistant"] = {"handlers": ["default"], "level": log_level.upper(), "propagate": False}
    options: dict[str, Any] = {
        "host": args.host, "port": args.port, "log_level": log_level, "log_config": log_config,
        "access_log": False, "proxy_headers": True, "timeout_graceful_shutdown": 10,
    }
    if args.workers > 1:
        # Each worker process imports the factory and builds its own app from the environment.
        from .workers import reuse_port_supported, serve_workers

        if not reuse_port_supported(args.port):
            uvicorn.run(APP_FACTORY, factory=True, workers=args.workers, **options)
            return 0
        try:
            return serve_workers(APP_FACTORY, args.workers, options)
        except OSError as exc:
            print(f"assistant: cannot listen on {args.host}:{args.port}: {exc.strerror or exc}. "
                  "Is another server using that port? Choose another with --port.", file=sys.stderr)
            return 1
    else:
        from .app import create_app

        problem = _port_problem(args.host, args.port)
        if problem:
            print(f"assistant: cannot listen on {args.host}:{args.port}: {problem}. Is another server using that "
                  "port? Choose another with --port.", file=sys.stderr)
            return 1
        uvicorn.run(create_app(), **options)
    return 0


def _port_problem(host: str, port: int) -> str | None:
    """Why ``host:port`` cannot be listened on, or None (uvicorn would otherwise exit 3 with a log line)."""
    if port == 0:
        return None
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except OSError as exc:
        return exc.strerror or str(exc)
    for family, kind, proto, _, address in infos[:1]:
        with socket.socket(family, kind, proto) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                probe.bind(address)
            except OSError as exc:
                return exc.strerror or str(exc)
    return None
