"""A local HTTP endpoint that telemetry exporters post to: the base of tests/otlp.py and tests/appinsights.py."""

from __future__ import annotations

import gzip
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


class PostSink:
    """Serves on 127.0.0.1 (a free port); every POST body, un-gzipped, goes to `receive`, whose answer
    is sent with `content_type` (None: 404). `url` is the server's root, without a trailing slash."""

    content_type = "application/json"

    def __init__(self) -> None:
        self._lock = threading.Lock()
        sink = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None: ...

            def do_POST(self) -> None:
                data = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                if self.headers.get("Content-Encoding") == "gzip":
                    data = gzip.decompress(data)
                with sink._lock:
                    answer = sink.receive(self.path, data)
                if answer is None:
                    self.send_error(404)
                    return
                self.send_response(200)
                self.send_header("Content-Type", sink.content_type)
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def receive(self, path: str, data: bytes) -> bytes | None:
        """Keep what arrived (called under the lock); the answer's body."""
        raise NotImplementedError

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
