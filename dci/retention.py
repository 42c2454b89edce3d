"""Retention without scanning: interactions live in one table per month, dropped whole."""

from __future__ import annotations

import calendar
import logging
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING

from dci.clock import ms_of
from dci.storage.cases import LEGACY_TICKETS
from dci.storage.keys import month_of_table

if TYPE_CHECKING:
    from dci.settings import Settings
    from dci.storage import Stores

logger = logging.getLogger(__name__)


def expired(tables: list[str], now: datetime, retention_days: int) -> list[str]:
    """Monthly tables whose every possible row is older than the retention period."""
    cutoff = now - timedelta(days=retention_days)
    out = []
    for name in tables:
        month = month_of_table(name)
        if month is None:
            continue
        year, number = month
        last_day = calendar.monthrange(year, number)[1]
        month_end = datetime(year, number, last_day, tzinfo=timezone.utc) + timedelta(days=1)
        if month_end <= cutoff:
            out.append(name)
    return out


def apply(stores: Stores, now: datetime, retention_days: int) -> list[str]:
    """Drop the expired monthly tables, and the insight facts older than the retention period;
    returns the tables' names."""
    store, insights = stores.interactions, stores.insights
    dropped = expired(store.interaction_tables(), now, retention_days)
    store.drop_table(LEGACY_TICKETS)  # browser-per-ticket rows of earlier builds: nothing reads them now
    for name in dropped:
        store.drop_table(name)
        logger.info("retention dropped table %s (older than %d days)", name, retention_days,
                    extra={"table": name, "retention_days": retention_days})
    cutoff = (now - timedelta(days=retention_days)).date().isoformat()
    removed = insights.forget_before(cutoff) + (stores.answers.forget_before(
        cutoff, ms_of(now - timedelta(days=retention_days))) if stores.answers else 0)
    if removed:
        logger.info("retention removed %d insight facts and attachments from before %s", removed, cutoff,
                    extra={"facts": removed, "before": cutoff})
    if stores.erasures is not None:  # tombstones outlive every re-read, then go
        from dci.storage.erasures import KEPT_DAYS

        stones = stores.erasures.forget_before(ms_of(now - timedelta(days=KEPT_DAYS)))
        if stones:
            logger.info("retention removed %d erasure tombstones older than %d days", stones, KEPT_DAYS,
                        extra={"tombstones": stones})
    return dropped


def run(settings: Settings, stores: Stores, now: datetime) -> list[str]:
    """The daily timer: `apply`, then, with LAKE_URL set, the lake's upkeep (its days past the same
    retention period, compaction, vacuum)."""
    dropped = apply(stores, now, settings.retention_days)
    if settings.lake is not None:
        from dci.lake import export as lake

        lake.maintain(lake.lake_of(settings.lake), now, settings.retention_days, settings.lake_vacuum_hours)
    return dropped
