"""What answered the cases (issue 29), read from Dataverse: the knowledge articles agents attached to
the app's cases since the last read (`knowledgearticleincidents`, by `createdon`, a watermark like
the case poller's) and those article versions' columns (`knowledgearticles`), kept in the answers
store (dci/storage/answers.py). Run by the case poller's timer, after its poll.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING

from dci.clock import DAY_MS, day_of, iso_of
from dci.storage.warnings import SUGGESTIONS

if TYPE_CHECKING:
    from dci.dataverse.client import Dataverse
    from dci.storage import Stores
    from dci.storage.answers import AnswerStore
    from dci.storage.cases import CaseStore

logger = logging.getLogger(__name__)

WATERMARK = "attachments"  # the state row of the last attachment read (dci/storage/cases.py watermark)
FIRST_READ_DAYS = 30  # the first read goes this far back
OVERLAP_MS = 5 * 60_000  # each read starts this much before the watermark: a late commit is not skipped


@dataclass
class Read:
    """What one read found: attachments seen, kept (of a case the app has), article versions read."""

    seen: int = 0
    kept: int = 0
    versions: int = 0
    watermark_ms: int | None = None


def read_attachments_now(dataverse: Dataverse, stores: Stores, now_ms: int) -> Read | None:
    """`read_attachments` for the poller: a failure is said (once on health, when only an
    administrator can fix it) and the next poll reads from the same watermark."""
    from dci.dataverse.client import DataverseError

    assert stores.answers is not None
    try:
        read = read_attachments(dataverse, stores.cases, stores.answers, now_ms)
    except DataverseError as error:
        logger.warning("knowledge articles attached to cases could not be read now (%s); the next poll tries again",
                       error.status, extra={"status": error.status})
        if error.status == 403 and stores.warnings is not None:
            stores.warnings.say(SUGGESTIONS, "Suggestions cannot read the knowledge articles attached to cases: "
                                             "the app's role lacks a privilege; run `python -m dci dataverse setup`.")
        return None
    if stores.warnings is not None:
        stores.warnings.clear(SUGGESTIONS)
    return read


def read_attachments(dataverse: Dataverse, cases: CaseStore, answers: AnswerStore, now_ms: int) -> Read:
    """Keep the articles attached since the watermark to cases the app has (a case it never saw has
    no journey to learn from) and the columns of their article versions not kept yet, a page at a
    time (the watermark moves past a page once both are kept); then read again every version of
    an article an open suggestion names."""
    result = Read()
    watermark = cases.watermark(WATERMARK)
    since = (watermark if watermark is not None else now_ms - FIRST_READ_DAYS * DAY_MS) - OVERLAP_MS
    days: dict[str, str | None] = {}
    known = set(answers.versions())
    for page in dataverse.attachments_since(since):
        versions: set[str] = set()
        for attachment in page:
            result.seen += 1
            if attachment.case_id not in days:
                case = cases.case(attachment.case_id)
                days[attachment.case_id] = day_of(case["created_ms"]) if case and case.get("created_ms") else None
            day = days[attachment.case_id]
            if day is None:
                continue
            answers.attach(day, attachment)
            versions.add(attachment.article_id)
            result.kept += 1
        if versions - known:  # the page's article versions before the watermark moves past it
            found = dataverse.articles(sorted(versions - known))
            answers.put_versions(found.values())
            known |= versions
            result.versions += len(found)
        if page:
            newest = max(attachment.attached_ms for attachment in page)
            if watermark is None or newest > watermark:
                watermark = newest
                cases.set_watermark(newest, WATERMARK)  # this page is kept: never re-read past it
    suggested = sorted({str(state["article"]) for state in answers.suggestion_states().values()
                        if state.get("changed_ms") is None})  # (once changed, a later edit changes nothing)
    if suggested:  # their articles' versions read again: an edit (or a new version) moves a suggestion on
        again = dataverse.articles_numbered(suggested)
        answers.put_versions(again.values())
        result.versions += len(again)
    result.watermark_ms = watermark
    logger.info("knowledge articles attached to cases: %d seen, %d kept, %d article versions read; watermark %s",
                result.seen, result.kept, result.versions, iso_of(watermark) if watermark is not None else "none",
                extra={"seen": result.seen, "kept": result.kept})
    return result
