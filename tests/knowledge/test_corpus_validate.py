"""`assistant corpus validate`: the shipped corpus passes; each kind of breakage is named by file and field."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from assistant.knowledge import load_corpus, validate_corpus
from assistant.settings import shipped_corpus_path

ROOT = Path(__file__).resolve().parents[2]


def test_shipped_corpus_is_valid_and_complete() -> None:
    assert validate_corpus([shipped_corpus_path()]) == []
    c = load_corpus([shipped_corpus_path()])
    assert len(c.codes) >= 48
    assert len(c.framework.finding_kinds) == 9
    assert len(c.interventions) >= 14
    assert len(c.cases) >= 15
    for case in c.cases.values():
        assert case.sources and case.confidence in {"high", "medium", "low"}
    for code in c.codes.values():
        assert len(code.cues) >= 6 and len(code.examples) >= 3 and len(code.near_misses) >= 2


def test_provenance_says_the_codes_are_ours() -> None:
    statement = load_corpus().framework.provenance.statement.lower()
    assert "olaitan" in statement and "10.1108/jica-12-2023-0097" in statement
    assert re.search(r"(our own|this project|not the paper)", statement)


def test_cli_validate_passes() -> None:
    r = subprocess.run([sys.executable, "-m", "assistant", "corpus", "validate"], capture_output=True, text=True,
                       cwd=ROOT, timeout=120)
    assert r.returncode == 0, r.stderr
    assert "Corpus valid" in r.stdout


@pytest.fixture
def broken(tmp_path: Path) -> Path:
    target = tmp_path / "corpus"
    shutil.copytree(shipped_corpus_path(), target)
    return target


def _edit(path: Path, old: str, new: str, count: int = 1) -> None:
    text = path.read_text()
    assert old in text, f"{old!r} not in {path}"
    path.write_text(text.replace(old, new, count))


BREAKAGES = {
    # name: (file, old, new, expected file, expected field fragment)
    "unknown intervention in a finding kind": (
        "framework.yaml", "  - boundary-spanning-roles", "  - boundary-spaning-roles", "framework.yaml", "interventions"),
    "code id with a bad pattern": (
        "framework.yaml", "id: leadership.structural.governance-roles", "id: leadership.structural.Governance Roles",
        "framework.yaml", "codes[0].id"),
    "too few cues": ("framework.yaml", "    cues:", "    cues: []\n    old_cues:", "framework.yaml", "codes[0]"),
    "case with an unknown code": ("cases/torbay.md", "code: structure.structural.pooled-budgets",
                                  "code: structure.structural.pooled-budget", "torbay.md", "coding."),
    "case without sources": ("cases/nuka.md", "sources:", "old_sources:", "nuka.md", "sources"),
    "intervention citing an unknown case": ("interventions.yaml", "case:torbay", "case:torbey", "interventions.yaml",
                                            "cases"),
    "reference with a bad url": ("references.yaml", "url: http", "url: not-a-url-http", "references.yaml", "url"),
    "invalid yaml": ("references.yaml", "references:", "references: [", "references.yaml", "(yaml)"),
}


@pytest.mark.parametrize("name", list(BREAKAGES))
def test_breakage_is_named_by_file_and_field(broken: Path, name: str) -> None:
    file, old, new, want_file, want_field = BREAKAGES[name]
    _edit(broken / file, old, new)
    problems = validate_corpus([broken])
    assert problems, f"{name}: no problem reported"
    assert any(want_file in p.file and want_field in p.field for p in problems), [str(p) for p in problems]


def test_cli_exit_2_names_file_and_line(broken: Path) -> None:
    _edit(broken / "cases" / "torbay.md", "confidence: high", "confidence: certain")
    user = broken.parent / "user"
    (user / "cases").mkdir(parents=True)
    shutil.copy(broken / "cases" / "torbay.md", user / "cases" / "torbay.md")
    r = subprocess.run([sys.executable, "-m", "assistant", "corpus", "validate", str(user)], capture_output=True,
                       text=True, cwd=ROOT, timeout=120)
    assert r.returncode == 2
    assert re.search(r"torbay\.md:\d+: confidence:", r.stderr), r.stderr


def test_user_corpus_layers_over_shipped(tmp_path: Path) -> None:
    user = tmp_path / "mine"
    (user / "cases").mkdir(parents=True)
    src = (shipped_corpus_path() / "cases" / "torbay.md").read_text()
    (user / "cases" / "our-trust.md").write_text(src.replace("id: torbay", "id: our-trust", 1))
    c = load_corpus([shipped_corpus_path(), user])
    assert "our-trust" in c.cases and "torbay" in c.cases


def test_labels_read_naturally_inside_a_sentence() -> None:
    from assistant.knowledge.models import in_sentence

    assert in_sentence("Shared records and IT") == "shared records and IT"
    assert in_sentence("Targets and KPIs") == "targets and KPIs"
    assert in_sentence("Project management as the product") == "project management as the product"
    assert in_sentence("NHS Change Model") == "NHS change model"
