"""What the functions found wrong that only an operator can fix (table `state`, PartitionKey
`warnings`, RowKey its name, `text` what to do), shown on /api/health/details until it works again.

| PartitionKey | RowKey | holds |
|---|---|---|
| `warnings` | `timeline_activities` | why the Portal visits cannot be written to Dataverse (dci/dataverse/wall.py) |
| `warnings` | `suggestions` | why the articles attached to cases cannot be read (dci/dataverse/knowledge.py) |

Written when it changes: a lasting problem once per process, not once per case. Cleared by the
first success after this process's own warning at once, and otherwise at most once every
RECHECK_SECONDS (another instance may have written it meanwhile).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from azure.data.tables import UpdateMode

from dci.storage.keys import STATE_TABLE
from dci.storage.tables import AutoTable

if TYPE_CHECKING:
    from azure.data.tables import TableServiceClient

PARTITION = "warnings"
TIMELINE_ACTIVITIES = "timeline_activities"  # the Portal visits cannot be written to Dataverse
SUGGESTIONS = "suggestions"  # the articles attached to cases cannot be read from Dataverse
RECHECK_SECONDS = 60.0  # how stale a warning another instance wrote may stay after things work again


class Warnings:
    """The standing warnings, and what this process last wrote of each (None: cleared), when."""

    def __init__(self, service: TableServiceClient, clock: Callable[[], float] = time.monotonic) -> None:
        self._table = AutoTable(service, STATE_TABLE)
        self._clock = clock
        self._said: dict[str, tuple[str | None, float]] = {}

    def say(self, name: str, text: str) -> bool:
        """Say what is wrong with `name` until it is cleared; True when this process had not yet."""
        if self._said.get(name, (None, 0.0))[0] == text:
            return False
        row = {"PartitionKey": PARTITION, "RowKey": name, "text": text}
        self._table.write(lambda client: client.upsert_entity(row, mode=UpdateMode.REPLACE))
        self._said[name] = (text, self._clock())
        return True

    def clear(self, name: str) -> None:
        """`name` works again."""
        said, when = self._said.get(name, ("", 0.0))
        if said is not None or self._clock() - when > RECHECK_SECONDS:
            self._table.delete(PARTITION, name)
            self._said[name] = (None, self._clock())

    def all(self) -> dict[str, str]:
        """Every standing warning by name."""
        return {row["RowKey"]: row["text"] for row in self._table.partition(PARTITION)}
