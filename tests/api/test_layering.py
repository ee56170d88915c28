"""The API face imports the core only, and `assistant serve`'s parser costs nothing to import."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import assistant.api

API = Path(assistant.api.__file__).parent
FORBIDDEN = ("assistant.tui", "assistant.evals", "assistant.cli")


def _imports(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative: resolve against assistant.api
                parts = ["assistant", "api"][: 3 - node.level] if node.level <= 2 else []
                base = ".".join([*parts, base] if base else parts)
            names.add(base)
        elif isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
    return names


def test_api_never_imports_other_faces() -> None:
    for path in sorted(API.glob("*.py")):
        bad = {name for name in _imports(path) if name.startswith(FORBIDDEN) or ".tui" in name}
        assert not bad, f"{path.name} imports {sorted(bad)}"


def test_serve_parser_is_light() -> None:
    code = ("import sys, argparse; import assistant.api.cli as c; p = argparse.ArgumentParser(); "
            "c.add_parsers(p.add_subparsers()); "
            "print(','.join(m for m in ('fastapi', 'uvicorn', 'litellm', 'chromadb', 'starlette', 'openai') "
            "if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert out == ""
