"""The declared public surface of assistant.retrieval, and the layering rule."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import assistant.retrieval as retrieval

EXPECTED = {
    "Chunk",
    "Embedder",
    "Hit",
    "IndexStatus",
    "RefreshReport",
    "RetrievalEvalReport",
    "Retriever",
    "SearchConfig",
    "available_providers",
    "evaluate_retrieval",
    "get_embedder",
    "get_retriever",
}


def test_exported_members() -> None:
    assert set(retrieval.__all__) == EXPECTED
    for name in retrieval.__all__:
        assert getattr(retrieval, name) is not None


def test_importing_the_package_is_light() -> None:
    code = "import sys, assistant.retrieval; print('chromadb' in sys.modules, 'onnxruntime' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "False"]


def test_retrieval_imports_only_lower_layers() -> None:
    allowed = {"domain", "settings", "errors", "knowledge", "retrieval", "_lazy"}  # _lazy: base-layer helper
    root = Path(retrieval.__file__).parent
    for path in root.glob("*.py"):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.level >= 1:
                parts = (node.module or "").split(".")
                top = parts[0] if node.level == 2 else "retrieval"
                assert top in allowed, f"{path.name} imports from ..{node.module}"
            if (
                isinstance(node, ast.ImportFrom)
                and node.level == 0
                and (node.module or "").startswith("assistant.")
            ):
                assert node.module.split(".")[1] in allowed, f"{path.name} imports {node.module}"
            if isinstance(node, ast.Import):
                for alias in node.names:
                    if alias.name.startswith("assistant."):
                        assert alias.name.split(".")[1] in allowed, (
                            f"{path.name} imports {alias.name}"
                        )
