"""Storage clients built from the Functions connection setting (connection string or Azurite)."""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from azure.data.tables import TableServiceClient
    from azure.storage.queue import QueueServiceClient

    from dci.casestore import CaseStore
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


CASES_QUEUE = "cases"


class QueueWriter:
    """Sends base64 messages (as the Functions host reads them), optionally invisible for a while."""

    def __init__(self, connection: str, queue: str) -> None:
        from azure.storage.queue import QueueClient, TextBase64EncodePolicy

        self._client = QueueClient.from_connection_string(connection, queue,
                                                          message_encode_policy=TextBase64EncodePolicy())

    def send(self, text: str, delay_seconds: int = 0) -> None:
        """Enqueue `text`; it becomes visible after `delay_seconds` (creates the queue if missing)."""
        from azure.core.exceptions import ResourceNotFoundError

        try:
            self._client.send_message(text, visibility_timeout=delay_seconds or None)
        except ResourceNotFoundError:
            self._client.create_queue()
            self._client.send_message(text, visibility_timeout=delay_seconds or None)


@functools.cache
def case_store(connection: str) -> CaseStore:
    """The process's CaseStore."""
    from dci.casestore import CaseStore

    return CaseStore(table_service(connection))


@functools.cache
def cases_queue(connection: str) -> QueueWriter:
    """The process's writer to the `cases` queue."""
    return QueueWriter(connection, CASES_QUEUE)
