"""Storage: the only code that talks to the Table and Queue SDKs.

`clients` makes SDK clients from the Functions connection setting; `tables` is one table as every
store uses it; `keys` names tables, partitions and rows; `interactions`, `cases`, `insights`,
`outbox` (the lake export's), `erasures` (tombstones), `warnings` (what health shows an
operator) and `answers` (the articles agents attached to cases, and the suggestions) are the stores. `Stores` is the one
value the rest of the app is handed: built once per process from the settings (one connection
pool per account), passed to every trigger by `run`/`web`.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol, TypeVar

from dci import telemetry
from dci.storage.clients import CASES_QUEUE, CONNECTION_SETTING, PORTAL_EVENTS_QUEUE, StorageTarget

if TYPE_CHECKING:
    from dci.settings import Settings
    from dci.storage.answers import AnswerStore
    from dci.storage.cases import CaseStore
    from dci.storage.erasures import Tombstones
    from dci.storage.insights import InsightStore
    from dci.storage.interactions import InteractionStore
    from dci.storage.outbox import LakeOutbox
    from dci.storage.warnings import Warnings

__all__ = ["CASES_QUEUE", "CONNECTION_SETTING", "PORTAL_EVENTS_QUEUE", "Queue", "StorageTarget", "Stores", "run",
           "stores"]
T = TypeVar("T")


class Queue(Protocol):
    """Where `cases` messages go: `send(text, delay_seconds=0)`."""

    def send(self, text: str, delay_seconds: int = 0) -> None: ...


@dataclass(frozen=True)
class Stores:
    """Every store of the app, and the `cases` queue."""

    interactions: InteractionStore
    cases: CaseStore
    insights: InsightStore
    cases_queue: Queue
    outbox: LakeOutbox | None = None  # what the lake export still has to do; None while LAKE_URL is unset
    erasures: Tombstones | None = None  # what erasures forbid to come back (always set by `stores`)
    warnings: Warnings | None = None  # what only an operator can fix, for health (always set by `stores`)
    answers: AnswerStore | None = None  # what agents attached to cases, suggestions (always set by `stores`)

    def erased_times(self) -> dict[str, int] | None:
        """When each erased contact was erased (attribution rule 4), None without tombstones."""
        return self.erasures.times() if self.erasures is not None else None


def stores(settings: Settings) -> Stores:
    """The process's stores for these settings."""
    return _stores(settings.storage, settings.insights_follow_days, settings.lake_url is not None)


@functools.cache
def _stores(target: StorageTarget, follow_days: int, lake: bool) -> Stores:
    from dci.storage.answers import AnswerStore
    from dci.storage.cases import CaseStore
    from dci.storage.clients import PoisonDepths, QueueWriter, table_service
    from dci.storage.erasures import Tombstones
    from dci.storage.insights import InsightStore
    from dci.storage.interactions import InteractionStore
    from dci.storage.outbox import LakeOutbox
    from dci.storage.warnings import Warnings

    tables = table_service(target)
    telemetry.observe("dci.queue.poison.depth", PoisonDepths(target))
    return Stores(InteractionStore(tables), CaseStore(tables), InsightStore(tables, follow_days),
                  QueueWriter(target, CASES_QUEUE), LakeOutbox(tables) if lake else None, Tombstones(tables),
                  Warnings(tables), AnswerStore(tables))


def run(job: Callable[[Settings, Stores], T], consuming: str | None = None) -> T:
    """`job(settings, stores)` for a queue trigger (`consuming` its queue) or a timer trigger. Bad
    settings raise SettingsError: the host retries the message (then keeps it in the poison queue)
    or the next tick tries again. A failed message is counted (dci.messages.failed)."""
    from dci.settings import get_settings

    try:
        settings = get_settings()
        return job(settings, stores(settings))
    except Exception as error:
        if consuming is not None:
            telemetry.count("dci.messages.failed", 1, {"messaging.destination.name": consuming,
                                                       "error.type": type(error).__qualname__})
        raise
