"""The corpus: the coding scheme, the intervention library, references and coded cases."""

from .loader import Corpus, load_corpus, validate_corpus

__all__ = ["Corpus", "load_corpus", "validate_corpus"]
