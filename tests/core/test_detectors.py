"""Detectors on small plans: the patterns that generalise beyond the dev set's wording."""

from __future__ import annotations

import pytest

from assistant.advice.advisor import Advisor
from assistant.analysis.detect import CULTURE_DEADLINE, GOODWILL, JOINT_LEARNING, TIME_LIMITED


@pytest.fixture(scope="module")
def advisor() -> Advisor:
    return Advisor()


def kinds(advisor: Advisor, plan: str) -> dict[str, list[str]]:
    return {d.kind: [q.text for q in d.quotes] for d in advisor.assess(plan).detections}


@pytest.mark.parametrize("text", [
    "The posts are fixed-term to June 2026.",
    "Physiotherapy posts are on fixed-term contracts to December 2026.",
    "A one-year community integration grant from the Department pays for the coordinator.",
    "The work is funded from the cluster allocation for 2025/26 only.",
    "The winter money has to be spent by 31 March next year.",
    "The Department has not yet confirmed recurrent funding beyond March 2026.",
])
def test_money_and_posts_that_stop_soon(text: str) -> None:
    assert TIME_LIMITED.search(text)


@pytest.mark.parametrize("text", [
    "We will recruit two permanent posts funded recurrently from the pooled budget.",
    "The grant is recurrent and reviewed every five years.",
])
def test_lasting_money_is_not_time_limited(text: str) -> None:
    assert not TIME_LIMITED.search(text)


def test_culture_promised_by_a_near_date() -> None:
    assert CULTURE_DEADLINE.search("A single, shared culture across acute and community services by March 2026.")
    assert CULTURE_DEADLINE.search("We expect the new culture of Home First to be embedded across the system by the end of March.")
    assert not CULTURE_DEADLINE.search("We will open the new hub by March 2026.")


@pytest.mark.parametrize("text", [
    "Practices are encouraged to hold a weekly huddle with the district nurses where time allows.",
    "Staff attend the learning forum in their own time.",
    "The practice manager has kindly offered to coordinate the network alongside her practice role.",
    "These meetings depend on the goodwill of the GP partners.",
])
def test_relational_work_resting_on_goodwill(text: str) -> None:
    assert GOODWILL.search(text)


def test_case_based_learning_is_joint_learning_but_a_forum_is_not_training() -> None:
    assert JOINT_LEARNING.search("A monthly learning session built around a recent case will bring together ward staff and GPs.")
    assert not JOINT_LEARNING.search("A monthly clinical forum will bring together ward clinicians and GPs to review escalations.")


GOODWILL_PLAN = """# Tōtara network: working together

1. District nurses, GPs and social workers will hold a weekly huddle on shared patients when caseloads allow.
2. Practice nurses will shadow the community mental health team for a morning each quarter.
3. We will begin every network meeting with a patient story told by a patient or carer.
4. Health coaches will form a peer support group that meets after hours on a voluntary basis.
5. Each practice will buddy with another so that nurses can learn from each other's frailty reviews.
"""

SHORT_PLAN = """# Integration programme 2025/26

Our aim is one culture across hospital and community services by March 2026.

1. Appoint a programme manager to run the integration workstreams.
2. Merge the two community teams into one directorate by January 2026.
3. Report progress to the programme board every month.
4. The programme will close in March 2026 and the posts are fixed-term to that date.
"""


def test_goodwill_relational_plan_is_relational_without_structure(advisor: Advisor) -> None:
    found = kinds(advisor, GOODWILL_PLAN)
    assert "relational-without-structure" in found
    assert any(GOODWILL.search(q) for q in found["relational-without-structure"])
    critique = advisor.critique_offline(GOODWILL_PLAN)
    rws = next(f for f in critique.findings if f.kind == "relational-without-structure")
    assert "spare time and goodwill" in rws.summary
    assert not critique.verdict.structural_overuse


def test_short_programme_claiming_a_new_culture_is_short_horizon(advisor: Advisor) -> None:
    found = kinds(advisor, SHORT_PLAN)
    assert "short-horizon" in found
    assert any("by March 2026" in q or "fixed-term" in q or "close" in q for q in found["short-horizon"])


def test_document_metadata_and_run_in_headings_are_not_actions(advisor: Advisor) -> None:
    plan = """Prepared for: Executive Leadership Team and Board Finance Committee
Subject: Integration programme update
Date: 6 November 2025

Who will make it happen.
The practice manager will coordinate the network and the PHO will fund backfill for staff attending.

What we will do is merge the two teams.
"""
    texts = [a.text for a in advisor.assess(plan).analysis.actions]
    assert not any(t.startswith(("Prepared for", "Subject", "Date", "Who will")) for t in texts), texts
    assert any(t.startswith("The practice manager will coordinate") for t in texts)
    assert any(t.startswith("What we will do is merge") for t in texts)


def test_an_nhs_trust_is_not_a_claim_about_trust() -> None:
    from assistant.analysis.detect import CULTURE_CLAIM

    assert not CULTURE_CLAIM.search("The NHS Trust Board will approve the business case.")
    assert CULTURE_CLAIM.search("We will build trust between the community teams.")


SINGLE_MANAGEMENT = """\
Community Mental Health Services: Single Management Plan 2025/26

1. The adult community mental health teams of the Trust and the council will move under one Head of Service from 1 June 2025.
2. Both teams will be co-located in the Riverside Centre by September 2025.
3. A single referral form and one point of access will replace the two front doors.
4. Budgets for community mental health will be pooled under a Section 75 agreement.
5. A Mental Health Partnership Board will oversee delivery and meet monthly.
6. All staff will complete mandatory training on the new case management system by October 2025.
7. Performance will be reported monthly against waiting time, caseload and budget targets.
8. Job descriptions will be harmonised and staff will transfer to the new structure.
9. A programme manager will keep a project plan and risk register.
10. Social workers and nurses will hold a weekly multidisciplinary team meeting to discuss complex cases.
11. Team leaders will meet monthly with staff to hear their views on the new service.
12. A buddying scheme will pair each council social worker with a Trust nurse for the first three months.
13. A business case will set out savings of £1.2m from the single management structure.
14. Sickness absence and agency spend will be tracked in a monthly dashboard.
15. An information governance agreement will be signed by both organisations.
17. All policies will be reviewed against the Trust's policy framework by March 2026.
"""


def test_a_few_relational_actions_in_an_overwhelmingly_structural_plan_are_not_a_mechanism(advisor: Advisor) -> None:
    # a plan 18 % relational whose structural changes outnumber its few relational actions is
    # flagged, whatever the ratio of changes to mechanisms
    found = kinds(advisor, SINGLE_MANAGEMENT)
    assert "structure-without-relationship" in found
    assert "The adult community mental health teams of the Trust and the council will move under one Head of Service " \
        "from 1 June 2025." in found["structure-without-relationship"]
    from assistant.analysis import detect
    from assistant.analysis.detect import balance_of

    assessed = advisor.assess(SINGLE_MANAGEMENT)
    detection = next(d for d in assessed.detections if d.kind == "structure-without-relationship")
    assert balance_of(assessed.analysis.actions).relational_share < detect.THIN_RELATIONAL_SHARE
    changes, mechanisms = detection.facts["structural_changes"], detection.facts["relational_mechanisms"]
    # the thin-share rule holds on its own: a few relational actions, outnumbered by the changes
    assert isinstance(changes, int) and isinstance(mechanisms, int) and 0 < mechanisms <= changes


def test_the_same_changes_with_real_relational_work_are_not_flagged(advisor: Advisor) -> None:
    richer = SINGLE_MANAGEMENT + """\
18. Nurses and social workers will co-design the new joint assessment with people who use the service and their carers.
19. Every team will take part in a facilitated session each quarter to map how well they coordinate and agree what to change.
20. Staff from both organisations will learn together in monthly case-based sessions on shared cases.
"""
    assert "structure-without-relationship" not in kinds(advisor, richer)
