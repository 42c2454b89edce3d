"""The Web API calls of `python -m dci dataverse setup`: read what the environment has
(`Admin.discover`), make one planned change (`Admin.apply`). Calls go through `dci.dataverse.client.Dataverse`
(its token, retries on 429/503/504 honouring Retry-After, and errors)."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from dci.dataverse.client import API, DataverseError
from dci.dataverse.odata import odata_filter, odata_text
from dci.dataverse.setup.plan import (
    AUTH_WEBHOOK_KEY,
    CLAIM_NONE,
    CONNECTION_NORMAL,
    CONTRACT_WEBHOOK,
    DEPLOYMENT_SERVER,
    DEPTHS,
    ENDPOINT_NAME,
    FORMAT_JSON,
    MODE_ASYNCHRONOUS,
    STAGE_POST_OPERATION,
    STEP_NAME,
    USER_NAMES,
    VISIT_COLUMNS,
    VISIT_TABLE,
    Change,
    Found,
    Wanted,
    endpoint_description,
    missing_privilege,
    visit_column,
    visit_table,
)

if TYPE_CHECKING:
    from dci.dataverse.client import Dataverse


class SetupError(RuntimeError):
    """A set-up step that cannot go on; the message is one line for the administrator."""


def _depth(value: Any) -> str | None:
    """A PrivilegeDepth as its member name (the Web API sends the name; older hosts the number)."""
    if isinstance(value, int) and 0 <= value < len(DEPTHS):
        return DEPTHS[value]
    return value if value in DEPTHS else None


class Admin:
    """Reads and changes one environment's set-up for the app, with the administrator's token."""

    def __init__(self, dataverse: Dataverse, organisation_url: str) -> None:
        self._dv = dataverse
        self._base = organisation_url.rstrip("/") + API
        self._privilege_ids: dict[str, str] = {}  # name -> privilegeid, of PRIVILEGES the environment has

    # --- reading ----------------------------------------------------------------------------------

    def discover(self, wanted: Wanted) -> Found:
        """What the environment has of the set-up `wanted` describes."""
        units = self._rows("businessunits?$select=businessunitid&$filter="
                           + odata_filter("_parentbusinessunitid_value eq null"), "find the root business unit")
        if not units:
            raise SetupError("Dataverse answered no root business unit (businessunits with no parent)")
        found = Found(business_unit=str(units[0]["businessunitid"]))
        users = self._rows("systemusers?$select=systemuserid,isdisabled&$filter="
                           + odata_filter(f"applicationid eq {wanted.client_id}"), "find the application user")
        if users:
            found.user, found.user_disabled = str(users[0]["systemuserid"]), bool(users[0].get("isdisabled"))
        roles = self._rows("roles?$select=roleid,name&$filter=" + odata_filter(
            f"name eq {odata_text(wanted.role)} and _businessunitid_value eq {found.business_unit}"), "find the role")
        if roles:
            found.role = str(roles[0]["roleid"])
        if wanted.visits:
            found.visit_columns = self._visit_columns()
        self._privilege_ids = self._privileges(wanted)
        found.absent = {name for name, _ in wanted.privileges()} - set(self._privilege_ids)
        if found.role:
            found.held = self._held(found.role)
        if found.user and found.role:
            mine = self._rows(f"systemusers({found.user})/systemuserroles_association?$select=roleid",
                              "read the application user's roles")
            found.assigned = any(str(row.get("roleid")) == found.role for row in mine)
        if wanted.webhook_url is not None:
            endpoints = self._rows("serviceendpoints?$select=serviceendpointid,url,contract,authtype,description"
                                   "&$filter=" + odata_filter(f"name eq {odata_text(ENDPOINT_NAME)}"),
                                   "find the webhook")
            if endpoints:
                found.endpoint = endpoints[0]
                steps = self._rows("sdkmessageprocessingsteps?$select=sdkmessageprocessingstepid,statecode&$filter="
                                   + odata_filter(f"_eventhandler_value eq {endpoints[0]['serviceendpointid']}"),
                                   "find the webhook's step")
                found.step = steps[0] if steps else None
        return found

    def _visit_columns(self) -> set[str] | None:
        """The visits table's columns, or None while the table does not exist."""
        path = (f"EntityDefinitions(LogicalName={odata_text(VISIT_TABLE)})?$select=LogicalName"
                "&$expand=Attributes($select=LogicalName)")
        try:
            document = self._dv.request("GET", path, "find the portal visits' table").json()
        except DataverseError as error:
            if error.status == 404:
                return None
            raise SetupError(_explained("find the portal visits' table", error)) from None
        return {str(column.get("LogicalName")) for column in document.get("Attributes", [])}

    def _privileges(self, wanted: Wanted) -> dict[str, str]:
        names = " or ".join(f"name eq {odata_text(name)}" for name, _ in wanted.privileges())
        rows = self._rows(f"privileges?$select=privilegeid,name&$filter={odata_filter(names)}", "look up privileges")
        return {str(row["name"]): str(row["privilegeid"]) for row in rows}

    def _held(self, role: str) -> dict[str, str]:
        """The role's privileges among PRIVILEGES, by name, at their depth."""
        by_id = {privilege: name for name, privilege in self._privilege_ids.items()}
        document = self._get(f"RetrieveRolePrivilegesRole(RoleId={role})", "read the role's privileges")
        held: dict[str, str] = {}
        for row in document.get("RolePrivileges", []):
            name, depth = by_id.get(str(row.get("PrivilegeId")).lower()), _depth(row.get("Depth"))
            if name and depth and (name not in held or DEPTHS.index(depth) > DEPTHS.index(held[name])):
                held[name] = depth
        return held

    # --- changing ---------------------------------------------------------------------------------

    def apply(self, change: Change, found: Found, wanted: Wanted) -> None:
        """Make one change; `found` takes the ids of what it created, for the changes after it."""
        if change.kind == "table":
            self._call("POST", "EntityDefinitions", f"create the table {VISIT_TABLE}", json=visit_table())
            for name in VISIT_COLUMNS:
                self._column(name)
            found.visit_columns = {"subject", *VISIT_COLUMNS}
            self._privilege_ids = self._privileges(wanted)  # the table's own privileges exist now
        elif change.kind == "columns":
            for name in VISIT_COLUMNS:
                if found.visit_columns is not None and name not in found.visit_columns:
                    self._column(name)
                    found.visit_columns.add(name)
        elif change.kind == "user":
            found.user = self._create("systemusers", {
                "applicationid": wanted.client_id, "firstname": USER_NAMES[0], "lastname": USER_NAMES[1],
                "businessunitid@odata.bind": f"/businessunits({found.business_unit})"}, "create the application user")
        elif change.kind == "role":
            found.role = self._create("roles", {"name": wanted.role, "businessunitid@odata.bind":
                                                f"/businessunits({found.business_unit})"}, "create the role")
        elif change.kind == "privileges":
            self._call("POST", f"roles({found.role})/Microsoft.Dynamics.CRM.AddPrivilegesRole", "add the role's "
                       "privileges", json={"Privileges": [
                           {"PrivilegeId": self._privilege_ids[name], "Depth": depth,
                            "BusinessUnitId": found.business_unit} for name, depth in change.privileges]})
            found.held.update(change.privileges)
        elif change.kind == "assign":
            self._call("POST", f"systemusers({found.user})/systemuserroles_association/$ref", "assign the role",
                       json={"@odata.id": f"{self._base}/roles({found.role})"})
            found.assigned = True
        elif change.kind in ("endpoint", "endpoint-update"):
            self._endpoint(change.kind == "endpoint", found, wanted)
        elif change.kind == "step":
            found.step = {"sdkmessageprocessingstepid": self._step(found), "statecode": 0}
        elif change.kind == "step-enable":
            assert found.step is not None
            self._call("PATCH", f"sdkmessageprocessingsteps({found.step['sdkmessageprocessingstepid']})",
                       "enable the webhook's step", json={"statecode": 0, "statuscode": 1})
            found.step["statecode"] = 0
        else:
            raise ValueError(f"not a change the command makes: {change.kind}")

    def _column(self, name: str) -> None:
        self._call("POST", f"EntityDefinitions(LogicalName={odata_text(VISIT_TABLE)})/Attributes",
                   f"add the column {name} to {VISIT_TABLE}", json=visit_column(name))

    def _endpoint(self, new: bool, found: Found, wanted: Wanted) -> None:
        assert wanted.webhook_url is not None and wanted.webhook_key is not None
        body = {"name": ENDPOINT_NAME, "contract": CONTRACT_WEBHOOK, "connectionmode": CONNECTION_NORMAL,
                "url": wanted.webhook_url, "authtype": AUTH_WEBHOOK_KEY, "authvalue": wanted.webhook_key,
                "messageformat": FORMAT_JSON, "userclaim": CLAIM_NONE,
                "description": endpoint_description(wanted.webhook_key)}
        if new:
            found.endpoint = {"serviceendpointid": self._create("serviceendpoints", body, "register the webhook")}
        else:
            assert found.endpoint is not None
            self._call("PATCH", f"serviceendpoints({found.endpoint['serviceendpointid']})", "update the webhook",
                       json=body)
        found.endpoint.update({k: v for k, v in body.items() if k != "authvalue"})

    def _step(self, found: Found) -> str:
        assert found.endpoint is not None
        messages = self._rows("sdkmessages?$select=sdkmessageid&$filter=" + odata_filter("name eq 'Create'"),
                              "find the Create message")
        if not messages:
            raise SetupError("Dataverse answered no sdkmessage named Create")
        message = messages[0]["sdkmessageid"]
        filters = self._rows("sdkmessagefilters?$select=sdkmessagefilterid&$filter=" + odata_filter(
            f"_sdkmessageid_value eq {message} and primaryobjecttypecode eq 'incident'"), "find Create of incident")
        if not filters:
            raise SetupError("Dataverse has no Create message for incident: is Dynamics 365 Customer Service "
                             "installed in this environment?")
        return self._create("sdkmessageprocessingsteps", {
            "name": STEP_NAME, "mode": MODE_ASYNCHRONOUS, "stage": STAGE_POST_OPERATION, "rank": 1,
            "supporteddeployment": DEPLOYMENT_SERVER, "asyncautodelete": True,
            "eventhandler_serviceendpoint@odata.bind": f"/serviceendpoints({found.endpoint['serviceendpointid']})",
            "sdkmessageid@odata.bind": f"/sdkmessages({message})",
            "sdkmessagefilterid@odata.bind": f"/sdkmessagefilters({filters[0]['sdkmessagefilterid']})"},
            "register the webhook's step")

    # --- the calls --------------------------------------------------------------------------------

    def _rows(self, path: str, what: str) -> list[dict[str, Any]]:
        rows: list[dict[str, Any]] = []
        document = self._get(path, what)
        while True:
            rows.extend(document.get("value", []))
            link = document.get("@odata.nextLink")
            if not link:
                return rows
            document = self._get(link.split(API + "/", 1)[-1], what)

    def _get(self, path: str, what: str) -> dict[str, Any]:
        return self._call("GET", path, what).json()

    def _create(self, entity_set: str, body: dict[str, Any], what: str) -> str:
        response = self._call("POST", entity_set, what, json=body)
        created = re.search(r"\(([0-9a-fA-F-]{36})\)\s*$", response.headers.get("OData-EntityId", ""))
        if not created:
            raise SetupError(f"{what}: Dataverse answered no OData-EntityId")
        return created.group(1).lower()

    def _call(self, method: str, path: str, what: str, **kwargs: Any) -> Any:
        try:
            return self._dv.request(method, path, what, **kwargs)
        except DataverseError as error:
            raise SetupError(_explained(what, error)) from None


def _explained(what: str, error: DataverseError) -> str:
    """One line: which step failed and what the administrator can do about it."""
    lacking = missing_privilege(str(error))
    if error.status == 403 and lacking:
        return (f"cannot {what}: your Dataverse user lacks {lacking} (the set-up needs the System Administrator "
                "role in this environment)")
    if error.status == 401:
        return (f"cannot {what}: Dataverse refused the sign-in (HTTP 401); sign in with an account of this "
                "environment's tenant (az login) or set DATAVERSE_TOKEN")
    if error.status == 0:
        return f"cannot {what}: Dataverse is not reachable ({error.code})"
    return f"cannot {error}"
