"""Timer triggers on their six-field NCRONTAB schedules (UTC), as the host runs them."""

from __future__ import annotations

import logging
import threading
import time
from datetime import datetime, timedelta, timezone

from azure.functions.timer import TimerRequest
from croniter import croniter

from dci.runner.index import IndexedFunction
from dci.runner.invoke import Invoker

logger = logging.getLogger(__name__)

PAST_DUE_AFTER = timedelta(seconds=1)


def next_occurrence(schedule: str, after: datetime) -> datetime:
    """The first time strictly after `after` that a six-field NCRONTAB schedule fires."""
    if len(schedule.split()) != 6 or not croniter.is_valid(schedule, second_at_beginning=True):
        raise ValueError(f"{schedule!r} is not a six-field NCRONTAB schedule like '0 */5 * * * *'")
    return croniter(schedule, after, second_at_beginning=True).get_next(datetime)


class TimerScheduler:
    """Runs one timer-triggered function on its schedule until stopped."""

    def __init__(self, function: IndexedFunction, invoker: Invoker) -> None:
        self.function = function
        self.schedule = function.trigger.props["schedule"]
        next_occurrence(self.schedule, datetime.now(timezone.utc))  # fail at start-up, not at first tick
        self._invoker = invoker

    def run(self, stop: threading.Event) -> None:
        """Fire on every occurrence (and once at start when runOnStartup is set)."""
        if self.function.trigger.props.get("runOnStartup"):
            self._fire(past_due=False)
        while not stop.is_set():
            due = next_occurrence(self.schedule, datetime.now(timezone.utc))
            if stop.wait(max(0.0, (due - datetime.now(timezone.utc)).total_seconds())):
                return
            self._fire(past_due=datetime.now(timezone.utc) - due > PAST_DUE_AFTER)

    def _fire(self, past_due: bool) -> None:
        started = time.perf_counter()
        try:
            self._invoker.call(self.function, TimerRequest(past_due=past_due))
        except Exception:
            logger.exception("%s: timer invocation failed", self.function.name)
            return
        logger.info("%s: timer fired in %.1f ms%s", self.function.name, (time.perf_counter() - started) * 1000,
                    " (past due)" if past_due else "")
