"""The Bicep deployment: it parses, it declares what the code uses, it holds no secret, and its
role assignments are the documented built-in roles."""

from __future__ import annotations

import ast
import json
import re
import shutil
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
ENTRA = (INFRA / "entra.bicep").read_text()
# The Microsoft Graph Bicep extension (v1.0 endpoint), extension version 1.0.0: the one whose types
# ../shared/azure-types/msgraph/v1.0/1.0.0 holds.
GRAPH_EXTENSION = "br:mcr.microsoft.com/bicep/extensions/microsoftgraph/v1.0:1.0.0"
# App Service authentication takes a managed identity as the registration's credential when the
# client secret's setting name is this one (Microsoft Learn: configure-authentication-provider-aad,
# "Use a managed identity instead of a secret").
MI_AS_CREDENTIAL = "OVERRIDE_USE_MI_FIC_ASSERTION_CLIENTID"

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
    from tests.bicep_types import parse

    tree = parse(path.read_bytes()).tree
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


@pytest.mark.parametrize(("statement", "declared"), [
    ("extension microsoftGraphV1", ["microsoftGraphV1"]),
    (f"extension '{GRAPH_EXTENSION}'", [GRAPH_EXTENSION]),
    ("extension microsoftGraphV1 as graph", ["microsoftGraphV1"]),
    ("extension kubernetes with {\n  namespace: 'default'\n  kubeConfig: ''\n} as k8s", ["kubernetes"]),
])
def test_infra_parser_reads_extension_statements(tmp_path: Path, statement: str, declared: list[str]) -> None:
    from tests.bicep_types import parse

    bicep = tmp_path / "extension.bicep"
    bicep.write_text(f"{statement}\n\nparam name string\n")
    assert _errors(bicep) == []
    assert parse(bicep.read_bytes()).extensions == declared


@pytest.mark.parametrize("statement", ["extension", "extension 'br:x' with", "extension graph as", "extension 1x"])
def test_infra_parser_reports_a_broken_extension_statement(tmp_path: Path, statement: str) -> None:
    bicep = tmp_path / "broken.bicep"
    bicep.write_text(f"{statement}\n\nparam name string\n")
    assert _errors(bicep)


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
    # The one setting name that mentions a secret names none (test_infra_sign_in_holds_no_secret).
    text = text.replace(f"clientSecretSettingName: '{MI_AS_CREDENTIAL}'", "")
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
GRAPH_TYPES = ROOT.parent / "shared" / "azure-types" / "msgraph" / "v1.0" / "1.0.0"


@pytest.fixture(scope="module")
def type_index():  # noqa: ANN201 - tests.bicep_types.TypeIndex
    from tests.bicep_types import TypeIndex

    if not AZURE_TYPES.exists() or not GRAPH_TYPES.exists():
        pytest.skip("../shared/azure-types is not beside this checkout")
    # tests/azure-types: the types the shared set lacks, transcribed (see its README). The Graph types
    # are those of the extension entra.bicep declares, and count only in a file that declares it.
    return TypeIndex.load(sorted(AZURE_TYPES.rglob("types.json")) + sorted((ROOT / "tests" / "azure-types").rglob(
        "types.json")), extensions={GRAPH_EXTENSION: GRAPH_TYPES / "types.json"})


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
            "Microsoft.Insights/scheduledQueryRules@2023-12-01",
            "Microsoft.Graph/applications@v1.0", "Microsoft.Graph/applications/federatedIdentityCredentials@v1.0",
            "Microsoft.Graph/servicePrincipals@v1.0", "Microsoft.Graph/appRoleAssignedTo@v1.0"} <= checked
    # Every resource declaration of every file, nested ones too, was checked against a type.
    declared = sum(len(re.findall(r"^\s*resource \w+ '[^']+' (?!existing)", p.read_text(), re.MULTILINE))
                   for p in BICEP_FILES)
    assert sum(len(check(type_index, path)[1]) for path in BICEP_FILES) == declared


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


ENTRA_MUTATIONS = [  # the Graph resources (their properties at the top level) and the site's authentication
    ("  signInAudience: 'AzureADMyOrg'\n", "  signInAudiense: 'AzureADMyOrg'\n", "unknown property 'signInAudiense'"),
    ("implicitGrantSettings: { enableIdTokenIssuance: true }", "implicitGrantSettings: { enableIdTokenIssuence: true }",
     "unknown property 'enableIdTokenIssuence'"),
    ("  signInAudience: 'AzureADMyOrg'\n", "  signInAudience: 'AzureADMyOrg'\n  appId: 'x'\n", "'appId' is read-only"),
    ("  uniqueName: 'portal-insights-reports-${resourceToken}'\n", "", "required property 'uniqueName' is missing"),
    ("    subject: identityPrincipalId\n", "", "required property 'subject' is missing"),
    ("    audiences: ['api://AzureADTokenExchange']", "    audience: ['api://AzureADTokenExchange']",
     "unknown property 'audience'"),
    ("  appId: registration.appId\n", "", "required property 'appId' is missing"),
    ("  appRoleAssignmentRequired: !empty(readersGroup)", "  appRoleAssignmentRequierd: !empty(readersGroup)",
     "unknown property 'appRoleAssignmentRequierd'"),
    ("  resourceId: servicePrincipal.id\n", "", "required property 'resourceId' is missing"),
    ("      requireAuthentication: false", "      requireAuthenticaton: false",
     "unknown property 'requireAuthenticaton'"),
    ("unauthenticatedClientAction: 'AllowAnonymous'", "unauthenticatedClientAction: 'AllowAnonymus'",
     "'AllowAnonymus' is not one of"),
    (f"clientSecretSettingName: '{MI_AS_CREDENTIAL}'", f"clientSecretSetting: '{MI_AS_CREDENTIAL}'",
     "unknown property 'clientSecretSetting'"),
    ("  name: 'authsettingsV2'", "  name: 'authSettingsV3'", "name 'authSettingsV3' is not one of"),
    ("extension microsoftGraphV1\n", "", "which this file does not declare"),
    ("extension microsoftGraphV1\n", "extension microsoftGraph\n", "extension 'microsoftGraph' is not an alias"),
]


@pytest.mark.parametrize(("name", "original", "typo", "said"),
                         [("app.bicep", *m) for m in MUTATIONS] + [("alerts.bicep", *m) for m in ALERT_MUTATIONS]
                         + [("lake.bicep", *m) for m in LAKE_MUTATIONS]
                         + [("entra.bicep", *m) for m in ENTRA_MUTATIONS],
                         ids=[m[2] for m in MUTATIONS + ALERT_MUTATIONS + LAKE_MUTATIONS + ENTRA_MUTATIONS])
def test_infra_type_check_catches_a_misspelled_bicep(type_index, tmp_path: Path, name: str, original: str,
                                                     typo: str, said: str) -> None:
    from tests.bicep_types import check

    source = (INFRA / name).read_text()
    assert source.count(original) == 1, original
    shutil.copy(INFRA / "bicepconfig.json", tmp_path)  # where Bicep finds the extension aliases
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


# --- Sign-in for the report pages (REPORTS_AUTH=app-service), declared in entra.bicep ------------

def _declaration(text: str, symbol: str) -> str:
    """The source of the resource (or module) declaration whose symbolic name is `symbol`."""
    from tests.bicep_types import parse

    parsed = parse(text.encode())
    source = parsed.source  # as parsed: extension statements are rewritten (tests/bicep_types.py)

    def find(node):  # noqa: ANN001, ANN202 - tree_sitter nodes
        if node.type in ("resource_declaration", "module_declaration"):
            name = next(child for child in node.children if child.type == "identifier")
            if source[name.start_byte:name.end_byte].decode() == symbol:
                return node
        for child in node.children:
            found = find(child)
            if found is not None:
                return found
        return None

    node = find(parsed.tree.root_node)
    assert node is not None, symbol
    return parsed.source[node.start_byte:node.end_byte].decode()


def _routes() -> dict[str, tuple[str, list[str]]]:
    """route -> (auth level as function_app.py writes it: ANONYMOUS, READ_AUTH or FUNCTION, methods)."""
    tree = ast.parse((ROOT / "function_app.py").read_text())
    routes = {}
    for node in ast.walk(tree):
        if not isinstance(node, ast.FunctionDef):
            continue
        for decorator in node.decorator_list:
            if not (isinstance(decorator, ast.Call) and ast.unparse(decorator.func) == "app.route"):
                continue
            keywords = {k.arg: k.value for k in decorator.keywords}
            level = keywords.get("auth_level")
            # Unset: the app's http_auth_level, FUNCTION (a function key).
            name = "FUNCTION" if level is None else ast.unparse(level).removeprefix("func.AuthLevel.")
            methods = ast.literal_eval(keywords["methods"]) if "methods" in keywords else []
            routes[ast.literal_eval(keywords["route"])] = (name, methods)
    return routes


def test_infra_bicepconfig_maps_the_extension_entra_declares() -> None:
    from tests.bicep_types import bicep_config, parse, resolve_extensions

    declared = parse(ENTRA.encode()).extensions
    assert declared == ["microsoftGraphV1"]
    # azd compiles infra/main.bicep, and Bicep reads the nearest bicepconfig.json of each file it
    # compiles: infra/ holds it for main.bicep and for its modules alike.
    for bicep in ("main.bicep", "entra.bicep"):
        found, config = bicep_config(INFRA / bicep)
        assert found == INFRA / "bicepconfig.json"
        assert resolve_extensions(declared, config) == {"microsoftGraphV1": GRAPH_EXTENSION}
    # It is the extension whose types the type check uses: Microsoft Graph v1.0, extension 1.0.0.
    if GRAPH_TYPES.exists():
        settings = json.loads((GRAPH_TYPES / "index.json").read_text())["settings"]
        assert (settings["name"], settings["version"]) == ("MicrosoftGraph", GRAPH_EXTENSION.rsplit(":", 1)[1])
    # Only entra.bicep uses Graph, so only it declares the extension.
    assert [p.name for p in BICEP_FILES if parse(p.read_bytes()).extensions] == ["entra.bicep"]


def test_infra_sign_in_holds_no_secret() -> None:
    everything = {p.name: p.read_text() for p in INFRA.rglob("*") if p.is_file()}
    for name, text in everything.items():
        for credential in ("passwordCredentials", "keyCredentials", "MICROSOFT_PROVIDER_AUTHENTICATION_SECRET",
                           "clientSecretCertificate", "sasUrlSettingName"):
            assert credential.lower() not in text.lower(), (name, credential)
        # The only mention of a client secret: its setting's name, which makes the identity the credential.
        assert re.findall(r"clientSecret\w*:[^\n]*", text) == (
            [f"clientSecretSettingName: '{MI_AS_CREDENTIAL}'"] if name == "entra.bicep" else []), name
    # That app setting is the managed identity's client id (not its object id, nor the registration's
    # client id), set only when App Service authentication signs people in.
    assert re.search(r"var signInSettings = settings\.REPORTS_AUTH == 'app-service' \? \{\s*"
                     rf"{MI_AS_CREDENTIAL}: identity\.properties\.clientId\s*\}} : \{{\}}", APP)
    assert re.search(r"REPORT_BASE_URL: [^\n]+\n\s*\}, signInSettings\)", APP)  # the last of the union
    assert re.search(r"REPORTS_AUTH: reportsAuth\n", MAIN)  # the same switch as the module's
    assert MI_AS_CREDENTIAL in _app_setting_names()
    auth = _declaration(ENTRA, "authSettings")
    assert re.search(r"registration: \{\s*clientId: registration\.appId\s*openIdIssuer: entraIssuer\s*"
                     r"(//[^\n]*\s*)*clientSecretSettingName: 'OVERRIDE_USE_MI_FIC_ASSERTION_CLIENTID'\s*\}", auth)
    assert re.search(r"tokenStore: \{\s*enabled: false\s*\}", auth)


def test_infra_sign_in_lets_anonymous_requests_through_to_the_apps_own_gate() -> None:
    routes = _routes()
    reports = {route for route, (level, _) in routes.items() if level == "READ_AUTH"}
    assert {"cases/{case_id}/timeline", "contacts/{contact_id}/timeline", "insights", "health/details"} == reports
    auth = _declaration(ENTRA, "authSettings")
    # The platform does not gate (the beacon, health and the key routes stay open as they are)...
    assert re.search(r"requireAuthentication: false\s+unauthenticatedClientAction: 'AllowAnonymous'", auth)
    assert "excludedPaths" not in ENTRA
    # ...so every report route must pass the app's gate (dci/access.py): the three report pages through
    # web.answer_report (sign-in redirect for HTML, 401 otherwise), health/details through checks.details.
    source = (ROOT / "function_app.py").read_text()
    for route in reports:
        body = source.split(f'route="{route}"', 1)[1].split("\n@app.", 1)[0]
        assert "web.answer_report(req," in body or "checks.details(req.headers)" in body, route


def test_infra_federated_credential_trusts_the_apps_managed_identity() -> None:
    assert ("var entraIssuer = '${environment().authentication.loginEndpoint}${tenant().tenantId}/v2.0'"
            in ENTRA)
    credential = _declaration(ENTRA, "trustsTheAppsIdentity")
    assert credential.startswith("resource trustsTheAppsIdentity 'federatedIdentityCredentials@v1.0'")
    assert "\n    issuer: entraIssuer\n" in credential
    assert "\n    subject: identityPrincipalId\n" in credential
    assert "\n    audiences: ['api://AzureADTokenExchange']\n" in credential
    assert re.search(r"\n    name: '\$\{registration\.uniqueName\}/[\w-]+'\n", credential)  # '<app>/<name>'
    # The subject is the identity's object (principal) id, that main.bicep passes from app.bicep.
    assert "identityPrincipalId: app.outputs.identityPrincipalId" in _declaration(MAIN, "entra")
    assert "output identityPrincipalId string = identity.properties.principalId" in APP
    # The registration: single tenant, the site's callback, ID tokens for the OpenID Connect sign-in.
    registration = _declaration(ENTRA, "registration")
    assert "signInAudience: 'AzureADMyOrg'" in registration
    assert "uniqueName: 'portal-insights-reports-${resourceToken}'" in registration
    assert "redirectUris: ['https://${defaultHostName}/.auth/login/aad/callback']" in registration
    assert "implicitGrantSettings: { enableIdTokenIssuance: true }" in registration
    assert "openIdIssuer: entraIssuer" in _declaration(ENTRA, "authSettings")
    assert "appId: registration.appId" in _declaration(ENTRA, "servicePrincipal")


def test_infra_sign_in_is_deployed_only_for_app_service_and_limited_to_the_readers_group() -> None:
    module = _declaration(MAIN, "entra")
    assert module.startswith("module entra 'entra.bicep' = if (reportsAuth == 'app-service') {")
    for param in ("siteName: app.outputs.functionAppName", "defaultHostName: app.outputs.defaultHostName",
                  "readersGroup: reportReadersGroup"):
        assert param in module, param
    assert ("output REPORTS_SIGN_IN_APP_ID string = reportsAuth == 'app-service' ? entra.outputs.appId : ''"
            in MAIN)
    parameters = json.loads((INFRA / "main.parameters.json").read_text())["parameters"]
    assert parameters["reportReadersGroup"]["value"] == "${REPORT_READERS_GROUP=}"
    assert "param reportReadersGroup string = ''" in MAIN
    assert "param readersGroup string = ''" in ENTRA
    # With a group, assignment is required and the group is assigned the default access role.
    assert "appRoleAssignmentRequired: !empty(readersGroup)" in _declaration(ENTRA, "servicePrincipal")
    readers = _declaration(ENTRA, "readers")
    assert readers.startswith("resource readers 'Microsoft.Graph/appRoleAssignedTo@v1.0' = if (!empty(readersGroup)) {")
    assert "principalId: readersGroup" in readers and "resourceId: servicePrincipal.id" in readers
    assert "appRoleId: defaultAccessRole" in readers
    assert "var defaultAccessRole = '00000000-0000-0000-0000-000000000000'" in ENTRA
    # The authentication configures the app's own site.
    assert "resource site 'Microsoft.Web/sites@2024-04-01' existing = {\n  name: siteName\n}" in ENTRA
    assert "parent: site\n  name: 'authsettingsV2'" in _declaration(ENTRA, "authSettings")
