"""The advisor: the one entry point the faces call to critique a plan.

    read -> segment -> code -> balance -> detect -> retrieve -> compose -> ground -> Critique
"""

from __future__ import annotations

import functools
import logging
from dataclasses import dataclass

from ..analysis.actions import PlanAnalysis, analyse_plan
from ..analysis.coder import Coder
from ..analysis.detect import Detection, VerdictFacts, balance_of, detect, verdict_of
from ..analysis.detector import SHIPPED_DETECTOR, ActionDetector, DetectorModel
from ..analysis.given import analyse_given
from ..analysis.horizon import HorizonReader
from ..analysis.language import LANGUAGE_NAMES, plan_language
from ..domain import Critique, PlanReading
from ..errors import AdvisorError, PlanReadError
from ..knowledge import Corpus, load_corpus
from ..reading import PlanDocument, guess_title, plan_from_text
from ..settings import Settings, get_settings
from .compose import CaseFinder, compose_critique
from .grounding import ground
from .llm.model import ChatModel
from .ranking import InterventionRanker

__all__ = ["Advisor", "Assessment", "get_advisor"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Assessment:
    """The offline analysis of a plan: what every backend starts from."""

    analysis: PlanAnalysis
    detections: tuple[Detection, ...]
    verdict: VerdictFacts


class Advisor:
    """Critiques plans. Build once and reuse: loading the corpus, coder and embedder costs time."""

    def __init__(self, settings: Settings | None = None, corpus: Corpus | None = None,
                 coder: Coder | None = None, case_finder: CaseFinder | None = None) -> None:
        self.settings = settings or get_settings()
        self.corpus = corpus or load_corpus(self.settings.corpus_paths)
        self.coder = coder or Coder(self.corpus)
        self.horizon = HorizonReader(self.corpus.framework.horizon.short_term, self.corpus.framework.horizon.long_term)
        self.case_finder = case_finder

    @functools.cached_property
    def ranker(self) -> InterventionRanker:
        return InterventionRanker(self.corpus)

    @functools.cached_property
    def detector(self) -> ActionDetector | None:
        """The learned action detector: the user's own (``assistant coder train-detector``) or the
        shipped one; None leaves the segmenter's rules to decide."""
        own = self.settings.home / "coder" / "detector.npz"
        model = DetectorModel.load(own) if own.exists() else (
            DetectorModel.load(SHIPPED_DETECTOR) if SHIPPED_DETECTOR.exists() else None)
        return ActionDetector(model, self.coder.features.embedder.embed) if model is not None else None

    def assess(self, text: str, title: str | None = None) -> Assessment:
        language = plan_language(text)
        if language is not None:
            name = LANGUAGE_NAMES.get(language, language)
            raise PlanReadError(
                f"This plan appears to be written in {name}. The offline reader reads English plans only, so it "
                "would find few or none of this plan's actions and give a verdict it could not stand behind.",
                hint="Give an English version of the plan.")
        analysis = analyse_plan(text, self.corpus, self.coder, self.horizon, title=title or guess_title(text),
                                detector=self.detector)
        detections = tuple(detect(analysis))
        verdict = verdict_of(analysis, balance_of(analysis.actions), detections)
        return Assessment(analysis, detections, verdict)

    def assess_given(self, text: str, reading: PlanReading, title: str | None = None) -> tuple[Assessment, list[str]]:
        """Judge the plan on a reading someone gave (a user's corrections, a dataset's gold actions):
        the actions and their labels are theirs, the verdict and findings the project's own rules.
        Returns the assessment and notices (texts that were not in the plan, dropped and counted)."""
        given = analyse_given(text, reading.actions, self.coder, title=title or guess_title(text))
        detections = tuple(detect(given.analysis))
        verdict = verdict_of(given.analysis, balance_of(given.analysis.actions), detections)
        notices = []
        if given.dropped:
            n = len(given.dropped)
            notices.append(f"{n} action{'s' if n > 1 else ''} of the given reading {'were' if n > 1 else 'was'} "
                           f"not found in the plan (or lay in set-aside text) and {'were' if n > 1 else 'was'} "
                           f"dropped: \"{' '.join(given.dropped[0].split())[:80]}\"" + (" and others." if n > 1 else "."))
        return Assessment(given.analysis, detections, verdict), notices

    def critique_offline(self, plan: str | PlanDocument, *, backend: str = "offline",
                         assessment: Assessment | None = None, reading: PlanReading | None = None) -> Critique:
        doc = plan if isinstance(plan, PlanDocument) else plan_from_text(plan, max_chars=self.settings.max_plan_chars)
        notices: list[str] = []
        if reading is not None and assessment is None:
            assessment, notices = self.assess_given(doc.text, reading, doc.title)
        assessment = assessment or self.assess(doc.text, doc.title)
        critique = compose_critique(self.corpus, assessment.analysis, assessment.detections, assessment.verdict,
                                    backend=backend, case_finder=self.case_finder, ranker=self.ranker,
                                    reader="given" if reading is not None else "offline", notices=notices)
        grounded, report = ground(critique, doc.text, self.corpus)
        if not report.ok:  # the offline composer should never need this; say so loudly in logs
            log.warning("offline critique needed grounding repairs: %d dropped", report.dropped)
        return grounded

    def critique(self, plan: str | PlanDocument, *, model: str | ChatModel | None = None) -> Critique:
        """Critique a plan: offline unless a model (a litellm model string or a ChatModel) is
        given or configured (ASSISTANT_MODEL)."""
        model = model if model is not None else self.settings.model
        if not model:
            return self.critique_offline(plan)
        from .llm.planner import critique_with_model  # lazy: litellm costs seconds to import

        doc = plan if isinstance(plan, PlanDocument) else plan_from_text(plan, max_chars=self.settings.max_plan_chars)
        return critique_with_model(self, doc, model=model)


@functools.cache
def get_advisor() -> Advisor:
    """A process-wide advisor with the current settings (the faces share one)."""
    try:
        return Advisor()
    except AdvisorError:
        get_advisor.cache_clear()
        raise
