"""What `python -m dci dataverse setup` puts in a Dataverse environment, and the changes that take
an environment from what it has to that (pure: no I/O here).

1. An application user for the app's managed identity (`systemusers.applicationid` = its client
   id), in the root business unit.
2. A security role holding exactly `PRIVILEGES` (each at its depth or deeper), in the root business
   unit — or, with `--role NAME`, a role the administrator made, used as it is.
3. That role assigned to the application user.
4. The webhook: a service endpoint (contract Webhook, auth Webhook Key: Dataverse sends the key as
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
    ("prvReadKnowledgeArticle", "Global"),  # article titles on the reports
    ("prvCreateNote", "Basic"),             # the timeline note: written, updated, deleted on erasure
    ("prvReadNote", "Basic"),               # and retention. Basic: only the notes the app owns
    ("prvWriteNote", "Basic"),
    ("prvAppendNote", "Basic"),
    ("prvDeleteNote", "Basic"),
)

# Service endpoint and step option values (Web API reference: serviceendpoint, sdkmessageprocessingstep).
CONTRACT_WEBHOOK, AUTH_WEBHOOK_KEY, CONNECTION_NORMAL, FORMAT_JSON, CLAIM_NONE = 8, 4, 1, 2, 1
MODE_ASYNCHRONOUS, STAGE_POST_OPERATION, DEPLOYMENT_SERVER = 1, 40, 0


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


@dataclass
class Found:
    """What the environment has now, as `dci.tenant.admin.Admin.discover` read it."""

    business_unit: str
    user: str | None = None  # systemuserid of the application user
    user_disabled: bool = False
    role: str | None = None  # roleid
    held: dict[str, str] = field(default_factory=dict)  # privilege name -> depth, of the role
    absent: set[str] = field(default_factory=set)  # PRIVILEGES the environment lacks (their table is not installed)
    assigned: bool = False  # the role is among the user's roles
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
    if found.role is None:
        if not wanted.own_role:  # checked before planning; kept here so the plan never invents a role
            raise ValueError(f"the role {wanted.role!r} does not exist in the root business unit")
        todo.append(Change("role", f"create the security role {wanted.role!r}"))
    if wanted.own_role:
        lacking = tuple((name, depth) for name, depth in PRIVILEGES
                        if name not in found.absent and not deep_enough(found.held.get(name), depth))
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
