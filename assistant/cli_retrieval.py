"""``assistant index`` and ``assistant search``: argparse wiring over ``assistant.retrieval``.

Light at import time: chromadb and the embedding model load inside the handlers. Errors are
``assistant.errors`` exceptions; ``assistant.cli.main`` prints them as one line on stderr.
"""

from __future__ import annotations

import argparse
import json
import sys
import textwrap
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .retrieval.search import Hit

__all__ = ["add_parsers", "cmd_index", "cmd_search", "format_hits"]

KINDS = ("case", "intervention", "code", "reference")


def add_parsers(sub: Any) -> None:
    p = sub.add_parser(
        "index",
        help="build or refresh the retrieval index (incremental by content hash)",
        description="Build the retrieval index on first use, or refresh it: only chunks whose content "
        "changed are re-embedded; vanished ones are deleted. Indexes the shipped corpus and the user "
        "corpus layered over it (--corpus / ASSISTANT_CORPUS_PATH).",
    )
    group = p.add_mutually_exclusive_group()
    group.add_argument("--rebuild", action="store_true", help="drop the index and build it again")
    group.add_argument("--status", action="store_true", help="show what is indexed; change nothing")
    p.add_argument("--format", default="text", choices=["text", "json"])
    p.set_defaults(handler=cmd_index)

    p = sub.add_parser(
        "search",
        help="search the corpus (hybrid dense + BM25)",
        description="Search cases, interventions, codes and references. Each hit shows the fused "
        "score and each retriever's rank, so you can see why it matched.",
    )
    p.add_argument("query", metavar="QUERY", nargs="+", help="what you are looking for")
    p.add_argument("--kind", choices=KINDS, help="only this kind of document")
    p.add_argument("--theme", help="only this theme: leadership, strategy, structure or people")
    p.add_argument("--country", help="only cases from this country")
    p.add_argument("-k", type=int, default=8, metavar="N", help="number of results (default 8)")
    p.add_argument(
        "--mode", default="hybrid", choices=["hybrid", "dense", "bm25"], help=argparse.SUPPRESS
    )
    p.add_argument("--format", default="text", choices=["text", "json"])
    p.set_defaults(handler=cmd_search)


def _damaged_local_index(exc: Exception) -> bool:
    """Is this the embedded index under ASSISTANT_HOME failing to open (not a Chroma server down)?"""
    from .errors import StoreUnavailableError
    from .settings import get_settings

    return isinstance(exc, StoreUnavailableError) and not get_settings().chroma_url and "embedded" in str(exc)


def _as_state_problem(exc: Exception) -> Exception:
    """A damaged embedded index is broken state, not a run-time failure: one line, exit 2."""
    from .errors import ConfigError, StoreUnavailableError

    if _damaged_local_index(exc):
        assert isinstance(exc, StoreUnavailableError)
        return ConfigError(exc.message, hint="Run `assistant index` to rebuild it.")
    return exc


def _check_home() -> None:
    """An embedded index needs a usable ASSISTANT_HOME: say so in one line before loading anything."""
    from .settings import get_settings

    settings = get_settings()
    if not settings.chroma_url:
        settings.state_dir("index")


def cmd_index(args: argparse.Namespace) -> int:
    from .errors import StoreUnavailableError

    _check_home()
    try:
        return _index(args)
    except StoreUnavailableError as exc:
        if args.status or not _damaged_local_index(exc):
            raise _as_state_problem(exc) from exc
        print(f"assistant: {exc.message}; rebuilding it.", file=sys.stderr)
        args.rebuild = True
        return _index(args)


def _index(args: argparse.Namespace) -> int:
    from .retrieval.retriever import Retriever

    with Retriever() as retriever:
        if args.status:
            status = retriever.status()
            if args.format == "json":
                print(json.dumps(status.to_dict(), indent=2))
                return 0
            state = (
                "up to date"
                if status.up_to_date
                else (
                    "stale: run `assistant index`"
                    if status.built
                    else "not built: run `assistant index`"
                )
            )
            print(f"index:      {state}")
            print(f"store:      {status.mode} at {status.location}")
            print(f"collection: {status.collection}")
            print(f"embedder:   {status.embedder} ({status.model})")
            print(f"chunks:     {status.dense_chunks} dense, {status.lexical_chunks} lexical")
            print(f"refreshed:  {status.refreshed_at or 'never'}")
            print(f"corpus:     {', '.join(status.corpus_paths)}")
            if status.other_collections:
                print(
                    f"other collections (other embedding models): {', '.join(status.other_collections)}"
                )
            return 0
        report = retriever.refresh(rebuild=args.rebuild)
    if args.format == "json":
        print(json.dumps(report.to_dict(), indent=2))
    else:
        print(report.summary())
    return 0


def cmd_search(args: argparse.Namespace) -> int:
    from .errors import BadInputError, StoreUnavailableError
    from .retrieval.retriever import Retriever

    if args.k < 1:
        raise BadInputError(f"-k must be at least 1, not {args.k}.")
    _check_home()
    try:
        with Retriever() as retriever:
            hits = retriever.search(
                " ".join(args.query),
                k=args.k,
                kind=args.kind,
                theme=args.theme,
                country=args.country,
                mode=args.mode,
            )
    except StoreUnavailableError as exc:
        raise _as_state_problem(exc) from exc
    if args.format == "json":
        print(json.dumps([h.to_dict() for h in hits], indent=2, ensure_ascii=False))
    else:
        print(format_hits(hits))
    return 0


def format_hits(hits: list[Hit]) -> str:
    if not hits:
        return "No matches."
    width = max(len(h.id) for h in hits)
    lines = [
        f"{'#':>2}  {'id':<{width}}  {'kind':<12}  {'fused':>6}  {'dense':>5}  {'bm25':>4}  title"
    ]
    for n, h in enumerate(hits, start=1):
        dense = str(h.dense_rank) if h.dense_rank is not None else "-"
        bm25 = str(h.bm25_rank) if h.bm25_rank is not None else "-"
        title = h.title + (f" — {h.section}" if h.section else "")
        lines.append(
            f"{n:>2}  {h.id:<{width}}  {h.kind:<12}  {h.score:6.4f}  {dense:>5}  {bm25:>4}  {title}"
        )
        snippet = " ".join(h.text.split("\n", 1)[-1].split())
        lines.append("    " + textwrap.shorten(snippet, width=110, placeholder=" ..."))
    return "\n".join(lines)


if __name__ == "__main__":  # pragma: no cover
    sys.exit("use: assistant index | assistant search QUERY")
