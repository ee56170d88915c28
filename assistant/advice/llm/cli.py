"""``assistant prompts``: the prompt templates in use, with their versions and hashes.

Light at import time: the handler imports what it needs.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

__all__ = ["add_parsers"]


def add_parsers(sub: Any) -> None:
    p = sub.add_parser("prompts", help="list the prompt templates with their versions and hashes",
                       description="List the versioned prompt templates the LLM backend uses. The version and "
                                   "hash of each prompt are recorded with every model answer and eval run.")
    p.add_argument("name", nargs="?", help="show one template's source (e.g. critique)")
    p.add_argument("--format", default="text", choices=["text", "json"])
    p.add_argument("--dir", metavar="DIR", help="a directory of .j2 templates (default: the shipped prompts/)")
    p.set_defaults(handler=cmd_prompts)


def cmd_prompts(args: argparse.Namespace) -> int:
    from pathlib import Path

    from .prompts import Prompts

    prompts = Prompts(Path(args.dir) if args.dir else None)
    if args.name:
        info = prompts.info(args.name)
        if args.format == "json":
            print(json.dumps({"name": info.name, "version": info.version, "sha256": info.sha256,
                              "path": str(info.path), "source": info.path.read_text(encoding="utf-8")}, indent=2))
        else:
            sys.stdout.write(f"# {info.name} {info.version} sha256:{info.sha256}\n")
            sys.stdout.write(info.path.read_text(encoding="utf-8"))
        return 0
    infos = prompts.available()
    if args.format == "json":
        print(json.dumps([{"name": i.name, "version": i.version, "sha256": i.sha256, "path": str(i.path)}
                          for i in infos], indent=2))
        return 0
    width = max((len(i.name) for i in infos), default=4)
    vwidth = max((len(i.version) for i in infos), default=7)
    print(f"{'NAME':<{width}}  {'VERSION':<{vwidth}}  SHA256")
    for i in infos:
        print(f"{i.name:<{width}}  {i.version:<{vwidth}}  {i.sha256[:16]}")
    print(f"\n{len(infos)} prompt(s) in {prompts.directory}")
    return 0
