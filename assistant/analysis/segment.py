"""Split a plan into segments with exact character offsets, and decide which are actions.

A segment is a sentence, a bullet or numbered item, or a table row; headings are kept as
context for the segments under them. An action is a segment that commits to doing
something; background, aspirations, problem statements and headings are not actions.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

__all__ = ["PLAIN_TYPOGRAPHY", "Segment", "plain_typography", "segment_plan"]

# Typography that must never change a reading, each mapped to one plain character (so offsets hold):
# curly quotes and apostrophes, dashes and minus signs, non-breaking and thin spaces.
PLAIN_TYPOGRAPHY = str.maketrans({
    "\u2018": "'", "\u2019": "'", "\u201a": "'", "\u201b": "'", "\u2032": "'",
    "\u201c": '"', "\u201d": '"', "\u201e": '"', "\u201f": '"', "\u2033": '"',
    "\u2010": "-", "\u2011": "-", "\u2012": "-", "\u2013": "-", "\u2014": "-", "\u2015": "-", "\u2212": "-",
    "\u00a0": " ", "\u2007": " ", "\u2009": " ", "\u202f": " ", "\u200a": " ",
})


def plain_typography(text: str) -> str:
    """``text`` with its typography made plain, character for character (the same length)."""
    return text.translate(PLAIN_TYPOGRAPHY)

BULLET = re.compile(r"^(?P<indent>[ \t]*)(?P<marker>[-*•+▪◦‣–]|\d{1,2}(?:\.\d{1,2})+\.?|\(?\d{1,2}[.)]|\(?[a-zA-Z][.)]|\(?[ivx]{1,4}[.)]|\[[ xX]\])[ \t]+")
MD_HEADING = re.compile(r"^[ \t]*(#{1,6})[ \t]+(.+?)[ \t]*#*[ \t]*$")
TABLE_SEP = re.compile(r"^[ \t]*\|?[ \t]*:?-{2,}:?[ \t]*(\|[ \t]*:?-{2,}:?[ \t]*)*\|?[ \t]*$")
ABBREVIATIONS = {
    "e.g", "i.e", "etc", "dr", "mr", "mrs", "ms", "prof", "st", "no", "vs", "cf", "approx", "incl",
    "dept", "govt", "est", "fig", "inc", "ltd", "co", "jan", "feb", "mar", "apr", "jun", "jul", "aug",
    "sep", "sept", "oct", "nov", "dec", "al", "para", "min", "max", "nb",
}
# A list item's run-in label: a few words and a colon, in or out of emphasis ("**Places:** The North ...").
RUN_IN_LABEL = re.compile(r"[*_]{0,2}(?P<label>[^\s*_:|][^*_:|\n]{0,48}?)[*_]{0,2}:[*_]{0,2}[ \t]+(?=\S)")

# A sentence ends at . ! or ?, after any closing quote, bracket or emphasis marker ("**Workforce.** We will").
SENTENCE_END = re.compile(r"[.!?]+[\"')\]*_]*(?=\s+|$)")

ACTION_VERBS = ["accelerate", "achieve", "adopt", "agree", "align", "allocate", "appoint", "approve", "assess", "audit", "automate", "agree", "bring", "broaden", "build", "bid", "buy", "cascade", "centralise", "champion", "change", "close", "coach", "co-design", "codesign", "co-produce", "coproduce", "co-create", "co-locate", "colocate", "collect", "combine", "commission", "commit", "communicate", "complete", "conduct", "consolidate", "consult", "convene", "coordinate", "co-ordinate", "create", "cut", "decommission", "define", "deliver", "deploy", "design", "develop", "devolve", "digitise", "direct", "disband", "draft", "drive", "educate", "embed", "empower", "enable", "engage", "enhance", "ensure", "establish", "evaluate", "expand", "extend", "facilitate", "finalise", "focus", "form", "formalise", "fund", "give", "go", "grow", "guarantee", "harmonise", "hire", "hold", "host", "identify", "implement", "improve", "increase", "induct", "inform", "initiate", "install", "institute", "integrate", "introduce", "invest", "invite", "involve", "issue", "join", "launch", "lead", "learn", "limit", "link", "maintain", "make", "manage", "map", "measure", "meet", "mentor", "merge", "migrate", "mobilise", "model", "monitor", "move", "negotiate", "nominate", "offer", "onboard", "open", "operate", "organise", "oversee", "partner", "pay", "phase", "pilot", "place", "plan", "pool", "prepare", "prioritise", "procure", "produce", "protect", "provide", "publish", "purchase", "put", "raise", "re-align", "realign", "rebuild", "recruit", "redesign", "reduce", "re-establish", "refresh", "release", "relocate", "remove", "renew", "reorganise", "replace", "report", "require", "reshape", "resource", "restructure", "retain", "review", "revise", "roll", "run", "scale", "schedule", "secure", "select", "send", "set", "share", "shift", "sign", "simplify", "spread", "staff", "standardise", "start", "streamline", "strengthen", "submit", "support", "survey", "sustain", "take", "target", "test", "track", "train", "transfer", "transform", "transition", "undertake", "unify", "update", "upgrade", "use", "widen", "work", "write"]
_VERB_RE = "|".join(sorted({re.escape(v) for v in ACTION_VERBS}, key=len, reverse=True))
IMPERATIVE = re.compile(rf"^(?:to\s+|and\s+|then\s+)?(?:{_VERB_RE})(?:s|es|ed|d|ing)?\b", re.I)
COMMITMENT = re.compile(
    r"\b(will|shall|we'll|we’ll|are going to|is going to|plan to|plans to|intend to|intends to|"
    r"commit to|commits to|committed to|aim to|aims to|are to|is to be|are to be|must|need to|needs to|"
    r"propose to|proposes to|seek to|seeks to|expect to|agree to|will be|we(?:'re|’re| are) (?!not\b)\w+ing|"
    r"to be (?:established|created|"
    r"appointed|introduced|delivered|launched|implemented|merged|completed|set up|rolled out|developed|held|run))\b",
    re.I,
)
NEGATION = re.compile(
    r"\b(will not|won't|won’t|shall not|do not intend|does not intend|not going to|will no longer|"
    r"have decided against|decided not to|no new|without creating)\b",
    re.I,
)
TENTATIVE = re.compile(r"\b(may|might|could|would consider|will consider|consider(?:ing)? whether|explore whether|"
                       r"exploring whether|look(?:ing)? into whether|if funding allows|subject to funding)\b", re.I)
FIRM = re.compile(r"\b(will|shall|must|we'll|we’ll|commit)\b", re.I)
ASPIRATION = re.compile(
    r"^(?:our|the)\s+(?:vision|ambition|aspiration|purpose|mission|belief|values?)\b|"
    r"^we\s+(?:believe|want|hope|aspire|value|recognise|know|understand|envisage|are proud)\b|"
    r"\b(?:we|it) (?:would like|would hope)\b",
    re.I,
)
BACKGROUND = re.compile(
    r"^(?:in|during|since|over|between|from)\s+(?:19|20)\d\d\b|"
    r"\b(?:has|have|had) (?:been|seen|grown|risen|increased|fallen|struggled|faced|experienced)\b|"
    r"^(?:there (?:is|are|was|were|has been)|currently|at present|historically|last year|this document|this plan|"
    r"the purpose of this|this paper|this strategy sets out|this section)\b",
    re.I,
)
# A document's own metadata ("Prepared for: ...", "Subject: ...") describes the paper, not the plan.
METADATA = re.compile(
    r"^[*_\s]*(?:prepared (?:for|by)|to|from|cc|bcc|subject|re|date|author|authors?|version|status|"
    r"classification|document (?:ref\w*|number|owner)|reviewed by|approved by|presented (?:to|by)|"
    r"meeting(?: date)?|report (?:to|by|author)|sponsor|purpose of (?:the |this )?(?:paper|report))[*_\s]*:",
    re.I,
)
# A run-in heading phrased as a question: "Who will make it happen." "How we will measure success."
RUN_IN_HEADING = re.compile(r"^[*_\s]*(?:who|what|how|when|where|why)\b(?![^.?!:]*\b(?:is|are)\b)[^.?!:]{0,45}[.?:][*_\s]*$",
                            re.I)
NON_ACTION_HEADINGS = re.compile(
    r"\b(background|context|introduction|purpose|case for change|why change|challenges?|problem|"
    r"current (?:position|state|situation)|the story so far|vision|values|ambition|about us|summary of need|"
    r"data|demographics|risks? and issues|lessons|what people told us|glossary|appendix|references)\b",
    re.I,
)
ACTION_HEADINGS = re.compile(
    r"\b(actions?|deliverables?|what we will do|how we will|plan|priorit(?:y|ies)|workstreams?|"
    r"commitments?|milestones?|next steps|key steps|implementation|delivery|programme|roadmap|"
    r"year \d|phase \d|initiatives?|interventions?|measures|outcomes|governance|workforce|"
    r"leadership|structure|people|strategy|digital|estates|finance|engagement|culture|metrics)\b",
    re.I,
)


@dataclass
class Segment:
    start: int
    end: int
    text: str
    kind: str  # sentence | bullet | table_row | heading
    headings: tuple[str, ...] = ()
    context: str = ""  # extra text read for timing (a table row's other cells)
    is_action: bool = False
    reason: str = ""
    negated: bool = False
    table_header: tuple[str, ...] = field(default_factory=tuple)


def _lines(text: str) -> list[tuple[int, int]]:
    spans, pos = [], 0
    for line in text.splitlines(keepends=True):
        end = pos + len(line.rstrip("\r\n"))
        spans.append((pos, end))
        pos += len(line)
    return spans


def _trim(text: str, start: int, end: int) -> tuple[int, int]:
    while start < end and text[start] in " \t\r\n*_`>\"“":
        start += 1
    while end > start and text[end - 1] in " \t\r\n*_`":
        end -= 1
    # unbalanced trailing quote marks or bold markers are not part of the sentence
    return start, end


def _split_sentences(text: str, start: int, end: int) -> list[tuple[int, int]]:
    out: list[tuple[int, int]] = []
    cursor = start
    chunk = text[start:end]
    for m in SENTENCE_END.finditer(chunk):
        stop = start + m.end()
        word = re.search(r"([A-Za-z.]+)\.$", text[cursor:start + m.start() + 1])
        before = text[cursor:start + m.start()]
        if word and word.group(1).lower().rstrip(".") in ABBREVIATIONS:
            continue
        if re.search(r"\b[A-Z]$", before):  # an initial, "J. Smith"
            continue
        nxt = text[stop:stop + 3].lstrip()
        if nxt and nxt[0].islower():
            continue
        s, e = _trim(text, cursor, stop)
        if e - s > 1:
            out.append((s, e))
        cursor = stop
    s, e = _trim(text, cursor, end)
    if e - s > 1:
        out.append((s, e))
    return out


def _is_heading_line(line: str, next_line: str | None) -> bool:
    stripped = line.strip()
    if not stripped or len(stripped) > 90 or BULLET.match(line) or "|" in stripped:
        return False
    if stripped.endswith(":") and len(stripped.split()) <= 10:
        return True
    if stripped[-1] in ".!?;,":
        return False
    words = stripped.split()
    if len(words) > 12:
        return False
    if stripped.isupper():
        return True
    if COMMITMENT.search(stripped):
        return False
    capitalised = sum(1 for w in words if w[:1].isupper() or not w[:1].isalpha())
    if next_line is None or not next_line.strip() or BULLET.match(next_line) or capitalised >= max(1, len(words) * 0.6):
        return len(words) <= 10
    # a short unpunctuated line before a full sentence ("What we will do" in a .docx or plain text)
    nxt = next_line.strip()
    return len(words) <= 6 and len(nxt.split()) > len(words) + 3 and nxt[-1:] in ".!?:"


def _cells(line: str, start: int) -> list[tuple[int, int]]:
    """Spans of the cells of a table row (Markdown pipes, or 'a | b | c' from .docx)."""
    spans = []
    pos = start
    for raw in line.split("|"):
        s, e = pos, pos + len(raw)
        pos = e + 1
        while s < e and line[s - start] in " \t":
            s += 1
        while e > s and line[e - 1 - start] in " \t":
            e -= 1
        spans.append((s, e))
    if line.strip().startswith("|"):
        spans = spans[1:]
    if line.strip().endswith("|"):
        spans = spans[:-1]
    return spans


ACTION_COLUMNS = re.compile(r"\b(action|activity|activities|deliverable|what|initiative|intervention|description|"
                            r"commitment|task|change|step|workstream action|we will)\b", re.I)
META_COLUMNS = re.compile(r"\b(owner|lead|date|by when|when|deadline|timescale|timing|due|status|rag|quarter|"
                          r"year|target date|responsible|id|no\.?|#|ref|budget|cost|£|€|\$)\b", re.I)


def _pick_action_cell(cells: list[tuple[int, int]], header: tuple[str, ...], text: str) -> int | None:
    if header and len(header) == len(cells):
        for i, h in enumerate(header):
            if ACTION_COLUMNS.search(h):
                return i
        candidates = [i for i, h in enumerate(header) if not META_COLUMNS.search(h)]
    else:
        candidates = list(range(len(cells)))
    candidates = [i for i in candidates if cells[i][1] > cells[i][0]]
    if not candidates:
        return None
    return max(candidates, key=lambda i: cells[i][1] - cells[i][0])


def segment_plan(text: str) -> list[Segment]:
    """Every sentence, bullet and table row of the plan, with headings as context."""
    segments: list[Segment] = []
    headings: list[tuple[int, str]] = []  # (level, title)
    spans = _lines(text)
    para: list[tuple[int, int]] = []
    table_header: tuple[str, ...] = ()
    in_table = False

    def heading_path() -> tuple[str, ...]:
        return tuple(h for _, h in headings)

    def flush_para() -> None:
        if not para:
            return
        s, e = para[0][0], para[-1][1]
        for a, b in _split_sentences(text, s, e):
            segments.append(Segment(a, b, text[a:b], "sentence", heading_path()))
        para.clear()

    i = 0
    while i < len(spans):
        s, e = spans[i]
        line = text[s:e]
        nxt = text[spans[i + 1][0]:spans[i + 1][1]] if i + 1 < len(spans) else None
        stripped = line.strip()
        if not stripped:
            flush_para()
            in_table = False
            i += 1
            continue
        md = MD_HEADING.match(line)
        if md:
            flush_para()
            level = len(md.group(1))
            headings[:] = [h for h in headings if h[0] < level] + [(level, md.group(2).strip())]
            hs = s + line.index(md.group(2))
            segments.append(Segment(hs, hs + len(md.group(2).strip()), md.group(2).strip(), "heading", heading_path()))
            i += 1
            continue
        is_row = stripped.startswith("|") or stripped.count(" | ") >= 2
        if is_row:
            flush_para()
            if TABLE_SEP.match(line):
                i += 1
                continue
            cells = _cells(line, s)
            cell_texts = tuple(text[a:b] for a, b in cells)
            following_sep = nxt is not None and TABLE_SEP.match(nxt) is not None
            if not in_table and (following_sep or all(not COMMITMENT.search(c) and len(c.split()) <= 4 for c in cell_texts)):
                table_header = tuple(c.strip("*_ ") for c in cell_texts)
                in_table = True
                i += 1
                continue
            in_table = True
            pick = _pick_action_cell(cells, table_header, text)
            if pick is not None:
                a, b = _trim(text, *cells[pick])
                if b - a > 2:
                    segments.append(Segment(a, b, text[a:b], "table_row", heading_path(), context=line,
                                            table_header=table_header))
            i += 1
            continue
        in_table = False
        bullet = BULLET.match(line)
        if bullet:
            flush_para()
            item_start = s + bullet.end()
            item_end = e
            # continuation lines: indented, not bullets, not blank
            while i + 1 < len(spans):
                ns, ne = spans[i + 1]
                nline = text[ns:ne]
                if nline.strip() and nline[:1] in " \t" and not BULLET.match(nline) and not MD_HEADING.match(nline):
                    item_end = ne
                    i += 1
                else:
                    break
            item = text[item_start:item_end].strip()
            if (len(item.split()) <= 6 and item[-1:] not in ".!?;," and not COMMITMENT.search(item)
                    and not IMPERATIVE.match(item) and (nxt is None or not nxt.strip() or not nxt.startswith(line[:bullet.end()]))):
                # a numbered heading ("3. Implementation plan")
                level = 5
                headings[:] = [h for h in headings if h[0] < level] + [(level, item)]
                a, b = _trim(text, item_start, item_end)
                segments.append(Segment(a, b, text[a:b], "heading", heading_path()))
                i += 1
                continue
            label = ""
            run_in = RUN_IN_LABEL.match(text, item_start, item_end)
            if run_in and len(text[run_in.end():item_end].split()) >= 3:
                # "**Workforce:** we will ..." / "Q2 2025: launch ...": the action starts after its label,
                # which still gives it a time frame
                label = run_in.group("label")
                item_start = run_in.end()
            parts = _split_sentences(text, item_start, item_end)
            for a, b in parts or [_trim(text, item_start, item_end)]:
                if b - a > 1:
                    segments.append(Segment(a, b, text[a:b], "bullet", heading_path(), context=label))
            i += 1
            continue
        after_sentence = not para or text[para[-1][1] - 1:para[-1][1]] in ".!?:"
        if after_sentence and _is_heading_line(line, nxt):
            flush_para()
            title = stripped.rstrip(":").strip("*_ ")
            level = 7 if headings and headings[-1][0] <= 6 and stripped.endswith(":") else 6
            headings[:] = [h for h in headings if h[0] < level] + [(level, title)]
            hs = s + line.index(stripped[0])
            segments.append(Segment(hs, hs + len(stripped), stripped, "heading", heading_path()))
            i += 1
            continue
        para.append((s, e))
        i += 1
    flush_para()
    for seg in segments:
        _classify(seg)
    return segments


def _classify(seg: Segment) -> None:
    """Decide whether a segment commits to doing something."""
    text = seg.text.strip()
    words = text.split()
    if seg.kind == "heading":
        seg.reason = "heading"
        return
    if len(words) < 3 and seg.kind != "table_row":
        seg.reason = "too short"
        return
    if seg.kind != "table_row" and METADATA.match(text):
        seg.reason = "document metadata"
        return
    if RUN_IN_HEADING.match(text) and len(words) <= 8:
        seg.reason = "run-in heading"
        return
    under_context = any(NON_ACTION_HEADINGS.search(h) for h in seg.headings[-2:]) and not any(
        ACTION_HEADINGS.search(h) and not NON_ACTION_HEADINGS.search(h) for h in seg.headings[-1:]
    )
    commitment = COMMITMENT.search(text)
    imperative = IMPERATIVE.match(text)
    if NEGATION.search(text) and not re.search(r"\b(rather than|instead|but|and we will|we will also)\b", text, re.I):
        positive = [m for m in COMMITMENT.finditer(text) if not NEGATION.search(text[max(0, m.start() - 4):m.end() + 4])]
        if not positive or all(NEGATION.search(text[m.start():m.end() + 8]) for m in positive):
            seg.negated = True
            seg.reason = "negated: commits not to do something"
            return
    if TENTATIVE.search(text) and not (FIRM.search(TENTATIVE.sub("", text)) and not re.search(
            r"\bwill (?:consider|explore|look)", text, re.I)):
        seg.reason = "tentative: considers rather than commits"
        return
    if ASPIRATION.search(text) and not imperative:
        seg.reason = "aspiration"
        return
    if BACKGROUND.search(text) and not commitment:
        seg.reason = "background"
        return
    if seg.kind == "table_row":
        seg.is_action = True
        seg.reason = "table row"
        return
    if commitment:
        if re.search(r"\b(will|would) (?:have|be) (?:seen|grown|been)\b", text, re.I) and not imperative:
            seg.reason = "forecast"
            return
        seg.is_action = True
        seg.reason = "commitment"
        return
    if imperative:
        seg.is_action = True
        seg.reason = "imperative"
        return
    if seg.kind == "bullet" and not under_context and not re.search(
        r"\b(is|are|was|were|has|have)\b", text, re.I
    ) and any(ACTION_HEADINGS.search(h) for h in seg.headings):
        seg.is_action = True
        seg.reason = "item in an action list"
        return
    seg.reason = "commits to nothing"
