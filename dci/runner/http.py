"""The runner's HTTP front end: every httpTrigger route under the host's route prefix."""

from __future__ import annotations

import json
import logging
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qsl, unquote, urlsplit

import azure.functions as func

from dci.runner.index import IndexedFunction
from dci.runner.invoke import Invoker

logger = logging.getLogger(__name__)

MAX_REQUEST_BYTES = 100 * 1024 * 1024  # the Functions host's own request size limit
_PARAMETER = re.compile(r"^\{(\*)?([A-Za-z_][A-Za-z0-9_]*)(?::[^}?]*)?(\?)?\}$")


@dataclass(frozen=True)
class Route:
    """An httpTrigger route template compiled to a pattern."""

    function: IndexedFunction
    pattern: re.Pattern[str]
    methods: frozenset[str]
    template: str  # what the access log shows: the path itself may hold a contact id


def compile_route(template: str, prefix: str) -> re.Pattern[str]:
    """`cases/{case_id}/timeline` -> a case-insensitive pattern with named groups.

    Supports `{name}`, `{name:constraint}` (constraint not enforced), `{name?}` and `{*rest}`.
    """
    parts = [p for p in f"{prefix}/{template}".split("/") if p]
    regex = ""
    for part in parts:
        match = _PARAMETER.match(part)
        if not match:
            regex += "/" + re.escape(part)
        elif match.group(1):
            regex += f"(?:/(?P<{match.group(2)}>.*))?"
        elif match.group(3):
            regex += f"(?:/(?P<{match.group(2)}>[^/]+))?"
        else:
            regex += f"/(?P<{match.group(2)}>[^/]+)"
    return re.compile(f"^{regex or '/'}/?$", re.IGNORECASE)


def build_routes(functions: list[IndexedFunction], prefix: str) -> list[Route]:
    """Routes for every HTTP-triggered function; literal routes are tried before templated ones."""
    routes = []
    for function in functions:
        if function.trigger.type != "httpTrigger":
            continue
        template = function.trigger.props.get("route") or function.name
        methods = function.trigger.props.get("methods") or ["GET", "POST", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS"]
        names = frozenset(getattr(m, "value", str(m)).upper() for m in methods)
        shown = "/" + "/".join(part for part in f"{prefix}/{template}".split("/") if part)
        routes.append(Route(function, compile_route(template, prefix), names, shown))
    return sorted(routes, key=lambda r: r.pattern.pattern.count("(?P<"))


@dataclass(frozen=True)
class Incoming:
    """One request as read off the connection: method, target (path and query), lower-cased
    headers, body, and the base URL it was addressed to."""

    method: str
    target: str
    headers: dict[str, str]
    body: bytes
    base: str


class HttpFrontEnd(ThreadingHTTPServer):
    """A threading HTTP server that hands requests to the app's HTTP functions."""

    daemon_threads = True
    read_timeout = 30.0  # seconds a client may stall mid-request before it gets a 400 and is closed

    def __init__(self, address: tuple[str, int], routes: list[Route], invoker: Invoker,
                 fallback: Callable[[str, str, dict[str, str]], tuple[int, dict[str, str], bytes] | None] | None = None
                 ) -> None:
        self.routes = routes
        self.invoker = invoker
        self.fallback = fallback  # the demo portal answers what no function does
        super().__init__(address, _Handler)

    def dispatch(self, incoming: Incoming) -> tuple[int, dict[str, str], bytes]:
        """Answer one request: status, headers, body."""
        method, target = incoming.method, incoming.target
        path = urlsplit(target).path
        # A route that exists for other methods is, to the Functions host, no route at all: 404 (not 405).
        for route in self.routes:
            match = route.pattern.match(path)
            if match and method in route.methods:
                return self._invoke(route, match, incoming)
        answer = self.fallback(method, target, incoming.headers) if self.fallback else None
        return answer or _problem(404, f"No function serves {method} {path}.")

    def _invoke(self, route: Route, match: re.Match[str], incoming: Incoming) -> tuple[int, dict[str, str], bytes]:
        method, target = incoming.method, incoming.target
        request = func.HttpRequest(
            method=method,
            url=incoming.base + target,
            headers=incoming.headers,
            params=dict(parse_qsl(urlsplit(target).query, keep_blank_values=True)),
            route_params={k: _route_value(v) for k, v in match.groupdict().items() if v is not None},
            body=incoming.body,
        )
        started = time.perf_counter()
        try:
            response = self.invoker.call(route.function, request)
        except Exception:
            logger.exception("%s raised on %s %s", route.function.name, method, route.template)
            return _problem(500, f"Function {route.function.name!r} failed; see the runner log.")
        elapsed = (time.perf_counter() - started) * 1000
        if not isinstance(response, func.HttpResponse):
            logger.error("%s returned %r, not an HttpResponse", route.function.name, type(response).__name__)
            return _problem(500, f"Function {route.function.name!r} returned no HttpResponse.")
        logger.info("%s %s -> %d in %.1f ms [%s]", method, route.template, response.status_code, elapsed,
                    route.function.name)
        out_headers = dict(response.headers.items())
        if "content-type" not in {k.lower() for k in out_headers}:
            out_headers["Content-Type"] = f"{response.mimetype}; charset={response.charset}"
        return response.status_code, out_headers, response.get_body() or b""


def _route_value(raw: str) -> str:
    """A route value decoded as the host (ASP.NET Core routing) decodes it: all but `%2F`."""
    return unquote(re.sub("%2[fF]", lambda m: "%25" + m.group(0)[1:], raw))


def _problem(status: int, detail: str, headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], bytes]:
    from http import HTTPStatus

    body = {"type": "about:blank", "title": HTTPStatus(status).phrase, "status": status, "detail": detail}
    return status, {"Content-Type": "application/problem+json", **(headers or {})}, json.dumps(body).encode()


class BadRequest(Exception):
    """A request whose body cannot be read as it says; answered, then the connection is closed."""

    def __init__(self, status: int, detail: str) -> None:
        super().__init__(detail)
        self.status = status


class _Handler(BaseHTTPRequestHandler):
    server: HttpFrontEnd
    protocol_version = "HTTP/1.1"

    def setup(self) -> None:
        self.timeout = self.server.read_timeout  # StreamRequestHandler applies it to the socket
        super().setup()

    def _handle(self) -> None:
        try:
            raw = self._body()
        except BadRequest as error:
            self.close_connection = True  # what is left of the body cannot be told from a next request
            status, headers, body = _problem(error.status, str(error))
        else:
            host = self.headers.get("Host") or f"{self.server.server_address[0]}:{self.server.server_address[1]}"
            status, headers, body = self.server.dispatch(Incoming(
                self.command, self.path, {k.lower(): v for k, v in self.headers.items()}, raw, f"http://{host}"))
        self.send_response(status)
        for name, value in headers.items():
            if name.lower() not in ("content-length", "transfer-encoding", "connection"):
                self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            try:
                self.wfile.write(body)
            except (BrokenPipeError, ConnectionResetError):  # the client went away (a closed tab)
                self.close_connection = True

    def _body(self) -> bytes:
        """The request body, by Content-Length or chunked; BadRequest when it cannot be read."""
        if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
            return self._chunked()
        declared = (self.headers.get("Content-Length") or "0").strip()
        if not declared.isdigit() or not declared.isascii():
            raise BadRequest(400, "Content-Length must be a whole number of bytes.")
        length = int(declared)
        if length > MAX_REQUEST_BYTES:
            raise BadRequest(413, "Request body too large.")
        return self._read(length)

    def _read(self, length: int) -> bytes:
        try:
            raw = self.rfile.read(length) if length else b""
        except TimeoutError:
            raw = b""
        if len(raw) < length:
            raise BadRequest(400, "The body is shorter than its Content-Length.")
        return raw

    def _chunked(self) -> bytes:
        body = b""
        while True:
            try:
                line = self.rfile.readline(1024)
            except TimeoutError:
                line = b""
            size = line.split(b";", 1)[0].strip()
            if not size or any(c not in b"0123456789abcdefABCDEF" for c in size):
                raise BadRequest(400, "Bad chunked encoding.")
            length = int(size, 16)
            if len(body) + length > MAX_REQUEST_BYTES:
                raise BadRequest(413, "Request body too large.")
            if length == 0:
                while self.rfile.readline(1024) not in (b"\r\n", b"\n", b""):  # trailers
                    pass
                return body
            body += self._read(length)
            self._read(2)  # the CRLF after each chunk

    do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = do_OPTIONS = do_HEAD = _handle

    def __getattr__(self, name: str) -> object:
        # Any other method (TRACE, CONNECT, made-up ones) is routed too, and answered 405 or 404
        # as the Functions host answers it, not with http.server's 501.
        if name.startswith("do_"):
            return self._handle
        raise AttributeError(name)

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - the stdlib's name
        logger.debug("%s - %s", self.address_string(), format % args)
