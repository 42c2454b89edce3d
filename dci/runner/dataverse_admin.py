"""The administrative tables of the local Dataverse, for `python -m dci dataverse setup`: business
units, application users, security roles and their privileges, service endpoints (webhooks) and
plug-in steps, in the documented Web API shapes.

Create by POST (204 and `OData-EntityId`), update by PATCH, `$filter` with `eq` conditions joined
by `and` or `or`, `@odata.bind` lookups read back as `_<name>_value`, `AddPrivilegesRole`,
`RetrieveRolePrivilegesRole`, the `systemuserroles_association` collection and its `$ref`. As
Dataverse does, it refuses a property the table does not have (400), never returns a webhook's
`authvalue`, gives every new role a baseline privilege of its own, allows an asynchronous step only
post-operation, and answers 403 naming the privilege an administrator lacks (`deny`). A case added
while a webhook is registered on Create of incident is posted to it (`?code=<key>`, asynchronously).

Table definitions (`EntityDefinitions`): read by logical name with their columns (404 while there
is none), created by POST of an EntityMetadata — a custom activity as Dataverse requires it (its
one column Subject, the primary name; user- or team-owned; offline; no mail merge) — with the
table's own privileges (`prvCreate<table>` …), and columns added by POST to its `Attributes`.
"""

from __future__ import annotations

import re
import uuid
from typing import Any
from urllib.parse import unquote

from dci.clock import epoch_ms

Answer = tuple[int, dict[str, Any] | None, dict[str, str]]

ROOT_UNIT = "0a5f2c1e-4b7d-4e21-9a51-6c3d8e9f0b11"
BASELINE = "prvReadSharePointDocument"  # Dataverse adds privileges like this to every new role
PRIVILEGE_NAMES = ("prvReadIncident", "prvAppendToIncident", "prvWriteIncident", "prvReadContact", "prvAppendToContact",
                   "prvReadAccount", "prvReadKnowledgeArticle", "prvReadKnowledgeArticleIncident",
                   "prvWriteKnowledgeArticle", "prvCreateNote", "prvReadNote", "prvWriteNote",
                   "prvAppendNote", "prvDeleteNote", "prvAppendToNote", BASELINE)
DEPTHS = ("Basic", "Local", "Deep", "Global")
# What may be written to each table (anything else is refused as Dataverse refuses it).
COLUMNS = {
    "systemusers": {"applicationid", "firstname", "lastname", "businessunitid@odata.bind"},
    "roles": {"name", "businessunitid@odata.bind"},
    "serviceendpoints": {"name", "contract", "connectionmode", "url", "authtype", "authvalue", "messageformat",
                         "userclaim", "description"},
    "sdkmessageprocessingsteps": {"name", "mode", "stage", "rank", "supporteddeployment", "asyncautodelete",
                                  "eventhandler_serviceendpoint@odata.bind", "sdkmessageid@odata.bind",
                                  "sdkmessagefilterid@odata.bind", "statecode", "statuscode", "description"},
}
KEYS = {"businessunits": "businessunitid", "systemusers": "systemuserid", "roles": "roleid",
        "privileges": "privilegeid", "serviceendpoints": "serviceendpointid", "sdkmessages": "sdkmessageid",
        "sdkmessagefilters": "sdkmessagefilterid", "sdkmessageprocessingsteps": "sdkmessageprocessingstepid"}
NEEDS = {"EntityDefinitions": "prvCreateEntity", "Attributes": "prvCreateAttribute",
         "systemusers": "prvCreateUser", "roles": "prvCreateRole", "serviceendpoints": "prvCreateServiceEndpoint",
         "sdkmessageprocessingsteps": "prvCreateSdkMessageProcessingStep", "AddPrivilegesRole": "prvWriteRole",
         "assign": "prvAssignRole"}
LOOKUP_OF = {"eventhandler_serviceendpoint": "eventhandler"}  # a polymorphic lookup's attribute
CONDITION = re.compile(r"(\w+) eq ('(?:[^']|'')*'|null|[0-9a-fA-F-]{36}|-?\d+)\b")
GUID = r"[0-9a-fA-F-]{36}"


def _value(text: str) -> Any:
    if text == "null":
        return None
    if text.startswith("'"):
        return text[1:-1].replace("''", "'")
    return int(text) if re.fullmatch(r"-?\d+", text) else text.lower()


def _equal(actual: Any, literal: str) -> bool:
    expected = _value(literal)
    if isinstance(actual, str) and isinstance(expected, str):  # Dataverse compares text without regard to case
        return actual.lower() == expected.lower()
    return actual == expected


def matches(row: dict[str, Any], condition: str) -> bool:
    """Whether a row meets an OData `$filter` of `eq` conditions joined by `and` (or all by `or`)."""
    found = CONDITION.findall(condition)
    outside = re.sub(r"'(?:[^']|'')*'", "''", condition)
    test = any if " or " in outside else all
    return test(_equal(row.get(name), literal) for name, literal in found) if found else True


class AdminTables:
    """State of the administrative tables; `handle` answers a request or returns None (not one of them)."""

    def __init__(self, base_url: str) -> None:
        self.base = base_url
        self.rows: dict[str, dict[str, dict[str, Any]]] = {name: {} for name in KEYS}
        self.secrets: dict[str, str] = {}  # serviceendpointid -> authvalue (never read back)
        self.role_privileges: dict[str, dict[str, str]] = {}  # roleid -> privilegeid -> depth
        self.user_roles: dict[str, set[str]] = {}
        self.denied: set[str] = set()
        self.tables: dict[str, dict[str, Any]] = {}  # logical name -> EntityMetadata as created, with `columns`
        self._add("businessunits", {"businessunitid": ROOT_UNIT, "name": "contoso",
                                    "_parentbusinessunitid_value": None})
        self._add("businessunits", {"businessunitid": str(uuid.uuid4()), "name": "Support",
                                    "_parentbusinessunitid_value": ROOT_UNIT})
        for name in PRIVILEGE_NAMES:
            self._add("privileges", {"privilegeid": str(uuid.uuid4()), "name": name})
        for message in ("Create", "Update"):
            found = self._add("sdkmessages", {"sdkmessageid": str(uuid.uuid4()), "name": message})
            for table in ("incident", "contact"):
                self._add("sdkmessagefilters", {"sdkmessagefilterid": str(uuid.uuid4()),
                                                "_sdkmessageid_value": found, "primaryobjecttypecode": table})

    def webhooks_on_create(self, table: str) -> list[tuple[str, str]]:
        """(url, key) of each webhook an enabled step on Create of `table` points at."""
        create = {m["sdkmessageid"] for m in self.rows["sdkmessages"].values() if m["name"] == "Create"}
        filters = {f["sdkmessagefilterid"] for f in self.rows["sdkmessagefilters"].values()
                   if f["_sdkmessageid_value"] in create and f["primaryobjecttypecode"] == table}
        hooks = []
        for step in self.rows["sdkmessageprocessingsteps"].values():
            endpoint = self.rows["serviceendpoints"].get(step.get("_eventhandler_value", ""))
            if step.get("statecode") == 0 and step.get("_sdkmessagefilterid_value") in filters and endpoint \
                    and endpoint.get("contract") == 8 and endpoint.get("authtype") == 4:
                hooks.append((str(endpoint["url"]), self.secrets.get(endpoint["serviceendpointid"], "")))
        return hooks

    def deny(self, privilege: str) -> None:
        """Make the signed-in administrator lack `privilege` (e.g. prvCreateRole): its calls answer 403."""
        self.denied.add(privilege)

    def endpoint_key(self, endpoint_id: str) -> str | None:
        """The key a webhook sends (the test's view; the Web API never returns it)."""
        return self.secrets.get(endpoint_id)

    def _add(self, table: str, row: dict[str, Any]) -> str:
        self.rows[table][row[KEYS[table]]] = row
        return row[KEYS[table]]

    # --- requests ---------------------------------------------------------------------------------

    def handle(self, method: str, path: str, query: str, body: dict[str, Any]) -> Answer | None:
        if path == "EntityDefinitions" and method == "POST":
            return self._create_table(body)
        if m := re.fullmatch(r"EntityDefinitions\(LogicalName='(\w+)'\)(/Attributes)?", unquote(path)):
            if method == "GET" and not m.group(2):
                return self._table(m.group(1))
            if method == "POST" and m.group(2):
                return self._add_column(m.group(1), body)
        if method == "GET" and (m := re.fullmatch(rf"RetrieveRolePrivilegesRole\(RoleId=({GUID})\)", path)):
            return self._role_privileges(m.group(1).lower())
        if m := re.fullmatch(rf"roles\(({GUID})\)/Microsoft\.Dynamics\.CRM\.AddPrivilegesRole", path):
            return self._add_privileges(m.group(1).lower(), body) if method == "POST" else None
        if m := re.fullmatch(rf"systemusers\(({GUID})\)/systemuserroles_association(/\$ref)?", path):
            return self._user_roles(method, m.group(1).lower(), bool(m.group(2)), body)
        if path in KEYS and method == "GET":
            return self._list(path, query)
        if path in COLUMNS and method == "POST":
            return self._create(path, body)
        if (m := re.fullmatch(rf"(\w+)\(({GUID})\)", path)) and m.group(1) in COLUMNS and method == "PATCH":
            return self._update(m.group(1), m.group(2).lower(), body)
        return None

    def _list(self, table: str, query: str) -> Answer:
        params = dict(part.split("=", 1) for part in query.split("&") if "=" in part)
        condition = unquote(params.get("$filter", ""))
        select = [c for c in unquote(params.get("$select", "")).split(",") if c]
        value = [{"@odata.etag": 'W/"1"', **{k: v for k, v in row.items() if not select or k in select}}
                 for row in self.rows[table].values() if matches(row, condition)]
        return 200, {"@odata.context": f"{self.base}/$metadata#{table}", "value": value}, {}

    def _check(self, table: str, body: dict[str, Any]) -> Answer | None:
        unknown = sorted(set(body) - COLUMNS[table])
        if unknown:
            return refusal(400, "0x80060888", f"Invalid property '{unknown[0]}' was found in entity "
                                             f"'Microsoft.Dynamics.CRM.{table[:-1]}'.")
        for key, target in body.items():
            if key.endswith("@odata.bind"):
                bound = re.fullmatch(rf"/(\w+)\(({GUID})\)", str(target))
                if not bound or bound.group(2).lower() not in self.rows.get(bound.group(1), {}):
                    return refusal(400, "0x80040217", f"{key}: no record {target}")
        return None

    def _create(self, table: str, body: dict[str, Any]) -> Answer:
        if NEEDS[table] in self.denied:
            return self.forbidden(NEEDS[table])
        refused = self._check(table, body) or self._rules(table, body, None)
        if refused:
            return refused
        row_id = str(uuid.uuid4())
        row = self._row(table, {KEYS[table]: row_id, "statecode": 0}, body, row_id)
        self._add(table, row)
        if table == "roles":
            baseline = next(r for r in self.rows["privileges"].values() if r["name"] == BASELINE)
            self.role_privileges[row_id] = {baseline["privilegeid"]: "Global"}
        return 204, None, {"OData-EntityId": f"{self.base}/{table}({row_id})"}

    def _update(self, table: str, row_id: str, body: dict[str, Any]) -> Answer:
        row = self.rows[table].get(row_id)
        if row is None:
            return refusal(404, "0x80040217", f"{table[:-1]} With Id = {row_id} Does Not Exist")
        refused = self._check(table, body) or self._rules(table, body, row)
        if refused:
            return refused
        self._row(table, row, body, row_id)
        return 204, None, {}

    def _row(self, table: str, row: dict[str, Any], body: dict[str, Any], row_id: str) -> dict[str, Any]:
        for key, value in body.items():
            if key.endswith("@odata.bind"):
                name = key.removesuffix("@odata.bind")
                row[f"_{LOOKUP_OF.get(name, name)}_value"] = re.search(rf"({GUID})", value).group(1).lower()
            elif key == "authvalue":
                self.secrets[row_id] = value
            else:
                row[key] = value
        if table == "serviceendpoints":
            row["isauthvalueset"] = row_id in self.secrets
        return row

    def _rules(self, table: str, body: dict[str, Any], row: dict[str, Any] | None) -> Answer | None:
        merged = {**(row or {}), **body}
        if table == "serviceendpoints" and merged.get("contract") == 8 and merged.get("authtype") == 4 \
                and not (body.get("authvalue") or (row and row["serviceendpointid"] in self.secrets)):
            return refusal(400, "0x80040203", "A webhook with authentication WebhookKey needs its AuthValue.")
        if table == "sdkmessageprocessingsteps" and merged.get("mode") == 1 and merged.get("stage") != 40:
            return refusal(400, "0x80044184", "Asynchronous steps are supported only in the post-operation stage.")
        if table == "systemusers" and row is None and any(
                str(u.get("applicationid")).lower() == str(body.get("applicationid")).lower()
                for u in self.rows["systemusers"].values()):
            return refusal(400, "0x80040237", "An application user with this application id already exists.")
        return None

    def _role_privileges(self, role: str) -> Answer:
        if role not in self.rows["roles"]:
            return refusal(404, "0x80040217", f"role With Id = {role} Does Not Exist")
        names = {r["privilegeid"]: r["name"] for r in self.rows["privileges"].values()}
        context = f"{self.base}/$metadata#Microsoft.Dynamics.CRM.RetrieveRolePrivilegesRoleResponse"
        return 200, {"@odata.context": context,
                     "RolePrivileges": [{"Depth": depth, "PrivilegeId": pid, "BusinessUnitId": ROOT_UNIT,
                                         "PrivilegeName": names.get(pid, "")}
                                        for pid, depth in self.role_privileges.get(role, {}).items()]}, {}

    def _add_privileges(self, role: str, body: dict[str, Any]) -> Answer:
        if NEEDS["AddPrivilegesRole"] in self.denied:
            return self.forbidden(NEEDS["AddPrivilegesRole"])
        if role not in self.rows["roles"]:
            return refusal(404, "0x80040217", f"role With Id = {role} Does Not Exist")
        privileges = body.get("Privileges")
        if not isinstance(privileges, list) or not privileges:
            return refusal(400, "0x80040203", "Privileges: a collection of RolePrivilege is required.")
        for item in privileges:
            known = str(item.get("PrivilegeId", "")).lower() in self.rows["privileges"]
            if not known or item.get("Depth") not in DEPTHS:
                return refusal(400, "0x80040203", f"Not a RolePrivilege: {item}")
        for item in privileges:  # a privilege added again takes the new depth, as AddPrivilegesRole does
            self.role_privileges.setdefault(role, {})[str(item["PrivilegeId"]).lower()] = item["Depth"]
        return 204, None, {}

    def _user_roles(self, method: str, user: str, ref: bool, body: dict[str, Any]) -> Answer | None:
        if user not in self.rows["systemusers"]:
            return refusal(404, "0x80040217", f"systemuser With Id = {user} Does Not Exist")
        if method == "GET" and not ref:
            return 200, {"@odata.context": f"{self.base}/$metadata#roles", "value": [
                {"@odata.etag": 'W/"1"', "roleid": r} for r in sorted(self.user_roles.get(user, set()))]}, {}
        if method == "POST" and ref:
            if NEEDS["assign"] in self.denied:
                return self.forbidden(NEEDS["assign"])
            target = re.search(rf"/roles\(({GUID})\)$", str(body.get("@odata.id", "")))
            if not target or target.group(1).lower() not in self.rows["roles"]:
                return refusal(400, "0x80040203", "@odata.id must name a role.")
            if target.group(1).lower() in self.user_roles.get(user, set()):
                return refusal(400, "0x80040237", "Cannot insert duplicate key.")
            self.user_roles.setdefault(user, set()).add(target.group(1).lower())
            return 204, None, {}
        return None

    def _table(self, name: str) -> Answer:
        table = self.tables.get(name.lower())
        if table is None:
            return refusal(404, "0x80040217", f"Could not find an entity with name {name}.")
        context = f"{self.base}/$metadata#EntityDefinitions(LogicalName,Attributes(LogicalName))/$entity"
        return 200, {"@odata.context": context, "LogicalName": name.lower(), "MetadataId": table["MetadataId"],
                     "Attributes": [{"LogicalName": column} for column in sorted(table["columns"])]}, {}

    def _create_table(self, body: dict[str, Any]) -> Answer:
        if NEEDS["EntityDefinitions"] in self.denied:
            return self.forbidden(NEEDS["EntityDefinitions"])
        name = str(body.get("SchemaName") or "")
        primary = [a for a in body.get("Attributes") or [] if a.get("IsPrimaryName")]
        if body.get("@odata.type") != "Microsoft.Dynamics.CRM.EntityMetadata" \
                or not re.fullmatch(r"[a-z]+_\w+", name):
            return refusal(400, "0x80040203", "An EntityMetadata with a SchemaName of a publisher prefix is required.")
        if name.lower() in self.tables:
            return refusal(400, "0x80044363", f"An entity with the specified name {name} already exists.")
        if len(primary) != 1 or len(body["Attributes"]) != 1:
            return refusal(400, "0x80044355", "Exactly one attribute, the primary name, is created with an entity.")
        if body.get("IsActivity") and (
                primary[0].get("SchemaName") != "Subject" or body.get("OwnershipType") not in ("UserOwned", "TeamOwned")
                or body.get("IsAvailableOffline") is not True or body.get("HasActivities")
                or (body.get("IsMailMergeEnabled") or {}).get("Value") is not False):
            return refusal(400, "0x80044355", "A custom activity needs the primary attribute Subject, user or team "
                                             "ownership, offline availability, no activities and no mail merge.")
        metadata_id = str(uuid.uuid4())
        self.tables[name.lower()] = {**body, "MetadataId": metadata_id, "columns": {"subject", "activityid",
                                                                                     "regardingobjectid", "description",
                                                                                     "actualstart", "actualend"},
                                     # (what a text column holds; an activity's own Description: 2,000 here)
                                     "lengths": {"subject": int(primary[0].get("MaxLength") or 100),
                                                 "description": 2000}}
        for verb in ("Create", "Read", "Write", "Delete", "Append", "AppendTo", "Assign", "Share"):
            self._add("privileges", {"privilegeid": str(uuid.uuid4()), "name": f"prv{verb}{name}"})
        return 204, None, {"OData-EntityId": f"{self.base}/EntityDefinitions({metadata_id})"}

    def _add_column(self, table_name: str, body: dict[str, Any]) -> Answer:
        if NEEDS["Attributes"] in self.denied:
            return self.forbidden(NEEDS["Attributes"])
        table = self.tables.get(table_name.lower())
        if table is None:
            return refusal(404, "0x80040217", f"Could not find an entity with name {table_name}.")
        kinds = {"Microsoft.Dynamics.CRM.StringAttributeMetadata", "Microsoft.Dynamics.CRM.IntegerAttributeMetadata",
                 "Microsoft.Dynamics.CRM.BooleanAttributeMetadata"}
        name = str(body.get("SchemaName") or "").lower()
        if body.get("@odata.type") not in kinds or not name:
            return refusal(400, "0x80040203", "An AttributeMetadata of a known type with a SchemaName is required.")
        boolean = body["@odata.type"].endswith("BooleanAttributeMetadata")
        if boolean and not (body.get("OptionSet") or {}).get("TrueOption"):
            return refusal(400, "0x80040203", "A Boolean attribute needs its OptionSet.")
        if name in table["columns"]:
            return refusal(400, "0x80044363", f"An attribute with the specified name {name} already exists.")
        table["columns"].add(name)
        if body.get("MaxLength"):
            table.setdefault("lengths", {})[name] = int(body["MaxLength"])
        metadata_id = str(uuid.uuid4())
        entity_id = f"{self.base}/EntityDefinitions({table['MetadataId']})/Attributes({metadata_id})"
        return 204, None, {"OData-EntityId": entity_id}

    def forbidden(self, privilege: str) -> Answer:
        """403 as Dataverse answers a caller without `privilege` (see `deny`)."""
        return refusal(403, "0x80040220", f"Principal user (Id={uuid.uuid4()}, type=8, roleCount=1, "
                                          f"privilegeCount=412, accessMode=0), is missing {privilege} privilege "
                                          f"(Id={uuid.uuid4()}).")


def refusal(status: int, code: str, message: str) -> Answer:
    """An error answer in the Web API's shape (`{"error": {"code", "message"}}`)."""
    return status, {"error": {"code": code, "message": message}}, {}


def remote_execution_context(row: dict[str, Any], customer_type: str | None) -> dict[str, Any]:
    """The RemoteExecutionContext Dataverse posts to a webhook for Create of an incident (DataContract JSON)."""
    created_ms = epoch_ms(row["createdon"], naive_is_utc=True)
    attributes = [{"key": "ticketnumber", "value": row["ticketnumber"]}, {"key": "title", "value": row["title"]},
                  {"key": "createdon", "value": f"/Date({created_ms})/"},
                  {"key": "incidentid", "value": row["incidentid"]}]
    for key, value, kind in (("customerid", row.get("_customerid_value"), customer_type),
                             ("primarycontactid", row.get("_primarycontactid_value"), "contact")):
        if value and kind:
            attributes.append({"key": key, "value": {
                "__type": "EntityReference:http://schemas.microsoft.com/xrm/2011/Contracts", "Id": value,
                "KeyAttributes": [], "LogicalName": kind, "Name": None, "RowVersion": None}})
    return {"BusinessUnitId": ROOT_UNIT, "CorrelationId": str(uuid.uuid4()), "Depth": 1,
            "InitiatingUserId": str(uuid.uuid4()), "MessageName": "Create", "Mode": 1,
            "OperationCreatedOn": f"/Date({created_ms}+0000)/", "OrganizationName": "contoso",
            "PrimaryEntityId": row["incidentid"], "PrimaryEntityName": "incident", "Stage": 40,
            "InputParameters": [{"key": "Target", "value": {
                "__type": "Entity:http://schemas.microsoft.com/xrm/2011/Contracts", "Attributes": attributes,
                "Id": row["incidentid"], "LogicalName": "incident"}}],
            "PostEntityImages": [], "PreEntityImages": [], "SharedVariables": []}
