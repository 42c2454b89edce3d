"""The Bicep deployment: it parses, it declares what the code uses, it holds no secret, and its
role assignments are the documented built-in roles."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from dci import storage
from dci.settings import Settings
from dci.storage import cases as case_tables
from dci.storage import insights as insight_tables
from dci.storage import keys
from dci.storage.outbox import OUTBOX_TABLE
from tests.conftest import ROOT

INFRA = ROOT / "infra"
BICEP_FILES = sorted(INFRA.glob("**/*.bicep"))
APP = (INFRA / "app.bicep").read_text()
MAIN = (INFRA / "main.bicep").read_text()

# Read only on a developer machine (or an alternative form of the same setting): documented in
# docs/DEPLOY.md and the README, never deployed.
LOCAL_ONLY = {"AzureWebJobsStorage", "DATAVERSE_TOKEN", "AzureWebJobsStorage__accountName",
              "WEBSITE_AUTH_ENABLED"}  # (App Service sets WEBSITE_* itself)

BUILT_IN_ROLES = {  # as documented in "Azure built-in roles"
    "storageBlobDataOwner": "b7e6dc6d-f1e8-4753-8033-0f276bb0955b",
    "storageQueueDataContributor": "974c5e8b-45b9-4653-ba55-5f855dd0fb88",
    "storageTableDataContributor": "0a9a7e1f-b9d0-4cc4-a60d-0319b160aaa3",
    "monitoringMetricsPublisher": "3913510d-42f4-4e42-8a64-420c390055eb",
}


def _errors(path: Path) -> list[str]:
    import tree_sitter_bicep
    from tree_sitter import Language, Parser

    tree = Parser(Language(tree_sitter_bicep.language())).parse(path.read_bytes())
    found: list[str] = []

    def walk(node) -> None:  # noqa: ANN001 - a tree_sitter.Node
        if node.type == "ERROR" or node.is_missing:
            found.append(f"{path.name}:{node.start_point[0] + 1}: {node.type}")
        for child in node.children:
            walk(child)

    walk(tree.root_node)
    return found


def test_infra_has_the_azd_layout() -> None:
    assert (ROOT / "azure.yaml").read_text().count("host: function") == 1
    assert {p.name for p in BICEP_FILES} >= {"main.bicep", "app.bicep"}
    assert "targetScope = 'subscription'" in MAIN


@pytest.mark.parametrize("path", BICEP_FILES, ids=lambda p: p.name)
def test_infra_bicep_parses_without_errors(path: Path) -> None:
    assert _errors(path) == []


def test_infra_parser_does_report_broken_bicep(tmp_path: Path) -> None:
    broken = tmp_path / "broken.bicep"
    broken.write_text("param = = }\nresource x 'a@b' = {\n")
    assert _errors(broken)


def _app_setting_names() -> set[str]:
    names = set(re.findall(r"^\s+([A-Za-z_][A-Za-z0-9_]*):", MAIN + APP, re.MULTILINE))
    return {name for name in names if name.isupper() or name.startswith(("AzureWebJobsStorage", "APPLICATIONINSIGHTS"))}


def test_infra_sets_every_setting_the_app_reads() -> None:
    read = {field.alias for field in Settings.model_fields.values()} - LOCAL_ONLY
    assert read <= _app_setting_names(), read - _app_setting_names()


def test_infra_storage_is_identity_based() -> None:
    for name in ("credential", "clientId", "blobServiceUri", "queueServiceUri", "tableServiceUri"):
        assert f"AzureWebJobsStorage__{name}:" in APP
    assert "allowSharedKeyAccess: false" in APP and "allowBlobPublicAccess: false" in APP
    assert "minimumTlsVersion: 'TLS1_2'" in APP
    assert "DisableLocalAuth: true" in APP and "Authorization=AAD" in APP


def test_infra_declares_every_queue_and_table_the_code_uses() -> None:
    queues = set(re.search(r"var queueNames = \[(.*?)\]", APP).group(1).replace("'", "").replace(" ", "").split(","))
    tables = set(re.search(r"var tableNames = \[(.*?)\]", APP).group(1).replace("'", "").replace(" ", "").split(","))
    used_queues = {storage.PORTAL_EVENTS_QUEUE, storage.CASES_QUEUE}
    assert used_queues | {f"{q}-poison" for q in used_queues} == queues
    used_tables = {keys.LINKS_TABLE, case_tables.TIMELINES, case_tables.CASES, case_tables.STATE,
                   insight_tables.INSIGHTS, OUTBOX_TABLE}
    assert used_tables == tables


def test_infra_holds_no_key_connection_string_or_secret() -> None:
    text = "\n".join(p.read_text() for p in INFRA.rglob("*") if p.is_file())
    for forbidden in (r"listKeys\(", r"AccountKey=", r"DefaultEndpointsProtocol", r"SharedAccessSignature",
                      r"InstrumentationKey=", r"password", r"secret\w*\s*:"):
        assert not re.search(forbidden, text, re.IGNORECASE), forbidden


def test_infra_role_assignments_use_the_documented_built_in_roles() -> None:
    declared = dict(re.findall(r"^\s+(\w+): '([0-9a-f-]{36})'", APP, re.MULTILINE))
    assert declared == BUILT_IN_ROLES
    assert APP.count("Microsoft.Authorization/roleAssignments@") == 3  # storage (x3 loop), metrics, deployer


def test_infra_parameters_file_names_only_real_parameters() -> None:
    parameters = json.loads((INFRA / "main.parameters.json").read_text())["parameters"]
    declared = set(re.findall(r"^param (\w+)", MAIN, re.MULTILINE))
    assert set(parameters) <= declared
    required = {name for name in declared if re.search(rf"^param {name} \w+\s*$", MAIN, re.MULTILINE)}
    assert required <= set(parameters), required - set(parameters)


def test_infra_flex_consumption_python_311() -> None:
    assert "tier: 'FlexConsumption'" in APP and "name: 'FC1'" in APP
    assert re.search(r"runtime: \{\s+name: 'python'\s+version: '3.11'", APP)
    assert "FUNCTIONS_WORKER_RUNTIME" not in APP  # Flex Consumption refuses it; the runtime is set above


# --- resource bodies against Azure's type definitions (the Bicep compiler cannot run here) --------

AZURE_TYPES = ROOT.parent / "shared" / "azure-types" / "generated"


@pytest.fixture(scope="module")
def type_index():  # noqa: ANN201 - tests.bicep_types.TypeIndex
    from tests.bicep_types import TypeIndex

    if not AZURE_TYPES.exists():
        pytest.skip("../shared/azure-types is not beside this checkout")
    # tests/azure-types: the types the shared set lacks, transcribed (see its README).
    return TypeIndex.load(sorted(AZURE_TYPES.rglob("types.json")) + sorted((ROOT / "tests" / "azure-types").rglob(
        "types.json")))


@pytest.mark.parametrize("path", BICEP_FILES, ids=lambda p: p.name)
def test_infra_resource_bodies_match_azure_type_definitions(type_index, path: Path) -> None:
    from tests.bicep_types import check

    problems, checked = check(type_index, path)
    assert problems == []
    assert checked, "no resource was checked"


def test_infra_every_resource_type_and_child_is_checked(type_index) -> None:
    from tests.bicep_types import check

    checked = {name for path in BICEP_FILES for name in check(type_index, path)[1]}
    assert {"Microsoft.Web/sites@2024-04-01", "Microsoft.Web/sites/config@2024-04-01",
            "Microsoft.Storage/storageAccounts/queueServices/queues@2023-05-01",
            "Microsoft.Authorization/roleAssignments@2022-04-01",
            "Microsoft.Resources/resourceGroups@2024-03-01",
            "Microsoft.Insights/scheduledQueryRules@2023-12-01"} <= checked


MUTATIONS = [  # (what app.bicep says, what a typo makes of it, what the checker must say)
    ("    httpsOnly: true", "    httpsOnyl: true", "unknown property 'httpsOnyl'"),
    ("    type: 'UserAssigned'", "    type: 'UserAssignd'", "'UserAssignd' is not one of"),  # a closed set
    ("      minTlsVersion: '1.2'", "      minTlsVersion: '1.2'\n      machineKey: {}", "'machineKey' is read-only"),
    ("    minimumTlsVersion: 'TLS1_2'", "    minimumTlsVersion: 'TLS1_2'\n    primaryLocation: 'x'",
     "'primaryLocation' is read-only"),
    ("  kind: 'StorageV2'\n", "", "required property 'kind' is missing"),
    ("    name: 'appsettings'", "    name: 'appsetings'", "name 'appsetings' is not one of"),
    ("      name: deploymentContainer\n", "      name: deploymentContainer\n      publicAcess: 'None'\n",
     "unknown property 'publicAcess'"),
]


ALERT_MUTATIONS = [  # the same for alerts.bicep, whose type is transcribed in tests/azure-types
    ("    severity: 1\n", "    severity: 1\n    autoMitigat: true\n", "unknown property 'autoMitigat'"),
    ("    displayName: 'Portal Insights: failure rate'\n",
     "    displayName: 'Portal Insights: failure rate'\n    createdWithApiVersion: 'x'\n",
     "'createdWithApiVersion' is read-only"),
    ("  name: 'alert-poison-${resourceToken}'\n  location: location\n",
     "  name: 'alert-poison-${resourceToken}'\n", "required property 'location' is missing"),
]


LAKE_MUTATIONS = [
    ("    isHnsEnabled: true\n", "    isHnsEnable: true\n", "unknown property 'isHnsEnable'"),
    ("      properties: { publicAccess: 'None' }", "      properties: { publicAccess: 'Nobody' }",
     "'Nobody' is not one of"),
]


@pytest.mark.parametrize(("name", "original", "typo", "said"),
                         [("app.bicep", *m) for m in MUTATIONS] + [("alerts.bicep", *m) for m in ALERT_MUTATIONS]
                         + [("lake.bicep", *m) for m in LAKE_MUTATIONS],
                         ids=[m[2] for m in MUTATIONS + ALERT_MUTATIONS + LAKE_MUTATIONS])
def test_infra_type_check_catches_a_misspelled_bicep(type_index, tmp_path: Path, name: str, original: str,
                                                     typo: str, said: str) -> None:
    from tests.bicep_types import check

    source = (INFRA / name).read_text()
    assert source.count(original) == 1, original
    broken = tmp_path / name
    broken.write_text(source.replace(original, typo))
    problems, _ = check(type_index, broken)
    assert any(said in problem for problem in problems), problems


def test_infra_alerts_watch_the_poison_gauge_and_the_failure_rate_of_the_apps_own_insights() -> None:
    from dci import telemetry

    alerts = (INFRA / "alerts.bicep").read_text()
    poison, lag = re.findall(r'customMetrics \| where name == "([\w.]+)"', alerts)
    assert telemetry.INSTRUMENTS[poison][0] == "gauge"
    assert telemetry.INSTRUMENTS[lag][0] == "histogram" and "max(valueMax)" in alerts  # a histogram's maximum
    assert alerts.count("scopes: [insightsId]") == 3
    assert re.search(r"insightsId: app\.outputs\.insightsId", MAIN)
    assert "output insightsId string = insights.id" in APP


def test_infra_telemetry_runs_in_the_workers_opentelemetry_mode() -> None:
    # The host exports OpenTelemetry (host.json); the worker passes each invocation's trace context
    # to the app, which configures the distro itself (PYTHON_APPLICATIONINSIGHTS_ENABLE_TELEMETRY
    # would make the worker configure it a second time, with URL-recording instrumentations).
    assert json.loads((ROOT / "host.json").read_text())["telemetryMode"] == "OpenTelemetry"
    assert "PYTHON_ENABLE_OPENTELEMETRY: 'true'" in APP
    assert "PYTHON_APPLICATIONINSIGHTS_ENABLE_TELEMETRY" not in APP
    assert "APPLICATIONINSIGHTS_AUTHENTICATION_STRING: 'ClientId=" in APP


def test_infra_cors_is_the_apps_alone() -> None:
    # Platform CORS takes over every route when it is on, and the app's own answers (403 naming the
    # origin, preflight for collect only) would have no effect: one layer, the app's.
    assert not re.search(r"\bcors\s*:", APP), "the site configures platform CORS"
    assert re.search(r"ALLOWED_ORIGINS:\s*allowedOrigins", MAIN)


def test_infra_the_deployers_role_assignment_takes_its_principal_type_from_azd() -> None:
    # A hard-coded 'User' failed `azd up` run by a service principal (UnmatchedPrincipalType).
    deployer = APP[APP.index("resource deployerUpload"):]
    assert "principalType: principalType" in deployer
    parameters = json.loads((INFRA / "main.parameters.json").read_text())["parameters"]
    assert parameters["principalType"]["value"] == "${AZURE_PRINCIPAL_TYPE=User}"
    assert "principalType: principalType" in MAIN


LAKE = (INFRA / "lake.bicep").read_text()


def test_infra_lake_is_optional_hierarchical_keyless_and_grants_the_documented_roles() -> None:
    from dci.lake.target import check_url

    assert "param lakeEnabled bool = false" in MAIN and "module lake 'lake.bicep' = if (lakeEnabled)" in MAIN
    for setting in ("isHnsEnabled: true", "allowSharedKeyAccess: false", "minimumTlsVersion: 'TLS1_2'",
                    "allowBlobPublicAccess: false", "publicAccess: 'None'"):
        assert setting in LAKE, setting
    assert dict(re.findall(r"^\s+(\w+): '([0-9a-f-]{36})'", LAKE, re.MULTILINE)) == {
        "storageBlobDataContributor": "ba92f5b4-2d11-453d-a403-e96b0029c9fe",  # as documented in "Azure built-in roles"
        "storageBlobDataReader": "2a2b9908-6ea1-4ae2-8e65-a410df84e7d1"}
    assert "= if (!empty(readerPrincipalId))" in LAKE  # the reader's grant only when a reader is named
    # LAKE_URL as main.bicep composes it, with a token and the public cloud's storage suffix, is one the app accepts.
    template = re.search(r"var lakeUrl = lakeEnabled \? '([^']+)'", MAIN).group(1)
    url = template.replace("${resourceToken}", "abc123def456").replace("${environment().suffixes.storage}",
                                                                       "core.windows.net")
    container = re.search(r"param container string = '([^']+)'", LAKE).group(1)
    assert check_url(url) == url and url.startswith(f"abfss://{container}@dlabc123def456.")


def test_infra_maps_the_report_settings_from_the_azd_environment_and_defaults_the_report_address() -> None:
    parameters = json.loads((INFRA / "main.parameters.json").read_text())["parameters"]
    assert parameters["reportsAuth"]["value"] == "${REPORTS_AUTH=function-key}"
    assert parameters["reportBaseUrl"]["value"] == "${REPORT_BASE_URL=}"
    assert re.search(r"REPORTS_AUTH: reportsAuth\s+REPORT_BASE_URL: reportBaseUrl", MAIN)
    # Unset, the note links to the app's own address: https://<default host name>/api.
    assert re.search(r"REPORT_BASE_URL: empty\(settings\.REPORT_BASE_URL\) \? "
                     r"'https://\$\{site\.properties\.defaultHostName\}/api' : settings\.REPORT_BASE_URL", APP)
