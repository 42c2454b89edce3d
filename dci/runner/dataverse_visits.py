"""The local Dataverse's Portal visits (`dci_portalvisits`, the custom activity of issue 28), in
the documented Web API shapes the app's writes meet in a real environment.

Only once `python -m dci dataverse setup` has made the table (`EntityDefinitions`, in
`dataverse_admin`) does the entity set exist: before, any call answers 404 "Resource not found for
the segment" (0x80060888); a property the table lacks is refused with 400 (0x80060888). Upsert by
PATCH on `dci_portalvisits(id)`, with `If-None-Match: *` (create only: 412 when it exists) or
`If-Match: *` (update only: 404 when it does not); `regardingobjectid_incident_dci_portalvisit@odata.bind`
must name a case; activity parties come as `dci_portalvisit_activity_parties`, each
`partyid_contact@odata.bind` with its `participationtypemask`, and are read back with the row. A
completed or canceled activity is read-only: only its state may change (reopen it, change it,
complete it again) — the stricter reading of the platform's rule, so the app works under either. A
text longer than its column (counted in UTF-16 code units, as Dataverse does) is refused with 400.
The privileges the administrator's session lacks (`AdminTables.deny`) answer 403 as Dataverse does.
`$filter=_regardingobjectid_value eq <id>` lists a case's visits, and
`dci_portalvisit_activity_parties/any(p:p/_partyid_value eq <id>)` a contact's, paged by
`odata.maxpagesize`.
"""

from __future__ import annotations

import re
import time
from typing import Any
from urllib.parse import parse_qs

from dci.runner.dataverse_admin import GUID, AdminTables, Answer, matches, refusal
from dci.runner.odata_pages import asked, page
from dci.text import units

TABLE, ENTITY_SET = "dci_portalvisit", "dci_portalvisits"
REGARDING = "regardingobjectid_incident_dci_portalvisit@odata.bind"
PARTIES = "dci_portalvisit_activity_parties"
STATES = {(0, 1), (1, 2), (2, 3)}  # (statecode, statuscode): open, completed, canceled
STATE_COLUMNS = {"statecode", "statuscode"}


class PortalVisits:
    """The rows of `dci_portalvisits`; `handle` answers a request on the entity set, or None."""

    def __init__(self, base_url: str, admin: AdminTables, incidents: list[dict[str, Any]]) -> None:
        self.base = base_url
        self.admin = admin
        self.incidents = incidents
        self.rows: dict[str, dict[str, Any]] = {}

    def of_case(self, case_id: str) -> list[dict[str, Any]]:
        """A case's visits, by actual start (the test's and the demo's view)."""
        return sorted((row for row in self.rows.values() if row.get("_regardingobjectid_value") == case_id.lower()),
                      key=lambda row: str(row.get("actualstart")))

    def handle(self, method: str, path: str, query: str, headers: Any, body: dict[str, Any]) -> Answer | None:
        one = re.fullmatch(rf"{ENTITY_SET}\(({GUID})\)", path)
        if path != ENTITY_SET and not one:
            return None
        table = self.admin.tables.get(TABLE)
        if table is None:
            return refusal(404, "0x80060888", f"Resource not found for the segment '{ENTITY_SET}'.")
        if method == "GET" and not one:
            return self._list(query, headers.get("Prefer", ""))
        if one is None:
            return refusal(405, "0x80060888", f"{method} is not supported on {ENTITY_SET} here.")
        visit = one.group(1).lower()
        if method == "GET":
            row = self.rows.get(visit)
            return (200, {"@odata.etag": 'W/"1"', **row}, {}) if row else self._absent(visit)
        if method == "DELETE":
            if f"prvDelete{TABLE}" in self.admin.denied:
                return self.admin.forbidden(f"prvDelete{TABLE}")
            return (204, None, {}) if self.rows.pop(visit, None) else self._absent(visit)
        if method == "PATCH":
            return self._upsert(visit, body, table, headers)
        return None

    def _absent(self, visit: str) -> Answer:
        return refusal(404, "0x80040217", f"{TABLE} With Id = {visit} Does Not Exist")

    def _upsert(self, visit: str, body: dict[str, Any], table: dict[str, Any], headers: Any) -> Answer:
        existing = self.rows.get(visit)
        if headers.get("If-None-Match") == "*" and existing is not None:
            return refusal(412, "0x80040237", "A record with matching key values already exists.")
        if headers.get("If-Match") == "*" and existing is None:
            return self._absent(visit)
        privilege = f"prv{'Write' if existing else 'Create'}{TABLE}"
        if privilege in self.admin.denied:
            return self.admin.forbidden(privilege)
        unknown = sorted(key for key in body if key not in table["columns"] | STATE_COLUMNS | {REGARDING, PARTIES})
        if unknown:
            return refusal(400, "0x80060888", f"Invalid property '{unknown[0]}' was found in entity "
                                             f"'Microsoft.Dynamics.CRM.{TABLE}'.")
        for column, most in table.get("lengths", {}).items():  # the MaxLength it was made with, in UTF-16 units
            if isinstance(body.get(column), str) and units(body[column]) > most:
                return refusal(400, "0x80044331", f"A validation error occurred. The length of the '{column}' "
                                                  f"attribute of the '{TABLE}' entity exceeded the maximum allowed "
                                                  f"length of '{most}'.")
        refused = self._refused(body, existing)
        if refused:
            return refused
        row = existing or {"activityid": visit, "activitytypecode": TABLE, "statecode": 0, "statuscode": 1,
                           "createdon": _now(), "updates": -1, "parties": []}
        for key, value in body.items():
            if key == REGARDING:
                row["_regardingobjectid_value"] = re.search(GUID, value).group(0).lower()
            elif key == PARTIES:
                row["parties"] = [{"_partyid_value": re.search(GUID, p["partyid_contact@odata.bind"]).group(0).lower(),
                                   "partyobjecttypecode": "contact",
                                   "participationtypemask": p["participationtypemask"]} for p in value]
            else:
                row[key] = value
        row["updates"] += 1
        row["modifiedon"] = _now()
        self.rows[visit] = row
        return 204, None, {"OData-EntityId": f"{self.base}/{ENTITY_SET}({visit})"}

    def _refused(self, body: dict[str, Any], existing: dict[str, Any] | None) -> Answer | None:
        state = (body.get("statecode", (existing or {}).get("statecode", 0)),
                 body.get("statuscode", (existing or {}).get("statuscode", 1)))
        if state not in STATES:
            return refusal(400, "0x80040203", f"statuscode {state[1]} is not valid for statecode {state[0]}.")
        if existing is not None and existing["statecode"] != 0 and set(body) - STATE_COLUMNS:
            return refusal(400, "0x80040203", f"This {TABLE} is closed: reopen it (statecode 0) to change it.")
        if REGARDING in body:
            case = re.fullmatch(rf"/incidents\(({GUID})\)", str(body[REGARDING]))
            if not case or not any(str(r["incidentid"]).lower() == case.group(1).lower() for r in self.incidents):
                return refusal(400, "0x80040217", f"{REGARDING}: no case {body[REGARDING]}")
        if PARTIES in body:
            if existing is not None:
                return refusal(400, "0x80060888", "A collection-valued navigation property cannot be updated here.")
            for party in body[PARTIES]:
                bound = re.fullmatch(rf"/contacts\(({GUID})\)", str(party.get("partyid_contact@odata.bind", "")))
                if not bound or not 1 <= int(party.get("participationtypemask", 0)) <= 13:
                    return refusal(400, "0x80040203", f"Not an activity party: {party}")
        return None

    def _list(self, query: str, prefer: str) -> Answer:
        params = parse_qs(query)
        request = asked(query, prefer)
        condition = request.filter
        party = re.fullmatch(rf"{PARTIES}/any\((\w+):\1/_partyid_value eq ({GUID})\)", condition.strip())
        if party:  # a lambda over the activity parties, as Dataverse takes it
            rows = [row for row in self.rows.values()
                    if any(p["_partyid_value"] == party.group(2).lower() for p in row["parties"])]
        else:
            rows = [row for row in self.rows.values() if matches(row, condition)]
        rows.sort(key=lambda r: r["activityid"])
        select = [c for c in params.get("$select", [""])[0].split(",") if c]
        shown, more = page(rows, request, f"{self.base}/{ENTITY_SET}")
        value = [{"@odata.etag": 'W/"1"', **{k: v for k, v in row.items() if not select or k in select}}
                 for row in shown]
        return 200, {"@odata.context": f"{self.base}/$metadata#{ENTITY_SET}", "value": value, **more}, {}


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
