"""The intervention ranker: features, the pick rule, training, the shipped model, and the CLI."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from assistant.advice.advisor import Advisor
from assistant.advice.ranking import (
    CONTEXT,
    SHIPPED_RANKER,
    InterventionRanker,
    PlanFacts,
    RankerModel,
    TrainingPlan,
    cross_validate,
    pair_features,
    plan_context,
    recommended_by_kind,
    score_ranker,
    train_ranker,
)
from assistant.errors import ConfigError
from assistant.knowledge import Corpus

ROOT = Path(__file__).resolve().parents[2]
TEAMS_PLAN = """# Eastvale neighbourhood programme

1. Co-locate district nurses, social workers and occupational therapists in two neighbourhood hubs by June 2026.
2. Move the three community teams onto one caseload system, owned by the Director of Operations.
3. Report referral-to-assessment times to the programme board every month against a 48-hour target.
4. Issue a standard operating procedure for hub referrals and audit compliance quarterly.
"""


def facts(advisor: Advisor, text: str) -> PlanFacts:
    a = advisor.assess(text)
    return PlanFacts.of(a.analysis, a.detections, a.verdict.structural_overuse)


def blank_facts(**context: float) -> PlanFacts:
    levels = {name: 0.0 for name in [*CONTEXT, "professions"]}
    levels.update(context)
    return PlanFacts(kinds=(), context=levels, present_codes=frozenset(), neglected=frozenset(), overuse=True,
                     relational_share=0.1)


def test_plan_context_reads_what_a_plan_builds() -> None:
    ctx = plan_context(TEAMS_PLAN)
    assert ctx["teams"] > 0.5 and ctx["professions"] >= 0.75
    assert ctx["standardise"] > 0 and ctx["metrics"] > 0
    assert ctx["restructure"] == 0 and ctx["digital"] == 0
    assert all(0.0 <= v <= 1.0 for v in ctx.values())
    quiet = plan_context("We will meet again in spring.")
    assert set(quiet) == set(ctx) and not any(quiet.values())


def test_pair_features_carry_the_corpus_advice_and_what_the_plan_already_does(advisor: Advisor) -> None:
    corpus = advisor.corpus
    recommended = recommended_by_kind(corpus)
    iv = corpus.interventions["relational-measures"]
    f = blank_facts()
    plain = pair_features(f, iv, recommended)
    assert plain == {"bias|relational-measures": 1.0, "overuse|relational-measures": 1.0,
                     "share|relational-measures": 0.1}
    with_kind = pair_features(PlanFacts(("metrics-only-structural",), f.context, frozenset(), frozenset({"strategy"}),
                                        True, 0.1), iv, recommended)
    rank = recommended["metrics-only-structural"].index("relational-measures")
    assert with_kind[f"rec:{min(rank, 3)}"] == 1.0
    assert with_kind["kind:metrics-only-structural|relational-measures"] == 1.0
    assert with_kind["answers"] == 1.0 and with_kind["neglected"] == 1.0
    doing = pair_features(PlanFacts((), f.context, frozenset({"strategy.relational.relational-outcome-measures"}),
                                    frozenset(), True, 0.1), iv, recommended)
    assert doing["doing"] == 1.0


def _model(weights: dict[str, float], **rule: int | float) -> RankerModel:
    return RankerModel(weights=weights, intercept=-3.0, threshold=float(rule.get("threshold", 0.5)),
                       min_picks=int(rule.get("min_picks", 2)), max_picks=int(rule.get("max_picks", 3)))


def test_choose_keeps_to_the_threshold_within_min_and_max(advisor: Advisor) -> None:
    corpus = advisor.corpus
    strong = {f"bias|{iv}": 5.0 for iv in ["integrated-team-huddles", "relational-measures", "sustainment-plan",
                                            "boundary-spanning-roles"]}
    ranker = InterventionRanker(corpus, model=_model(strong))
    picks = [r.intervention.id for r in ranker.choose(blank_facts())]
    assert picks == ["boundary-spanning-roles", "integrated-team-huddles", "relational-measures"]  # max 3, ties by id
    ranker = InterventionRanker(corpus, model=_model({"bias|sustainment-plan": 5.0}))
    picks = [r.intervention.id for r in ranker.choose(blank_facts())]
    assert len(picks) == 2 and picks[0] == "sustainment-plan"  # one clears the bar; the floor adds the next
    assert ranker.choose(blank_facts(), has_actions=False) == []


def test_reasons_name_the_context_that_raised_an_intervention(advisor: Advisor) -> None:
    ranker = InterventionRanker(advisor.corpus, model=_model({"ctx:teams|integrated-team-huddles": 6.0}))
    top = ranker.rank(blank_facts(teams=1.0))[0]
    assert top.intervention.id == "integrated-team-huddles" and top.reasons == ("teams",)
    assert ranker.rank(blank_facts())[0].reasons == ()


def synthetic_plans(corpus: Corpus) -> list[TrainingPlan]:
    """Plans whose references want huddles exactly when the plan builds shared teams."""
    plans = []
    for i in range(24):
        teams = i % 2 == 0
        expected = {"integrated-team-huddles", "relational-measures"} if teams else {"sustainment-plan",
                                                                                      "relational-measures"}
        plans.append(TrainingPlan(f"p{i}", blank_facts(teams=1.0 if teams else 0.0, metrics=0.5 + (i % 3) / 6),
                                  frozenset(expected)))
    return plans


def test_training_learns_a_signal_and_cross_validation_measures_it(advisor: Advisor) -> None:
    corpus = advisor.corpus
    plans = synthetic_plans(corpus)
    model = train_ranker(corpus, plans, c=1.0, threshold=0.4, max_picks=3)
    ranker = InterventionRanker(corpus, model=model)
    top_two = {r.intervention.id for r in ranker.choose(blank_facts(teams=1.0, metrics=0.5))[:2]}
    assert top_two == {"integrated-team-huddles", "relational-measures"}
    assert "integrated-team-huddles" not in {r.intervention.id for r in ranker.choose(blank_facts(metrics=0.5))}
    assert score_ranker(corpus, model, plans).recall == 1.0
    cv = cross_validate(corpus, plans, folds=4, c=1.0, threshold=0.4, max_picks=3)
    assert cv.recall == 1.0 and 2.0 <= cv.picks <= 3.0
    # a model that learned nothing does worse on the same plans: the score can fail
    blind = _model({}, threshold=0.5, min_picks=2, max_picks=2)
    assert score_ranker(corpus, blind, plans).recall < 0.5


def test_training_needs_references_that_discriminate(advisor: Advisor) -> None:
    with pytest.raises(ConfigError, match="No reference critiques"):
        train_ranker(advisor.corpus, [])
    everything = frozenset(advisor.corpus.interventions)
    with pytest.raises(ConfigError, match="not all of them"):
        train_ranker(advisor.corpus, [TrainingPlan("p", blank_facts(), everything)])


def test_model_round_trips_and_a_broken_file_names_itself(advisor: Advisor, tmp_path: Path) -> None:
    model = train_ranker(advisor.corpus, synthetic_plans(advisor.corpus), meta={"datasets": ["synthetic"]})
    path = tmp_path / "ranker.json"
    model.save(path)
    again = RankerModel.load(path)
    assert again.threshold == model.threshold and again.max_picks == model.max_picks
    assert again.meta["datasets"] == ["synthetic"] and again.meta["plans"] == 24
    f = blank_facts(teams=1.0)
    feats = pair_features(f, advisor.corpus.interventions["integrated-team-huddles"], {})
    assert again.probability(feats) == pytest.approx(model.probability(feats), abs=1e-5)
    path.write_text('{"format": "something-else"}', encoding="utf-8")
    with pytest.raises(ConfigError, match=r"ranker\.json"):
        RankerModel.load(path)


def test_the_shipped_model_speaks_the_corpus_and_features_in_use(advisor: Advisor) -> None:
    body = json.loads(SHIPPED_RANKER.read_text(encoding="utf-8"))
    assert body["meta"]["plans"] >= 80
    for dataset in body["meta"]["datasets"]:
        assert (ROOT / dataset).is_dir(), dataset
    generic = {"answers", "doing", "neglected", "rec:0", "rec:1", "rec:2", "rec:3"}
    families = {*CONTEXT, "professions"}
    for name in body["weights"]:
        if name in generic:
            continue
        head, _, iv = name.partition("|")
        assert iv in advisor.corpus.interventions, name
        kind, _, value = head.partition(":")
        assert kind in {"bias", "kind", "ctx", "overuse", "share", "findings"}, name
        if kind == "ctx":
            assert value in families, name
        if kind == "kind":
            assert value in {k.id for k in advisor.corpus.framework.finding_kinds}, name


def test_a_critique_explains_every_intervention(advisor: Advisor) -> None:
    critique = advisor.critique_offline(TEAMS_PLAN)
    assert 2 <= len(critique.interventions) <= advisor.ranker.model.max_picks
    finding_ids = {f.id for f in critique.findings}
    for iv in critique.interventions:
        assert set(iv.addresses) <= finding_ids
        assert iv.rationale.startswith(iv.title)
        assert "answers" in iv.rationale or "fits this plan because it" in iv.rationale or "leaves to chance" in iv.rationale


def test_ranker_train_cli_writes_a_model_it_reports_on(tmp_path: Path) -> None:
    data = tmp_path / "refs"
    data.mkdir()
    for path in sorted((ROOT / "evals" / "datasets" / "dev").glob("a-*.yaml"))[:6]:
        shutil.copy(path, data / path.name)
    out = tmp_path / "model.json"
    proc = subprocess.run([sys.executable, "-m", "assistant", "ranker", "train", "--dataset", str(data),
                           "--cv", "3", "--out", str(out)], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert "Ranker trained on 6 reference critiques" in proc.stdout and "3-fold cross-validated" in proc.stdout
    assert RankerModel.load(out).meta["plans"] == 6
    missing = subprocess.run([sys.executable, "-m", "assistant", "ranker", "train", "--dataset",
                              str(tmp_path / "nowhere")], capture_output=True, text=True, timeout=300)
    assert missing.returncode == 2 and "Traceback" not in missing.stderr


def test_the_shipped_model_is_what_training_on_the_repo_gives(advisor: Advisor) -> None:
    """`assistant ranker train` on the datasets the shipped model names reproduces it, so a
    change to the detectors or features that needs a refit is caught here, not in the evals."""
    from assistant.evals.dataset import load_dataset

    shipped = RankerModel.load(SHIPPED_RANKER)
    plans: list[TrainingPlan] = []
    for dataset in shipped.meta["datasets"]:
        for s in load_dataset(ROOT / dataset).samples:
            plans.append(TrainingPlan(s.sample.id, facts(advisor, s.text), frozenset(s.sample.reference.interventions)))
    refit = train_ranker(advisor.corpus, plans, c=float(shipped.meta["C"]), threshold=shipped.threshold,
                         min_picks=shipped.min_picks, max_picks=shipped.max_picks)
    a, b = InterventionRanker(advisor.corpus, model=shipped), InterventionRanker(advisor.corpus, model=refit)
    for plan in plans:
        pa = {r.intervention.id: r.probability for r in a.rank(plan.facts)}
        pb = {r.intervention.id: r.probability for r in b.rank(plan.facts)}
        assert max(abs(pa[k] - pb[k]) for k in pa) < 1e-3, (
            f"{plan.sample_id}: the shipped ranker is stale; run `assistant ranker train --dataset "
            f"{' --dataset '.join(shipped.meta['datasets'])} --shipped`")
