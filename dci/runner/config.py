"""What the local runner reads before it imports the app: local.settings.json and host.json."""

from __future__ import annotations

import json
import logging
import os
import re
from collections.abc import MutableMapping
from dataclasses import dataclass
from pathlib import Path

logger = logging.getLogger(__name__)

_TIMESPAN = re.compile(r"^(?:(\d+)\.)?(\d{1,2}):(\d{2}):(\d{2})(?:\.(\d+))?$")


class ConfigError(RuntimeError):
    """host.json or local.settings.json cannot be used; the message says which and why."""


def load_local_settings(path: Path, environ: MutableMapping[str, str] = os.environ) -> int:
    """Copy `Values` of local.settings.json into `environ`; variables already set win.

    Returns how many values were applied. A missing file is not an error (settings may all come
    from the environment).
    """
    if not path.exists():
        logger.info("no %s; using the environment only", path)
        return 0
    try:
        values = json.loads(path.read_text(encoding="utf-8")).get("Values", {})
    except (json.JSONDecodeError, AttributeError) as error:
        raise ConfigError(f"{path} is not a local.settings.json file: {error}") from None
    applied = 0
    for name, value in values.items():
        if name not in environ:
            environ[name] = str(value)
            applied += 1
    return applied


def timespan_seconds(value: object, setting: str) -> float:
    """A host.json duration (`hh:mm:ss[.fff]`, `d.hh:mm:ss`, or milliseconds) in seconds."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value) / 1000.0
    match = _TIMESPAN.match(str(value))
    if not match:
        raise ConfigError(f"host.json {setting}: {value!r} is not a TimeSpan like 00:00:30")
    days, hours, minutes, seconds, fraction = match.groups()
    total = int(days or 0) * 86400 + int(hours) * 3600 + int(minutes) * 60 + int(seconds)
    return total + (float("0." + fraction) if fraction else 0.0)


@dataclass(frozen=True)
class QueueOptions:
    """The host.json `extensions.queues` settings, with the host's defaults."""

    batch_size: int = 16
    max_dequeue_count: int = 5
    visibility_timeout: float = 0.0
    max_polling_interval: float = 60.0
    message_encoding: str = "base64"


@dataclass(frozen=True)
class HostConfig:
    """The parts of host.json the runner honours (not `newBatchThreshold`: it fetches the next batch
    when the last is done; not `functionTimeout`: a local function runs as long as it runs)."""

    route_prefix: str = "api"
    queues: QueueOptions = QueueOptions()


def load_host_config(path: Path) -> HostConfig:
    """Read host.json; a missing file gives the host's defaults."""
    if not path.exists():
        return HostConfig()
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as error:
        raise ConfigError(f"{path} is not valid JSON: {error}") from None
    extensions = document.get("extensions", {})
    raw = extensions.get("queues", {})
    defaults = QueueOptions()
    queues = QueueOptions(
        batch_size=int(raw.get("batchSize", defaults.batch_size)),
        max_dequeue_count=int(raw.get("maxDequeueCount", defaults.max_dequeue_count)),
        visibility_timeout=timespan_seconds(raw.get("visibilityTimeout", "00:00:00"), "queues.visibilityTimeout"),
        max_polling_interval=timespan_seconds(raw.get("maxPollingInterval", 60_000), "queues.maxPollingInterval"),
        message_encoding=str(raw.get("messageEncoding", defaults.message_encoding)).lower(),
    )
    if not 1 <= queues.batch_size <= 32:
        raise ConfigError("host.json queues.batchSize must be between 1 and 32")
    if queues.message_encoding not in ("base64", "none"):
        raise ConfigError("host.json queues.messageEncoding must be 'base64' or 'none'")
    return HostConfig(route_prefix=str(extensions.get("http", {}).get("routePrefix", "api")).strip("/"), queues=queues)
