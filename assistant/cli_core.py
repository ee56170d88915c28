"""Core subcommands: critique, framework, cases, corpus validate, coder train, ranker train, doctor.

Kept light at import time: each handler imports what it needs.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any

__all__ = ["add_parsers", "show_usage", "write_output"]

FORMATS = ("json", "markdown", "text")


def add_parsers(sub: Any) -> None:
    p = sub.add_parser("critique", help="critique a plan (offline by default)",
                       description="Critique a transformation plan for structural overuse and suggest relational "
                                   "interventions. Offline and deterministic unless --model is given.")
    p.add_argument("plan", metavar="PLAN", help="a .txt, .md, .docx or .pdf file, or - for standard input")
    p.add_argument("--format", "-f", default="text", help="json | markdown | text (default: text)")
    p.add_argument("--model", help="a litellm model string (e.g. ollama/llama3.1); default: ASSISTANT_MODEL or offline")
    p.add_argument("--api-base", help="base URL of the model provider (ASSISTANT_API_BASE)")
    p.add_argument("--no-cache", action="store_true", help="do not use the on-disk LLM response cache")
    p.add_argument("--reading", metavar="FILE",
                   help="judge the plan on this reading (YAML or JSON: actions with text, theme, orientation, "
                        "horizon, concrete; PRODUCT.md 4b) instead of the advisor's own")
    p.add_argument("--out", "-o", metavar="FILE", help="write to FILE instead of standard output")
    p.set_defaults(handler=cmd_critique)

    p = sub.add_parser("framework", help="show the coding scheme (provenance first)")
    p.add_argument("--format", default="text", choices=["text", "json"])
    p.set_defaults(handler=cmd_framework)

    p = sub.add_parser("cases", help="list the coded cases, or show one")
    p.add_argument("id", nargs="?", help="a case id such as torbay")
    p.add_argument("--format", default="text", choices=["text", "json"])
    p.set_defaults(handler=cmd_cases)

    p = sub.add_parser("corpus", help="corpus tools")
    corpus_sub = p.add_subparsers(dest="corpus_command", metavar="ACTION")
    v = corpus_sub.add_parser("validate", help="validate the corpus (shipped, or PATH layered over it)")
    v.add_argument("path", nargs="?", help="a user corpus directory to validate over the shipped one")
    v.set_defaults(handler=cmd_corpus_validate)
    p.set_defaults(handler=lambda a: show_usage(p))

    p = sub.add_parser("coder", help="the action coder")
    coder_sub = p.add_subparsers(dest="coder_command", metavar="ACTION")
    t = coder_sub.add_parser("train", help="fit the coder to the corpus in use")
    t.add_argument("--dataset", action="append", default=[], metavar="DIR",
                   help="also train the theme x orientation head on the gold-coded actions of these eval datasets")
    t.add_argument("--actions", action="append", default=[], metavar="FILE",
                   help="also train the theme x orientation head on a YAML list of labelled actions "
                        "(actions: [{text, theme, orientation}])")
    t.add_argument("--out", metavar="FILE", help="where to save (default: ASSISTANT_HOME/coder/coder.npz)")
    t.add_argument("--shipped", action="store_true", help="write the model shipped with the package (maintainers)")
    t.set_defaults(handler=cmd_coder_train)
    d = coder_sub.add_parser("train-detector", help="fit the action detector to gold-coded plans",
                             description="Fit the model that decides which sentences, list items and table rows "
                                         "of a plan are actions, on the gold-coded actions of these datasets; "
                                         "choose its threshold by plan-grouped cross-validation and report it.")
    d.add_argument("--dataset", action="append", default=[], metavar="DIR", required=True,
                   help="eval datasets with gold actions (repeatable); DIR=W weights a dataset's plans by W")
    d.add_argument("--cv", type=int, default=5, metavar="K", help="plan-grouped folds for the threshold (default 5)")
    d.add_argument("--out", metavar="FILE", help="where to save (default: ASSISTANT_HOME/coder/detector.npz)")
    d.add_argument("--shipped", action="store_true", help="write the model shipped with the package (maintainers)")
    d.set_defaults(handler=cmd_detector_train)
    p.set_defaults(handler=lambda a: show_usage(p))

    p = sub.add_parser("ranker", help="the intervention ranker")
    ranker_sub = p.add_subparsers(dest="ranker_command", metavar="ACTION")
    t = ranker_sub.add_parser("train", help="fit the intervention ranker to reference critiques")
    t.add_argument("--dataset", action="append", default=[], metavar="DIR", required=True,
                   help="eval datasets whose reference critiques name the interventions to learn from (repeatable)")
    t.add_argument("--cv", type=int, default=0, metavar="K",
                   help="also report K-fold cross-validated recall and precision on these references")
    t.add_argument("--out", metavar="FILE", help="where to save (default: ASSISTANT_HOME/ranker/ranker.json)")
    t.add_argument("--shipped", action="store_true", help="write the model shipped with the package (maintainers)")
    t.set_defaults(handler=cmd_ranker_train)
    p.set_defaults(handler=lambda a: show_usage(p))

    p = sub.add_parser("doctor", help="what is configured and what is reachable")
    p.set_defaults(handler=cmd_doctor)


def show_usage(parser: argparse.ArgumentParser) -> int:
    """A command group run without a subcommand: its help on stderr, exit code 2."""
    parser.print_help(sys.stderr)
    return 2


def write_output(text: str, out: str | None) -> None:
    """Write a command's result to ``out`` (creating its folder) or to stdout."""
    if out:
        Path(out).parent.mkdir(parents=True, exist_ok=True)
        Path(out).write_text(text, encoding="utf-8")
    else:
        sys.stdout.write(text if text.endswith("\n") else text + "\n")


def _load_reading(path: Path) -> Any:
    """A reading file (YAML or JSON, the Reading contract), validated, or one clear error."""
    import yaml
    from pydantic import ValidationError

    from .domain import PlanReading
    from .errors import BadInputError

    if not path.is_file():
        raise BadInputError(f"{path} does not exist.", hint="Give a YAML or JSON reading file.")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))  # JSON is YAML too
        return PlanReading.model_validate(data if isinstance(data, dict) else {"actions": data})
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(x) for x in first["loc"])
        raise BadInputError(f"{path} is not a valid reading: {where}: {first['msg']}",
                            hint="Give actions: [{text, theme, orientation, horizon, concrete}] (PRODUCT.md 4b).") from exc
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        raise BadInputError(f"{path} is not a valid reading: {str(exc).splitlines()[0]}",
                            hint="Give actions: [{text, theme, orientation, horizon, concrete}] (PRODUCT.md 4b).") from exc


def cmd_critique(args: argparse.Namespace) -> int:
    from .errors import UnknownIdError

    fmt = args.format.lower()
    if fmt not in FORMATS:
        raise UnknownIdError("output format", fmt, FORMATS)
    if args.api_base:
        os.environ["ASSISTANT_API_BASE"] = args.api_base
    if args.no_cache:
        os.environ["ASSISTANT_CACHE"] = "false"
    from .settings import get_settings

    get_settings.cache_clear()
    from .reading import read_plan

    doc = read_plan(args.plan)  # bad input fails before any model loads
    reading = _load_reading(Path(args.reading)) if args.reading else None
    from .advice.advisor import get_advisor

    if reading is not None:
        critique = get_advisor().critique_offline(doc, reading=reading)
    else:
        critique = get_advisor().critique(doc, model=args.model)
    if critique.backend.startswith("offline (fallback"):
        print(f"assistant: the model's critique could not be used; showing the offline critique "
              f"({critique.backend}).", file=sys.stderr)
    if fmt == "json":
        write_output(critique.model_dump_json(indent=2), args.out)
    elif fmt == "markdown":
        from .advice.render import critique_markdown

        write_output(critique_markdown(critique), args.out)
    else:
        from .advice.render import critique_text

        color = sys.stdout.isatty() and "NO_COLOR" not in os.environ and not args.out
        write_output(critique_text(critique, color=color), args.out)
    return 0


def cmd_framework(args: argparse.Namespace) -> int:
    from .knowledge import load_corpus

    corpus = load_corpus()
    fw = corpus.framework
    if args.format == "json":
        write_output(fw.model_dump_json(indent=2), None)
        return 0
    out = ["PROVENANCE", "", fw.provenance.statement.strip(), "",
           "From the paper: " + "; ".join(fw.provenance.from_paper),
           "Ours: " + "; ".join(fw.provenance.ours), "", "THEMES", ""]
    out += [f"  {t.id}: {t.definition}" for t in fw.themes]
    out += ["", "ORIENTATIONS", ""] + [f"  {o.id}: {o.definition}" for o in fw.orientations]
    out += ["", f"CODES ({len(fw.codes)})", ""]
    for code in sorted(fw.codes, key=lambda c: c.id):
        out.append(f"  {code.id} — {code.label}")
    out += ["", "FINDING KINDS", ""]
    for k in fw.finding_kinds:
        out.append(f"  {k.id}: {k.definition}")
        out.append(f"      usually answered by: {', '.join(k.interventions)}")
    write_output("\n".join(out), None)
    return 0


def cmd_cases(args: argparse.Namespace) -> int:
    from .errors import UnknownIdError
    from .knowledge import load_corpus

    corpus = load_corpus()
    if args.id is None:
        if args.format == "json":
            write_output(json.dumps([{"id": c.ref_id, "name": c.name, "country": c.country, "years": c.years,
                                "confidence": c.confidence} for c in corpus.cases.values()], indent=2), None)
        else:
            for c in sorted(corpus.cases.values(), key=lambda c: c.id):
                print(f"{c.id:<26} {c.name} ({c.country}, {c.years}) [confidence: {c.confidence}]")
        return 0
    key = args.id.removeprefix("case:")
    if key not in corpus.cases:
        raise UnknownIdError("case", args.id, list(corpus.cases))
    case = corpus.cases[key]
    if args.format == "json":
        write_output(case.model_dump_json(indent=2), None)
        return 0
    out = [f"{case.name} — {case.country}, {case.years}", f"{case.organisation_type}; confidence: {case.confidence}",
           f"Estimated relational share: {round(case.balance.relational_share * 100)}% — {case.balance.reasoning}", "",
           case.body, "", "Lessons:"] + [f"  - {x}" for x in case.lessons]
    if case.unconfirmed:
        out += ["", "Unconfirmed (no source found):"] + [f"  - {x}" for x in case.unconfirmed]
    out += ["", "Sources:"] + [f"  - {s.url}" for s in case.sources]
    write_output("\n".join(out), None)
    return 0


def cmd_corpus_validate(args: argparse.Namespace) -> int:
    from .knowledge import validate_corpus
    from .settings import get_settings, shipped_corpus_path

    paths = [shipped_corpus_path()]
    if args.path:
        paths.append(Path(args.path))
    elif get_settings().corpus_path:
        paths = get_settings().corpus_paths
    for p in paths:
        if not p.is_dir():
            print(f"assistant: {p}: not a directory", file=sys.stderr)
            return 2
    problems = validate_corpus(paths)
    if problems:
        for problem in problems:
            print(f"{problem}", file=sys.stderr)
        print(f"assistant: {len(problems)} problem(s) in the corpus.", file=sys.stderr)
        return 2
    from .knowledge import load_corpus

    c = load_corpus(paths)
    print(f"Corpus valid: {len(c.codes)} codes, {len(c.framework.finding_kinds)} finding kinds, "
          f"{len(c.interventions)} interventions, {len(c.references)} references, {len(c.cases)} cases "
          f"({', '.join(str(p) for p in c.paths)}).")
    return 0


def cmd_coder_train(args: argparse.Namespace) -> int:
    from .analysis.coder import SHIPPED_MODEL, train_coder
    from .knowledge import load_corpus
    from .settings import get_settings

    corpus = load_corpus()
    cell_extra: list[Any] = []
    concrete_extra: list[tuple[str, bool]] = []
    for ds in args.dataset:
        from .evals.dataset import load_dataset

        for s in load_dataset(Path(ds)).samples:
            # actions coded in the context of a whole plan count more than a loose list of actions
            cell_extra += [(g.text, g.theme, g.orientation, 2.0) for g in s.sample.gold_actions]
            # whether a relational action names a mechanism: what the verdict's effective share counts
            concrete_extra += [(g.text, g.concrete) for g in s.sample.gold_actions
                               if g.orientation != "structural" and g.concrete is not None]
    for path in args.actions:
        cell_extra += _labelled_actions(Path(path))
    model = train_coder(corpus, cell_extra=cell_extra, concrete_extra=concrete_extra)
    out = SHIPPED_MODEL if args.shipped else Path(args.out or get_settings().home / "coder" / "coder.npz")
    model.save(out)
    print(f"Coder trained on {model.meta['examples']} scheme examples and {len(cell_extra)} labelled actions "
          f"({len(concrete_extra)} relational ones marked concrete or not); saved to {out}.")
    return 0


def cmd_detector_train(args: argparse.Namespace) -> int:
    from .analysis.coder import EMBEDDER
    from .analysis.detector import SHIPPED_DETECTOR, train_detector
    from .analysis.segment import segment_plan
    from .evals.agreement import segment_labels
    from .evals.dataset import load_dataset
    from .retrieval.embeddings import get_embedder
    from .settings import get_settings

    plans = []
    names = []
    for spec in args.dataset:
        path, _, weight = spec.partition("=")
        names.append(spec)
        for s in load_dataset(Path(path)).samples:
            if not s.sample.gold_actions:
                continue
            segments = segment_plan(s.text)
            labels = segment_labels(s.text, [(g.start, g.end) for g in segments],
                                    [g.text for g in s.sample.gold_actions])
            plans.append((segments, labels, float(weight or 1.0)))
    fit = train_detector(plans, get_embedder(EMBEDDER).embed, folds=args.cv,
                         meta={"datasets": names, "plans": len(plans)})
    out = SHIPPED_DETECTOR if args.shipped else Path(args.out or get_settings().home / "coder" / "detector.npz")
    fit.model.save(out)
    cv = fit.cv
    print(f"Detector trained on {cv['segments']} segments of {len(plans)} plans; {cv['folds']}-fold cross-validated "
          f"(plan-grouped): precision {cv['precision']:.3f}, recall {cv['recall']:.3f}, F1 {cv['f1']:.3f} at "
          f"threshold {cv['threshold']:.3f} (the segmenter's rules alone: F1 {cv['rules_f1']:.3f}); saved to {out}.")
    return 0


def cmd_ranker_train(args: argparse.Namespace) -> int:
    from .advice.advisor import Advisor
    from .advice.ranking import (
        SHIPPED_RANKER,
        PlanFacts,
        TrainingPlan,
        cross_validate,
        score_ranker,
        train_ranker,
    )
    from .evals.dataset import load_dataset
    from .settings import get_settings

    advisor = Advisor()
    plans: list[TrainingPlan] = []
    for ds in args.dataset:
        for s in load_dataset(Path(ds)).samples:
            a = advisor.assess(s.text, s.sample.title)
            facts = PlanFacts.of(a.analysis, a.detections, a.verdict.structural_overuse)
            plans.append(TrainingPlan(s.sample.id, facts, frozenset(s.sample.reference.interventions)))
    model = train_ranker(advisor.corpus, plans, meta={"datasets": [Path(d).as_posix() for d in args.dataset]})
    fit = score_ranker(advisor.corpus, model, plans)
    print(f"Ranker trained on {len(plans)} reference critiques ({model.meta['pairs']} plan x intervention pairs); "
          f"on them (in-sample): recall {fit.recall:.3f}, precision {fit.precision:.3f}, {fit.picks:.2f} picks a plan.")
    if args.cv:
        cv = cross_validate(advisor.corpus, plans, folds=args.cv)
        print(f"{args.cv}-fold cross-validated: recall {cv.recall:.3f}, precision {cv.precision:.3f}, "
              f"{cv.picks:.2f} picks a plan.")
    out = SHIPPED_RANKER if args.shipped else Path(args.out or get_settings().home / "ranker" / "ranker.json")
    model.save(out)
    print(f"Saved to {out}.")
    return 0


def _labelled_actions(path: Path) -> list[tuple[str, Any, Any, float]]:
    """(text, theme, orientation) triples from a YAML file of labelled actions."""
    import yaml
    from pydantic import BaseModel, ValidationError

    from .domain import Orientation, Theme
    from .errors import BadInputError

    class LabelledAction(BaseModel):
        text: str
        theme: Theme
        orientation: Orientation

    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
        items = [LabelledAction.model_validate(x) for x in raw["actions"]]
    except (OSError, yaml.YAMLError, KeyError, TypeError, ValidationError) as exc:
        raise BadInputError(f"{path}: not a list of labelled actions ({exc}).",
                            hint="Give a YAML file with actions: [{text, theme, orientation}].") from exc
    return [(a.text, a.theme, a.orientation, 1.0) for a in items]


def cmd_doctor(args: argparse.Namespace) -> int:
    import platform

    from .settings import get_settings

    s = get_settings()
    ok = True
    print(f"Transformation Advisor on Python {platform.python_version()}")
    print(f"  state directory (ASSISTANT_HOME): {s.home}")
    try:
        from .knowledge import load_corpus

        c = load_corpus()
        print(f"  corpus: ok — {len(c.codes)} codes, {len(c.interventions)} interventions, {len(c.cases)} cases "
              f"from {', '.join(str(p) for p in c.paths)}")
    except Exception as exc:  # report every failure, keep going
        ok = False
        print(f"  corpus: PROBLEM — {exc}")
    try:
        from .analysis.coder import Coder
        from .knowledge import load_corpus

        Coder(load_corpus())
        print("  coder model: ok (matches the corpus's codes)")
    except Exception as exc:
        ok = False
        print(f"  coder model: PROBLEM — {exc}")
    try:
        from .advice.ranking import InterventionRanker
        from .knowledge import load_corpus

        ranker = InterventionRanker(load_corpus())
        print(f"  intervention ranker: ok (fitted on {ranker.model.meta.get('plans', '?')} reference critiques)")
    except Exception as exc:
        ok = False
        print(f"  intervention ranker: PROBLEM — {exc}")
    try:
        from .retrieval.embeddings import get_embedder

        e = get_embedder(s.embedding)
        e.embed(["test"])
        print(f"  embeddings: ok — {e.id} ({e.model_name}, {e.dimension} dimensions)")
    except Exception as exc:
        ok = False
        print(f"  embeddings: PROBLEM — {exc}")
    print(f"  retrieval store: {'Chroma server at ' + s.chroma_url if s.chroma_url else 'embedded under ' + str(s.home / 'index')}")
    if s.chroma_url:
        import httpx

        try:
            r = httpx.get(s.chroma_url.rstrip("/") + "/api/v2/heartbeat", timeout=s.chroma_timeout)
            print(f"    reachable: {'yes' if r.status_code == 200 else 'HTTP ' + str(r.status_code)}")
        except httpx.HTTPError as exc:
            ok = False
            print(f"    reachable: NO — {exc}")
    if s.model:
        print(f"  model backend: {s.model}" + (f" at {s.api_base}" if s.api_base else ""))
        if s.api_base:
            import httpx

            try:
                r = httpx.get(s.api_base.rstrip("/") + "/models", timeout=5)
                print(f"    reachable: {'yes' if r.status_code < 500 else 'HTTP ' + str(r.status_code)}")
            except httpx.HTTPError as exc:
                ok = False
                print(f"    reachable: NO — {exc}")
    else:
        print("  model backend: offline (set ASSISTANT_MODEL or pass --model to use an LLM)")
    print(f"  API keys configured: {'yes' if (s.api_keys or s.api_keys_file) else 'no'}")
    return 0 if ok else 1
