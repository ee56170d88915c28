"""``assistant eval``: run, score, report, compare, gate, retrieval, scorers.

A thin layer over ``runner``, ``report``, ``compare`` and ``gate``; each handler imports
what it needs, so ``assistant --help`` stays fast.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from ..cli_core import show_usage, write_output

__all__ = ["add_parsers"]


def _default_dataset() -> str | None:
    from ..settings import PACKAGE_ROOT

    dev = PACKAGE_ROOT.parent / "evals" / "datasets" / "dev"
    return str(dev) if dev.is_dir() else None


def add_parsers(sub: Any) -> None:
    p = sub.add_parser("eval", help="evaluate the advisor against reference critiques",
                       description="Run the advisor over reference plans, score it, report, compare runs and "
                                   "check the quality bars. See docs/evals.md.")
    ev = p.add_subparsers(dest="eval_command", metavar="ACTION")
    p.set_defaults(handler=lambda a: show_usage(p))

    r = ev.add_parser("run", help="generate critiques for a dataset, save the run, score it",
                      description="Generate a critique for every sample (resuming an interrupted run), save the "
                                  "run record, then score it.")
    r.add_argument("--dataset", "-d", default=_default_dataset(), metavar="DIR",
                   help="a directory of sample YAML files, or one file (default: evals/datasets/dev)")
    r.add_argument("--backend", "-b", default="offline", choices=["offline", "llm"])
    r.add_argument("--model", "-m", help="litellm model string for --backend llm (default: ASSISTANT_MODEL)")
    r.add_argument("--reading", default="own", choices=["own", "gold"],
                   help="gold: judge each sample on its own gold actions, to measure the judgement apart from "
                        "the reading (default: own, the advisor reads the plan)")
    r.add_argument("--concurrency", "-j", type=int, default=None,
                   help="samples generated at once (default: 2 offline, 4 llm)")
    r.add_argument("--limit", "-n", type=int, help="only the first K samples")
    r.add_argument("--out", "-o", metavar="RUN.json",
                   help="where to save the run (default: ASSISTANT_HOME/evals/runs/<run id>.json); "
                        "an unfinished run there is resumed, a finished one replaced")
    r.add_argument("--fresh", action="store_true", help="start again instead of resuming an unfinished run")
    r.add_argument("--scorers", nargs="+", metavar="NAME", help="scorers to run (default: all but llm_judge)")
    r.add_argument("--judge-model", metavar="MODEL", help="also score with the LLM judge, using this model")
    r.add_argument("--no-cache", action="store_true", help="do not reuse cached LLM generations")
    r.add_argument("--gate", action="store_true", help="then check the quality bars; exit 1 if any is missed")
    r.add_argument("--thresholds", metavar="FILE", help="bars for --gate (default: evals/thresholds.yaml)")
    r.add_argument("--strict", action="store_true", help="with --gate: known misses fail too")
    r.add_argument("--quiet", "-q", action="store_true", help="no progress bar or summary table")
    r.set_defaults(handler=cmd_run)

    s = ev.add_parser("score", help="score a saved run again, without generating")
    s.add_argument("run", metavar="RUN", help="a run record (JSON)")
    s.add_argument("--scorers", nargs="+", metavar="NAME", help="scorers to run (default: the run's own)")
    s.add_argument("--dataset", "-d", metavar="DIR", help="the dataset, if it moved since the run")
    s.add_argument("--judge-model", metavar="MODEL", help="also score with the LLM judge, using this model")
    s.add_argument("--out", "-o", metavar="RUN.json", help="save the re-scored run here (default: in place)")
    s.add_argument("--quiet", "-q", action="store_true")
    s.set_defaults(handler=cmd_score)

    rep = ev.add_parser("report", help="show a run as a table, Markdown or a self-contained HTML page")
    rep.add_argument("run", metavar="RUN")
    rep.add_argument("--format", "-f", default="table", help="table | markdown | html (default: table)")
    rep.add_argument("--out", "-o", metavar="FILE", help="write to FILE instead of standard output")
    rep.add_argument("--dataset", "-d", metavar="DIR", help="the dataset, if it moved since the run")
    rep.add_argument("--thresholds", metavar="FILE", help="bars to show (default: evals/thresholds.yaml)")
    rep.set_defaults(handler=cmd_report)

    c = ev.add_parser("compare", help="compare two runs sample by sample",
                      description="Metric deltas over the samples both runs share, and the samples that got "
                                  "worse and better. Exit 1 with --fail-on-regression when a metric got worse by "
                                  "more than the tolerance.")
    c.add_argument("run_a", metavar="RUN_A", help="the baseline")
    c.add_argument("run_b", metavar="RUN_B", help="the candidate")
    c.add_argument("--fail-on-regression", action="store_true", help="exit 1 if any metric regressed")
    c.add_argument("--tolerance", "-t", type=float, default=0.01,
                   help="how far a metric may move the wrong way before it counts (default: 0.01)")
    c.add_argument("--format", "-f", default="text", choices=["text", "markdown"])
    c.set_defaults(handler=cmd_compare)

    g = ev.add_parser("gate", help="check a run against the quality bars (exit 1 if any is missed)",
                      description="Check a run against the bars in evals/thresholds.yaml. Exit 1 when a bar is "
                                  "missed, unless the file records it as a known miss and the run is no worse "
                                  "than that entry's floor.")
    g.add_argument("run", metavar="RUN")
    g.add_argument("--thresholds", metavar="FILE", help="default: evals/thresholds.yaml")
    g.add_argument("--strict", action="store_true",
                   help="fail on known misses too (bars recorded in the thresholds file as not met yet)")
    g.set_defaults(handler=cmd_gate)

    ret = ev.add_parser("retrieval", help="recall@5 and MRR of dense, BM25 and hybrid retrieval",
                        description="Run the labelled retrieval queries through dense, BM25 and hybrid search "
                                    "and report recall@5, MRR and hit@5 for each.")
    ret.add_argument("--queries", metavar="FILE", help="default: evals/retrieval/queries.yaml")
    ret.add_argument("--modes", nargs="+", choices=["hybrid", "dense", "bm25"], help="default: all three")
    ret.add_argument("--format", "-f", default="text", choices=["text", "json"])
    ret.add_argument("--out", "-o", metavar="FILE", help="write the report here instead of standard output")
    ret.add_argument("--misses", action="store_true", help="list hybrid's misses with their top 5")
    ret.add_argument("--gate", action="store_true",
                     help="exit 1 unless hybrid recall@5 >= 0.90 and at least as good as each alone")
    ret.set_defaults(handler=cmd_retrieval)

    v = ev.add_parser("validate", help="check reference samples: schema, strings in the plan, real-plan rules",
                      description="Load every sample under the given paths and list what is wrong with each: "
                                  "schema errors, evidence and gold texts that are not in the plan, unknown "
                                  "interventions, and for samples tagged 'real' the real-plan rules of "
                                  "docs/coding-guide.md. Exit 1 when anything is wrong.")
    v.add_argument("paths", nargs="+", metavar="PATH", help="sample YAML files or directories of them")
    v.set_defaults(handler=cmd_validate)

    ag = ev.add_parser("agreement", help="how far a second, blind reading agrees with the references",
                       description="Compare second readings (Reading contract plus the reader's verdict, one "
                                   "YAML per sample) with their samples' references and gold actions, and print "
                                   "the agreement as Markdown: verdict, finding kinds, evidence, interventions, "
                                   "action F1 and Cohen's kappa for theme and orientation.")
    ag.add_argument("readings", metavar="DIR", help="a directory of second readings (<sample id>.yaml)")
    ag.add_argument("--dataset", "-d", nargs="+", required=True, metavar="DIR",
                    help="where the samples are (searched recursively; the split is the sample's folder)")
    ag.add_argument("--title", default="Agreement between two independent readings")
    ag.add_argument("--preamble", metavar="FILE", help="Markdown to put before the figures")
    ag.add_argument("--out", "-o", metavar="FILE", help="write the Markdown here instead of stdout")
    ag.set_defaults(handler=cmd_agreement)

    sc = ev.add_parser("scorers", help="list the scorers and the metrics they report")
    sc.set_defaults(handler=cmd_scorers)


def _gate(record: Any, thresholds: str | None, strict: bool = False) -> int:
    from .gate import check_gate, load_thresholds

    results = check_gate(record, load_thresholds(Path(thresholds) if thresholds else None), strict=strict)
    blocking = [r for r in results if r.blocks]
    known = [r for r in results if r.known_miss]
    for r in results:
        print(f"{r.status:<10}  {r.describe()}")
    if record.status != "complete":
        print(f"gate: run {record.run_id} is not complete ({record.status})", file=sys.stderr)
        return 1
    if blocking:
        print(f"gate: {len(blocking)} of {len(results)} bars missed: {', '.join(r.metric for r in blocking)}",
              file=sys.stderr)
        return 1
    if known:
        print(f"gate: passed with {len(known)} known miss(es) of {len(results)} bars, none past its floor: "
              f"{', '.join(r.metric for r in known)} (--strict fails on them)")
        return 0
    print(f"gate: all {len(results)} bars met")
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    from ..errors import BadInputError
    from .report import render_report
    from .runner import RunOptions, run_eval

    if not args.dataset:
        raise BadInputError("No dataset given.", hint="Pass --dataset DIR.")
    concurrency = args.concurrency or (2 if args.backend == "offline" else 4)
    if concurrency < 1:
        raise BadInputError("--concurrency must be at least 1.")
    options = RunOptions(dataset=Path(args.dataset), backend=args.backend, model=args.model,
                         concurrency=concurrency, limit=args.limit, out=Path(args.out) if args.out else None,
                         scorers=args.scorers, judge_model=args.judge_model, fresh=args.fresh,
                         progress=not args.quiet and sys.stderr.isatty(), cache=not args.no_cache,
                         reading=args.reading)

    def saved(path: Path) -> None:
        if not args.quiet:
            print(f"run record: {path}", file=sys.stderr)

    record, path = run_eval(options, on_saved=saved)
    if not args.quiet:
        sys.stdout.write(render_report(record, "table"))
    print(f"saved {path}", file=sys.stderr)
    if args.gate:
        return _gate(record, args.thresholds, args.strict)
    return 0


def cmd_score(args: argparse.Namespace) -> int:
    from .report import render_report
    from .runner import rescore

    record, path = rescore(Path(args.run), scorers=args.scorers, dataset=Path(args.dataset) if args.dataset else None,
                           judge_model=args.judge_model, out=Path(args.out) if args.out else None,
                           progress=not args.quiet and sys.stderr.isatty())
    if not args.quiet:
        sys.stdout.write(render_report(record, "table"))
    print(f"saved {path}", file=sys.stderr)
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    from ..errors import UnknownIdError
    from .records import load_record
    from .report import FORMATS, render_report

    fmt = args.format.lower()
    if fmt not in FORMATS:
        raise UnknownIdError("report format", fmt, FORMATS)
    record = load_record(args.run)
    text = render_report(record, fmt, thresholds_path=Path(args.thresholds) if args.thresholds else None,
                         dataset=Path(args.dataset) if args.dataset else None)
    write_output(text, args.out)
    if args.out:
        print(f"wrote {args.out}", file=sys.stderr)
    return 0


def cmd_compare(args: argparse.Namespace) -> int:
    from ..errors import BadInputError
    from .compare import compare_runs, render_comparison
    from .records import load_record

    if args.tolerance < 0:
        raise BadInputError("--tolerance must not be negative.")
    cmp = compare_runs(load_record(args.run_a), load_record(args.run_b), tolerance=args.tolerance)
    sys.stdout.write(render_comparison(cmp, markdown=args.format == "markdown"))
    if args.fail_on_regression and cmp.regressions:
        for metric, samples in cmp.regressed_samples().items():
            print(f"regression: {metric}: {', '.join(samples) or 'no single sample'}", file=sys.stderr)
        return 1
    return 0


def cmd_gate(args: argparse.Namespace) -> int:
    from .records import load_record

    return _gate(load_record(args.run), args.thresholds, args.strict)


def cmd_retrieval(args: argparse.Namespace) -> int:
    from ..retrieval.evaluate import evaluate_retrieval
    from ..retrieval.search import SEARCH_MODES

    report = evaluate_retrieval(queries_path=Path(args.queries) if args.queries else None,
                                modes=tuple(args.modes) if args.modes else SEARCH_MODES)
    text = report.model_dump_json(indent=1) if args.format == "json" else report.table()
    if args.misses and args.format == "text" and "hybrid" in report.modes:
        text += "\n" + "\n".join(f"  miss {qid}: {', '.join(top)}" for qid, top in report.misses())
    write_output(text, args.out)
    if args.gate and not report.hybrid_meets_target:
        print("retrieval: hybrid recall@5 is below its target", file=sys.stderr)
        return 1
    return 0


def cmd_validate(args: argparse.Namespace) -> int:
    from ..errors import BadInputError
    from ..knowledge import load_corpus
    from .dataset import load_sample, real_sample_problems, sample_problems, split_problems

    files: list[Path] = []
    for raw in args.paths:
        path = Path(raw)
        if not path.exists():
            raise BadInputError(f"{path} does not exist.")
        files += (sorted(f for f in path.rglob("*.yaml") if f.parent.name != "second-reading")
                  if path.is_dir() else [path])
    known = load_corpus().interventions
    problems: list[str] = []
    splits: dict[str, list[Any]] = {}
    for f in files:
        try:
            loaded = load_sample(f)
        except BadInputError as exc:
            problems.append(str(exc))
            continue
        problems += sample_problems(loaded, known)
        if "real" in loaded.sample.tags:
            problems += real_sample_problems(loaded)
            splits.setdefault(f.parent.name, []).append(loaded)
    problems += split_problems(splits)
    for line in problems:
        print(line)
    print(f"{len(files)} sample(s), {len(problems)} problem(s)", file=sys.stderr)
    return 1 if problems else 0


def cmd_agreement(args: argparse.Namespace) -> int:
    from .second_reading import (
        agreement_report,
        compare_second_reading,
        find_sample,
        load_second_readings,
    )

    roots = [Path(d) for d in args.dataset]
    rows = []
    for reading in load_second_readings(Path(args.readings)):
        loaded, split = find_sample(roots, reading.id)
        rows.append(compare_second_reading(loaded, reading, split))
    preamble = Path(args.preamble).read_text(encoding="utf-8") if args.preamble else ""
    write_output(agreement_report(rows, title=args.title, preamble=preamble), args.out)
    return 0


def cmd_scorers(args: argparse.Namespace) -> int:
    from .scorers import SCORERS

    for s in SCORERS.values():
        print(f"{s.name}{'' if s.default else ' (opt-in)'}: {s.description}")
        for m in s.metrics:
            print(f"    {m.name}{'' if m.higher_is_better else ' (lower is better)'}: {m.description}")
    return 0
