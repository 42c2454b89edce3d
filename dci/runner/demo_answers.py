"""The demo's closed loop (issue 29): what agents attached to the demo's cases, the articles' versions,
and the one article changed halfway (`python -m dci demo seed`, after the cases are assembled).

For each seeded case whose journey searched a term that found nothing, the agent mostly attaches the
article that term wanted (demo_history.ANSWERS); after other searches, sometimes the first article
that search lists. Fifteen days before now (demo_history.edited_at), CHANGED_TERM was added to its
answer's keywords: that article version's `modifiedon` is then, and the suggestion is on record from
the first day, so the dashboard shows it with a before and after beside the open ones. Deterministic
(uuid5 ids under DEMO_NAMESPACE, a generator seeded with the case), so seeding twice writes the same
rows; `remove` takes out the demo's alone.
"""

from __future__ import annotations

import random
import uuid
from collections.abc import Iterable
from datetime import date, datetime, timezone
from typing import TYPE_CHECKING

from dci.clock import DAY_MS, ms_of
from dci.dataverse.articles import Article, Attachment
from dci.insights.answers import suggestion_id
from dci.insights.facts import placed
from dci.runner.demo_history import ANSWERS, ARTICLES, CHANGED_TERM, DEMO_NAMESPACE, TERM, number

if TYPE_CHECKING:
    from dci.storage.answers import AnswerStore

AUTHORED_DAYS = 120  # the demo's articles were last changed this long before the first seeded day


def version_id(article: int) -> str:
    return str(uuid.uuid5(DEMO_NAMESPACE, f"article/{number(article)}"))


def attachments(case_id: str, fact: dict, created_ms: int) -> list[Attachment]:
    """What an agent attached to one demo case, from its fact's searches (those that found nothing first)."""
    rng = random.Random(f"dci-demo/answers/{case_id}")
    wanted = [ANSWERS[term] for term in placed(fact, "zero") if term in ANSWERS]
    if wanted and rng.random() < 0.85:
        chosen = wanted[0]
    else:
        listed = [TERM[term][1][0] for term in placed(fact, "searches") if term in TERM and TERM[term][1]]
        if not listed or rng.random() < 0.6:
            return []
        chosen = listed[0]
    attached_ms = created_ms + rng.randint(2, 30) * 3_600_000
    return [Attachment(str(uuid.uuid5(DEMO_NAMESPACE, f"attach/{case_id}/{chosen}")), case_id, version_id(chosen),
                       attached_ms)]


def versions(first: date, edited_ms: int) -> list[Article]:
    """One version of every demo article; CHANGED_TERM's answer changed at `edited_ms`."""
    authored = ms_of(datetime(first.year, first.month, first.day, tzinfo=timezone.utc)) - AUTHORED_DAYS * DAY_MS
    answer = ANSWERS[CHANGED_TERM]
    return [Article(version_id(n), number(n), title, f"{title.lower()}{', ' + CHANGED_TERM if n == answer else ''}",
                    edited_ms if n == answer else authored, True) for n, title in ARTICLES.items()]


def seed(answers: AnswerStore, cases: Iterable[tuple[str, dict, int]], first: date, edited_ms: int) -> int:
    """Write the demo's attachments (of `cases`: case id, case fact, created ms), its article
    versions and the changed suggestion's record; returns the attachments written."""
    written = 0
    for case_id, fact, created_ms in cases:
        for attachment in attachments(case_id, fact, created_ms):
            answers.attach(fact["day"], attachment)
            written += 1
    answers.put_versions(versions(first, edited_ms))
    authored = ms_of(datetime(first.year, first.month, first.day, tzinfo=timezone.utc)) - AUTHORED_DAYS * DAY_MS
    changed = {"id": suggestion_id(CHANGED_TERM, number(ANSWERS[CHANGED_TERM])), "term": CHANGED_TERM,
               "article": number(ANSWERS[CHANGED_TERM]), "because": "zero results"}
    answers.note_suggestion(changed, authored, authored + AUTHORED_DAYS * DAY_MS)
    return written


def remove(answers: AnswerStore, case_days: Iterable[tuple[str, str]]) -> None:
    """Take the demo's rows out: the attachments of its cases ((case id, day)), its article versions,
    and the suggestions of its terms and articles."""
    for case_id, day in case_days:
        answers.forget_case(case_id, day)
    answers.forget_versions(version_id(n) for n in ARTICLES)
    numbers = {number(n) for n in ARTICLES}
    answers.forget_suggestions(sid for sid, state in answers.suggestion_states().items()
                               if state.get("term") in TERM and state.get("article") in numbers)
