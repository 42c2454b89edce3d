"""Storage clients built from the Functions connection setting (connection string or Azurite)."""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from azure.data.tables import TableServiceClient
    from azure.storage.queue import QueueServiceClient

    from dci.store import InteractionStore

PORTAL_EVENTS_QUEUE = "portal-events"
CONNECTION_SETTING = "AzureWebJobsStorage"


def queue_service(connection: str, **options: object) -> QueueServiceClient:
    """A QueueServiceClient; `options` pass through to the SDK (timeouts, retry_total, …)."""
    from azure.storage.queue import QueueServiceClient

    return QueueServiceClient.from_connection_string(connection, **options)


def table_service(connection: str, **options: object) -> TableServiceClient:
    """A TableServiceClient; `options` pass through to the SDK."""
    from azure.data.tables import TableServiceClient

    return TableServiceClient.from_connection_string(connection, **options)


@functools.cache
def interaction_store(connection: str) -> InteractionStore:
    """The process's InteractionStore (one HTTP connection pool per storage account)."""
    from dci.store import InteractionStore

    return InteractionStore(table_service(connection))
