"""Storage clients from the Functions connection setting: a connection string (Azurite, account
keys) or an identity-based connection (`AzureWebJobsStorage__*` service URIs and a managed
identity), the way the Functions host reads the same setting for its bindings."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from azure.data.tables import TableServiceClient
    from azure.storage.queue import QueueServiceClient


PORTAL_EVENTS_QUEUE = "portal-events"
CASES_QUEUE = "cases"
CONNECTION_SETTING = "AzureWebJobsStorage"


def poison_queue(queue: str) -> str:
    """Where the Functions host moves a message of `queue` that failed maxDequeueCount times."""
    return f"{queue}-poison"


@dataclass(frozen=True)
class StorageTarget:
    """Where the queues and tables are, and how to authenticate."""

    connection_string: str | None = None
    queue_uri: str | None = None
    table_uri: str | None = None
    blob_uri: str | None = None  # only the lake export (LAKE_URL=az://…) uses the Blob service
    client_id: str | None = None  # user-assigned managed identity; None: DefaultAzureCredential

    @classmethod
    def from_setting(cls, name: str, environ: Mapping[str, str]) -> StorageTarget | None:
        """The target a Functions connection setting names, read as the host reads it: `name` as a
        connection string, or the identity-based `name__accountName` (or `name__queueServiceUri` and
        `name__tableServiceUri`) with `name__clientId` for a user-assigned identity (without it: a
        developer's own sign-in, DefaultAzureCredential). None when neither form is set."""
        if environ.get(name):
            return cls(connection_string=environ[name])
        account = environ.get(f"{name}__accountName")
        queue_uri = environ.get(f"{name}__queueServiceUri") or (account and f"https://{account}.queue.core.windows.net")
        table_uri = environ.get(f"{name}__tableServiceUri") or (account and f"https://{account}.table.core.windows.net")
        blob_uri = environ.get(f"{name}__blobServiceUri") or (account and f"https://{account}.blob.core.windows.net")
        if not (queue_uri or table_uri):
            return None
        return cls(queue_uri=queue_uri or None, table_uri=table_uri or None, blob_uri=blob_uri or None,
                   client_id=environ.get(f"{name}__clientId") or None)

    @classmethod
    def of(cls, value: StorageTarget | str) -> StorageTarget:
        """A target from a connection string, or the target itself."""
        return value if isinstance(value, StorageTarget) else cls(connection_string=value)

    def credential(self) -> Any:
        """The token credential of an identity-based connection (azure-identity loads only here)."""
        from azure.identity import DefaultAzureCredential, ManagedIdentityCredential

        return ManagedIdentityCredential(client_id=self.client_id) if self.client_id else DefaultAzureCredential()


def queue_service(target: StorageTarget | str, **options: object) -> QueueServiceClient:
    """A QueueServiceClient; `options` pass through to the SDK (timeouts, retry_total, …)."""
    from azure.storage.queue import QueueServiceClient

    target = StorageTarget.of(target)
    if target.connection_string:
        return QueueServiceClient.from_connection_string(target.connection_string, **options)
    return QueueServiceClient(account_url=target.queue_uri, credential=target.credential(), **options)


def queue_client(target: StorageTarget | str, queue: str, **options: object) -> Any:
    """A QueueClient for one queue; `options` pass through (message_encode_policy, …)."""
    from azure.storage.queue import QueueClient

    target = StorageTarget.of(target)
    if target.connection_string:
        return QueueClient.from_connection_string(target.connection_string, queue, **options)
    return QueueClient(account_url=target.queue_uri, queue_name=queue, credential=target.credential(), **options)


def table_service(target: StorageTarget | str, **options: object) -> TableServiceClient:
    """A TableServiceClient; `options` pass through to the SDK."""
    from azure.data.tables import TableServiceClient

    target = StorageTarget.of(target)
    if target.connection_string:
        return TableServiceClient.from_connection_string(target.connection_string, **options)
    return TableServiceClient(endpoint=target.table_uri, credential=target.credential(), **options)


class QueueWriter:
    """Sends base64 messages (as the Functions host reads them), optionally invisible for a while."""

    def __init__(self, target: StorageTarget | str, queue: str) -> None:
        from azure.storage.queue import TextBase64EncodePolicy

        self._client = queue_client(target, queue, message_encode_policy=TextBase64EncodePolicy())

    def send(self, text: str, delay_seconds: int = 0) -> None:
        """Enqueue `text`; it becomes visible after `delay_seconds` (creates the queue if missing)."""
        from azure.core.exceptions import ResourceNotFoundError

        try:
            self._client.send_message(text, visibility_timeout=delay_seconds or None)
        except ResourceNotFoundError:
            self._client.create_queue()
            self._client.send_message(text, visibility_timeout=delay_seconds or None)


class PoisonDepths:
    """Messages waiting in each poison queue of the app (a missing queue holds none)."""

    def __init__(self, target: StorageTarget) -> None:
        self._clients = {poison_queue(queue): queue_client(target, poison_queue(queue))
                         for queue in (PORTAL_EVENTS_QUEUE, CASES_QUEUE)}

    def __call__(self) -> Iterator[tuple[int, dict[str, str]]]:
        from azure.core.exceptions import ResourceNotFoundError

        for name, client in self._clients.items():
            try:
                depth = client.get_queue_properties().approximate_message_count
            except ResourceNotFoundError:
                depth = 0
            yield depth, {"messaging.destination.name": name}
