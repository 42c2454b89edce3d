"""`python -m dci dataverse setup`: the application user, its role and the webhook, in one idempotent
command run with the administrator's own sign-in.

Each value comes from its flag, else the environment, else the azd environment's outputs
(`.azure/<environment>/.env`, written by `azd up`): the Dataverse URL (`DATAVERSE_URL`), the managed
identity's client id (`MANAGED_IDENTITY_CLIENT_ID`), the app's address (`REPORT_BASE_URL`, else
`API_URL`), and the webhook's function key, read from the app through Azure Resource Manager
(`AZURE_SUBSCRIPTION_ID`, `AZURE_RESOURCE_GROUP`, `AZURE_FUNCTION_APP_NAME`) unless `--webhook-key`
gives it. Tokens: `DATAVERSE_TOKEN` when set (the local stand-in), else DefaultAzureCredential
(`az login`).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import uuid
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TextIO

from dci.dataverse.client import Dataverse, DataverseError, TokenSource, session
from dci.dataverse.setup.admin import Admin, SetupError
from dci.dataverse.setup.plan import ROLE_NAME, TABLE_PRIVILEGES, WEBHOOK_ROUTE, Wanted, changes
from dci.settings import timeline_activities

WEBHOOK_FUNCTION = "dataverse_incident"  # function_app.py's name for the webhook's function
ARM_URL = "https://management.azure.com"
ARM_API_VERSION = "2024-04-01"
ADDRESSES = ("https://", "http://127.0.0.1", "http://localhost")  # https, or the local stand-in and runner


class UsageError(ValueError):
    """A value missing or malformed: the message names the flag or setting."""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The `dataverse setup` flags."""
    parser.add_argument("--dataverse-url", help="the environment, e.g. https://contoso.crm.dynamics.com "
                        "(default: DATAVERSE_URL, from the environment or azd)")
    parser.add_argument("--client-id", help="the app's managed identity's client id (default: azd's "
                        "MANAGED_IDENTITY_CLIENT_ID)")
    parser.add_argument("--report-base-url", help="the app's https://…/api address; the webhook is "
                        f"<it>{WEBHOOK_ROUTE} (default: REPORT_BASE_URL, else azd's API_URL)")
    parser.add_argument("--webhook-key", help="a function key of the app for the webhook (default: read from "
                        "the app with your Azure sign-in)")
    parser.add_argument("--no-webhook", action="store_true", help="no webhook: the poller alone finds new cases")
    parser.add_argument("--role", help="use this existing security role instead of creating the app's own")
    parser.add_argument("--allow-keyword-edits", action="store_true",
                        help="also let the role change knowledge articles (python -m dci suggestions apply)")
    parser.add_argument("--azd-env", help="the azd environment to read (default: azd's default environment)")
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--dry-run", action="store_true", help="print what would change; change nothing")
    mode.add_argument("--check", action="store_true", help="print what is missing; exit 1 when anything is")


def azd_values(directory: Path, name: str | None) -> dict[str, str]:
    """The azd environment's values (`KEY="value"` lines of `.azure/<name>/.env`); {} without one."""
    root = directory / ".azure"
    if name is None:
        try:
            name = json.loads((root / "config.json").read_text()).get("defaultEnvironment")
        except (OSError, ValueError):
            return {}
    values: dict[str, str] = {}
    try:
        lines = (root / str(name) / ".env").read_text().splitlines()
    except OSError:
        return {}
    for line in lines:
        key, sep, value = line.strip().partition("=")
        if sep and key and not key.startswith("#"):
            value = value.strip()
            if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
                value = value[1:-1]
            values[key.strip()] = value
    return values


class FunctionKeys:
    """A function's default key, read from the app through Azure Resource Manager (`listkeys`)."""

    def __init__(self, tokens: TokenSource, arm_url: str = ARM_URL) -> None:
        self._tokens, self._arm = tokens, arm_url.rstrip("/")

    def default_key(self, subscription: str, group: str, app: str, function: str) -> str:
        url = (f"{self._arm}/subscriptions/{subscription}/resourceGroups/{group}/providers/Microsoft.Web/sites/"
               f"{app}/functions/{function}/listkeys?api-version={ARM_API_VERSION}")
        response = session(retries=3).post(url, headers={"Authorization": f"Bearer {self._tokens.token()}"},
                                           timeout=(5, 60))
        if response.status_code >= 400:
            raise SetupError(f"cannot read the webhook's function key from {app}: HTTP {response.status_code} "
                             "(your Azure sign-in needs Contributor or Website Contributor on the app; "
                             "or give --webhook-key)")
        document = response.json()
        key = document.get("default") or (document.get("properties") or {}).get("default")
        if not key:
            raise SetupError(f"the app {app} has no default key for {function}: give --webhook-key")
        return str(key)


def wanted_from(args: argparse.Namespace, env: Mapping[str, str], azd: Mapping[str, str],
                keys: Callable[[], FunctionKeys]) -> tuple[str, Wanted]:
    """The Dataverse URL and the set-up asked for; UsageError names what is missing or malformed."""
    url = args.dataverse_url or env.get("DATAVERSE_URL") or azd.get("DATAVERSE_URL")
    if not url or not url.startswith(ADDRESSES):
        raise UsageError("no Dataverse environment: give --dataverse-url https://<org>.crm.dynamics.com "
                         "(or set DATAVERSE_URL)")
    client = args.client_id or azd.get("MANAGED_IDENTITY_CLIENT_ID")
    try:
        client = str(uuid.UUID(client or ""))
    except ValueError:
        raise UsageError("no managed identity client id: give --client-id (the deployment's "
                         "MANAGED_IDENTITY_CLIENT_ID output), or run from the azd project") from None
    webhook_url = key = None
    if not args.no_webhook:
        base = args.report_base_url or env.get("REPORT_BASE_URL") or azd.get("REPORT_BASE_URL") or azd.get("API_URL")
        if not base or not base.startswith(ADDRESSES):
            raise UsageError("no address for the webhook: give --report-base-url https://<app>.azurewebsites.net/api "
                             "(or --no-webhook)")
        webhook_url = base.rstrip("/") + WEBHOOK_ROUTE
        key = args.webhook_key
        where = [azd.get(name) for name in ("AZURE_SUBSCRIPTION_ID", "AZURE_RESOURCE_GROUP", "AZURE_FUNCTION_APP_NAME")]
        if key is None and all(where):  # reading a key changes nothing: --dry-run and --check read it too
            key = keys().default_key(*where, WEBHOOK_FUNCTION)  # type: ignore[arg-type]
    try:
        activities = timeline_activities(env.get("TIMELINE_ACTIVITIES") or azd.get("TIMELINE_ACTIVITIES") or "")
    except ValueError as error:
        raise UsageError(str(error)) from None
    return url, Wanted(client_id=client, webhook_url=webhook_url, webhook_key=key, role=args.role or ROLE_NAME,
                       own_role=args.role is None, visits=activities != "off",
                       keyword_edits=getattr(args, "allow_keyword_edits", False))


def run(args: argparse.Namespace, env: Mapping[str, str], out: TextIO | None = None,
        keys: Callable[[], FunctionKeys] | None = None) -> int:
    """The command: 0 when all is in place (or, with --dry-run, planned), 1 when something is missing or
    failed, 2 for a usage error."""
    out = out or sys.stdout
    azd = azd_values(Path.cwd(), args.azd_env)
    try:
        url, wanted = wanted_from(args, env, azd, keys or (lambda: FunctionKeys(TokenSource(ARM_URL))))
        token = env.get("DATAVERSE_TOKEN") or None
        admin = Admin(Dataverse(url, TokenSource(url, fixed=token), session(retries=5)), url)
        found = admin.discover(wanted)
        if not wanted.own_role and found.role is None:
            raise UsageError(f"no security role named {wanted.role!r} in the root business unit (--role)")
        todo = changes(found, wanted)
        print(f"Dataverse {url}: application user for {wanted.client_id}, role {wanted.role!r}"
              + (f", webhook {wanted.webhook_url}" if wanted.webhook_url else ", no webhook"), file=out)
        coming = {name for name, _ in TABLE_PRIVILEGES} if found.visit_columns is None else set()  # (with the table)
        for name in sorted(found.absent - coming):
            print(f"  note: this environment has no {name} (its table is not installed); left out", file=out)
        if not todo:
            print("all in place: nothing to change", file=out)
            return 0
        if args.check or args.dry_run:
            print("missing:" if args.check else "would:", file=out)
            for change in todo:
                print(f"  - {change.text}", file=out)
            return 1 if args.check else 0
        left = []
        for change in todo:
            if change.kind == "manual":
                left.append(change)
                continue
            admin.apply(change, found, wanted)
            print(f"  done: {change.text}", file=out)
        for change in left:
            print(f"  not done: {change.text}", file=out)
        print("all in place" if not left else "some steps remain (above)", file=out)
        return 1 if left else 0
    except UsageError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except (SetupError, DataverseError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1


def main(args: argparse.Namespace) -> int:
    """Entry from `python -m dci dataverse setup`."""
    return run(args, os.environ)
