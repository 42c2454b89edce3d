"""The binding contract: what the Functions host indexes from function_app.py."""

from __future__ import annotations

import json
import os
from pathlib import Path

import azure.functions as func
import pytest

import function_app
from dci.runner.index import host_functions
from dci.settings import DEFAULT_INSIGHTS_SCHEDULE, DEFAULT_LAKE_SCHEDULE

ROOT = Path(__file__).resolve().parents[1]

EXPECTED_HTTP = {
    # name: (route, methods, auth level)
    "collect": ("collect", {"POST", "OPTIONS"}, "anonymous"),
    "beacon_script": ("beacon.js", {"GET"}, "anonymous"),
    "beacon_search_script": ("beacon-search.js", {"GET"}, "anonymous"),
    "export_contact": ("contacts/{contact_id}/export", {"GET"}, "function"),
    "erase_contact": ("contacts/{contact_id}", {"DELETE"}, "function"),
    "dataverse_incident": ("dataverse/incidents", {"POST"}, "function"),
    "case_timeline": ("cases/{case_id}/timeline", {"GET"}, "function"),
    "contact_timeline": ("contacts/{contact_id}/timeline", {"GET"}, "function"),
    "insights": ("insights", {"GET"}, "function"),
    "health": ("health", {"GET"}, "anonymous"),
    "health_details": ("health/details", {"GET"}, "function"),
    "openapi_document": ("openapi.json", {"GET"}, "anonymous"),
}
EXPECTED_QUEUE = {"link": "portal-events", "assemble_case": "cases"}
EXPECTED_TIMERS = {"retention": ("0 30 3 * * *", True), "poll_cases": (os.environ["CASE_SCHEDULE"], True),
                   "export_lake": (os.environ.get("LAKE_SCHEDULE", DEFAULT_LAKE_SCHEDULE), True),
                   "rollup_insights": (os.environ.get("INSIGHTS_SCHEDULE", DEFAULT_INSIGHTS_SCHEDULE), True)}


def _functions() -> dict[str, func.Function]:
    return {f.get_function_name(): f for f in host_functions(function_app.app)}


def _value(x: object) -> str:
    return str(getattr(x, "value", x))


def test_app_indexes_exactly_the_expected_functions() -> None:
    assert set(_functions()) == set(EXPECTED_HTTP) | set(EXPECTED_QUEUE) | set(EXPECTED_TIMERS)


@pytest.mark.parametrize("name", sorted(EXPECTED_QUEUE))
def test_queue_triggers_read_the_host_storage(name: str) -> None:
    trigger = _functions()[name].get_trigger().get_dict_repr()
    assert (trigger["type"], trigger["queueName"], trigger["connection"]) == (
        "queueTrigger", EXPECTED_QUEUE[name], "AzureWebJobsStorage")


@pytest.mark.parametrize("name", sorted(EXPECTED_TIMERS))
def test_timers_schedule_and_monitor(name: str) -> None:
    trigger = _functions()[name].get_trigger().get_dict_repr()
    assert (trigger["schedule"], trigger["useMonitor"]) == EXPECTED_TIMERS[name]
    assert not trigger.get("runOnStartup")


@pytest.mark.parametrize("name", sorted(EXPECTED_HTTP))
def test_http_trigger_route_methods_and_auth(name: str) -> None:
    route, methods, auth = EXPECTED_HTTP[name]
    trigger = _functions()[name].get_trigger().get_dict_repr()
    assert trigger["type"] == "httpTrigger"
    assert trigger["route"] == route
    assert {_value(m) for m in trigger["methods"]} == methods
    assert _value(trigger["authLevel"]) == auth


def test_collect_writes_to_the_portal_events_queue_on_the_host_storage() -> None:
    outputs = [b.get_dict_repr() for b in _functions()["collect"].get_bindings() if b.type == "queue"]
    assert outputs == [{"direction": func.decorators.core.BindingDirection.OUT, "type": "queue",
                        "name": "batches", "queueName": "portal-events", "connection": "AzureWebJobsStorage"}]


def test_function_json_is_what_the_host_would_read() -> None:
    # get_function_json is the document the Python worker hands the host at indexing.
    for function in _functions().values():
        document = json.loads(function.get_function_json())
        assert document["scriptFile"] == "function_app.py"
        assert sum(1 for b in document["bindings"] if b["type"].endswith("Trigger")) == 1


def test_host_json_pins_the_extension_bundle_and_exports_opentelemetry() -> None:
    host = json.loads((ROOT / "host.json").read_text())
    assert host["version"] == "2.0"
    assert host["extensionBundle"] == {"id": "Microsoft.Azure.Functions.ExtensionBundle", "version": "[4.*, 5.0.0)"}
    assert host["telemetryMode"] == "OpenTelemetry"
    # logging.applicationInsights (sampling included) applies only outside OpenTelemetry mode: none, so
    # nobody tunes a block the host ignores (sampling is OTEL_TRACES_SAMPLER, docs/OPERATIONS.md).
    assert "applicationInsights" not in host["logging"]
    assert host["extensions"]["queues"]["messageEncoding"] == "base64"


def test_local_settings_sample_names_every_setting_the_app_reads() -> None:
    from dci.settings import Settings

    values = json.loads((ROOT / "local.settings.sample.json").read_text())["Values"]
    assert values["FUNCTIONS_WORKER_RUNTIME"] == "python"
    # Identity-based storage settings (AzureWebJobsStorage__*) are for Azure: locally the connection
    # string to Azurite is used, and the host must not see both.
    # WEBSITE_* are set by App Service itself, never by the user.
    aliases = {field.alias for field in Settings.model_fields.values()
               if "__" not in field.alias and not field.alias.startswith("WEBSITE_")}
    assert aliases <= set(values), aliases - set(values)


WORKER_INDEX = r'''
import inspect, json, sys
import azure.functions as func
import function_app as module

# 1. Exactly one function app at module level, as the Python worker's loader requires.
apps = [value for value in vars(module).values() if isinstance(value, func.FunctionRegister)]
assert len(apps) == 1, f"{len(apps)} function apps in function_app.py"
# 2. The library's own indexing (unique names), in a fresh process, as the worker calls it.
functions = apps[0].get_functions()
out = []
for function in functions:
    document = json.loads(function.get_function_json())
    bindings = document["bindings"]
    # 3. The worker's parameter checks: every binding is a parameter and every parameter a binding.
    parameters = set(inspect.signature(function.get_user_function()).parameters)
    named = {b["name"] for b in bindings if b["name"] != "$return"}
    assert named == parameters, (function.get_function_name(), named, parameters)
    triggers = [b for b in bindings if b["type"].endswith("Trigger")]
    assert len(triggers) == 1, (function.get_function_name(), triggers)
    if triggers[0]["type"] == "httpTrigger":
        assert any(b["type"] == "http" and b["direction"] == "OUT" for b in bindings), function.get_function_name()
    out.append({"name": function.get_function_name(), "bindings": bindings, "script": document["scriptFile"]})
print(json.dumps(out))
'''


def test_bindings_index_as_the_python_worker_does() -> None:
    import subprocess
    import sys

    result = subprocess.run([sys.executable, "-c", WORKER_INDEX], cwd=ROOT, capture_output=True, text=True,
                            env={**os.environ}, check=False)
    assert result.returncode == 0, result.stderr[-2000:]
    indexed = {f["name"]: f for f in json.loads(result.stdout)}
    assert set(indexed) == set(EXPECTED_HTTP) | set(EXPECTED_QUEUE) | set(EXPECTED_TIMERS)
    assert {f["script"] for f in indexed.values()} == {"function_app.py"}
    runner = {f.get_function_name(): json.loads(f.get_function_json())["bindings"] for f in _functions().values()}
    assert {name: f["bindings"] for name, f in indexed.items()} == runner  # what the runner reads is what the host gets
