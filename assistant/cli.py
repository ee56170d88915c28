"""The ``assistant`` command: a thin argparse layer over the core.

Each face registers its own subcommands through a light ``add_parsers(subparsers)`` function
(imported here; heavy imports happen inside the handlers), so ``assistant critique`` never pays
for litellm, chromadb, FastAPI or Textual.

Exit codes: 0 ok, 1 failure, 2 bad input or usage.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import sqlite3
import sys
from collections.abc import Callable, Sequence

from .errors import AdvisorError, CorpusError

__all__ = ["main"]

FACES = (
    "assistant.cli_core",
    "assistant.cli_retrieval",
    "assistant.advice.llm.cli",
    "assistant.evals.cli",
    "assistant.api.cli",
    "assistant.tui.cli",
)

Handler = Callable[[argparse.Namespace], int]


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        self.print_usage(sys.stderr)
        self.exit(2, f"assistant: error: {message}\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="assistant",
        description="Transformation Advisor: critiques integrated health-and-care transformation plans for "
                    "structural overuse and suggests relational interventions. Offline by default.",
    )
    parser.add_argument("--corpus", metavar="DIR", help="a user corpus layered over the shipped one")
    parser.add_argument("--home", metavar="DIR", help="state directory (default: ASSISTANT_HOME)")
    parser.add_argument("-v", "--verbose", action="count", default=0, help="more logging (-vv for debug)")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    for name in FACES:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name == name:
                continue  # a face not built into this installation
            raise
        module.add_parsers(sub)
    return parser


def _apply_globals(args: argparse.Namespace) -> None:
    if args.corpus:
        os.environ["ASSISTANT_CORPUS_PATH"] = args.corpus
    if args.home:
        os.environ["ASSISTANT_HOME"] = args.home
    if args.corpus or args.home:
        from .settings import get_settings

        get_settings.cache_clear()
    level = logging.WARNING - 10 * min(args.verbose, 2)
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s")


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "handler", None):
        parser.print_help()
        return 2
    _apply_globals(args)
    try:
        return int(args.handler(args) or 0)
    except CorpusError as exc:
        for problem in exc.problems or []:
            print(f"assistant: {problem}", file=sys.stderr)
        if not exc.problems:
            print(f"assistant: {exc}", file=sys.stderr)
        return exc.exit_code
    except AdvisorError as exc:
        print(f"assistant: {exc}", file=sys.stderr)
        return exc.exit_code
    except (OSError, sqlite3.DatabaseError) as exc:  # state under ASSISTANT_HOME that cannot be used
        if isinstance(exc, BrokenPipeError):
            return 0
        print(f"assistant: {_state_problem(exc)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("assistant: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return 0


def _state_problem(exc: OSError | sqlite3.DatabaseError) -> str:
    """One line for a file or database that could not be used, most often under ASSISTANT_HOME."""
    from .settings import get_settings, home_error

    home = get_settings().home
    if isinstance(exc, OSError):
        where = f" ({exc.filename})" if exc.filename else ""
        if exc.filename and str(exc.filename).startswith(str(home)):
            return str(home_error(home, exc))
        return f"cannot use a file{where}: {exc.strerror or exc}."
    return (f"a database under ASSISTANT_HOME {home} cannot be read ({exc}). Move the damaged file aside "
            "(for the retrieval index: assistant index --rebuild), or set ASSISTANT_HOME to another directory.")


if __name__ == "__main__":
    sys.exit(main())
