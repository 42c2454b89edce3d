"""A ticket number no stored case carries: what Dataverse, the verified source, says about it.

An agent may open a case's report by its ticket number before this app has taken the case up: the
poller reads new cases on each CASE_SCHEDULE firing, and the timeline is due CASE_SETTLE_SECONDS
after the case was created. With Dataverse configured, a ticket number no stored case carries is
looked up there (`Dataverse.case_with_ticket`):

1. Dataverse has no case with it: unknown (404), as without Dataverse;
2. Dataverse created it less than `due_ms` ago (the settle time, the poll's longest gap and
   `MARGIN_MS`): on its way (`TicketPending`: 202, ask again shortly);
3. Dataverse created it longer ago: no journey (404), and why: this app never took the case up;
4. Dataverse did not answer: unknown, and it could not be checked (404, never a 500; the log line
   names the status, not the ticket).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, NoReturn

from dci.clock import MINUTE_MS, duration, moment
from dci.problems import Problem
from dci.schedules import longest_gap_seconds

if TYPE_CHECKING:
    from dci.settings import Settings

logger = logging.getLogger(__name__)

MARGIN_MS = 2 * MINUTE_MS  # a slow poll run, the queue, the clocks of Dataverse and of this app
FIRST_ASK_AGAIN_S, LAST_ASK_AGAIN_S = 5, 30  # the waiting page reloads within these many seconds


@dataclass
class TicketPending(Exception):
    """Dataverse has the case and this app should take it up soon: ask again in `wait_seconds`."""

    ticket: str
    created_ms: int
    wait_seconds: int
    detail: str


def due_ms(settings: Settings, gap_ms: int) -> int:
    """How long after its creation in Dataverse a case may still be unknown here (`gap_ms`: the case
    poll's longest gap)."""
    return settings.settle_ms + gap_ms + MARGIN_MS


def unknown_ticket(ticket: str, settings: Settings, now_ms: int) -> NoReturn:
    """Raise the answer for a ticket number no stored case carries: a 404 Problem, or TicketPending
    while Dataverse's case is on its way here (the module's rules; no look-up without Dataverse)."""
    if settings.dataverse_url is None:
        raise Problem(404, f"No case with ticket number {ticket} is known here (yet).", "unknown-case")
    from dci.dataverse.client import DataverseError, client_from  # (only the Dataverse paths load requests)

    client = client_from(settings)
    assert client is not None  # (DATAVERSE_URL is set)
    try:
        found = client.case_with_ticket(ticket)
    except DataverseError as error:
        logger.warning("case report: a ticket number could not be looked up in Dataverse (HTTP %s%s)",
                       error.status, f" {error.code}" if error.code else "")
        raise Problem(404, f"No case with ticket number {ticket} is known here yet, and Dataverse could not be "
                      "asked whether it has one. Try again in a minute.", "unknown-case") from None
    if found is None:
        raise Problem(404, f"No case with ticket number {ticket} is known here or in Dataverse.", "unknown-case")
    created = moment(found.created_ms).strftime("%d %b %Y, %H:%M UTC")
    age = max(0, now_ms - found.created_ms)  # (Dataverse's clock may be ahead of this one)
    gap_ms = longest_gap_seconds(settings.case_schedule) * 1000
    due = due_ms(settings, gap_ms)
    if age < due:
        wait = min(max(FIRST_ASK_AGAIN_S, -(-min(due - age, gap_ms) // 1000)), LAST_ASK_AGAIN_S)
        raise TicketPending(ticket, found.created_ms, wait, (
            f"Dataverse created case {ticket} {duration(age)} ago ({created}). This app takes new cases up "
            f"within {duration(gap_ms)} and assembles the customer's journey {duration(settings.settle_ms)} after "
            "a case is created, so it is on its way. This page reloads itself."))
    raise Problem(404, (
        f"No journey was found for ticket {ticket}: Dataverse created this case on {created}, "
        "but this app never took it up. The case may be older than the app's first look for cases (a day back), "
        "its customer's data may have been erased here, or the case poller may not be running "
        "(see /api/health/details)."), "unknown-case")
