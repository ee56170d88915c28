"""Check one `assistant critique --format json --model ...` run against a live model (CI lane).

    python tests/llm/live_check.py PLAN CRITIQUE.json STDERR.txt MODEL

Passes when the output is a valid Critique, every quote is verbatim and every citation resolves,
and the backend string tells the truth: the model's name only if the critique differs from the
offline one in what a model writes, "offline (fallback: <reason>)" only if it is the offline
critique and the user was told. Prints which of the two happened.
"""

from __future__ import annotations

import sys
from pathlib import Path

from assistant.advice.advisor import Advisor
from assistant.advice.grounding import check_grounding
from assistant.domain import Critique
from assistant.reading import read_plan

REASONS = {"timeout", "provider-error", "rate-limited", "invalid-output", "unexpected-error"}


def main(plan_path: str, critique_path: str, stderr_path: str, model: str) -> int:
    doc = read_plan(plan_path)
    critique = Critique.model_validate_json(Path(critique_path).read_text(encoding="utf-8"))
    stderr = Path(stderr_path).read_text(encoding="utf-8")
    advisor = Advisor()
    problems: list[str] = []
    report = check_grounding(critique, doc.text, advisor.corpus)
    problems += report.problems
    if report.quotes != report.quotes_verbatim:
        problems.append("a quote is not verbatim")
    offline = advisor.critique_offline(doc)
    same_as_offline = critique.model_copy(update={"backend": "offline"}) == offline
    if critique.backend == model:
        verdict = "the model's critique was used"
        if same_as_offline:
            problems.append("backend names the model but the critique is the offline one")
        if "could not be used" in stderr:
            problems.append("backend names the model but the user was told it fell back")
        if (critique.verdict.structural_overuse, critique.verdict.severity) != (
                offline.verdict.structural_overuse, offline.verdict.severity):
            problems.append("the model changed the measured verdict")
    elif critique.backend.startswith("offline (fallback: ") and critique.backend.endswith(")"):
        reason = critique.backend[len("offline (fallback: "):-1]
        verdict = f"fell back to the offline critique ({reason})"
        if reason not in REASONS:
            problems.append(f"unknown fallback reason {reason!r}")
        if not same_as_offline:
            problems.append("backend says fallback but the critique is not the offline one")
        if "could not be used" not in stderr:
            problems.append("the user was not told about the fallback")
    else:
        verdict = "?"
        problems.append(f"unexpected backend {critique.backend!r}")
    print(f"live-model check: {model} on {Path(plan_path).name}: {verdict}; "
          f"{len(critique.findings)} finding(s), {len(critique.interventions)} intervention(s), "
          f"{report.quotes} quote(s) verbatim")
    for problem in problems:
        print(f"live-model check: FAIL: {problem}", file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    if len(sys.argv) != 5:
        sys.exit(__doc__)
    sys.exit(main(*sys.argv[1:5]))
