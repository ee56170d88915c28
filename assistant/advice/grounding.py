"""Grounding: every quote is a verbatim substring of the plan, every citation resolves.

``ground`` repairs a critique (from any backend) by dropping what cannot be verified and
counting what it dropped; ``check_grounding`` only reports, for tests and evals.
"""

from __future__ import annotations

import re
import weakref
from dataclasses import dataclass, field

from ..domain import Critique, Evidence
from ..knowledge import Corpus

__all__ = ["GateCounts", "GroundingReport", "ModelTextGate", "check_grounding", "evidence_quote_ok", "ground"]


@dataclass
class GroundingReport:
    quotes: int = 0
    quotes_verbatim: int = 0
    citations: int = 0
    citations_resolved: int = 0
    interventions: int = 0
    interventions_valid: int = 0
    offsets_ok: bool = True
    problems: list[str] = field(default_factory=list)

    @property
    def dropped(self) -> int:
        return (self.quotes - self.quotes_verbatim) + (self.citations - self.citations_resolved) + (
            self.interventions - self.interventions_valid)

    @property
    def ok(self) -> bool:
        return not self.problems


def check_grounding(critique: Critique, plan_text: str, corpus: Corpus) -> GroundingReport:
    report = GroundingReport()
    known = corpus.reference_ids()
    listed = {r.id for r in critique.references}
    for a in critique.actions:
        if plan_text[a.start:a.end] != a.text:
            report.offsets_ok = False
            report.problems.append(f"action {a.id}: offsets {a.start}:{a.end} do not slice to its text")
    for f in critique.findings:
        for e in f.evidence:
            report.quotes += 1
            if e.quote and e.quote in plan_text:
                report.quotes_verbatim += 1
            else:
                report.problems.append(f"finding {f.id}: quote not in the plan: {e.quote[:60]!r}")
    for owner, citations in [(f.id, f.citations) for f in critique.findings] + [
            (i.id, i.citations) for i in critique.interventions]:
        for c in citations:
            report.citations += 1
            if c in known and c in listed:
                report.citations_resolved += 1
            else:
                report.problems.append(f"{owner}: citation {c!r} does not resolve")
    for r in critique.references:
        if r.id not in known:
            report.problems.append(f"reference {r.id!r} is not in the corpus")
    for i in critique.interventions:
        report.interventions += 1
        if i.id in corpus.interventions:
            report.interventions_valid += 1
        else:
            report.problems.append(f"intervention {i.id!r} is not in the library")
    return report


def ground(critique: Critique, plan_text: str, corpus: Corpus) -> tuple[Critique, GroundingReport]:
    """Drop unverifiable quotes, unresolvable citations and unknown interventions; report counts."""
    from .compose import references_for

    report = check_grounding(critique, plan_text, corpus)
    if report.ok:
        return critique, report
    known = corpus.reference_ids()
    findings = []
    for f in critique.findings:
        evidence = [Evidence(quote=e.quote, action_id=e.action_id) for e in f.evidence if e.quote and e.quote in plan_text]
        if not evidence:
            continue  # a finding with no verifiable evidence is not grounded
        findings.append(f.model_copy(update={"evidence": evidence, "citations": [c for c in f.citations if c in known]}))
    finding_ids = {f.id for f in findings}
    interventions = [
        i.model_copy(update={"citations": [c for c in i.citations if c in known],
                             "addresses": [a for a in i.addresses if a in finding_ids]})
        for i in critique.interventions if i.id in corpus.interventions
    ]
    actions = [a for a in critique.actions if plan_text[a.start:a.end] == a.text]
    cited = [c for f in findings for c in f.citations] + [c for i in interventions for c in i.citations]
    repaired = critique.model_copy(update={
        "findings": findings, "interventions": interventions, "actions": actions,
        "references": references_for(corpus, cited),
    })
    return repaired, report


# --- the gate for what a model writes -------------------------------------------------------------
#
# A model's words reach a user only through here: chat answers (sentence by sentence as they
# stream) and the free text of a model-written critique. What cannot be verified is removed and
# counted, and ``GateCounts.notice`` says what was removed.

MIN_QUOTE_WORDS = 4  # a shorter quote is not evidence
MAX_FINDINGS = 12
MAX_EVIDENCE = 5
MAX_INTERVENTIONS = 8
MAX_ITEMS = 6  # first steps, measures, citations of one finding or intervention
MAX_FIELD_CHARS = 600  # a summary, rationale, headline, step or measure
MAX_ANSWER_CHARS = 6000  # one chat answer or narrative

CITATION = re.compile(r"\b((?:case|intervention|framework|paper):[a-z0-9]+(?:[-_.][a-z0-9]+)*)\b", re.I)
_BRACKETED_CITATION = re.compile(r"\s?\[\s*((?:case|intervention|framework|paper):[^\]\s]+)\s*\]", re.I)
QUOTED = re.compile(r"[\"“]([^\"“”\n]{3,400})[\"”]")
URL = re.compile(r"\b(?:(?:https?|ftp|file)://|www\.)[^\s<>()\[\]\"'`]+"
                 r"|\b[\w-]+(?:\.[\w-]+)*\.[a-z]{2,}/[^\s<>()\[\]\"'`]*", re.I)
MARKDOWN_LINK = re.compile(r"\[([^\]\n]{0,200})\]\(([^)\s]+)[^)]*\)")
EMAIL = re.compile(r"(?:mailto:)?\b[\w.+-]+@[\w-]+(?:\.[\w-]+)+\b", re.I)
DOI = re.compile(r"\b10\.\d{4,9}/[^\s\]\)\"'<>]+")
# Text that gives the reader (or a tool reading the answer) orders instead of advice.
INSTRUCTION = re.compile(
    r"\b(?:ignore|disregard|forget|override|bypass)\s+(?:[\w'-]+\s+){0,3}(?:instructions?|rules|prompts?|"
    r"guidance|guidelines|policies|restrictions)\b"
    r"|\b(?:system prompt|developer mode|jailbreak|prompt injection)\b"
    r"|\b(?:e-?mail|send|forward|upload|post|paste|transfer|leak|exfiltrate)\s+(?:[\w'-]+\s+){0,3}"
    r"(?:plan|document|file|critique|data|details|credentials|passwords?|keys?|records?)\s+(?:\w+\s+){0,3}"
    r"(?:to|at|on|via)\s+(?:[\w.+-]+@|https?://|www\.|(?:an?|this|that|the following|my|our)\s+"
    r"(?:external|outside|personal|private|secure)?\s*(?:address|link|site|server|inbox|account))"
    r"|\b(?:download|install|run|execute|open|launch)\s+(?:[\w'-]+\s+){0,3}(?:\.?exe|executable|script|"
    r"installer|macro|attachment|payload|binary)\b"
    r"|\.(?:exe|msi|bat|cmd|ps1|scr|vbs|jar|apk|dmg)\b"
    r"|\b(?:your|the) (?:api )?(?:password|credentials|api key)\b"
    r"|^\W*(?:system|assistant|user)\s*:"
    r"|\byou (?:must|should|will) now\b",
    re.I | re.M,
)
_SENTENCE_END = re.compile(r"(?<=[.!?…])[\"”')\]*_]*\s+|\n+")
_SPACE = re.compile(r"\s+")
_NORMAL_QUOTES = str.maketrans({"“": '"', "”": '"', "‘": "'", "’": "'", "–": "-", "—": "-", "\u00a0": " "})


def _flat(text: str) -> str:
    return _SPACE.sub(" ", text.translate(_NORMAL_QUOTES)).strip().lower()


@dataclass
class GateCounts:
    """What the gate removed from a model's words."""

    quotes: int = 0  # quotations not verbatim in the plan or the corpus
    citations: int = 0  # citation ids that are not in the corpus
    links: int = 0  # URLs that are not in the corpus
    emails: int = 0  # e-mail addresses that are not in the corpus
    instructions: int = 0  # sentences that give orders (injected text)
    capped: int = 0  # items or characters over the caps
    unknown_ids: list[str] = field(default_factory=list)  # the citations removed (for logs; never shown)

    @property
    def total(self) -> int:
        return self.quotes + self.citations + self.links + self.emails + self.instructions + self.capped

    def add(self, other: GateCounts) -> None:
        for name in ("quotes", "citations", "links", "emails", "instructions", "capped"):
            setattr(self, name, getattr(self, name) + getattr(other, name))
        self.unknown_ids += [i for i in other.unknown_ids if i not in self.unknown_ids]

    def notice(self, what: str = "the model's answer") -> str | None:
        parts = [f"{n} {label}" for n, label in (
            (self.quotes, "quotation(s) not verbatim in your plan or the sources"),
            (self.citations, "citation(s) of sources that do not exist"),
            (self.links, "link(s) that are not in the sources"),
            (self.emails, "e-mail address(es)"),
            (self.instructions, "instruction-like sentence(s)"),
            (self.capped, "item(s) over the length limits")) if n]
        if not parts:
            return None
        return f"Removed from {what}, because they could not be verified: " + "; ".join(parts) + "."


class _CorpusText:
    """The corpus as text: what a quote may come from, and the links and addresses it contains."""

    def __init__(self, corpus: Corpus) -> None:
        blobs: list[str] = []
        for case in corpus.cases.values():
            blobs.append(case.model_dump_json())
            blobs.append(case.body)
        blobs += [iv.model_dump_json() for iv in corpus.interventions.values()]
        blobs += [ref.model_dump_json() for ref in corpus.references.values()]
        raw = "\n".join(blobs)
        self.flat = _flat(raw)
        self.urls = {_url_key(u) for u in URL.findall(raw)}
        self.emails = {e.lower() for e in EMAIL.findall(raw)}
        self.dois = {d.rstrip(".,;").lower() for d in DOI.findall(raw)}
        self.ids = corpus.reference_ids()


_CORPUS_TEXT: dict[int, _CorpusText] = {}


def _corpus_text(corpus: Corpus) -> _CorpusText:
    key = id(corpus)
    found = _CORPUS_TEXT.get(key)
    if found is None:
        found = _CORPUS_TEXT[key] = _CorpusText(corpus)
        weakref.finalize(corpus, _CORPUS_TEXT.pop, key, None)
    return found


def _url_key(url: str) -> str:
    url = url.rstrip(".,;:!?'\"").lower()
    url = re.sub(r"^(?:https?://)?(?:www\.)?", "", url)
    return url.rstrip("/")


class ModelTextGate:
    """Screens what a model writes, sentence by sentence, against the plan and the corpus.

    ``clean(text)`` screens a whole text; ``feed(piece)`` takes streamed pieces and returns the
    screened sentences completed so far (the rest waits for its end); ``flush()`` returns the last.
    """

    def __init__(self, plan_text: str | None, corpus: Corpus, *, max_chars: int = MAX_ANSWER_CHARS,
                 extra_sources: tuple[str, ...] = ()) -> None:
        self.counts = GateCounts()
        self._plan = _flat(plan_text or "")
        self._corpus = _corpus_text(corpus)
        self._extra = [_flat(t) for t in extra_sources if t]
        self._buffer = ""
        self._sent_chars = 0
        self.max_chars = max_chars
        self.truncated = False

    # -- streaming ----------------------------------------------------------------------------

    def feed(self, piece: str) -> str:
        self._buffer += piece
        out: list[str] = []
        while True:
            match = _SENTENCE_END.search(self._buffer)
            if match is None:
                break
            sentence, self._buffer = self._buffer[:match.end()], self._buffer[match.end():]
            out.append(self._emit(sentence))
        if len(self._buffer) > MAX_FIELD_CHARS * 4:  # a "sentence" that never ends is cut
            sentence, self._buffer = self._buffer, ""
            out.append(self._emit(sentence))
        return "".join(out)

    def flush(self) -> str:
        sentence, self._buffer = self._buffer, ""
        return self._emit(sentence) if sentence else ""

    def _emit(self, sentence: str) -> str:
        if self.truncated:
            return ""
        cleaned = self.sentence(sentence)
        if self._sent_chars + len(cleaned) > self.max_chars:
            self.truncated = True
            self.counts.capped += 1
            return ""
        self._sent_chars += len(cleaned)
        return cleaned

    # -- whole texts --------------------------------------------------------------------------

    def clean(self, text: str, *, limit: int | None = None) -> str:
        """Screen a whole text; ``limit`` caps its length (counted when it cuts)."""
        parts: list[str] = []
        pos = 0
        for match in _SENTENCE_END.finditer(text):
            parts.append(self.sentence(text[pos:match.end()]))
            pos = match.end()
        if pos < len(text):
            parts.append(self.sentence(text[pos:]))
        out = "".join(parts)
        if limit is not None and len(out) > limit:
            self.counts.capped += 1
            out = out[:limit - 1].rstrip() + "…"
        return out

    def sentence(self, sentence: str) -> str:
        """One sentence, screened: dropped whole for an order or an invented quote; links,
        addresses and unknown citations cut out of it."""
        if not sentence.strip():
            return sentence
        if INSTRUCTION.search(sentence):
            self.counts.instructions += 1
            return _keep_break(sentence)
        for quoted in QUOTED.findall(sentence):
            if not self.verifiable_quote(quoted):
                self.counts.quotes += 1
                return _keep_break(sentence)
        sentence = MARKDOWN_LINK.sub(self._markdown_link, sentence)
        sentence = EMAIL.sub(self._email, sentence)
        sentence = URL.sub(self._url, sentence)
        sentence = DOI.sub(self._doi, sentence)
        sentence = _BRACKETED_CITATION.sub(self._bracketed, sentence)
        sentence = CITATION.sub(self._citation, sentence)
        return sentence

    def verifiable_quote(self, quote: str) -> bool:
        """A quotation is shown only when the plan, the corpus or the given sources hold it."""
        flat = _flat(quote).strip(" .,;:'\"")
        if len(flat.split()) < MIN_QUOTE_WORDS:
            return True  # a quoted term ("quick wins") is not evidence, nor a claim about what a source says
        return flat in self._plan or flat in self._corpus.flat or any(flat in e for e in self._extra)

    def _markdown_link(self, match: re.Match[str]) -> str:
        url = match.group(2)
        if url.lower().startswith("mailto:") or not self._url_allowed(url):
            self.counts.links += 1
            return match.group(1)
        return match.group(0)

    def _url_allowed(self, url: str) -> bool:
        return _url_key(url) in self._corpus.urls

    def _url(self, match: re.Match[str]) -> str:
        if self._url_allowed(match.group(0)):
            return match.group(0)
        self.counts.links += 1
        return "[link removed]"

    def _email(self, match: re.Match[str]) -> str:
        address = match.group(0).lower().removeprefix("mailto:")
        if address in self._corpus.emails:
            return match.group(0)
        self.counts.emails += 1
        return "[address removed]"

    def _doi(self, match: re.Match[str]) -> str:
        if match.group(0).rstrip(".,;").lower() in self._corpus.dois:
            return match.group(0)
        self.counts.citations += 1
        return "[reference removed]"

    def _unknown(self, ref: str) -> None:
        self.counts.citations += 1
        if ref not in self.counts.unknown_ids:
            self.counts.unknown_ids.append(ref)

    def _bracketed(self, match: re.Match[str]) -> str:
        if match.group(1) in self._corpus.ids:
            return match.group(0)
        self._unknown(match.group(1))
        return ""

    def _citation(self, match: re.Match[str]) -> str:
        if match.group(1) in self._corpus.ids:
            return match.group(0)
        self._unknown(match.group(1))
        return "[unknown source]"

    def citations(self, text: str) -> list[str]:
        """The corpus ids a screened text cites, in order."""
        return [c for c in dict.fromkeys(CITATION.findall(text)) if c in self._corpus.ids]


def _keep_break(sentence: str) -> str:
    """What stands in for a dropped sentence: its line break, so lists keep their shape."""
    return "\n" if sentence.endswith("\n") else ""


def evidence_quote_ok(quote: str, plan_text: str) -> bool:
    """A quote counts as evidence only verbatim and at least ``MIN_QUOTE_WORDS`` words long."""
    return bool(quote) and quote in plan_text and len(quote.split()) >= MIN_QUOTE_WORDS
