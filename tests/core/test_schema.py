from pathlib import Path

from assistant.domain import critique_json_schema

SCHEMA = Path(__file__).resolve().parents[2] / "docs" / "critique.schema.json"


def test_committed_schema_matches_the_model() -> None:
    assert SCHEMA.read_text() == critique_json_schema(), (
        "docs/critique.schema.json drifted from assistant.domain.Critique: run "
        "`python -m assistant.domain > docs/critique.schema.json` and update PRODUCT's twin in docs/")
