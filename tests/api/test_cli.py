"""`assistant serve`: key hashing, the loopback rule, and how uvicorn is started."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import pytest

from assistant.api.cli import is_loopback
from assistant.api.security import KeyRing, hash_key, load_keys
from assistant.cli import main
from assistant.settings import Settings, get_settings

from .conftest import KEY


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> pytest.MonkeyPatch:
    for name in ("ASSISTANT_API_KEYS", "ASSISTANT_API_KEYS_FILE", "ASSISTANT_MODEL", "ASSISTANT_CHROMA_URL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("ASSISTANT_HOME", str(tmp_path))
    get_settings.cache_clear()
    yield monkeypatch
    get_settings.cache_clear()


@pytest.fixture
def uvicorn_calls(monkeypatch: pytest.MonkeyPatch) -> list[tuple[tuple[Any, ...], dict[str, Any]]]:
    import uvicorn

    calls: list[tuple[tuple[Any, ...], dict[str, Any]]] = []
    monkeypatch.setattr(uvicorn, "run", lambda *a, **kw: calls.append((a, kw)))
    return calls


def test_hash_key_reads_stdin_and_prints_a_keys_file_line(env, capsys, tmp_path: Path) -> None:
    env.setattr("sys.stdin", io.StringIO(KEY + "\n"))
    assert main(["serve", "--hash-key", "--label", "portal"]) == 0
    line = capsys.readouterr().out.strip()
    assert line == f"{hash_key(KEY)}  # portal"
    assert KEY not in line
    keys_file = tmp_path / "keys"
    keys_file.write_text(line + "\n")
    ring = load_keys(Settings(home=tmp_path, api_keys_file=keys_file))
    principal = ring.check(KEY)
    assert principal is not None and principal.label == "portal"
    assert ring.check(KEY + "x") is None


def test_hash_key_generates_a_key_when_given_none(env, capsys) -> None:
    env.setattr("sys.stdin", io.StringIO("\n"))
    assert main(["serve", "--hash-key"]) == 0
    captured = capsys.readouterr()
    key = captured.err.strip().rsplit(" ", 1)[-1]
    assert key.startswith("ta-") and len(key) > 40
    assert captured.out.strip() == hash_key(key)


def test_short_keys_are_refused(env, capsys) -> None:
    env.setattr("sys.stdin", io.StringIO("short\n"))
    assert main(["serve", "--hash-key"]) == 2
    assert "at least 16" in capsys.readouterr().err


def test_refuses_a_public_host_without_keys(env, capsys, uvicorn_calls) -> None:
    assert main(["serve", "--host", "0.0.0.0"]) == 2
    assert "refusing to serve on 0.0.0.0 without API keys" in capsys.readouterr().err
    assert uvicorn_calls == []


def test_insecure_no_auth_allows_a_public_host(env, uvicorn_calls) -> None:
    assert main(["serve", "--host", "0.0.0.0", "--insecure-no-auth", "--port", "8123"]) == 0
    (_args, kwargs), = uvicorn_calls
    assert kwargs["host"] == "0.0.0.0" and kwargs["port"] == 8123
    assert kwargs["access_log"] is False


def test_public_host_with_keys_is_fine(env, uvicorn_calls) -> None:
    env.setenv("ASSISTANT_API_KEYS", KEY)
    assert main(["serve", "--host", "0.0.0.0"]) == 0
    assert len(uvicorn_calls) == 1


def test_several_workers_use_the_app_factory(env, uvicorn_calls) -> None:
    from assistant.api import workers

    # where each worker can have its own listening socket (Linux), our supervisor runs them
    started: list[tuple[str, int, dict[str, Any]]] = []
    env.setattr(workers, "serve_workers", lambda app, n, options: started.append((app, n, options)) or 0)
    assert main(["serve", "--workers", "2"]) == 0
    if workers.reuse_port_supported(8000):
        (app, n, options), = started
        assert (app, n, options["port"]) == ("assistant.api.app:create_app", 2, 8000)
        assert options["log_config"]["loggers"]["assistant"]["handlers"] == ["default"]
        assert not uvicorn_calls
    # elsewhere, and for port 0, uvicorn's own supervisor does
    assert main(["serve", "--workers", "2", "--port", "0"]) == 0
    (args, kwargs), = uvicorn_calls
    assert args == ("assistant.api.app:create_app",)
    assert kwargs["factory"] is True and kwargs["workers"] == 2
    assert kwargs["log_config"]["loggers"]["assistant"]["handlers"] == ["default"]


def test_one_worker_runs_an_app_object(env, uvicorn_calls) -> None:
    from fastapi import FastAPI

    assert main(["serve", "--port", "0"]) == 0
    (args, kwargs), = uvicorn_calls
    assert isinstance(args[0], FastAPI)
    assert kwargs["host"] == "127.0.0.1"


def test_bad_keys_file_is_a_usage_error(env, capsys, tmp_path: Path, uvicorn_calls) -> None:
    keys = tmp_path / "keys"
    keys.write_text("plain-text-key-1234567890\n")
    env.setenv("ASSISTANT_API_KEYS_FILE", str(keys))
    assert main(["serve"]) == 2
    assert "hash-key" in capsys.readouterr().err
    assert uvicorn_calls == []


@pytest.mark.parametrize(("host", "loopback"), [("127.0.0.1", True), ("localhost", True), ("::1", True),
                                                ("127.0.0.2", True), ("0.0.0.0", False), ("::", False),
                                                ("10.1.2.3", False), ("192.168.0.1", False)])
def test_is_loopback(host: str, loopback: bool) -> None:
    assert is_loopback(host) is loopback


def test_keyring_is_constant_time_over_all_keys() -> None:
    ring = KeyRing([(hash_key("a" * 20), "first"), (hash_key("b" * 20), "second")])
    assert ring.check("b" * 20).label == "second"  # type: ignore[union-attr]
    assert ring.check("c" * 20) is None
    assert len(ring) == 2 and ring.enabled
    assert not KeyRing().enabled


def test_a_port_in_use_is_one_clear_line(env, capsys, uvicorn_calls) -> None:
    import socket

    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        assert main(["serve", "--port", str(port)]) == 1
    err = capsys.readouterr().err
    assert f"cannot listen on 127.0.0.1:{port}" in err and "--port" in err and "Traceback" not in err
    assert not uvicorn_calls
