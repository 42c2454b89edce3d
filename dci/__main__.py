"""`python -m dci serve`: run the function app locally without Azure Functions Core Tools."""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import signal
import sys
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from dci.runner.dataverse import LocalDataverse
    from dci.runner.portal import DemoPortal
    from dci.settings import Settings


DEFAULT_PORT = 7071  # func start's, and the one local.settings.sample.json names


def _free(host: str, port: int) -> bool:
    """Whether `port` on `host` can be listened on (a quick bind, closed at once)."""
    import socket

    with socket.socket() as probe:
        try:
            probe.bind((host, port))
        except OSError:
            return False
    return True


def _load_local_settings(path: Path, port: int) -> int:
    """local.settings.json into the environment (the environment wins); served on another port than
    the sample's, its demo-portal hosts (:7071) follow that port. Returns how many settings it applied."""
    from dci.runner.config import load_local_settings

    preset = set(os.environ)
    applied = load_local_settings(path)
    if port != DEFAULT_PORT:
        for name in ("PORTAL_ISSUERS", "ALLOWED_ORIGINS", "REPORT_BASE_URL"):
            if name not in preset and f":{DEFAULT_PORT}" in os.environ.get(name, ""):
                os.environ[name] = os.environ[name].replace(f":{DEFAULT_PORT}", f":{port}")
    return applied


def main(argv: list[str] | None = None) -> int:
    """Parse the command line and run the chosen command."""
    parser = argparse.ArgumentParser(prog="python -m dci", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    serve = commands.add_parser("serve", help="serve the app on 127.0.0.1 like `func start`")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=DEFAULT_PORT)
    serve.add_argument("--app", default="function_app:app", help="module:attribute of the FunctionApp")
    serve.add_argument("--settings", type=Path, default=Path("local.settings.json"))
    serve.add_argument("--host-json", type=Path, default=Path("host.json"))
    serve.add_argument("--no-portal", action="store_true", help="do not serve the demo portal")
    serve.add_argument("--demo", action="store_true",
                       help="also run a local Dataverse (cases from the demo portal's form, notes at /notes), "
                            "with a 15 s settle time and a 5 s poll, for a demo of the agent's side")
    serve.add_argument("--dataverse-port", type=int, help="the local Dataverse's port with --demo (default: port + 1)")
    lake = commands.add_parser("lake", help="the Delta tables (LAKE_URL): export now, or query them with SQL")
    lake.add_argument("--settings", type=Path, default=Path("local.settings.json"))
    actions = lake.add_subparsers(dest="action", required=True)
    export = actions.add_parser("export", help="export what is pending now, as the LAKE_SCHEDULE timer does")
    export.add_argument("--all", action="store_true", help="first note every stored visitor and case: "
                        "the history from before LAKE_URL was set")
    dead = actions.add_parser("dead", help="list the outbox entries set aside because the lake refused their rows")
    dead.add_argument("--retry", action="store_true", help="put them back for the next export (after a fix)")
    query = actions.add_parser("query", help="run SQL over the tables `interactions` and `cases`")
    query.add_argument("sql")
    query.add_argument("--json", action="store_true", help="one JSON object a row instead of a table")
    demo = commands.add_parser("demo", help="made-up portal history in the local store, for a first look at reports")
    seed = demo.add_subparsers(dest="action", required=True).add_parser(
        "seed", help="a month of portal history (searches, articles, cases on two portals); seeding twice changes "
                     "nothing; --remove takes it out again, and nothing else")
    seed.add_argument("--days", type=int, default=30, help="days up to today (UTC)")
    seed.add_argument("--remove", action="store_true", help="remove the demo history instead")
    seed.add_argument("--settings", type=Path, default=Path("local.settings.json"))
    seed.add_argument("--sessions-per-day", type=int, help="a weekday's sessions (default 300; weekends fewer)")
    seed.add_argument("--again", action="store_true", help="link the days seeded before again too (changes nothing)")
    seed.add_argument("--port", type=int, default=DEFAULT_PORT, help="the port the demo portal is served on: "
                      "its hosts in the history follow it, as `serve --port` makes them")
    dataverse = commands.add_parser("dataverse", help="set a Dataverse environment up for the app")
    setup = dataverse.add_subparsers(dest="action", required=True).add_parser(
        "setup", help="the application user, its least-privilege role and the webhook, created once; "
                      "a second run changes nothing")
    from dci.dataverse.setup import command as tenant

    tenant.add_arguments(setup)
    suggestions = commands.add_parser("suggestions", help="the insights' suggestions: list them, mark one done, "
                                                          "or add its term to the article's keywords")
    suggestions.add_argument("--settings", type=Path, default=Path("local.settings.json"))
    from dci.reports import suggestions_command

    suggestions_command.add_arguments(suggestions)
    args = parser.parse_args(argv)
    return {"lake": _lake, "demo": _demo, "dataverse": tenant.main, "suggestions": _suggestions}.get(
        args.command, _serve)(args)


def _settings(path: Path) -> Settings | None:
    """A command's settings: local.settings.json's when there is one (the environment wins); None,
    said on stderr, when they are bad. Logging as DCI_LOG_LEVEL asks (warnings by default)."""
    from dci.runner.config import ConfigError, load_local_settings
    from dci.settings import SettingsError, load_settings

    logging.basicConfig(level=os.environ.get("DCI_LOG_LEVEL", "WARNING"), format="%(levelname)s %(name)s: %(message)s")
    try:
        if path.exists():
            load_local_settings(path)
        return load_settings()
    except (ConfigError, SettingsError) as error:
        print(f"cannot start: {error}", file=sys.stderr)
        return None


def _suggestions(args: argparse.Namespace) -> int:
    """`suggestions list | done ID | apply ID`: the settings of local.settings.json (the environment wins)."""
    settings = _settings(args.settings)
    if settings is None:
        return 2
    from dci import storage
    from dci.dataverse.client import client_from
    from dci.reports import suggestions_command

    return suggestions_command.run(args, storage.stores(settings), client_from(settings), sys.stdout)


def _demo(args: argparse.Namespace) -> int:
    """`demo seed [--remove]`: the settings of local.settings.json (the environment wins)."""
    from dci.runner.config import ConfigError
    from dci.settings import SettingsError, load_settings

    logging.basicConfig(level=os.environ.get("DCI_LOG_LEVEL", "WARNING"), format="%(levelname)s %(name)s: %(message)s")
    try:
        _load_local_settings(args.settings, args.port)
        settings = load_settings()
    except (ConfigError, SettingsError) as error:
        print(f"cannot start: {error}", file=sys.stderr)
        return 2
    from dci import storage
    from dci.runner import demo

    return demo.command(settings, storage.stores(settings), args.days, args.sessions_per_day, args.remove, args.again)


def _lake(args: argparse.Namespace) -> int:
    """`lake export` / `lake query`: the settings of local.settings.json (the environment wins)."""
    import json

    settings = _settings(args.settings)
    if settings is None:
        return 2
    if settings.lake is None:
        print("LAKE_URL is not set: there is no lake (e.g. LAKE_URL=az://lake/portal)", file=sys.stderr)
        return 2
    from dci import storage
    from dci.lake import export as lake
    from dci.lake.tables import LAKE_ERRORS, plain

    if args.action == "query":
        try:
            table = lake.lake_of(settings.lake).query(args.sql)
        except LAKE_ERRORS as error:  # a bad query, a table not exported yet, an unreachable lake
            print(f"error: {error}", file=sys.stderr)
            return 1
        if args.json:
            for row in plain(table):
                print(json.dumps(row, ensure_ascii=False, default=str))
        else:
            print(table)
        return 0
    stores = storage.stores(settings)
    if args.action == "dead":
        return _dead(stores, args.retry)
    try:
        if args.all:
            print(f"noted {lake.backfill(stores)} visitors and cases")
        while True:
            done = lake.run(settings, stores) or {}
            print(json.dumps(done))
            if done.get("entries", 0) < lake.MAX_ENTRIES:
                return 0
    except LAKE_ERRORS as error:  # storage or the lake unreachable, the identity refused: the outbox keeps all
        print(f"error: {type(error).__name__}: {error}", file=sys.stderr)
        return 1


def _dead(stores: Any, retry: bool) -> int:
    """`lake dead`: one line per entry set aside (when, what kind, the lake's reason); `--retry` requeues them."""
    assert stores.outbox is not None
    entries = stores.outbox.dead()
    for entry in entries:
        kind = "visitor" if entry.visitor else "case " + (entry.case_id or "")
        print(f"{entry.fields.get('set_aside_at', '')}  {kind}  {entry.fields.get('reason', '')}")
    if retry:
        print(f"put back {stores.outbox.retry_dead()} entries for the next export")
    elif not entries:
        print("no entries set aside")
    return 0


def _serve(args: argparse.Namespace) -> int:
    logging.basicConfig(level=os.environ.get("DCI_LOG_LEVEL", "INFO"),
                        format="%(asctime)s %(levelname)-7s %(name)s: %(message)s")
    for noisy in ("azure.core.pipeline.policies.http_logging_policy", "azure.storage", "azure.data"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    log = logging.getLogger("dci.runner")

    from dci.runner import Runner
    from dci.runner.config import ConfigError, load_host_config
    from dci.settings import load_settings

    args.dataverse_port = args.dataverse_port or args.port + 1  # --demo's local Dataverse: the next port
    busy = [port for port in (args.port, *((args.dataverse_port,) if args.demo else ()))
            if not _free(args.host, port)]
    if busy:
        print(f"cannot start: port {busy[0]} on {args.host} is in use; stop what holds it, or choose another "
              "port (PORT=8080 make dev, or --port)", file=sys.stderr)
        return 2
    demo = _start_demo(args) if args.demo else None
    try:
        applied = _load_local_settings(args.settings, args.port)
        load_settings()  # locally, bad settings stop the runner at once (SettingsError names them)
        host = load_host_config(args.host_json)
        sys.path.insert(0, os.getcwd())
        module_name, _, attribute = args.app.partition(":")
        app = getattr(importlib.import_module(module_name), attribute or "app")
        portal = demo.portal if demo else not args.no_portal
        runner = Runner(app, host, os.environ, (args.host, args.port), portal=portal)
    except (ConfigError, RuntimeError, OSError, ImportError) as error:
        log.error("cannot start: %s", error)
        return 2
    log.info("%d settings from %s; serving %d functions", applied, args.settings, len(runner.functions))

    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    runner.start()
    log.info("listening on %s (Ctrl-C to stop)", runner.url)
    if runner.portal:
        log.info("demo portal on http://%s:%d/ (dev only)", args.host, args.port)
    base = f"http://{args.host}:{args.port}/api"
    log.info("the agent's case report: %s/cases/{ticket number}/timeline?format=html", base)
    log.info("the manager's insights dashboard: %s/insights?format=html", base)
    if demo:
        log.info("demo: sign in at http://%s:%d/signin, browse, then create a case; its note and Portal visits "
                 "appear at %s/notes %d s later (CASE_SETTLE_SECONDS) and the case page links to the report",
                 args.host, args.port, demo.dataverse.url, int(os.environ["CASE_SETTLE_SECONDS"]))
    if demo:
        log.info("demo: the interactions and cases go to Delta tables every 30 s; query them with LAKE_URL=%s "
                 ".venv/bin/python -m dci lake query \"SELECT type, count(*) FROM interactions GROUP BY type\"",
                 os.environ["LAKE_URL"])
    log.info("headless browsers and crawlers are answered 202 and dropped as bots (a log line counts them): "
             "drive the demo with a normal browser, or set a browser User-Agent")
    stop.wait()
    log.info("stopping")
    runner.stop()
    if demo:
        demo.dataverse.close()
    log.info("stopped")
    return 0


DEMO_APP = "00000000-0000-0000-0000-000000000001"  # the demo app's "managed identity" in the local Dataverse


@dataclass(frozen=True)
class _Demo:
    dataverse: LocalDataverse
    portal: DemoPortal


def _start_demo(args: argparse.Namespace) -> _Demo:
    """A local Dataverse beside the runner, the demo portal creating cases in it, and settings that
    show a case's timeline and note within seconds (the environment, when set, still wins)."""
    from datetime import datetime, timezone

    from dci.runner.dataverse import LocalDataverse
    from dci.runner.portal import DEMO_CONTACT, DemoPortal

    dataverse = LocalDataverse(token="demo-token", port=args.dataverse_port)
    dataverse.add_contact(DEMO_CONTACT, "Dana Demo")
    for name, value in {"DATAVERSE_URL": dataverse.url, "DATAVERSE_TOKEN": "demo-token", "CASE_SETTLE_SECONDS": "15",
                        "CASE_SCHEDULE": "*/5 * * * * *", "REPORT_BASE_URL": f"http://{args.host}:{args.port}/api",
                        "LAKE_URL": "az://lake/demo", "LAKE_SCHEDULE": "*/30 * * * * *"}.items():
        os.environ.setdefault(name, value)

    def create_case(contact: str, ticket: str, title: str) -> None:
        dataverse.add_contact(contact, dataverse.contacts.get(contact, "Demo customer"))
        dataverse.add_incident(datetime.now(timezone.utc), contact=contact, ticket=ticket, title=title)

    _set_up(dataverse)
    return _Demo(dataverse, DemoPortal(on_case=create_case))


def _set_up(dataverse: LocalDataverse) -> None:
    """What an administrator does once (`python -m dci dataverse setup`), done to the local
    Dataverse: the Portal visit table, the app's user and role (no webhook: the poller finds the
    demo's cases)."""
    import io

    from dci.dataverse.setup import command

    args = argparse.Namespace(dataverse_url=dataverse.url, client_id=DEMO_APP, report_base_url=None, webhook_key=None,
                              no_webhook=True, role=None, check=False, dry_run=False, azd_env=None,
                              allow_keyword_edits=True)
    said = io.StringIO()
    env = {"DATAVERSE_TOKEN": "demo-token", "TIMELINE_ACTIVITIES": os.environ.get("TIMELINE_ACTIVITIES", "")}
    if command.run(args, env, said) != 0:
        logging.getLogger("dci.runner").warning("demo: the local Dataverse could not be set up:\n%s", said.getvalue())


if __name__ == "__main__":
    sys.exit(main())
