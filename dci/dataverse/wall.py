"""A case's portal visits on the Dynamics 365 timeline wall (issue 28): the `dci_portalvisit`
activities of dci/dataverse/visits.py written to Dataverse, and kept in step with the journey.

The case's timeline row records what is on the wall: each activity id with a fingerprint of what
was written. A re-assembly writes only what changed: a new visit is created (completed, regarding
the case, the contact its Customer party); a changed one is reopened, updated and completed again
(a completed activity is read-only until it is reopened); a visit that left the journey (the
repeat-customer window moved) is deleted. Should the record be lost between a write and its save
(a crash, a redelivery), a create finds the activity there (412) and updates it instead; an update
that finds it gone (someone deleted it in Dynamics) creates it again.

Visits an assembly set out to write are noted before it writes them (the case row's
`visits_unsure`, cleared when the record is saved), so one that failed half-way leaves nothing
behind unknown: the next assembly writes each again if it is still wanted and deletes it if not.

What only an administrator can fix — the table not made, a column missing, the role without a
privilege on it — is a `SetupMissing`: the assembler says so once in the log and on
/api/health/details, and still writes the note. Anything else (throttling after the client's own
retries, Dataverse down) is raised: the case's message is delivered again.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, NamedTuple

from dci.dataverse.client import SEGMENT_NOT_FOUND, DataverseError
from dci.dataverse.setup.plan import missing_privilege
from dci.dataverse.visits import TABLE
from dci.storage.warnings import TIMELINE_ACTIVITIES

if TYPE_CHECKING:
    from dci.dataverse.client import Dataverse
    from dci.storage.warnings import Warnings

logger = logging.getLogger(__name__)

SETUP = "run `python -m dci dataverse setup` (docs/DATAVERSE.md)"
WARNING = TIMELINE_ACTIVITIES  # the health warning's name


class SetupMissing(RuntimeError):
    """The environment lacks what the visits need (the table, a column, a privilege); says what.
    `changed`: the writes that went through before it (0: nothing of this sync is on the wall)."""

    changed = 0


def fingerprint(activity: Mapping[str, Any], contact: str) -> str:
    """What identifies one written visit: its columns and its customer."""
    return hashlib.sha256(json.dumps([activity, contact], sort_keys=True).encode()).hexdigest()[:16]


class Synced(NamedTuple):
    """What is on the wall now (id -> fingerprint), and how many visits were written or deleted."""

    record: dict[str, str]
    changed: int


def sync(dataverse: Dataverse, case_id: str, contact: str, activities: Sequence[dict[str, Any]],
         written: Mapping[str, str]) -> Synced:
    """Bring the case's visits on the wall from `written` (id -> fingerprint, as recorded; "" for one
    that may or may not exist) to `activities`. Raises SetupMissing, or DataverseError for the rest."""
    try:
        now: dict[str, str] = {}
        changed = 0
        for activity in activities:
            visit, mark = activity["activityid"], fingerprint(activity, contact)
            if written.get(visit) != mark:
                _put(dataverse, activity, case_id, contact, new=not written.get(visit))
                changed += 1
            now[visit] = mark
        for visit in written.keys() - now.keys():
            dataverse.delete_visit(visit)
            changed += 1
        return Synced(now, changed)
    except DataverseError as error:
        problem = setup_missing(error)
        if problem is None:
            raise
        problem.changed = changed
        raise problem from None


def delete_on_case(dataverse: Dataverse, case_id: str) -> int:
    """Delete every Portal visit on the case (an erasure), recorded or not; returns how many."""
    return _delete_where(dataverse, f"_regardingobjectid_value eq {case_id}")


def delete_of_contact(dataverse: Dataverse, contact: str) -> int:
    """Delete every Portal visit whose party is the contact (an erasure), on whatever case."""
    return _delete_where(dataverse, f"{TABLE}_activity_parties/any(p:p/_partyid_value eq {contact})")


def _delete_where(dataverse: Dataverse, condition: str) -> int:
    try:
        visits = dataverse.visit_ids(condition)
    except DataverseError as error:
        if error.status == 404 and error.code == SEGMENT_NOT_FOUND:  # a table never made has none
            return 0
        raise
    return sum(dataverse.delete_visit(visit) for visit in visits)


def setup_missing(error: DataverseError) -> SetupMissing | None:
    """The SetupMissing a Dataverse error means, or None when it means something else."""
    if error.status == 404 and error.code == SEGMENT_NOT_FOUND:
        return SetupMissing(f"the table {TABLE} does not exist: {SETUP}")
    if error.status == 400 and error.code == SEGMENT_NOT_FOUND:  # ("Invalid property 'dci_searches' …")
        return SetupMissing(f"the table {TABLE} lacks a column the app writes ({error}): {SETUP}")
    if error.status == 403:
        privilege = missing_privilege(str(error)) or f"a privilege on {TABLE}"
        return SetupMissing(f"the app's security role lacks {privilege}: {SETUP}")
    return None


def _put(dataverse: Dataverse, activity: dict[str, Any], case_id: str, contact: str, *, new: bool) -> None:
    if new:
        try:
            return dataverse.put_visit(activity, case_id, contact, new=True)
        except DataverseError as error:
            if error.status != 412:  # 412: there already (a write whose record was lost): update it
                raise
    try:
        dataverse.reopen_visit(activity["activityid"])
    except DataverseError as error:
        if error.status != 404 or error.code == SEGMENT_NOT_FOUND:
            raise
        return dataverse.put_visit(activity, case_id, contact, new=True)  # deleted in Dynamics: written again
    dataverse.put_visit(activity, case_id, contact, new=False)


def warn_setup_missing(warnings: Warnings | None, problem: SetupMissing) -> None:
    """Say the visits cannot be written: once in the log and on /api/health/details while it lasts."""
    if warnings is None or warnings.say(WARNING, f"Portal visits are not written to the case timeline: {problem}."):
        logger.warning("Portal visits are not written to the Dynamics 365 timeline: %s. The note is still written.",
                       problem)


def setup_works(warnings: Warnings | None) -> None:
    """Dataverse took the visits' writes (or they are off): any warning about them is over."""
    if warnings is not None:
        warnings.clear(WARNING)
