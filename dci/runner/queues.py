"""Queue triggers as the host runs them: poll, lease, retry after visibilityTimeout, poison.

A message whose function raises is made visible again after `visibilityTimeout`; once it has
been dequeued `maxDequeueCount` times and fails again, it is copied unchanged to
`<queue>-poison` and deleted, as the Functions host does.
"""

from __future__ import annotations

import base64
import binascii
import logging
import threading
import time
from concurrent.futures import ThreadPoolExecutor, wait
from typing import TYPE_CHECKING, Any

from azure.functions.queue import QueueMessage

from dci.runner.config import QueueOptions
from dci.runner.index import IndexedFunction
from dci.runner.invoke import Invoker
from dci.storage.clients import poison_queue, queue_client

if TYPE_CHECKING:
    from dci.storage.clients import StorageTarget

logger = logging.getLogger(__name__)

LEASE_SECONDS = 600  # how long a message stays invisible while its function runs
MIN_POLL_SECONDS = 0.1


class QueueListener:
    """Feeds one queue-triggered function from its queue until stopped."""

    def __init__(self, function: IndexedFunction, connection: StorageTarget, options: QueueOptions,
                 invoker: Invoker) -> None:
        self.function = function
        self.queue = function.trigger.props["queueName"]
        self._options = options
        self._invoker = invoker
        self._client = queue_client(connection, self.queue)
        self._poison = queue_client(connection, poison_queue(self.queue))
        self._pool = ThreadPoolExecutor(max_workers=options.batch_size, thread_name_prefix=f"queue-{self.queue}")

    def run(self, stop: threading.Event) -> None:
        """Poll with the host's back-off (up to maxPollingInterval) until `stop` is set."""
        delay = MIN_POLL_SECONDS
        while not stop.is_set():
            try:
                messages = list(self._client.receive_messages(
                    max_messages=self._options.batch_size, messages_per_page=self._options.batch_size,
                    visibility_timeout=LEASE_SECONDS))
            except Exception as error:  # noqa: BLE001 - storage down: keep polling, say so
                logger.warning("queue %s unreachable (%s); retrying in %.1f s", self.queue, type(error).__name__, delay)
                messages = []
            if not messages:
                stop.wait(delay)
                delay = min(delay * 2, max(self._options.max_polling_interval, MIN_POLL_SECONDS))
                continue
            delay = MIN_POLL_SECONDS
            wait([self._pool.submit(self.process, message) for message in messages])
        self._pool.shutdown(wait=True)

    def process(self, message: Any) -> None:
        """Run the function on one message; delete it, retry it later, or poison it."""
        started = time.perf_counter()
        try:
            body = self._decode(message.content)
            self._invoker.call(self.function, QueueMessage(
                id=message.id, body=body, dequeue_count=message.dequeue_count,
                insertion_time=message.inserted_on, expiration_time=message.expires_on,
                pop_receipt=message.pop_receipt))
        except Exception as error:  # noqa: BLE001 - the function's failure decides the message's fate
            self._failed(message, error)
            return
        self._client.delete_message(message)
        logger.info("%s: message %s done in %.1f ms (dequeue %d)", self.function.name, message.id,
                    (time.perf_counter() - started) * 1000, message.dequeue_count)

    def _decode(self, content: str | bytes) -> bytes:
        text = content.decode("ascii") if isinstance(content, bytes) else content
        if self._options.message_encoding != "base64":
            return text.encode("utf-8")
        try:
            return base64.b64decode(text, validate=True)
        except (binascii.Error, ValueError):
            raise ValueError("message is not base64, as host.json messageEncoding requires") from None

    def _failed(self, message: Any, error: Exception) -> None:
        if message.dequeue_count >= self._options.max_dequeue_count:
            self._poison.send_message(message.content)
            self._client.delete_message(message)
            logger.error("%s: message %s moved to %s after %d attempts: %s", self.function.name, message.id,
                         self._poison.queue_name, message.dequeue_count, error,
                         extra={"queue": self.queue, "message_id": message.id})
            return
        self._client.update_message(message, visibility_timeout=int(self._options.visibility_timeout))
        logger.warning("%s: message %s failed (attempt %d of %d), retry in %.0f s: %s", self.function.name,
                       message.id, message.dequeue_count, self._options.max_dequeue_count,
                       self._options.visibility_timeout, error, exc_info=error)
