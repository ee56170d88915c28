"""Run the advisor over a dataset, save the record as it goes, then score it.

Generation and scoring are separate steps (Inspect AI's split): ``run_eval`` generates each
sample's critique (in threads, at most ``concurrency`` at once), writes the record after every
sample so an interrupted run resumes where it stopped, then scores it; ``rescore`` scores a
saved record again without generating anything.
"""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import logging
import platform
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from ..domain import Critique, PlanReading, ReadingAction
from ..errors import BadInputError, ConfigError
from ..settings import PACKAGE_ROOT, get_settings
from .cache import JsonCache
from .dataset import Dataset, LoadedSample, load_dataset, without_injections
from .records import (
    DatasetInfo,
    InjectionControl,
    PromptInfo,
    RunRecord,
    SampleOutput,
    Score,
    TokenUsage,
    load_record,
    new_run_id,
    now,
    save_record,
)
from .scorers import (
    JUDGE_PROMPT_HASH,
    JUDGE_PROMPT_VERSION,
    Item,
    ScoreContext,
    Scorer,
    resolve_scorers,
    score_sample,
)

if TYPE_CHECKING:
    from ..advice.advisor import Advisor
    from ..advice.llm.model import ChatModel

__all__ = ["RunOptions", "aggregate_scores", "default_runs_dir", "rescore", "run_eval", "score_record"]

log = logging.getLogger(__name__)
Backend = Literal["offline", "llm"]


@dataclass
class RunOptions:
    dataset: Path
    backend: Backend = "offline"
    model: str | None = None
    concurrency: int = 4
    limit: int | None = None
    out: Path | None = None
    scorers: Sequence[str] | None = None
    judge_model: str | None = None
    fresh: bool = False
    progress: bool = True
    cache: bool = True
    chat_model: ChatModel | None = None  # a ChatModel instance instead of --model (tests, notebooks)
    # "gold": judge each sample on its own gold actions, so the judgement is measured apart from the reading
    reading: str = "own"


def default_runs_dir() -> Path:
    return Path(get_settings().state_dir("evals/runs"))


def plan_sha(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


# --- what the run records about itself -----------------------------------------------------------

def prompt_versions() -> dict[str, PromptInfo]:
    """The LLM backend's prompt templates (name -> version, sha256); empty if it has none."""
    try:
        from ..advice.llm.prompts import get_prompts
    except ImportError:
        return {}
    try:
        return {p.name: PromptInfo(version=p.version, hash=p.sha256) for p in get_prompts().available()}
    except Exception as exc:  # a broken prompt directory must not stop an offline eval
        log.warning("could not read prompt versions: %s", exc)
        return {}


def _git_commit() -> str | None:
    try:
        out = subprocess.run(["git", "rev-parse", "--short=12", "HEAD"], cwd=PACKAGE_ROOT.parent,
                             capture_output=True, text=True, timeout=5, check=False)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None if out.returncode == 0 else None


def _environment() -> dict[str, Any]:
    from importlib.metadata import PackageNotFoundError, version

    try:
        pkg = version("transformation-advisor")
    except PackageNotFoundError:
        pkg = None
    return {"python": sys.version.split()[0], "platform": platform.platform(), "package": pkg,
            "git_commit": _git_commit()}


def _settings_for(options: RunOptions, advisor: Advisor) -> dict[str, Any]:
    s = advisor.settings
    out: dict[str, Any] = {
        "concurrency": options.concurrency, "limit": options.limit, "embedding": s.embedding,
        "corpus_fingerprint": advisor.corpus.fingerprint,
        "coder_fingerprint": getattr(getattr(advisor.coder, "model", None), "fingerprint", None),
        # how many gold-coded dataset actions the coder was trained on: >0 means coder figures on
        # that dataset are in-sample
        "coder_training": dict(getattr(getattr(advisor.coder, "model", None), "meta", None) or {}),
        # the datasets whose references the intervention ranker was fitted on (in-sample figures)
        "ranker_training": dict(advisor.ranker.model.meta),
        "reading": options.reading,
    }
    if options.backend == "llm":
        out.update({"api_base": s.api_base, "model_timeout": s.model_timeout, "model_retries": s.model_retries,
                    "max_tokens": s.max_tokens, "cache": options.cache})
    return out


# --- generation ----------------------------------------------------------------------------------

class Generator:
    """Makes one sample's critique (and, for injection samples, the control critique)."""

    def __init__(self, advisor: Advisor, backend: Backend, model: str | None,
                 prompts: dict[str, PromptInfo], cache: JsonCache | None,
                 chat_model: ChatModel | None = None, reading: str = "own") -> None:
        self.advisor = advisor
        self.reading = reading
        self.backend = backend
        self.model = model
        self.chat_model = chat_model
        self.prompts = {k: v.model_dump() for k, v in prompts.items()}
        self.cache = cache

    def _critique(self, text: str, gold: PlanReading | None = None,
                  ) -> tuple[Critique, TokenUsage | None, dict[str, Any] | None, bool]:
        if gold is not None:
            return self.advisor.critique_offline(text, reading=gold), None, None, False
        if self.backend == "offline":
            return self.advisor.critique_offline(text), None, None, False
        key = {"kind": "critique", "model": self.model, "prompts": self.prompts, "plan": text,
               "api_base": self.advisor.settings.api_base}
        if self.cache is not None:
            hit = self.cache.get(key)
            if hit is not None:
                usage = TokenUsage.model_validate(hit["usage"]) if hit.get("usage") else None
                return Critique.model_validate(hit["critique"]), usage, hit.get("llm"), True
        critique, usage, llm = self._critique_with_model(text)
        if self.cache is not None and "fallback" not in critique.backend:
            self.cache.put(key, {"critique": critique.model_dump(mode="json"),
                                 "usage": usage.model_dump() if usage else None, "llm": llm})
        return critique, usage, llm, False

    def _critique_with_model(self, text: str) -> tuple[Critique, TokenUsage, dict[str, Any]]:
        from ..advice.llm.planner import run_critique  # lazy: litellm costs seconds to import
        from ..reading import plan_from_text

        doc = plan_from_text(text, max_chars=self.advisor.settings.max_plan_chars)
        model = self.chat_model if self.chat_model is not None else self.model
        assert model is not None
        run = run_critique(self.advisor, doc, model=model)
        r = run.record
        usage = TokenUsage(prompt_tokens=r.prompt_tokens, completion_tokens=r.completion_tokens, calls=r.calls,
                           cost_usd=r.cost_usd)
        return run.critique, usage, r.model_dump(mode="json")

    def __call__(self, loaded: LoadedSample) -> SampleOutput:
        start = time.perf_counter()
        out = SampleOutput(sample_id=loaded.sample.id, plan_sha=plan_sha(loaded.text))
        gold = self._gold(loaded)
        try:
            out.critique, out.usage, out.llm, out.cached = self._critique(loaded.text, gold)
        except Exception as exc:
            log.debug("sample %s failed", loaded.sample.id, exc_info=True)
            out.error = f"{type(exc).__name__}: {exc}"
        out.seconds = round(time.perf_counter() - start, 4)
        if "injection" in loaded.sample.tags:
            clean, removed = without_injections(loaded)
            control = InjectionControl(removed=removed)
            try:
                critique, control.usage, _, _ = self._critique(clean, gold)
                control.verdict, control.backend = critique.verdict, critique.backend
            except Exception as exc:
                control.error = f"{type(exc).__name__}: {exc}"
            out.injection_control = control
        return out


    def _gold(self, loaded: LoadedSample) -> PlanReading | None:
        """The sample's gold actions as a given reading (with ``reading="gold"``)."""
        if self.reading != "gold":
            return None
        return PlanReading(actions=[ReadingAction(text=g.text, theme=g.theme, orientation=g.orientation,
                                                  horizon=g.horizon, concrete=g.concrete)
                                    for g in loaded.sample.gold_actions])


async def _generate_all(generate: Callable[[LoadedSample], SampleOutput], todo: list[LoadedSample],
                        concurrency: int, on_done: Callable[[SampleOutput], None]) -> None:
    semaphore = asyncio.Semaphore(max(1, concurrency))

    async def one(loaded: LoadedSample) -> None:
        async with semaphore:
            output = await asyncio.to_thread(generate, loaded)
        on_done(output)

    await asyncio.gather(*(one(s) for s in todo))


# --- scoring --------------------------------------------------------------------------------------

def aggregate_scores(record: RunRecord, scorers: Sequence[Scorer]) -> None:
    record.aggregate = {}
    for s in scorers:
        scores: list[Score] = [per[s.name] for per in record.scores.values() if s.name in per]
        record.aggregate.update(s.aggregate(scores))


def _summary(record: RunRecord) -> dict[str, float | int | None]:
    outs = list(record.outputs.values())
    times = sorted(o.seconds for o in outs if o.critique is not None and not o.cached)
    usage = [o.usage for o in outs if o.usage] + [
        o.injection_control.usage for o in outs if o.injection_control and o.injection_control.usage]
    scorer_errors = sum(1 for per in record.scores.values() for sc in per.values() if sc.error)
    return {
        "samples": len(outs),
        "generation_errors": sum(1 for o in outs if o.error),
        "fallbacks": sum(1 for o in outs if o.critique and "fallback" in o.critique.backend),
        "cached": sum(1 for o in outs if o.cached),
        "scorer_errors": scorer_errors,
        "seconds_total": round(sum(o.seconds for o in outs), 3),
        "seconds_p50": round(statistics.median(times), 4) if times else None,
        "seconds_max": round(times[-1], 4) if times else None,
        "prompt_tokens": sum(u.prompt_tokens for u in usage) if usage else None,
        "completion_tokens": sum(u.completion_tokens for u in usage) if usage else None,
        "model_calls": sum(u.calls for u in usage) if usage else None,
        "repaired": sum(1 for o in outs if o.llm and o.llm.get("repaired")) if record.backend == "llm" else None,
        "verdict_flagged": (sum(1 for o in outs if o.llm and o.llm.get("verdict_flagged"))
                            if record.backend == "llm" else None),
    }


def score_record(record: RunRecord, dataset: Dataset, scorers: Sequence[Scorer], ctx: ScoreContext,
                 *, progress: bool = False) -> RunRecord:
    """Score every sample of a record against the dataset; replaces earlier scores."""
    by_id = {s.sample.id: s for s in dataset.samples}
    record.scorers = [s.name for s in scorers]
    record.scores = {}
    from rich.progress import Progress

    with Progress(disable=not progress, transient=True) as bar:
        task = bar.add_task("scoring", total=len(record.outputs))
        for sample_id, output in record.outputs.items():
            loaded = by_id.get(sample_id)
            if loaded is None:
                raise BadInputError(f"Sample {sample_id!r} of run {record.run_id} is not in {dataset.path}.",
                                    hint="Score against the dataset the run was made from (--dataset).")
            if output.plan_sha != plan_sha(loaded.text):
                log.warning("sample %s: the plan changed since the run; scores compare an old critique",
                            sample_id)
            record.scores[sample_id] = score_sample(ctx, scorers, Item(loaded, output))
            bar.advance(task)
    aggregate_scores(record, scorers)
    record.summary = _summary(record)
    if any(s.name == "llm_judge" for s in scorers):
        record.prompts["eval-judge"] = PromptInfo(version=JUDGE_PROMPT_VERSION, hash=JUDGE_PROMPT_HASH)
    return record


def make_context(judge_model: str | None = None, *, corpus_loader: Callable[[], Any] | None = None,
                 judge: ChatModel | None = None) -> ScoreContext:
    ctx = ScoreContext(corpus_loader=corpus_loader, judge=judge)
    if judge is None and judge_model:
        ctx.judge = get_judge_model(judge_model)
    if ctx.judge is not None:
        ctx.judge_cache = JsonCache(get_settings().state_dir("cache/eval-judge"))
    return ctx


def get_judge_model(spec: str) -> ChatModel:
    """The judge through the LLM backend's ChatModel seam (litellm, with its response cache)."""
    from ..advice.llm.litellm_model import get_chat_model

    return get_chat_model(spec)


# --- the run ---------------------------------------------------------------------------------------

def _find_resumable(runs_dir: Path, dataset_hash: str, options: RunOptions) -> Path | None:
    """The newest unfinished run in ``runs_dir`` made with the same dataset, backend and model."""
    for path in sorted(runs_dir.glob("*.json"), key=lambda p: p.stat().st_mtime, reverse=True):
        try:
            record = load_record(path)
        except BadInputError:
            continue
        if (record.status == "running" and record.dataset.hash == dataset_hash
                and record.backend == options.backend and record.model == options.model
                and record.settings.get("limit") == options.limit
                and record.settings.get("reading", "own") == options.reading):
            return path
    return None


def _check_resumable(record: RunRecord, path: Path, dataset: Dataset, options: RunOptions) -> None:
    problems = []
    if record.backend != options.backend:
        problems.append(f"backend {record.backend} != {options.backend}")
    if record.model != options.model:
        problems.append(f"model {record.model} != {options.model}")
    if record.settings.get("reading", "own") != options.reading:
        problems.append(f"reading {record.settings.get('reading', 'own')} != {options.reading}")
    if problems:
        raise BadInputError(f"{path} holds a different run ({'; '.join(problems)}).",
                            hint="Pass --fresh to start it again, or another --out.")
    if record.dataset.hash != dataset.hash:
        log.warning("the dataset changed since %s was started; changed samples are generated again", path)


def run_eval(options: RunOptions, *, advisor: Advisor | None = None, judge: ChatModel | None = None,
             on_saved: Callable[[Path], None] | None = None) -> tuple[RunRecord, Path]:
    """Generate (or resume) a run, save it, score it, save it again. Returns the record and its path."""
    if options.backend == "llm" and options.chat_model is not None and not options.model:
        options = dataclasses.replace(options, model=options.chat_model.name)
    if options.backend == "llm" and not options.model:
        model = get_settings().model
        if not model:
            raise ConfigError("The llm backend needs a model.",
                              hint="Pass --model (e.g. ollama/llama3.1) or set ASSISTANT_MODEL.")
        options = dataclasses.replace(options, model=model)
    if options.backend == "offline" and options.model:
        raise ConfigError("--model is for the llm backend.", hint="Add --backend llm.")
    scorers = resolve_scorers(options.scorers)
    if options.judge_model and not any(s.name == "llm_judge" for s in scorers):
        scorers.append(resolve_scorers(["llm_judge"])[0])
    ctx = make_context(options.judge_model, judge=judge)
    if any(s.name == "llm_judge" for s in scorers) and ctx.judge is None:
        raise ConfigError("The llm_judge scorer needs a judge model.", hint="Pass --judge-model MODEL.")

    dataset = load_dataset(options.dataset)
    samples = dataset.samples[: options.limit] if options.limit else dataset.samples
    if advisor is None:
        from ..advice.advisor import get_advisor

        advisor = get_advisor()
    ctx.corpus_loader = lambda: advisor.corpus

    runs_dir = default_runs_dir()
    path = options.out or (None if options.fresh else _find_resumable(runs_dir, dataset.hash, options))
    record: RunRecord | None = None
    if path is not None and path.exists() and not options.fresh:
        existing = load_record(path)
        if existing.status == "running":  # unfinished: resume it
            _check_resumable(existing, path, dataset, options)
            record = existing
        else:  # a finished run at --out is replaced by a new one, never silently reused
            log.info("replacing the finished run %s at %s", existing.run_id, path)
    prompts = prompt_versions() if options.backend == "llm" else {}
    if record is None:
        backend_name = options.backend
        run_id = new_run_id(backend_name)
        path = path or runs_dir / f"{run_id}.json"
        record = RunRecord(run_id=run_id, created=now(), updated=now(), backend=options.backend,
                           model=options.model, prompts=prompts,
                           dataset=DatasetInfo(path=str(options.dataset), hash=dataset.hash,
                                               samples=[s.sample.id for s in samples]),
                           settings=_settings_for(options, advisor), environment=_environment())
    assert path is not None
    record.dataset = DatasetInfo(path=str(options.dataset), hash=dataset.hash, samples=[s.sample.id for s in samples])

    wanted = {s.sample.id for s in samples}
    record.outputs = {k: v for k, v in record.outputs.items() if k in wanted}
    todo = [s for s in samples if not _done(record.outputs.get(s.sample.id), s)]
    cache = JsonCache(get_settings().state_dir("cache/eval-generations")) if options.cache else None
    if options.reading not in ("own", "gold"):
        raise BadInputError(f"Unknown reading {options.reading!r}.", hint="Use own (the advisor reads) or gold.")
    generate = Generator(advisor, options.backend, options.model, prompts, cache, options.chat_model,
                         reading=options.reading)
    save_record(record, path)
    if on_saved:
        on_saved(path)

    if todo:
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
        )

        columns = (TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                   TextColumn("{task.fields[last]}"))
        with Progress(*columns, console=Console(stderr=True), disable=not options.progress) as bar:
            done_before = len(samples) - len(todo)
            task = bar.add_task(f"{options.backend} {options.model or ''}".strip(), total=len(samples),
                                completed=done_before, last="")

            def on_done(output: SampleOutput) -> None:
                assert record is not None and path is not None
                record.outputs[output.sample_id] = output
                save_record(record, path)
                bar.update(task, advance=1, last=output.sample_id + (" (error)" if output.error else ""))

            asyncio.run(_generate_all(generate, todo, options.concurrency, on_done))

    order = [s.sample.id for s in samples]
    record.outputs = {k: record.outputs[k] for k in order if k in record.outputs}
    score_record(record, dataset, scorers, ctx, progress=options.progress)
    record.status = "complete"
    save_record(record, path)
    return record, path


def _done(output: SampleOutput | None, loaded: LoadedSample) -> bool:
    """Already generated from this very plan text, without error (errors are tried again)."""
    return output is not None and output.error is None and output.plan_sha == plan_sha(loaded.text) and (
        "injection" not in loaded.sample.tags
        or (output.injection_control is not None and output.injection_control.error is None))


def rescore(path: Path, *, scorers: Sequence[str] | None = None, dataset: Path | None = None,
            judge_model: str | None = None, out: Path | None = None, judge: ChatModel | None = None,
            progress: bool = False) -> tuple[RunRecord, Path]:
    """Score a saved run again (other scorers, a fixed scorer, a judge) without generating."""
    record = load_record(path)
    names = list(scorers) if scorers else (record.scorers or None)
    chosen = resolve_scorers(names)
    if judge_model and not any(s.name == "llm_judge" for s in chosen):
        chosen.append(resolve_scorers(["llm_judge"])[0])
    ctx = make_context(judge_model, judge=judge)
    if any(s.name == "llm_judge" for s in chosen) and ctx.judge is None:
        raise ConfigError("The llm_judge scorer needs a judge model.", hint="Pass --judge-model MODEL.")
    ds_path = Path(dataset or record.dataset.path)
    if not ds_path.exists():
        raise BadInputError(f"The run's dataset {ds_path} is not here.", hint="Pass --dataset PATH.")
    ds = load_dataset(ds_path)
    if ds.hash != record.dataset.hash:
        log.warning("dataset %s changed since the run (hash %s, run had %s)", ds_path, ds.hash,
                    record.dataset.hash)
    score_record(record, ds, chosen, ctx, progress=progress)
    target = out or path
    save_record(record, target)
    return record, target
