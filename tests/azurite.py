"""Start and stop a private Azurite (own ports, own data folder): for tests and benchmarks."""

from __future__ import annotations

import socket
import subprocess
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
AZURITE = ROOT / "node_modules" / ".bin" / "azurite"
# Azurite's well-known development account (public, documented; not a secret).
ACCOUNT = "devstoreaccount1"
ACCOUNT_KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="


def free_ports(count: int) -> list[int]:
    """Ports nobody listens on right now."""
    sockets = [socket.socket() for _ in range(count)]
    for s in sockets:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


def connection_string(blob: int, queue: int, table: int) -> str:
    """A connection string for an Azurite listening on these ports."""
    base = "http://127.0.0.1:{}/" + ACCOUNT
    return (f"DefaultEndpointsProtocol=http;AccountName={ACCOUNT};AccountKey={ACCOUNT_KEY};"
            f"BlobEndpoint={base.format(blob)};QueueEndpoint={base.format(queue)};"
            f"TableEndpoint={base.format(table)};")


def start(ports: tuple[int, int, int], data: Path, timeout: float = 30) -> subprocess.Popen[bytes]:
    """Run Azurite on (blob, queue, table) ports with its data in `data`; returns once it listens."""
    if not AZURITE.exists():
        raise RuntimeError("Azurite is not installed: run `make test` or `npm ci` first")
    data.mkdir(parents=True, exist_ok=True)
    log = (data / "azurite.log").open("wb")
    blob, queue, table = ports
    process = subprocess.Popen(
        [str(AZURITE), "--silent", "--skipApiVersionCheck", "--location", str(data),
         "--blobPort", str(blob), "--queuePort", str(queue), "--tablePort", str(table)],
        stdout=log, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + timeout
    for port in ports:
        while True:
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", port)) == 0:
                    break
            if time.monotonic() > deadline or process.poll() is not None:
                process.kill()
                raise RuntimeError(f"Azurite did not listen on {port}; see {data / 'azurite.log'}")
            time.sleep(0.1)
    return process


def stop(process: subprocess.Popen[bytes]) -> None:
    """Stop it at once: its data folder is thrown away, so no graceful close is needed."""
    process.kill()
    process.wait(10)
