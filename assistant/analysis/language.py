"""Which language a plan is written in, as far as the offline reader needs to know.

The offline reader (segmenter, coder, detectors) reads English. A plan in another language would
come out with few or no actions and a verdict it cannot stand behind, so it is refused with a
notice naming the language instead. The check counts common function words, which short plans
and plans full of English programme names do not fool: a plan is English when English function
words are at least as common as any other language's and make up a fair share of its words.
"""

from __future__ import annotations

import re
from collections import Counter

__all__ = ["LANGUAGE_NAMES", "plan_language"]

# Frequent function words, none shared between the lists' languages and English.
FUNCTION_WORDS: dict[str, frozenset[str]] = {
    "en": frozenset(["the", "and", "of", "to", "in", "will", "we", "our", "with", "for", "by", "on", "is", "are", "be", "this", "that", "from", "which", "their"]),
    "nl": frozenset(["de", "het", "een", "en", "van", "voor", "met", "wij", "onze", "zijn", "worden", "door", "naar", "bij", "ook", "niet", "deze", "dat"]),
    "de": frozenset(["der", "die", "das", "und", "mit", "für", "wir", "unsere", "werden", "ist", "sind", "nicht", "auch", "durch", "eine", "einer", "bei"]),
    "fr": frozenset(["le", "la", "les", "et", "des", "du", "pour", "avec", "nous", "notre", "sont", "être", "dans", "une", "par", "sur", "est", "aux", "qui"]),
    "es": frozenset(["el", "la", "los", "las", "y", "del", "para", "con", "nosotros", "nuestra", "son", "ser", "una", "por", "sobre", "está", "que", "se"]),
    "pt": frozenset(["o", "os", "as", "e", "do", "da", "dos", "das", "para", "com", "nós", "nossa", "são", "ser", "uma", "por", "sobre", "não", "que"]),
    "it": frozenset(["il", "lo", "gli", "le", "e", "del", "della", "per", "con", "noi", "nostra", "sono", "essere", "una", "che", "non", "nel", "alla"]),
    "no": frozenset(["og", "i", "til", "med", "for", "vi", "våre", "skal", "er", "ikke", "som", "av", "på", "det", "en", "et"]),
    "sv": frozenset(["och", "i", "till", "med", "för", "vi", "våra", "ska", "är", "inte", "som", "av", "på", "det", "en", "ett"]),
    "da": frozenset(["og", "i", "til", "med", "for", "vi", "vores", "skal", "er", "ikke", "som", "af", "på", "det", "en", "et"]),
}
LANGUAGE_NAMES = {"en": "English", "nl": "Dutch", "de": "German", "fr": "French", "es": "Spanish",
                  "pt": "Portuguese", "it": "Italian", "no": "Norwegian", "sv": "Swedish", "da": "Danish"}
_WORD = re.compile(r"[^\W\d_]+", re.U)
MIN_WORDS = 40
MIN_ENGLISH_SHARE = 0.08


def plan_language(text: str) -> str | None:
    """The plan's language code when it is clearly not English, else None (English, or too short
    or too mixed to say)."""
    words = [w.lower() for w in _WORD.findall(text)]
    if len(words) < MIN_WORDS:
        return None
    counts = Counter(words)
    hits = {lang: sum(counts[w] for w in vocab) for lang, vocab in FUNCTION_WORDS.items()}
    english = hits.pop("en")
    best = max(hits, key=lambda lang: hits[lang])
    if english / len(words) >= MIN_ENGLISH_SHARE or english >= hits[best]:
        return None
    return best
