"""Shared fixtures: one Azurite for the session on its own ports and data folder, and an empty
store for each test that asks for one."""

from __future__ import annotations

import base64
import contextlib
import os
import shutil
import time
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, TypeVar

import pytest
from azure.core.exceptions import ResourceExistsError
from hypothesis import settings as hypothesis_settings

from tests.azurite import ROOT, connection_string, free_ports  # noqa: F401 - ROOT is shared with tests
from tests.azurite import start as start_azurite
from tests.azurite import stop as stop_azurite
from tests.tokens import Portal

if TYPE_CHECKING:
    from dci.runner.dataverse import LocalDataverse
    from dci.storage import Stores

PORTAL = "portal.example.com"
PORTAL_ORIGIN = f"https://{PORTAL}"
BROWSER_UA = ("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
              "Chrome/131.0.0.0 Safari/537.36")


# Property tests and schemathesis draw the same examples on every run: a run's outcome never
# depends on luck. What they once found is kept as an explicit @example next to the test.
hypothesis_settings.register_profile("repeatable", derandomize=True, database=None, print_blob=True)
hypothesis_settings.load_profile("repeatable")

BLOB_PORT, QUEUE_PORT, TABLE_PORT = free_ports(3)
STORAGE = os.environ.get("DCI_TEST_STORAGE") or connection_string(BLOB_PORT, QUEUE_PORT, TABLE_PORT)

# The portal whose ID tokens the tests present (its key is the configured PORTAL_PUBLIC_KEY).
TEST_PORTAL = Portal(PORTAL)

# The app reads its settings once, at import: set them before anything imports function_app.
TEST_SETTINGS = {
    "AzureWebJobsStorage": STORAGE,
    "PORTAL_ISSUERS": PORTAL,
    "ALLOWED_ORIGINS": PORTAL_ORIGIN,
    "PORTAL_PUBLIC_KEY": TEST_PORTAL.public_pem,
    "CASE_SCHEDULE": "*/2 * * * * *",  # the case poller ticks every 2 s under the test runner
}
os.environ.update(TEST_SETTINGS)
for _name in ("PORTAL_CLIENT_ID", "DATAVERSE_URL", "DATAVERSE_TOKEN", "CASE_SETTLE_SECONDS",
              "LAKE_URL", "LAKE_SCHEDULE",  # no lake unless a test sets one
              "APPLICATIONINSIGHTS_CONNECTION_STRING", "OTEL_EXPORTER_OTLP_ENDPOINT"):  # telemetry: off
    os.environ.pop(_name, None)


T = TypeVar("T")


def eventually(what: Callable[[], T], timeout: float = 30.0) -> T:
    """Poll `what()` until it is truthy or `timeout` seconds pass; its last value (for exports and
    queues that arrive on their own schedule)."""
    deadline = time.monotonic() + timeout
    while True:
        found = what()
        if found or time.monotonic() > deadline:
            return found
        time.sleep(0.1)


@pytest.fixture(scope="session")
def azurite(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A running Azurite (started here unless DCI_TEST_STORAGE names one); its connection string."""
    if os.environ.get("DCI_TEST_STORAGE"):
        yield STORAGE
        return
    data = tmp_path_factory.mktemp("azurite")
    try:
        process = start_azurite((BLOB_PORT, QUEUE_PORT, TABLE_PORT), data)
    except RuntimeError as error:
        pytest.fail(str(error))
    try:
        yield STORAGE
    finally:
        stop_azurite(process)
        shutil.rmtree(data, ignore_errors=True)


class Store:
    """Test-side access to the Azurite account: queues read the way the Functions host reads them."""

    def __init__(self, connection: str) -> None:
        from azure.data.tables import TableServiceClient
        from azure.storage.queue import QueueServiceClient

        self.connection = connection
        self.queues = QueueServiceClient.from_connection_string(connection)
        self.tables = TableServiceClient.from_connection_string(connection)

    def wipe(self) -> None:
        """Delete every queue and table: each test starts from an empty store."""
        for queue in list(self.queues.list_queues()):
            self.queues.delete_queue(queue.name)
        for table in list(self.tables.list_tables()):
            self.tables.delete_table(table.name)

    def send_raw(self, queue: str, text: str) -> None:
        """Put `text` on `queue` exactly as given (no encoding)."""
        client = self.queues.get_queue_client(queue)
        with contextlib.suppress(ResourceExistsError):
            client.create_queue()
        client.send_message(text)

    def send(self, queue: str, body: str) -> None:
        """Put a message on `queue` base64-encoded, as producers outside the host must."""
        self.send_raw(queue, base64.b64encode(body.encode()).decode())

    def raw_messages(self, queue: str) -> list[str]:
        """Every message on `queue`, undecoded, removed from the queue."""
        client = self.queues.get_queue_client(queue)
        out = []
        try:
            while batch := list(client.receive_messages(max_messages=32, messages_per_page=32)):
                for message in batch:
                    out.append(message.content)
                    client.delete_message(message)
        except Exception as error:  # noqa: BLE001
            if "QueueNotFound" in str(error):
                return []
            raise
        return out

    def messages(self, queue: str) -> list[str]:
        """Every message on `queue`, base64-decoded as the host decodes it, removed from the queue."""
        return [base64.b64decode(text, validate=True).decode("utf-8") for text in self.raw_messages(queue)]

    def wait_drained(self, queue: str, timeout: float = 15.0) -> None:
        """Wait until `queue` holds no message at all, invisible (leased, retrying) ones included: a
        queue function then has finished with everything put on it, outputs sent."""
        client = self.queues.get_queue_client(queue)
        deadline = time.monotonic() + timeout
        while client.get_queue_properties().approximate_message_count:
            assert time.monotonic() < deadline, f"{queue} still holds messages"
            time.sleep(0.1)

    def wait_for(self, queue: str, count: int, timeout: float = 15.0, decode: bool = True) -> list[str]:
        """Collect messages from `queue` until `count` arrived or `timeout` passed."""
        deadline = time.monotonic() + timeout
        got: list[str] = []
        while time.monotonic() < deadline and len(got) < count:
            got += self.messages(queue) if decode else self.raw_messages(queue)
            if len(got) < count:
                time.sleep(0.1)
        return got


class RecordingQueue:
    """A `cases` queue that keeps what is sent to it: (text, delay seconds)."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, int]] = []

    def send(self, text: str, delay_seconds: int = 0) -> None:
        self.sent.append((text, delay_seconds))


def stores_of(store: Store, follow_days: int = 7, queue: object | None = None) -> Stores:
    """The app's stores on this test's Azurite account; `cases` messages go to `queue`."""
    from dci.storage import Stores
    from dci.storage.answers import AnswerStore
    from dci.storage.cases import CaseStore
    from dci.storage.erasures import Tombstones
    from dci.storage.insights import InsightStore
    from dci.storage.interactions import InteractionStore
    from dci.storage.warnings import Warnings

    return Stores(InteractionStore(store.tables), CaseStore(store.tables), InsightStore(store.tables, follow_days),
                  queue or RecordingQueue(), erasures=Tombstones(store.tables),  # type: ignore[arg-type]
                  warnings=Warnings(store.tables), answers=AnswerStore(store.tables))


@pytest.fixture
def fake() -> Iterator[LocalDataverse]:
    """A local Dataverse Web API server (dci/runner/dataverse.py) for this test."""
    from dci.runner.dataverse import LocalDataverse

    server = LocalDataverse()
    yield server
    server.close()


@pytest.fixture
def store(azurite: str) -> Store:
    """An empty Azurite account for this test, and the app's stores built anew: what a store
    remembers in memory (the tombstones it read, the dirty marks it made) is of the wiped account."""
    s = Store(azurite)
    s.wipe()
    from dci import storage

    storage._stores.cache_clear()
    return s


@contextlib.contextmanager
def running_app(port: int | None = None, portal: bool = False) -> Iterator[str]:
    """function_app served by the local runner (tests/apps/host.json: quick queue polling), with the
    environment as it is now; yields its base URL (`http://127.0.0.1:{port}`)."""
    import function_app
    from dci.runner import Runner
    from dci.runner.config import load_host_config

    (port,) = (port,) if port else free_ports(1)
    runner = Runner(function_app.app, load_host_config(ROOT / "tests" / "apps" / "host.json"), dict(os.environ),
                    ("127.0.0.1", port), portal=portal)
    runner.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        runner.stop(timeout=10)
