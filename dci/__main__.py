"""`python -m dci serve`: run the function app locally without Azure Functions Core Tools."""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import signal
import sys
import threading
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    """Parse the command line and run the chosen command."""
    parser = argparse.ArgumentParser(prog="python -m dci", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    serve = commands.add_parser("serve", help="serve the app on 127.0.0.1 like `func start`")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=7071)
    serve.add_argument("--app", default="function_app:app", help="module:attribute of the FunctionApp")
    serve.add_argument("--settings", type=Path, default=Path("local.settings.json"))
    serve.add_argument("--host-json", type=Path, default=Path("host.json"))
    serve.add_argument("--no-portal", action="store_true", help="do not serve the demo portal")
    args = parser.parse_args(argv)
    return _serve(args)


def _serve(args: argparse.Namespace) -> int:
    logging.basicConfig(level=os.environ.get("DCI_LOG_LEVEL", "INFO"),
                        format="%(asctime)s %(levelname)-7s %(name)s: %(message)s")
    for noisy in ("azure.core.pipeline.policies.http_logging_policy", "azure.storage", "azure.data"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    log = logging.getLogger("dci.runner")

    from dci.runner import Runner
    from dci.runner.config import ConfigError, load_host_config, load_local_settings
    from dci.settings import load_settings

    try:
        applied = load_local_settings(args.settings)
        load_settings()  # locally, bad settings stop the runner at once (SettingsError names them)
        host = load_host_config(args.host_json)
        sys.path.insert(0, os.getcwd())
        module_name, _, attribute = args.app.partition(":")
        app = getattr(importlib.import_module(module_name), attribute or "app")
        runner = Runner(app, host, os.environ, (args.host, args.port), portal=not args.no_portal)
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
    log.info("insights dashboard on http://%s:%d/api/insights?format=html", args.host, args.port)
    stop.wait()
    log.info("stopping")
    runner.stop()
    log.info("stopped")
    return 0


if __name__ == "__main__":
    sys.exit(main())
