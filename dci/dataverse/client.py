"""The Dataverse Web API (v9.2): new incidents, a case by its ticket number, the timeline note on a
case, the portal visits on its timeline wall (dci/dataverse/wall.py), knowledge article titles.

`requests.Session` with urllib3 `Retry` (429/503/504 and connection errors, honouring
`Retry-After`), a timeout on every call, bearer tokens from azure-identity (managed identity in
Azure) or a fixed token for local testing. Errors are parsed from the `error` body Dataverse
returns. Service protection limits: 6,000 requests / 5 min / user, 52 concurrent.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

import requests
from requests.adapters import HTTPAdapter
from urllib3.util.retry import Retry

from dci import telemetry
from dci.clock import epoch_ms
from dci.dataverse.articles import KnowledgeArticles
from dci.dataverse.odata import odata_filter, odata_text
from dci.dataverse.visits import ENTITY_SET

logger = logging.getLogger(__name__)

API = "/api/data/v9.2"
TIMEOUT = (5, 60)  # connect, read (seconds)
PAGE_SIZE = 500
TOKEN_REFRESH_MARGIN = 300  # seconds before expiry a cached token is renewed
NAME_TTL_SECONDS = 3600  # how long a contact's name is remembered in memory (never stored)
LOOKUP_TYPE = "@Microsoft.Dynamics.CRM.lookuplogicalname"
NOTE_NAMESPACE = uuid.UUID("6b1f4a1e-8f65-4a4b-9d1e-5b8e0e7f2c10")  # note ids derive from case ids
CUSTOMER = 11  # ActivityParty.ParticipationTypeMask: the customer
COMPLETED = {"statecode": 1, "statuscode": 2}  # an activity's Completed state and status
OPEN = {"statecode": 0, "statuscode": 1}


SEGMENT_NOT_FOUND = "0x80060888"  # Dataverse's code for a 404 on a name it does not know (a table not made)


class DataverseError(RuntimeError):
    """A Dataverse call failed; says which call, the HTTP status and Dataverse's own code."""

    def __init__(self, what: str, status: int, code: str = "", message: str = "") -> None:
        super().__init__(f"{what}: HTTP {status}{f' {code}' if code else ''}{f': {message}' if message else ''}")
        self.status, self.code = status, code


@dataclass(frozen=True)
class Incident:
    """A support case as the poller and the webhook see it."""

    case_id: str
    created_ms: int
    ticket: str
    title: str
    contact: str | None
    skipped: str = ""  # why the case cannot get a timeline ("" when it can)


@dataclass(frozen=True)
class TicketedCase:
    """A case as its ticket number finds it in Dataverse."""

    case_id: str
    ticket: str
    created_ms: int


def incident_from_row(row: dict[str, Any]) -> Incident:
    """An Incident from a Web API row; the contact is the customer, or the account's primary contact."""
    customer, kind = row.get("_customerid_value"), row.get(f"_customerid_value{LOOKUP_TYPE}")
    contact = customer if kind == "contact" else row.get("_primarycontactid_value")
    skipped = "" if contact else (
        "the customer is an account without a primary contact" if kind == "account" else "no customer contact")
    return Incident(case_id=str(row["incidentid"]).lower(),
                    created_ms=epoch_ms(row["createdon"], naive_is_utc=True),
                    ticket=row.get("ticketnumber") or "", title=row.get("title") or "",
                    contact=str(contact).lower() if contact else None, skipped=skipped)


def visit_body(activity: dict[str, Any], case_id: str, contact: str, new: bool) -> dict[str, Any]:
    """The body that writes a portal visit: its columns, completed, regarding the case, and (`new`)
    the contact as its Customer party (a party list is set when the activity is created)."""
    body = {**{k: v for k, v in activity.items() if k != "activityid"}, **COMPLETED,
            "regardingobjectid_incident_dci_portalvisit@odata.bind": f"/incidents({case_id})"}
    if new:
        body["dci_portalvisit_activity_parties"] = [
            {"partyid_contact@odata.bind": f"/contacts({contact})", "participationtypemask": CUSTOMER}]
    return body


def note_id(case_id: str) -> str:
    """The id of a case's timeline note: derived from the case, so writing it twice is one note."""
    return str(uuid.uuid5(NOTE_NAMESPACE, case_id.lower()))


class TokenSource:
    """Bearer tokens for Dataverse: a fixed one (local testing), or azure-identity, cached."""

    def __init__(self, url: str, fixed: str | None = None, client_id: str | None = None,
                 credential: Any = None, clock: Callable[[], float] = time.time) -> None:
        self._scope = url.rstrip("/") + "/.default"
        self._fixed = fixed
        self._client_id = client_id
        self._credential = credential
        self._clock = clock
        self._cached: tuple[str, float] | None = None
        self._lock = threading.Lock()

    def token(self, force: bool = False) -> str:
        """A bearer token valid for at least a few more minutes."""
        if self._fixed:
            return self._fixed
        with self._lock:
            if force or self._cached is None or self._cached[1] - TOKEN_REFRESH_MARGIN < self._clock():
                access = self._get_credential().get_token(self._scope)
                self._cached = (access.token, float(access.expires_on))
            return self._cached[0]

    def _get_credential(self) -> Any:
        if self._credential is None:
            # Imported here: azure-identity is heavy and only the Dataverse paths need it.
            from azure.identity import DefaultAzureCredential, ManagedIdentityCredential

            self._credential = (ManagedIdentityCredential(client_id=self._client_id) if self._client_id
                                else DefaultAzureCredential())
        return self._credential


class ObservedRetry(Retry):
    """urllib3's Retry, counting Dataverse's 429s and timing each wait before a retry."""

    def increment(self, *args: Any, **kwargs: Any) -> Retry:
        response = kwargs.get("response")
        if response is not None and response.status == 429:
            telemetry.count("dci.dataverse.throttled")
        return super().increment(*args, **kwargs)

    def sleep(self, response: Any = None) -> None:
        started = time.monotonic()
        super().sleep(response)
        telemetry.record("dci.dataverse.retry.wait", time.monotonic() - started,
                         {"http.response.status_code": response.status if response is not None else 0})


def session(retries: int = 5, backoff: float = 1.0) -> requests.Session:
    """A Session that retries throttling and transient failures, honouring Retry-After."""
    retry = ObservedRetry(total=retries, connect=retries, read=2, status=retries, backoff_factor=backoff,
                  status_forcelist=(429, 503, 504), respect_retry_after_header=True,
                  allowed_methods=frozenset({"GET", "PATCH", "PUT", "DELETE", "POST"}),
                  raise_on_status=False)
    s = requests.Session()
    adapter = HTTPAdapter(max_retries=retry, pool_maxsize=16)
    s.mount("https://", adapter)
    s.mount("http://", adapter)
    return s


class Dataverse(KnowledgeArticles):
    """The few Web API calls the product makes. Takes its Session and TokenSource in the constructor."""

    def __init__(self, url: str, tokens: TokenSource, http: requests.Session | None = None,
                 page_size: int = PAGE_SIZE) -> None:
        self._base = url.rstrip("/") + API
        self._tokens = tokens
        self._http = http or session()
        self._page_size = page_size
        self._names: dict[str, tuple[str | None, float]] = {}
        self._titles: dict[str, tuple[str | None, float]] = {}
        self.requests = 0  # calls made, for logs and benchmarks

    def incidents_since(self, since_ms: int) -> Iterator[list[Incident]]:
        """Pages of incidents created at or after `since_ms`, oldest first (follows @odata.nextLink)."""
        since = datetime.fromtimestamp(since_ms / 1000, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
        url = (f"{self._base}/incidents?$select=incidentid,ticketnumber,title,createdon,_customerid_value,"
               f"_primarycontactid_value&$filter=createdon ge {since}&$orderby=createdon asc,incidentid asc")
        prefer = f'odata.maxpagesize={self._page_size},odata.include-annotations="{LOOKUP_TYPE[1:]}"'
        while url:
            document = self._call("GET", url, "list incidents", headers={"Prefer": prefer}).json()
            yield [incident_from_row(row) for row in document.get("value", [])]
            url = document.get("@odata.nextLink")  # verbatim: it carries the paging cookie

    def case_with_ticket(self, ticket: str) -> TicketedCase | None:
        """The case Dataverse has with this ticket number (the oldest, should several carry it), or
        None when it has none."""
        url = (f"{self._base}/incidents?$filter={odata_filter(f'ticketnumber eq {odata_text(ticket)}')}"
               "&$select=incidentid,createdon,ticketnumber")
        rows = self._call("GET", url, "find a case by its ticket number").json().get("value", [])
        found = [TicketedCase(str(row["incidentid"]).lower(), row.get("ticketnumber") or ticket,
                              epoch_ms(row["createdon"], naive_is_utc=True)) for row in rows]
        return min(found, key=lambda case: case.created_ms) if found else None

    def contact_name(self, contact: str) -> str | None:
        """The contact's full name, as the report shows it (None when Dataverse has no such contact);
        remembered for NAME_TTL_SECONDS, so a busy hour asks once per customer."""
        cached = self._names.get(contact)
        if cached is not None and cached[1] > time.monotonic():
            return cached[0]
        try:
            row = self._call("GET", f"{self._base}/contacts({contact})?$select=fullname", "read the contact").json()
            name = row.get("fullname") or None
        except DataverseError as error:
            if error.status != 404:
                raise
            name = None
        self._names[contact] = (name, time.monotonic() + NAME_TTL_SECONDS)
        return name

    def forget_name(self, contact: str) -> None:
        """Drop a contact's remembered name (an erasure)."""
        self._names.pop(contact, None)

    def delete_note(self, case_id: str) -> bool:
        """Delete the case's timeline note; False when there was none (already deleted, or never written)."""
        try:
            self._call("DELETE", f"{self._base}/annotations({note_id(case_id)})", "delete the timeline note")
        except DataverseError as error:
            if error.status != 404:
                raise
            return False
        return True

    def write_note(self, case_id: str, subject: str, text: str) -> str:
        """Create or update the case's timeline note (an upsert on a derived id); returns the note id."""
        note = note_id(case_id)
        body = {"subject": subject, "notetext": text, "isdocument": False,
                "objectid_incident@odata.bind": f"/incidents({case_id})"}
        self._call("PATCH", f"{self._base}/annotations({note})", "write the timeline note", json=body)
        return note

    def put_visit(self, activity: dict[str, Any], case_id: str, contact: str, *, new: bool) -> None:
        """Write a portal visit (dci/dataverse/visits.py), completed, regarding the case: `new` creates it with
        the contact as its Customer party (412 when it exists: `If-None-Match: *`), else it updates
        the open activity (404 when it does not exist: `If-Match: *`; reopen it first)."""
        self._call("PATCH", f"{self._base}/{ENTITY_SET}({activity['activityid']})",
                   f"{'write' if new else 'update'} a portal visit", json=visit_body(activity, case_id, contact, new),
                   headers={"If-None-Match" if new else "If-Match": "*"})

    def reopen_visit(self, visit: str) -> None:
        """Set a portal visit open again, so its columns can change (404 when it does not exist)."""
        self._call("PATCH", f"{self._base}/{ENTITY_SET}({visit})", "reopen a portal visit", json=OPEN,
                   headers={"If-Match": "*"})

    def delete_visit(self, visit: str) -> bool:
        """Delete a portal visit; False when there was none."""
        try:
            self._call("DELETE", f"{self._base}/{ENTITY_SET}({visit})", "delete a portal visit")
        except DataverseError as error:
            if error.status != 404 or error.code == SEGMENT_NOT_FOUND:
                raise
            return False
        return True

    def visit_ids(self, condition: str) -> list[str]:
        """The ids of the portal visits that meet an OData `$filter` condition, every page of them."""
        url: str | None = f"{self._base}/{ENTITY_SET}?$select=activityid&$filter={odata_filter(condition)}"
        found = []
        while url:
            document = self._call("GET", url, "list portal visits",
                                  headers={"Prefer": f"odata.maxpagesize={self._page_size}"}).json()
            found += [str(row["activityid"]).lower() for row in document.get("value", [])]
            url = document.get("@odata.nextLink")
        return found

    def request(self, method: str, path: str, what: str, **kwargs: Any) -> requests.Response:
        """Any Web API call (`path` after /api/data/v9.2, e.g. `roles?$filter=…`), with this client's
        token, retries and errors: for the set-up command's administrative calls."""
        return self._call(method, f"{self._base}/{path.lstrip('/')}", what, **kwargs)

    def _call(self, method: str, url: str, what: str, **kwargs: Any) -> requests.Response:
        with telemetry.span(f"Dataverse: {what}", {"http.request.method": method}) as span:
            response = self._authorized_call(method, url, what, **kwargs)
            span.set({"http.response.status_code": response.status_code})
            return response

    def _authorized_call(self, method: str, url: str, what: str, **kwargs: Any) -> requests.Response:
        for attempt in (1, 2):
            headers = {"Authorization": f"Bearer {self._tokens.token(force=attempt == 2)}",
                       "Accept": "application/json", "OData-MaxVersion": "4.0", "OData-Version": "4.0",
                       **kwargs.pop("headers", {})}
            self.requests += 1
            try:
                response = self._http.request(method, url, headers=headers, timeout=TIMEOUT, **kwargs)
            except requests.RequestException as error:
                raise DataverseError(what, 0, type(error).__name__, str(error)) from None
            if response.status_code == 401 and attempt == 1:
                logger.info("Dataverse refused the token (401); renewing it once")
                kwargs["headers"] = {k: v for k, v in headers.items() if k != "Authorization"}
                continue
            if response.status_code >= 400:
                raise _error(what, response)
            return response
        raise AssertionError("unreachable")


def _error(what: str, response: requests.Response) -> DataverseError:
    try:
        error = response.json().get("error", {})
    except ValueError:
        error = {}
    return DataverseError(what, response.status_code, str(error.get("code", "")), str(error.get("message", "")))


_clients: dict[tuple[str, str | None, str | None], Dataverse] = {}
_clients_lock = threading.Lock()


def client_from(settings: Any) -> Dataverse | None:
    """The client for the configured environment, or None when no DATAVERSE_URL is set."""
    if settings.dataverse_url is None:
        return None
    token = settings.dataverse_token.get_secret_value() if settings.dataverse_token is not None else None
    return client_for(str(settings.dataverse_url), token, settings.dataverse_client_id)


def client_for(url: str, fixed_token: str | None, client_id: str | None) -> Dataverse:
    """The process's Dataverse client for one configuration (its token cache and connection pool)."""
    key = (url, fixed_token, client_id)
    with _clients_lock:
        if key not in _clients:
            _clients[key] = Dataverse(url, TokenSource(url, fixed=fixed_token, client_id=client_id))
        return _clients[key]
