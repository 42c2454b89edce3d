"""Calling a function the way the host does: trigger value in, output bindings flushed after."""

from __future__ import annotations

import base64
import logging
import threading
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Generic, TypeVar

import azure.functions as func

from dci.runner.config import QueueOptions
from dci.runner.index import IndexedFunction

if TYPE_CHECKING:
    from dci.storage.clients import StorageTarget

logger = logging.getLogger(__name__)

T = TypeVar("T")


class Out(func.Out[T], Generic[T]):
    """The runner's `func.Out`: holds what the function set until the call returns."""

    def __init__(self) -> None:
        self._value: T | None = None

    def set(self, val: T) -> None:
        self._value = val

    def get(self) -> T:
        return self._value  # type: ignore[return-value]


def connection_target(setting: str, environ: Mapping[str, str]) -> StorageTarget:
    """Where a binding's `connection` setting points, in any form the host accepts."""
    from dci.storage.clients import StorageTarget

    target = StorageTarget.from_setting(setting, environ)
    if target is None:
        raise RuntimeError(f"app setting {setting} (a storage connection) is not set: give a connection string, or "
                           f"{setting}__accountName (or __queueServiceUri) for an identity-based connection")
    return target


class QueueSender:
    """Sends output-binding messages, encoded as host.json says (base64 by default)."""

    def __init__(self, environ: Mapping[str, str], options: QueueOptions) -> None:
        self._environ = environ
        self._options = options
        self._clients: dict[tuple[str, str], Any] = {}
        self._lock = threading.Lock()

    def client(self, connection_setting: str, queue: str) -> Any:
        """A cached QueueClient for `queue` on the account named by `connection_setting`."""
        key = (connection_setting, queue)
        with self._lock:
            if key not in self._clients:
                from dci.storage.clients import queue_client

                self._clients[key] = queue_client(connection_target(connection_setting, self._environ), queue)
            return self._clients[key]

    def encode(self, value: str | bytes) -> str:
        """The message text as the host would write it."""
        data = value.encode("utf-8") if isinstance(value, str) else bytes(value)
        if self._options.message_encoding == "base64":
            return base64.b64encode(data).decode("ascii")
        return data.decode("utf-8")

    def send(self, connection_setting: str, queue: str, value: object) -> int:
        """Send one message, or one per item of a list; returns how many were sent."""
        items = value if isinstance(value, (list, tuple)) else [value]
        from azure.core.exceptions import ResourceNotFoundError

        client = self.client(connection_setting, queue)
        for item in items:
            if not isinstance(item, (str, bytes)):
                raise TypeError(
                    f"queue output to {queue!r} must be str, bytes or a list of them, not {type(item).__name__}")
            text = self.encode(item)
            try:
                client.send_message(text)
            except ResourceNotFoundError:  # the host creates an output queue on first use
                client.create_queue()
                client.send_message(text)
        return len(items)


class Invoker:
    """Calls indexed functions and flushes their queue outputs."""

    def __init__(self, sender: QueueSender) -> None:
        self._sender = sender

    def call(self, function: IndexedFunction, trigger_value: object) -> Any:
        """Run the function with its trigger argument; outputs are sent only if it returns."""
        outputs = {binding.name: Out[object]() for binding in function.queue_outputs}
        result = function.call(**{function.trigger.name: trigger_value}, **outputs)
        for binding in function.queue_outputs:
            value = outputs[binding.name].get()
            if value is not None:
                self._sender.send(binding.props["connection"], binding.props["queueName"], value)
        return result

