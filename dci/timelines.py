"""GET /api/cases/{case_id}/timeline: the stored timeline, or where the case stands."""

from __future__ import annotations

from dci.casestore import PENDING, CaseStore
from dci.dataverse import is_guid
from dci.problems import FieldError, Problem
from dci.replies import Reply, json_reply, problem_reply


def reply(cases: CaseStore, case_id: str) -> Reply:
    """200 with the timeline, 202 while pending, 200 with the reason when skipped, 404 when unknown."""
    if not is_guid(case_id):
        return problem_reply(Problem(400, "A case id is a GUID.", "invalid-case-id",
                                     [FieldError("case_id", "must be a GUID")]))
    case_id = case_id.lower()
    case = cases.case(case_id)
    if case is None:
        return problem_reply(Problem(404, f"No case {case_id} is known here (yet).", "unknown-case"))
    if case["status"] == "skipped":
        return json_reply(200, {"case_id": case_id, "status": "skipped", "reason": case.get("reason", "")})
    timeline = cases.timeline(case_id)
    if case["status"] in PENDING or timeline is None:
        return json_reply(202, {"case_id": case_id, "status": "pending"}, {"Retry-After": "60"})
    return json_reply(200, {"status": "assembled", **timeline["document"]}, {"Cache-Control": "no-store"})
