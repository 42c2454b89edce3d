"""A local HTTP server speaking the documented Dataverse Web API shapes the product uses: for the
tests, and for `make demo` (never deployed).

OData JSON with `@odata.context`, `@odata.nextLink` paging that honours `Prefer:
odata.maxpagesize`, lookup annotations when asked for, upsert by PATCH on `annotations(id)`, a
contact's `fullname`, the Portal visits on cases (`dci.runner.dataverse_visits`), 401 without a
valid bearer token, scripted 429 (with `Retry-After`) / 503 / 500 failures and slow answers. It is
a stand-in for the one thing that cannot run here, not a mock of our code. `GET /notes` (no token)
shows the notes and Portal visits written on its cases, for a person to read. The administrative
tables the set-up command writes are in `dci.runner.dataverse_admin`.
"""

from __future__ import annotations

import json
import logging
import re
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit

from dci.runner.dataverse_admin import AdminTables, remote_execution_context
from dci.runner.dataverse_knowledge import Knowledge
from dci.runner.dataverse_visits import PortalVisits
from dci.runner.odata_pages import asked, page

logger = logging.getLogger(__name__)

API = "/api/data/v9.2"
LOOKUP = "Microsoft.Dynamics.CRM.lookuplogicalname"


class LocalDataverse:
    """State and behaviour; `url` is the organisation URL to configure as DATAVERSE_URL."""

    def __init__(self, token: str = "test-token", port: int = 0) -> None:
        self.tokens = {token}
        self.incidents: list[dict[str, Any]] = []
        self.annotations: dict[str, dict[str, Any]] = {}
        self.contacts: dict[str, str] = {}  # contact id -> full name
        self.requests: list[tuple[str, str]] = []
        self.failures: list[dict[str, Any]] = []
        self.delay = 0.0
        self.lock = threading.Lock()
        self.server = ThreadingHTTPServer(("127.0.0.1", port), _handler(self))
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.admin = AdminTables(self.url + API)  # users, roles, webhooks: for `python -m dci dataverse setup`
        self.visits = PortalVisits(self.url + API, self.admin, self.incidents)  # once setup has made the table
        self.knowledge = Knowledge(self.url + API)  # knowledge articles, and those agents attached to cases
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    # --- test-side setup --------------------------------------------------------------------------

    def add_contact(self, contact: str, fullname: str) -> str:
        """Add a contact with its full name (read by GET contacts({id})?$select=fullname)."""
        with self.lock:
            self.contacts[contact.lower()] = fullname
        return contact

    def add_article(self, number: str, title: str, published: bool = True, keywords: str = "",
                    modified: datetime | None = None) -> str:
        """Add a knowledge article version (dci.runner.dataverse_knowledge); returns its id."""
        with self.lock:
            return self.knowledge.add_article(number, title, published, keywords, modified)

    def add_incident(self, created: datetime, *, contact: str | None = None, account: str | None = None,
                     primary_contact: str | None = None, ticket: str | None = None, title: str = "Cannot sign in",
                     case_id: str | None = None) -> str:
        """Add a case; the customer is `contact` or `account` (whose primary contact may be set)."""
        case_id = case_id or str(uuid.uuid4())
        with self.lock:
            row = {"incidentid": case_id, "ticketnumber": ticket or f"CAS-{len(self.incidents) + 1:05d}-T3ST",
                   "title": title, "createdon": created.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
                   "_customerid_value": contact or account, "customer_type": "contact" if contact else "account"
                   if account else None, "_primarycontactid_value": primary_contact}
            self.incidents.append(row)
            hooks = self.admin.webhooks_on_create("incident")
        for url, key in hooks:  # asynchronous steps: Dataverse posts after the create has committed
            body = remote_execution_context(row, row["customer_type"])
            threading.Thread(target=self._post_webhook, args=(url, key, body), daemon=True).start()
        return case_id

    def _post_webhook(self, url: str, key: str, body: dict[str, Any]) -> None:
        import requests

        try:  # what Dataverse records as the system job's outcome, said once in the demo's log
            status: object = requests.post(url, params={"code": key}, json=body, timeout=30).status_code
        except requests.RequestException as error:
            status = type(error).__name__
        logger.info("local Dataverse: the webhook for a new case answered %s", status)

    def fail(self, status: int, *, times: int = 1, retry_after: int | None = None, method: str | None = None,
             after: int = 0) -> None:
        """Answer `status` to the next `times` matching requests, after letting `after` of them pass."""
        with self.lock:
            self.failures.append({"status": status, "times": times, "retry_after": retry_after, "method": method,
                                  "after": after})

    @contextmanager
    def slow(self, seconds: float) -> Iterator[None]:
        self.delay = seconds
        try:
            yield
        finally:
            self.delay = 0.0

    # --- behaviour --------------------------------------------------------------------------------

    def _scripted_failure(self, method: str) -> dict[str, Any] | None:
        with self.lock:
            for failure in self.failures:
                if failure["method"] not in (None, method):
                    continue
                if failure["after"] > 0:
                    failure["after"] -= 1
                    return None
                failure["times"] -= 1
                if failure["times"] <= 0:
                    self.failures.remove(failure)
                return failure
        return None

    def list_incidents(self, query: str, prefer: str) -> dict[str, Any]:
        request = asked(query, prefer)
        match = re.search(r"createdon ge (\S+)", request.filter)
        since = match.group(1) if match else "0000"
        # `ticketnumber eq '…'` ('' for a quote), compared without regard to case as Dataverse does.
        ticket = re.search(r"ticketnumber eq '((?:[^']|'')*)'", request.filter)
        wanted = ticket.group(1).replace("''", "'").lower() if ticket else None
        with self.lock:
            rows = sorted((r for r in self.incidents if r["createdon"] >= since
                           and (wanted is None or (r["ticketnumber"] or "").lower() == wanted)),
                          key=lambda r: (r["createdon"], r["incidentid"]))
        shown, more = page(rows, request, f"{self.url}{API}/incidents")
        annotate = "include-annotations" in prefer
        value = []
        for row in shown:
            item = {k: v for k, v in row.items() if k != "customer_type"}
            item["@odata.etag"] = 'W/"1"'
            if annotate and row["_customerid_value"]:
                item[f"_customerid_value@{LOOKUP}"] = row["customer_type"]
            value.append(item)
        document: dict[str, Any] = {"@odata.context": f"{self.url}{API}/$metadata#incidents(incidentid,ticketnumber,"
                                                      "title,createdon,_customerid_value,_primarycontactid_value)",
                                    "value": value, **more}
        return document

    def upsert_annotation(self, note_id: str, body: dict[str, Any]) -> int:
        bind = body.get("objectid_incident@odata.bind", "")
        case = re.fullmatch(r"/incidents\(([0-9a-f-]{36})\)", bind)
        if not case or not any(r["incidentid"] == case.group(1) for r in self.incidents):
            return 400
        with self.lock:
            existing = self.annotations.get(note_id)
            self.annotations[note_id] = {**(existing or {"created": time.time()}), **body, "updates":
                                         (existing or {}).get("updates", -1) + 1}
        return 204

    def notes_text(self) -> str:
        """Every note on every case, newest case first, as a person reads them."""
        with self.lock:
            tickets = {i["incidentid"]: i["ticketnumber"] for i in self.incidents}
            notes = list(self.annotations.values())
        blocks = []
        for note in reversed(notes):
            case = re.search(r"\(([0-9a-f-]{36})\)", note.get("objectid_incident@odata.bind", ""))
            case_id = case.group(1) if case else "?"
            written = note.get("updates", 0) + 1
            times = "once" if written == 1 else f"{written} times"
            blocks.append(f"=== Case {tickets.get(case_id, case_id)}: {note.get('subject', '')} "
                          f"(written {times})\n{note.get('notetext', '')}" + self.visits_text(case_id))
        return "\n\n".join(blocks) or "No note has been written yet."

    def visits_text(self, case_id: str) -> str:
        """The case's Portal visits as its Dynamics timeline lists them, each with its steps."""
        with self.lock:
            visits = self.visits.of_case(case_id)
        if not visits:
            return ""
        lines = [f"\n--- On the case's timeline: {len(visits)} Portal visit{'s' if len(visits) != 1 else ''}"]
        for visit in reversed(visits):  # (the timeline wall shows the newest first)
            when = f"{visit.get('actualstart', '')} to {visit.get('actualend', '')}"
            lines.append(f"* {visit.get('subject', '')} ({when})")
            lines += ["    " + line for line in str(visit.get("description", "")).splitlines()]
        return "\n".join(lines)

    def notes_for(self, case_id: str) -> list[dict[str, Any]]:
        return [n for n in self.annotations.values()
                if n.get("objectid_incident@odata.bind") == f"/incidents({case_id})"]


def _handler(dataverse: LocalDataverse) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args: Any) -> None: ...

        def _send(self, status: int, document: dict[str, Any] | None = None, headers: dict[str, str] | None = None):
            body = json.dumps(document).encode() if document is not None else b""
            self.send_response(status)
            if body:
                self.send_header("Content-Type", "application/json; odata.metadata=minimal")
            for name, value in (headers or {}).items():
                self.send_header(name, value)
            self.send_header("OData-Version", "4.0")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def _send_text(self, text: str) -> None:
            body = text.encode()
            self.send_response(200)
            self.send_header("Content-Type", "text/plain; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def _error(self, status: int, code: str, message: str, headers: dict[str, str] | None = None) -> None:
            self._send(status, {"error": {"code": code, "message": message}}, headers)

        def _handle(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            if self.command == "GET" and self.path == "/notes":
                return self._send_text(dataverse.notes_text())
            dataverse.requests.append((self.command, self.path))
            if dataverse.delay:
                time.sleep(dataverse.delay)
            auth = self.headers.get("Authorization", "")
            if not auth.startswith("Bearer ") or auth[7:] not in dataverse.tokens:
                return self._error(401, "0x80072560", "The user is not a member of the organization.",
                                   {"WWW-Authenticate": 'Bearer authorization_uri="https://login.example/"'})
            failure = dataverse._scripted_failure(self.command)
            if failure:
                headers = {"Retry-After": str(failure["retry_after"])} if failure["retry_after"] is not None else {}
                codes = {429: "0x80072322", 503: "0x80040216", 500: "0x80040216"}
                return self._error(failure["status"], codes.get(failure["status"], "0x80040216"),
                                   "Number of requests exceeded the limit of 6000 over time window of 300 seconds."
                                   if failure["status"] == 429 else "Scripted failure.", headers)
            parts = urlsplit(self.path)
            if self.command == "GET" and parts.path == f"{API}/incidents":
                return self._send(200, dataverse.list_incidents(parts.query, self.headers.get("Prefer", "")))
            with dataverse.lock:
                known = dataverse.knowledge.handle(self.command, parts.path.removeprefix(f"{API}/"), parts.query,
                                                   self.headers.get("Prefer", ""), json.loads(raw or b"{}"),
                                                   dataverse.admin.denied)
            if known is not None:
                return self._send(*known)
            person = re.fullmatch(rf"{API}/contacts\(([0-9a-f-]{{36}})\)", parts.path)
            if self.command == "GET" and person:
                if person.group(1) not in dataverse.contacts:
                    return self._error(404, "0x80040217", f"contact With Id = {person.group(1)} Does Not Exist")
                return self._send(200, {"@odata.etag": 'W/"1"', "contactid": person.group(1),
                                        "fullname": dataverse.contacts[person.group(1)]})
            note = re.fullmatch(rf"{API}/annotations\(([0-9a-f-]{{36}})\)", parts.path)
            if self.command == "PATCH" and note:
                status = dataverse.upsert_annotation(note.group(1), json.loads(raw or b"{}"))
                if status != 204:
                    return self._error(status, "0x80040203", "objectid_incident@odata.bind does not name a case.")
                return self._send(204, None, {"OData-EntityId": f"{dataverse.url}{API}/annotations({note.group(1)})"})
            if self.command == "DELETE" and note:
                with dataverse.lock:
                    found = dataverse.annotations.pop(note.group(1), None)
                if found is None:
                    return self._error(404, "0x80040217", f"annotation With Id = {note.group(1)} Does Not Exist")
                return self._send(204)
            with dataverse.lock:
                path, body = parts.path.removeprefix(f"{API}/"), json.loads(raw) if raw else {}
                answer = dataverse.visits.handle(self.command, path, parts.query, self.headers, body) \
                    or dataverse.admin.handle(self.command, path, parts.query, body)
            if answer is not None:
                return self._send(*answer)
            return self._error(404, "0x80060888", f"Resource not found for the segment '{parts.path}'.")

        do_GET = do_PATCH = do_POST = do_DELETE = _handle

    return Handler
