"""Lazy public names for a package: ``from pkg import Name`` imports Name's module on first use.

Used by the packages whose public names live in heavy modules (litellm, chromadb, the evals),
so importing the package itself stays cheap.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable, Mapping, Sequence
from typing import Any

__all__ = ["lazy_exports"]


def lazy_exports(package: str, where: Mapping[str, str],
                 public: Sequence[str]) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """Module ``__getattr__`` and ``__dir__`` for ``package``.

    ``where`` maps each public name to its module, relative (``"search"``) or absolute
    (``"assistant.domain"``). A resolved name is cached in the package's namespace.
    """

    def __getattr__(name: str) -> Any:
        module = where.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        target = importlib.import_module(module if module.startswith("assistant") else f".{module}", package)
        value = getattr(target, name)
        setattr(sys.modules[package], name, value)
        return value

    def __dir__() -> list[str]:
        return sorted(public)

    return __getattr__, __dir__
