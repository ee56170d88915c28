"""The declared public surface: a change to it must be deliberate (update this list)."""

import assistant

EXPECTED = [
    "Action", "Advisor", "AdvisorError", "BadInputError", "Balance", "ConfigError", "Conversation", "Corpus",
    "CorpusError", "Critique", "Finding", "InterventionAdvice", "ModelError", "PlanDocument", "PlanReadError",
    "Reference", "RuntimeFailure", "Settings", "StoreUnavailableError", "UnknownIdError", "__version__",
    "critique_markdown", "get_advisor", "get_settings", "load_corpus", "plan_from_text", "read_plan",
]


def test_public_api_is_declared() -> None:
    assert sorted(assistant.__all__) == sorted(EXPECTED)


def test_every_public_name_resolves() -> None:
    for name in assistant.__all__:
        assert getattr(assistant, name) is not None, name


def test_core_does_not_import_faces() -> None:
    import subprocess
    import sys

    code = ("import sys, assistant.advice.advisor, assistant.analysis.detect; "
            "bad = [m for m in sys.modules if m.startswith(('assistant.api', 'assistant.tui', 'assistant.evals', "
            "'litellm', 'fastapi', 'textual', 'chromadb'))]; print(bad); sys.exit(1 if bad else 0)")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
