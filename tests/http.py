"""HTTP calls to the runner as the portal's browser makes them, and the runner in a process of its own."""

from __future__ import annotations

import collections
import contextlib
import json
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping
from typing import Any

from tests.conftest import BROWSER_UA, PORTAL_ORIGIN, ROOT, free_ports


def call(method: str, url: str, data: bytes | None = None, headers: Mapping[str, str] | None = None) -> tuple[int, Any]:
    """Status and parsed JSON body (None when empty); HTTP errors are answers, not exceptions."""
    request = urllib.request.Request(url, data=data, method=method, headers={
        "Content-Type": "text/plain", "Origin": PORTAL_ORIGIN, "User-Agent": BROWSER_UA, **(headers or {})})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read() or b"null")
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read() or b"null")


def start_serve(args: list[str], env: Mapping[str, str]) -> subprocess.Popen[str]:
    """`python -m dci serve ARGS` with exactly `env`; its output is kept in a pipe."""
    return subprocess.Popen([sys.executable, "-m", "dci", "serve", *args], cwd=ROOT, env=dict(env), text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)


def wait_ready(url: str, process: subprocess.Popen[str], timeout: float = 30) -> None:
    """Poll `url` until the runner answers (or fail with what it printed)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"runner exited early:\n{process.stdout.read() if process.stdout else ''}")
        try:
            urllib.request.urlopen(url, timeout=2)
            return
        except (urllib.error.URLError, ConnectionError):
            time.sleep(0.2)
    raise AssertionError("runner did not answer in time")


@contextlib.contextmanager
def served(env: Mapping[str, str], *args: str,
           port: int | None = None) -> Iterator[tuple[str, subprocess.Popen[str]]]:
    """The runner on `port` (default: a free one) with `env` (no local.settings.json); yields its API
    base URL and process, and kills it afterwards."""
    port = port or free_ports(1)[0]
    process = start_serve(["--port", str(port), "--settings", str(ROOT / "tests" / "apps" / "none.json"), *args], env)
    base = f"http://127.0.0.1:{port}/api"
    try:
        wait_ready(f"{base}/health", process)
        # Its log is read as it comes (the last lines kept): a full pipe would stop the runner.
        output: collections.deque[str] = collections.deque(maxlen=400)
        reader = threading.Thread(target=lambda: output.extend(process.stdout or ()), daemon=True)
        reader.start()
        process.output, process.reader = output, reader  # type: ignore[attr-defined]
        yield base, process
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
