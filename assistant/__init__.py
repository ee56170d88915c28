"""Transformation Advisor: critiques integrated health-and-care transformation plans for
structural overuse and suggests relational interventions, grounded in a coded framework.

The public API is what ``__all__`` lists; everything else is internal and may change.
Importing this package is cheap: names load on first use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ._lazy import lazy_exports

__version__ = "0.1.0"

_EXPORTS = {
    "Advisor": "assistant.advice.advisor",
    "get_advisor": "assistant.advice.advisor",
    "Conversation": "assistant.advice.conversation",
    "Critique": "assistant.domain",
    "Finding": "assistant.domain",
    "InterventionAdvice": "assistant.domain",
    "Balance": "assistant.domain",
    "Action": "assistant.domain",
    "Reference": "assistant.domain",
    "Settings": "assistant.settings",
    "get_settings": "assistant.settings",
    "load_corpus": "assistant.knowledge",
    "Corpus": "assistant.knowledge",
    "read_plan": "assistant.reading",
    "plan_from_text": "assistant.reading",
    "PlanDocument": "assistant.reading",
    "critique_markdown": "assistant.advice.render",
    "AdvisorError": "assistant.errors",
    "BadInputError": "assistant.errors",
    "PlanReadError": "assistant.errors",
    "CorpusError": "assistant.errors",
    "UnknownIdError": "assistant.errors",
    "ConfigError": "assistant.errors",
    "RuntimeFailure": "assistant.errors",
    "ModelError": "assistant.errors",
    "StoreUnavailableError": "assistant.errors",
}

__all__ = [
    "Action",
    "Advisor",
    "AdvisorError",
    "BadInputError",
    "Balance",
    "ConfigError",
    "Conversation",
    "Corpus",
    "CorpusError",
    "Critique",
    "Finding",
    "InterventionAdvice",
    "ModelError",
    "PlanDocument",
    "PlanReadError",
    "Reference",
    "RuntimeFailure",
    "Settings",
    "StoreUnavailableError",
    "UnknownIdError",
    "__version__",
    "critique_markdown",
    "get_advisor",
    "get_settings",
    "load_corpus",
    "plan_from_text",
    "read_plan",
]

if TYPE_CHECKING:
    from .advice.advisor import Advisor, get_advisor
    from .advice.conversation import Conversation
    from .advice.render import critique_markdown
    from .domain import Action, Balance, Critique, Finding, InterventionAdvice, Reference
    from .errors import (
        AdvisorError,
        BadInputError,
        ConfigError,
        CorpusError,
        ModelError,
        PlanReadError,
        RuntimeFailure,
        StoreUnavailableError,
        UnknownIdError,
    )
    from .knowledge import Corpus, load_corpus
    from .reading import PlanDocument, plan_from_text, read_plan
    from .settings import Settings, get_settings


__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS, __all__)
