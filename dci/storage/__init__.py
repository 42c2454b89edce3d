"""Storage: the only code that talks to the Table and Queue SDKs.

`clients` makes SDK clients from the Functions connection setting; `tables` is one table as every
store uses it; `keys` names tables, partitions and rows; `interactions`, `cases` and `insights`
are the stores. `Stores` is the one value an adapter needs: built once per process from the
settings, handed to every trigger.
"""

from __future__ import annotations

from dci.storage.clients import (
    CASES_QUEUE,
    CONNECTION_SETTING,
    PORTAL_EVENTS_QUEUE,
    StorageTarget,
    case_store,
    cases_queue,
    insight_store,
    interaction_store,
    queue_client,
    queue_service,
    table_service,
)

__all__ = ["CASES_QUEUE", "CONNECTION_SETTING", "PORTAL_EVENTS_QUEUE", "StorageTarget", "case_store", "cases_queue",
           "insight_store", "interaction_store", "queue_client", "queue_service", "table_service"]
