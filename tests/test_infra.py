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
                   insight_tables.INSIGHTS}
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
