"""`python -m dci dataverse setup`: the plan (pure), and the command against the local Dataverse's
administrative tables — check, dry run, apply, a second run that changes nothing, key rotation, an
existing role, an administrator without the privilege, throttling, a refused token, azd's outputs
and the function key read through Azure Resource Manager."""

from __future__ import annotations

import json
import threading
import time
import uuid
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from dci.__main__ import main
from dci.cases import parse_webhook
from dci.dataverse.client import TokenSource
from dci.dataverse.setup import command
from dci.dataverse.setup.plan import (
    ENDPOINT_NAME,
    PRIVILEGES,
    ROLE_NAME,
    TABLE_PRIVILEGES,
    VISIT_COLUMNS,
    VISIT_PRIVILEGES,
    Found,
    Wanted,
    changes,
    endpoint_description,
    fingerprint,
)
from dci.runner.dataverse import LocalDataverse
from dci.runner.dataverse_admin import ROOT_UNIT

CLIENT = "5f0c2a9e-1111-4222-8333-944455556666"
APP_API = "https://func-abc.azurewebsites.net/api"
WEBHOOK = APP_API + "/dataverse/incidents"


# --- the plan ------------------------------------------------------------------------------------

def _complete(**overrides: Any) -> Found:
    found = Found(business_unit=ROOT_UNIT, user="u", role="r", held=dict(PRIVILEGES + VISIT_PRIVILEGES), assigned=True,
                  visit_columns={"subject", *VISIT_COLUMNS},
                  endpoint={"serviceendpointid": "e", "url": WEBHOOK, "contract": 8, "authtype": 4,
                            "description": endpoint_description("key")},
                  step={"sdkmessageprocessingstepid": "s", "statecode": 0})
    for name, value in overrides.items():
        setattr(found, name, value)
    return found


WANTED = Wanted(client_id=CLIENT, webhook_url=WEBHOOK, webhook_key="key")


@pytest.mark.parametrize(("overrides", "wanted", "kinds"), [
    ({}, WANTED, []),
    ({"user": None, "role": None, "held": {}, "assigned": False, "endpoint": None, "step": None, "visit_columns": None,
      "absent": {name for name, _ in TABLE_PRIVILEGES}}, WANTED,
     ["user", "table", "role", "privileges", "assign", "endpoint", "step"]),
    ({"held": {**dict(PRIVILEGES + VISIT_PRIVILEGES), "prvCreateNote": "Global"}}, WANTED, []),  # deeper is enough
    ({"held": {**dict(PRIVILEGES + VISIT_PRIVILEGES), "prvReadIncident": "Local"}}, WANTED, ["privileges"]),
    ({"held": {k: v for k, v in PRIVILEGES + VISIT_PRIVILEGES if k != "prvReadKnowledgeArticle"},
      "absent": {"prvReadKnowledgeArticle"}}, WANTED, []),  # no knowledge articles: not asked for their privilege
    ({"visit_columns": {"subject", "dci_searches"}}, WANTED, ["columns"]),  # a column deleted by hand comes back
    ({"visit_columns": None, "absent": {name for name, _ in TABLE_PRIVILEGES},
      "held": dict(PRIVILEGES)}, WANTED, ["table", "privileges"]),  # the table's privileges come with it
    ({"visit_columns": None, "held": dict(PRIVILEGES)}, Wanted(CLIENT, WEBHOOK, "key", visits=False), []),
    ({"held": {}}, Wanted(CLIENT, WEBHOOK, "key", role="Support app", own_role=False), []),  # --role: used as it is
    ({}, Wanted(CLIENT, WEBHOOK, "another key"), ["endpoint-update"]),
    ({}, Wanted(CLIENT, WEBHOOK, "key", keyword_edits=True), ["privileges"]),  # --allow-keyword-edits
    ({}, Wanted(CLIENT, APP_API.replace("abc", "xyz") + "/dataverse/incidents", "key"), ["endpoint-update"]),
    ({}, Wanted(CLIENT, WEBHOOK, None), []),  # no key given: the key cannot be checked, the rest can
    ({"endpoint": None, "step": None}, Wanted(CLIENT, WEBHOOK, None), ["manual"]),
    ({"step": {"sdkmessageprocessingstepid": "s", "statecode": 1}}, WANTED, ["step-enable"]),
    ({"user_disabled": True}, WANTED, ["manual"]),
    ({"endpoint": None, "step": None}, Wanted(CLIENT, None, None), []),  # --no-webhook
])
def test_tenant_plan_changes_only_what_is_missing(overrides: dict[str, Any], wanted: Wanted, kinds: list[str]) -> None:
    assert [change.kind for change in changes(_complete(**overrides), wanted)] == kinds


def test_tenant_plan_names_only_the_privileges_missing() -> None:
    found = _complete(held={**dict(PRIVILEGES + VISIT_PRIVILEGES), "prvReadIncident": "Basic", "prvDeleteNote": None})
    (change,) = changes(found, WANTED)
    assert change.privileges == (("prvReadIncident", "Global"), ("prvDeleteNote", "Basic"))


def test_tenant_fingerprint_is_short_one_way_and_read_back_from_the_description() -> None:
    assert fingerprint("k1") != fingerprint("k2") and len(fingerprint("k1")) == 12
    assert "k1" not in endpoint_description("k1") and fingerprint("k1") in endpoint_description("k1")


# --- the command against the local Dataverse ------------------------------------------------------

def _run(fake: LocalDataverse, capsys: pytest.CaptureFixture[str], *extra: str, key: str | None = "key-1",
         client: str = CLIENT) -> tuple[int, str, str]:
    args = ["dataverse", "setup", "--dataverse-url", fake.url, "--client-id", client, "--report-base-url", APP_API,
            *(["--webhook-key", key] if key else []), *extra]
    code = main(args)
    out, err = capsys.readouterr()
    return code, out, err


def _writes(fake: LocalDataverse) -> list[tuple[str, str]]:
    return [(method, path) for method, path in fake.requests if method != "GET"]


@pytest.fixture
def admin_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("DATAVERSE_TOKEN", "test-token")
    for name in ("DATAVERSE_URL", "REPORT_BASE_URL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)  # no azd environment here


@pytest.mark.usefixtures("admin_env")
def test_tenant_setup_checks_plans_applies_and_then_changes_nothing(fake: LocalDataverse,
                                                                     capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = _run(fake, capsys, "--check")
    assert code == 1 and out.count("\n  - ") == 7 and "create the activity table dci_portalvisit" in out
    assert "note:" not in out  # the table's privileges are not "missing from the environment": they come with it

    code, out, _ = _run(fake, capsys, "--dry-run")
    assert code == 0 and "would:" in out and _writes(fake) == []

    code, out, err = _run(fake, capsys)
    assert (code, err) == (0, "") and out.count("done:") == 7 and out.rstrip().endswith("all in place")
    admin = fake.admin
    (user,) = admin.rows["systemusers"].values()
    assert user["applicationid"] == CLIENT and user["_businessunitid_value"] == ROOT_UNIT
    (role,) = admin.rows["roles"].values()
    assert role["name"] == ROLE_NAME and role["_businessunitid_value"] == ROOT_UNIT
    names = {r["privilegeid"]: r["name"] for r in admin.rows["privileges"].values()}
    held = {names[pid]: depth for pid, depth in admin.role_privileges[role["roleid"]].items()}
    assert held == {**dict(PRIVILEGES + VISIT_PRIVILEGES), "prvReadSharePointDocument": "Global"}  # and the baseline
    table = admin.tables["dci_portalvisit"]  # the custom activity, as the metadata Web API was asked for it
    assert (table["IsActivity"], table["OwnershipType"], table["ActivityTypeMask"], table["IsAvailableOffline"]) == (
        True, "UserOwned", 0, True)
    assert set(VISIT_COLUMNS) <= table["columns"] and table["Attributes"][0]["SchemaName"] == "Subject"
    assert admin.user_roles[user["systemuserid"]] == {role["roleid"]}
    (endpoint,) = admin.rows["serviceendpoints"].values()
    assert (endpoint["name"], endpoint["url"], endpoint["contract"], endpoint["authtype"]) == (
        ENDPOINT_NAME, WEBHOOK, 8, 4)
    assert admin.endpoint_key(endpoint["serviceendpointid"]) == "key-1" and "key-1" not in json.dumps(endpoint)
    (step,) = admin.rows["sdkmessageprocessingsteps"].values()
    create = next(m for m in admin.rows["sdkmessages"].values() if m["name"] == "Create")
    on_case = next(f for f in admin.rows["sdkmessagefilters"].values()
                   if f["_sdkmessageid_value"] == create["sdkmessageid"] and f["primaryobjecttypecode"] == "incident")
    assert (step["mode"], step["stage"], step["_eventhandler_value"], step["_sdkmessageid_value"],
            step["_sdkmessagefilterid_value"]) == (1, 40, endpoint["serviceendpointid"], create["sdkmessageid"],
                                                   on_case["sdkmessagefilterid"])

    writes = len(_writes(fake))
    code, out, _ = _run(fake, capsys)
    assert code == 0 and "nothing to change" in out and len(_writes(fake)) == writes
    code, out, _ = _run(fake, capsys, "--check")
    assert code == 0 and "all in place" in out
    code, out, _ = _run(fake, capsys, "--check", key=None)  # without the key, the rest is still checked
    assert code == 0


@pytest.mark.usefixtures("admin_env")
def test_tenant_setup_a_new_key_or_address_updates_the_webhook_alone(fake: LocalDataverse,
                                                                     capsys: pytest.CaptureFixture[str]) -> None:
    assert _run(fake, capsys)[0] == 0
    writes = len(_writes(fake))
    code, out, _ = _run(fake, capsys, "--check", key="key-2")
    assert code == 1 and "update the webhook's key" in out
    code, out, _ = _run(fake, capsys, key="key-2")
    assert code == 0 and out.count("done:") == 1
    assert [method for method, _ in _writes(fake)[writes:]] == ["PATCH"]
    (endpoint,) = fake.admin.rows["serviceendpoints"].values()
    assert fake.admin.endpoint_key(endpoint["serviceendpointid"]) == "key-2"
    assert len(fake.admin.rows["sdkmessageprocessingsteps"]) == 1


@pytest.mark.usefixtures("admin_env")
def test_tenant_setup_uses_an_existing_role_as_it_is(fake: LocalDataverse, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = _run(fake, capsys, "--role", "Support integrations")
    assert code == 2 and "no security role named 'Support integrations'" in err and _writes(fake) == []
    fake.admin.rows["roles"]["0d7c4e55-3a1b-4c2d-8e9f-a0b1c2d3e4f5"] = {
        "roleid": "0d7c4e55-3a1b-4c2d-8e9f-a0b1c2d3e4f5", "name": "Support integrations",
        "_businessunitid_value": ROOT_UNIT}
    code, out, _ = _run(fake, capsys, "--role", "Support integrations", "--no-webhook")
    assert code == 0 and "privileges" not in out and "Support integrations" in out
    assert "0d7c4e55-3a1b-4c2d-8e9f-a0b1c2d3e4f5" not in fake.admin.role_privileges  # its privileges untouched
    assert fake.admin.rows["serviceendpoints"] == {}


@pytest.mark.usefixtures("admin_env")
def test_tenant_setup_a_table_it_may_not_create_stops_it_in_one_line_and_a_second_run_makes_it(
        fake: LocalDataverse, capsys: pytest.CaptureFixture[str]) -> None:
    fake.admin.deny("prvCreateEntity")  # (Customizer rights missing: the table cannot be made)
    code, _, err = _run(fake, capsys)
    assert code == 1 and err.count("\n") == 1 and "prvCreateEntity" in err and "dci_portalvisit" in err
    assert "dci_portalvisit" not in fake.admin.tables
    fake.admin.denied.clear()
    code, out, _ = _run(fake, capsys, "--check")
    assert code == 1 and "create the activity table dci_portalvisit" in out
    code, out, _ = _run(fake, capsys)
    assert code == 0 and "dci_portalvisit" in fake.admin.tables


@pytest.mark.usefixtures("admin_env")
def test_tenant_setup_without_timeline_activities_makes_no_table(fake: LocalDataverse, monkeypatch: pytest.MonkeyPatch,
                                                                 capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("TIMELINE_ACTIVITIES", "of")  # a typo the app would refuse: the command refuses it too
    code, _, err = _run(fake, capsys)
    assert code == 2 and "TIMELINE_ACTIVITIES is 'of': use journeys or off" in err and fake.admin.tables == {}
    monkeypatch.setenv("TIMELINE_ACTIVITIES", " Off ")
    code, out, _ = _run(fake, capsys)
    assert code == 0 and "dci_portalvisit" not in out and fake.admin.tables == {}


@pytest.mark.usefixtures("admin_env")
def test_tenant_setup_names_the_privilege_the_administrator_lacks_in_one_line(
        fake: LocalDataverse, capsys: pytest.CaptureFixture[str]) -> None:
    fake.admin.deny("prvCreateRole")
    code, out, err = _run(fake, capsys)
    assert code == 1 and err.count("\n") == 1 and "prvCreateRole" in err and "System Administrator" in err
    assert "Traceback" not in err and "Principal user" not in err
    assert "done: create the application user" in out  # what was done before stays done
    fake.admin.denied.clear()
    code, out, _ = _run(fake, capsys)
    assert code == 0 and "create the application user" not in out and len(fake.admin.rows["systemusers"]) == 1


@pytest.mark.usefixtures("admin_env")
def test_tenant_setup_waits_out_throttling(fake: LocalDataverse, capsys: pytest.CaptureFixture[str]) -> None:
    fake.fail(429, times=2, retry_after=1, method="POST")
    code, out, _ = _run(fake, capsys)
    assert code == 0 and out.count("done:") == 7
    assert len(fake.admin.rows["systemusers"]) == 1  # retried, not created twice


@pytest.mark.usefixtures("admin_env")
def test_tenant_setup_a_refused_token_is_one_line(fake: LocalDataverse, capsys: pytest.CaptureFixture[str],
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DATAVERSE_TOKEN", "not-the-token")
    code, _, err = _run(fake, capsys)
    assert code == 1 and err.count("\n") == 1 and "refused the sign-in" in err and "not-the-token" not in err


@pytest.mark.usefixtures("admin_env")
@pytest.mark.parametrize(("flags", "named"), [
    (["--client-id", "not-a-guid"], "--client-id"),
    (["--report-base-url", "ftp://x"], "--report-base-url"),
    (["--dataverse-url", "contoso.crm.dynamics.com"], "--dataverse-url"),
])
def test_tenant_setup_bad_values_name_their_flag(fake: LocalDataverse, capsys: pytest.CaptureFixture[str],
                                                 flags: list[str], named: str) -> None:
    args = {"--dataverse-url": fake.url, "--client-id": CLIENT, "--report-base-url": APP_API}
    args.update(dict(zip(flags[::2], flags[1::2], strict=True)))
    code = main(["dataverse", "setup", *[part for pair in args.items() for part in pair], "--webhook-key", "k"])
    _, err = capsys.readouterr()
    assert code == 2 and named in err and _writes(fake) == []


# --- azd's outputs and the function key ----------------------------------------------------------

class _Arm(BaseHTTPRequestHandler):
    """Azure Resource Manager's `listkeys` of one function, as documented (`{"default": key}`)."""

    status, seen = 200, []

    def log_message(self, *args: Any) -> None: ...

    def do_POST(self) -> None:  # noqa: N802 - http.server's name
        type(self).seen.append((self.path, self.headers.get("Authorization")))
        body = json.dumps({"default": "key-from-app"} if self.status == 200
                          else {"error": {"code": "AuthorizationFailed"}})
        self.send_response(self.status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body.encode())


@pytest.fixture
def arm() -> Any:
    _Arm.status, _Arm.seen = 200, []
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Arm)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def _azd_project(root: Path, dataverse: str) -> None:
    (root / ".azure" / "prod").mkdir(parents=True)
    (root / ".azure" / "config.json").write_text(json.dumps({"version": 1, "defaultEnvironment": "prod"}))
    (root / ".azure" / "prod" / ".env").write_text("\n".join([
        'AZURE_ENV_NAME="prod"', 'AZURE_SUBSCRIPTION_ID="00000000-1111-2222-3333-444444444444"',
        'AZURE_RESOURCE_GROUP="rg-prod"', 'AZURE_FUNCTION_APP_NAME="func-abc"', f'DATAVERSE_URL="{dataverse}"',
        f'MANAGED_IDENTITY_CLIENT_ID="{CLIENT}"', f'API_URL="{APP_API}"', ""]))


@pytest.mark.usefixtures("admin_env")
def test_tenant_setup_reads_azd_outputs_and_the_function_key_from_the_app(
        fake: LocalDataverse, arm: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _azd_project(tmp_path, fake.url)
    args = command.argparse.Namespace(dataverse_url=None, client_id=None, report_base_url=None, webhook_key=None,
                                      no_webhook=False, role=None, azd_env=None, dry_run=False, check=False)
    keys = command.FunctionKeys(TokenSource(arm, fixed="arm-token"), arm_url=arm)
    assert command.run(args, {"DATAVERSE_TOKEN": "test-token"}, keys=lambda: keys) == 0
    ((path, auth),) = _Arm.seen
    assert path == ("/subscriptions/00000000-1111-2222-3333-444444444444/resourceGroups/rg-prod/providers/"
                    "Microsoft.Web/sites/func-abc/functions/dataverse_incident/listkeys?api-version=2024-04-01")
    assert auth == "Bearer arm-token"
    (endpoint,) = fake.admin.rows["serviceendpoints"].values()
    assert endpoint["url"] == WEBHOOK and fake.admin.endpoint_key(endpoint["serviceendpointid"]) == "key-from-app"
    (user,) = fake.admin.rows["systemusers"].values()
    assert user["applicationid"] == CLIENT

    _Arm.status = 403
    capsys.readouterr()
    assert command.run(args, {"DATAVERSE_TOKEN": "test-token"}, keys=lambda: keys) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Website Contributor" in err and "--webhook-key" in err


def test_tenant_the_webhook_function_is_the_one_function_app_serves_on_the_webhook_route() -> None:
    # tests/test_bindings.py checks, in a fresh process as the worker indexes it, that function_app
    # serves exactly EXPECTED_HTTP (get_functions may be called once per app, so not here again).
    from tests.test_bindings import EXPECTED_HTTP

    assert EXPECTED_HTTP[command.WEBHOOK_FUNCTION][0] == WEBHOOK.removeprefix(APP_API + "/")


class _Receiver(BaseHTTPRequestHandler):
    """The app's webhook route, recording what Dataverse posts to it."""

    calls: list[tuple[str, bytes]] = []

    def log_message(self, *args: Any) -> None: ...

    def do_POST(self) -> None:  # noqa: N802 - http.server's name
        type(self).calls.append((self.path, self.rfile.read(int(self.headers.get("Content-Length") or 0))))
        self.send_response(202)
        self.send_header("Content-Length", "0")
        self.end_headers()


@pytest.mark.usefixtures("admin_env")
def test_tenant_the_registered_webhook_posts_each_new_case_with_its_key(
        fake: LocalDataverse, capsys: pytest.CaptureFixture[str]) -> None:
    _Receiver.calls = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Receiver)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        app = f"http://127.0.0.1:{server.server_address[1]}/api"
        fake.add_incident(datetime.now(timezone.utc), contact=str(uuid.uuid4()))  # before the set-up: no webhook
        assert main(["dataverse", "setup", "--dataverse-url", fake.url, "--client-id", CLIENT,
                     "--report-base-url", app, "--webhook-key", "key-1"]) == 0
        contact = str(uuid.uuid4())
        case = fake.add_incident(datetime.now(timezone.utc), contact=contact, ticket="CAS-77001-T3ST")
        deadline = time.monotonic() + 10
        while not _Receiver.calls and time.monotonic() < deadline:
            time.sleep(0.02)
        ((path, body),) = _Receiver.calls
        assert path == "/api/dataverse/incidents?code=key-1"
        parsed, skipped = parse_webhook(body)
        assert (parsed["case_id"], parsed["contact"], parsed["ticket"]) == (case, contact, "CAS-77001-T3ST")
        assert skipped == ""
    finally:
        server.shutdown()
        server.server_close()
