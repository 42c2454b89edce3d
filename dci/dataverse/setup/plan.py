"""What `python -m dci dataverse setup` puts in a Dataverse environment, and the changes that take
an environment from what it has to that (pure: no I/O here).

1. An application user for the app's managed identity (`systemusers.applicationid` = its client
   id), in the root business unit.
2. A security role holding exactly `PRIVILEGES` (each at its depth or deeper), in the root business
   unit — or, with `--role NAME`, a role the administrator made, used as it is.
3. That role assigned to the application user.
4. The activity table `dci_portalvisit` ("Portal visit", a custom activity: each visit of a case's
   journey on the Dynamics timeline, dci/dataverse/visits.py) and its columns, created through the metadata
   Web API (`EntityDefinitions`), and the role's create, read, write, delete and append on it.
5. The webhook: a service endpoint (contract Webhook, auth Webhook Key: Dataverse sends the key as
   `?code=`, which the Functions host checks) at `<REPORT_BASE_URL>/dataverse/incidents`, and a
   step on Create of incident (asynchronous, post-operation) pointing at it. Dataverse never
   returns a webhook key (`authvalue` is not readable), so the endpoint's description carries a
   fingerprint of the key (the first 12 hex digits of its SHA-256) to tell whether it changed.

Each part is created once: a second run finds it and changes nothing.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field

from dci.dataverse.visits import SUBJECT_LENGTH, TABLE

ROLE_NAME = "Portal Insights for Dataverse"
ENDPOINT_NAME = "Portal Insights for Dataverse: new cases"
STEP_NAME = "Portal Insights for Dataverse: Create of incident"
WEBHOOK_ROUTE = "/dataverse/incidents"
USER_NAMES = ("Portal Insights", "for Dataverse")  # first and last name of the application user

# PrivilegeDepth, in order of reach: a role holding a deeper depth than asked is fine.
DEPTHS = ("Basic", "Local", "Deep", "Global")

# What the app does in Dataverse, and the privilege each needs (name, depth):
PRIVILEGES: tuple[tuple[str, str], ...] = (
    ("prvReadIncident", "Global"),          # poll new cases, find one by its ticket number
    ("prvAppendToIncident", "Global"),      # attach the timeline note to the case
    ("prvReadContact", "Global"),           # the customer's full name on the agent's report
    ("prvReadKnowledgeArticle", "Global"),  # article titles on the reports; their keywords and changes
    ("prvReadKnowledgeArticleIncident", "Global"),  # which articles agents attached to cases (suggestions)
    ("prvCreateNote", "Basic"),             # the timeline note: written, updated, deleted on erasure
    ("prvReadNote", "Basic"),               # and retention. Basic: only the notes the app owns
    ("prvWriteNote", "Basic"),
    ("prvAppendNote", "Basic"),
    ("prvDeleteNote", "Basic"),
)

# The activity table of the portal visits (dci/dataverse/visits.py), and the role's privileges on it: Basic,
# the visits the app itself writes (it owns them).
VISIT_TABLE = TABLE
VISIT_COLUMNS = {"dci_searches": "Integer", "dci_articles": "Integer", "dci_zeroresults": "Integer",
                 "dci_reporturl": "Url", "dci_signedin": "Boolean"}
TABLE_PRIVILEGES: tuple[tuple[str, str], ...] = tuple(  # (these come with the table)
    (f"prv{verb}{VISIT_TABLE}", "Basic") for verb in ("Create", "Read", "Write", "Delete", "Append"))
VISIT_PRIVILEGES = TABLE_PRIVILEGES + (
    ("prvAppendToContact", "Global"),  # the contact as each visit's Customer party (its own timeline)
)

# `--allow-keyword-edits`: a suggestion applied with the app's identity adds its term to an article's keywords.
KEYWORD_EDITS: tuple[tuple[str, str], ...] = (("prvWriteKnowledgeArticle", "Global"),)

# Service endpoint and step option values (Web API reference: serviceendpoint, sdkmessageprocessingstep).
CONTRACT_WEBHOOK, AUTH_WEBHOOK_KEY, CONNECTION_NORMAL, FORMAT_JSON, CLAIM_NONE = 8, 4, 1, 2, 1
MODE_ASYNCHRONOUS, STAGE_POST_OPERATION, DEPLOYMENT_SERVER = 1, 40, 0


def _label(text: str) -> dict[str, object]:
    return {"@odata.type": "Microsoft.Dynamics.CRM.Label", "LocalizedLabels": [
        {"@odata.type": "Microsoft.Dynamics.CRM.LocalizedLabel", "Label": text, "LanguageCode": 1033}]}


_REQUIRED_NONE = {"Value": "None", "CanBeChanged": True,
                  "ManagedPropertyLogicalName": "canmodifyrequirementlevelsettings"}


def visit_table() -> dict[str, object]:
    """The EntityMetadata that creates the visits' activity table: a custom activity (its primary
    column is Subject, as every activity's), user-owned, offline (activities must be), no mail
    merge, ActivityTypeMask 0 (written by the app only: not in the "new activity" menus)."""
    return {
        "@odata.type": "Microsoft.Dynamics.CRM.EntityMetadata", "SchemaName": VISIT_TABLE,
        "DisplayName": _label("Portal visit"), "DisplayCollectionName": _label("Portal visits"),
        "Description": _label("A visit to the customer portal before a case: what was searched and read "
                              "(Portal Insights for Dataverse)."),
        "OwnershipType": "UserOwned", "IsActivity": True, "HasActivities": False, "HasNotes": False,
        "IsAvailableOffline": True, "ActivityTypeMask": 0,
        "IsMailMergeEnabled": {"Value": False, "CanBeChanged": True,
                               "ManagedPropertyLogicalName": "ismailmergeenabled"},
        "Attributes": [{"@odata.type": "Microsoft.Dynamics.CRM.StringAttributeMetadata", "SchemaName": "Subject",
                        "AttributeType": "String", "AttributeTypeName": {"Value": "StringType"}, "IsPrimaryName": True,
                        "MaxLength": SUBJECT_LENGTH, "FormatName": {"Value": "Text"}, "RequiredLevel": _REQUIRED_NONE,
                        "DisplayName": _label("Subject")}],
    }


_COLUMN_LABELS = {"dci_searches": "Searches", "dci_articles": "Articles read",
                  "dci_zeroresults": "Searches without results", "dci_reporturl": "Portal journey report",
                  "dci_signedin": "Signed in"}


def visit_column(name: str) -> dict[str, object]:
    """The AttributeMetadata of one of VISIT_COLUMNS."""
    common = {"SchemaName": name, "DisplayName": _label(_COLUMN_LABELS[name]), "RequiredLevel": _REQUIRED_NONE}
    kind = VISIT_COLUMNS[name]
    if kind == "Integer":
        return {"@odata.type": "Microsoft.Dynamics.CRM.IntegerAttributeMetadata", "AttributeType": "Integer",
                "AttributeTypeName": {"Value": "IntegerType"}, "Format": "None", "MinValue": 0,
                "MaxValue": 2_147_483_647, **common}
    if kind == "Url":
        return {"@odata.type": "Microsoft.Dynamics.CRM.StringAttributeMetadata", "AttributeType": "String",
                "AttributeTypeName": {"Value": "StringType"}, "FormatName": {"Value": "Url"}, "MaxLength": 2000,
                **common}
    return {"@odata.type": "Microsoft.Dynamics.CRM.BooleanAttributeMetadata", "AttributeType": "Boolean",
            "AttributeTypeName": {"Value": "BooleanType"}, "DefaultValue": False, **common,
            "OptionSet": {"@odata.type": "Microsoft.Dynamics.CRM.BooleanOptionSetMetadata", "OptionSetType": "Boolean",
                          "TrueOption": {"Value": 1, "Label": _label("Yes")},
                          "FalseOption": {"Value": 0, "Label": _label("No")}}}


def fingerprint(key: str) -> str:
    """A short, one-way mark of a webhook key, kept in the endpoint's description."""
    return hashlib.sha256(key.encode()).hexdigest()[:12]


def endpoint_description(key: str) -> str:
    return f"New support cases for their portal timeline (key {fingerprint(key)})"


def key_mark(description: str | None) -> str | None:
    """The key fingerprint an endpoint's description carries, or None."""
    found = re.search(r"\(key ([0-9a-f]{12})\)", description or "")
    return found.group(1) if found else None


def missing_privilege(message: str) -> str | None:
    """The privilege a Dataverse 403 names (`… is missing prvCreateRole privilege …`), or None."""
    found = re.search(r"missing (prv\w+) privilege", message)
    return found.group(1) if found else None


def deep_enough(held: str | None, wanted: str) -> bool:
    """Whether a privilege held at depth `held` covers `wanted`."""
    return held in DEPTHS and DEPTHS.index(held) >= DEPTHS.index(wanted)


@dataclass(frozen=True)
class Wanted:
    """What the administrator asked for: from the flags, the environment and the azd outputs."""

    client_id: str
    webhook_url: str | None  # None: no webhook (--no-webhook)
    webhook_key: str | None  # None: keep the endpoint's key as it is (cannot be checked)
    role: str = ROLE_NAME
    own_role: bool = True  # False: --role names an existing role, used as it is
    visits: bool = True  # the portal visits' activity table (False: TIMELINE_ACTIVITIES=off)
    keyword_edits: bool = False  # --allow-keyword-edits: the role may change articles (suggestions apply)

    def privileges(self) -> tuple[tuple[str, str], ...]:
        """Every privilege the role is to hold."""
        return PRIVILEGES + (VISIT_PRIVILEGES if self.visits else ()) + (KEYWORD_EDITS if self.keyword_edits else ())


@dataclass
class Found:
    """What the environment has now, as `dci.dataverse.setup.admin.Admin.discover` read it."""

    business_unit: str
    user: str | None = None  # systemuserid of the application user
    user_disabled: bool = False
    role: str | None = None  # roleid
    held: dict[str, str] = field(default_factory=dict)  # privilege name -> depth, of the role
    absent: set[str] = field(default_factory=set)  # PRIVILEGES the environment lacks (their table is not installed)
    assigned: bool = False  # the role is among the user's roles
    visit_columns: set[str] | None = None  # the visits table's columns (logical names); None: no table
    endpoint: dict[str, object] | None = None  # the service endpoint row
    step: dict[str, object] | None = None  # the step row on that endpoint


@dataclass(frozen=True)
class Change:
    """One thing to do: `kind` tells `Admin.apply` what, `text` tells the administrator; a `manual`
    change is one the command cannot make (it says what the administrator must do)."""

    kind: str
    text: str
    privileges: tuple[tuple[str, str], ...] = ()


def changes(found: Found, wanted: Wanted) -> list[Change]:
    """The changes, in the order they must be made, that bring `found` to `wanted`."""
    todo: list[Change] = []
    if found.user is None:
        todo.append(Change("user", f"create the application user for the managed identity {wanted.client_id}"))
    elif found.user_disabled:
        todo.append(Change("manual", "the application user is disabled: activate it in the Power Platform admin "
                                     "centre (Environments → Settings → Application users)"))
    will_exist: set[str] = set()  # privileges that come with a table this plan creates
    if wanted.visits:
        if found.visit_columns is None:
            todo.append(Change("table", f"create the activity table {VISIT_TABLE} (Portal visit) and its columns: "
                                        + ", ".join(VISIT_COLUMNS)))
            will_exist = {name for name, _ in TABLE_PRIVILEGES}
        elif missing := [name for name in VISIT_COLUMNS if name not in found.visit_columns]:
            todo.append(Change("columns", f"add to {VISIT_TABLE} its columns {', '.join(missing)}"))
    if found.role is None:
        if not wanted.own_role:  # checked before planning; kept here so the plan never invents a role
            raise ValueError(f"the role {wanted.role!r} does not exist in the root business unit")
        todo.append(Change("role", f"create the security role {wanted.role!r}"))
    if wanted.own_role:
        lacking = tuple((name, depth) for name, depth in wanted.privileges()
                        if (name not in found.absent or name in will_exist)
                        and not deep_enough(found.held.get(name), depth))
        if lacking:
            todo.append(Change("privileges", f"give the role {len(lacking)} privileges: "
                               + ", ".join(f"{name} ({depth})" for name, depth in lacking), lacking))
    if not found.assigned:
        todo.append(Change("assign", f"assign the role {wanted.role!r} to the application user"))
    if wanted.webhook_url is not None:
        todo.extend(_webhook_changes(found, wanted))
    return todo


def _webhook_changes(found: Found, wanted: Wanted) -> list[Change]:
    endpoint = found.endpoint
    if endpoint is None:
        if wanted.webhook_key is None:
            return [Change("manual", "cannot register the webhook: no function key (give --webhook-key, "
                                     "or run from the azd project so it can be read from the app)")]
        return [Change("endpoint", f"register the webhook {ENDPOINT_NAME!r} at {wanted.webhook_url}"),
                Change("step", "register its step on Create of incident (asynchronous, post-operation)")]
    todo = []
    webhook_key = (endpoint.get("authtype"), endpoint.get("contract")) == (AUTH_WEBHOOK_KEY, CONTRACT_WEBHOOK)
    different = [what for what, ok in (
        ("address", endpoint.get("url") == wanted.webhook_url),
        ("authentication", webhook_key),
        ("key", wanted.webhook_key is None or key_mark(str(endpoint.get("description") or ""))
         == fingerprint(wanted.webhook_key))) if not ok]
    if different:
        if wanted.webhook_key is None:
            todo.append(Change("manual", f"cannot update the webhook's {' and '.join(different)}: no function key "
                                         "(give --webhook-key)"))
        else:
            todo.append(Change("endpoint-update", f"update the webhook's {' and '.join(different)} "
                                                  f"({wanted.webhook_url})"))
    step = found.step
    if step is None:
        todo.append(Change("step", "register its step on Create of incident (asynchronous, post-operation)"))
    elif step.get("statecode") != 0:
        todo.append(Change("step-enable", "enable the webhook's step on Create of incident (it is disabled)"))
    return todo
