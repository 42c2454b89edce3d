"""The rooms of the package keep to their walls: what imports what, and one definition each of the
rules several rooms need (the GUID check, time conversions)."""

from __future__ import annotations

import ast
import re
import subprocess
import sys

import pytest

from tests.conftest import ROOT

PACKAGE = ROOT / "dci"
SDKS = ("azure.data.tables", "azure.storage.queue")


def modules() -> list[tuple[str, ast.Module]]:
    return [(str(path.relative_to(ROOT)), ast.parse(path.read_text())) for path in sorted(PACKAGE.rglob("*.py"))]


def imported(tree: ast.Module) -> set[str]:
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and not node.level:
            names.add(node.module)
        elif isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
    return names


def test_structure_only_storage_talks_to_the_storage_sdks() -> None:
    # (The local runner emulates the Functions host's queue triggers, so it speaks the SDK too.)
    offenders = [(path, name) for path, tree in modules() for name in imported(tree)
                 if name.startswith(SDKS) and not path.startswith(("dci/storage/", "dci/runner/"))]
    assert offenders == []


def test_structure_only_the_lake_tables_talk_to_delta_rs() -> None:
    offenders = [(path, name) for path, tree in modules() for name in imported(tree)
                 if name.startswith(("deltalake", "arro3")) and path != "dci/lake/tables.py"]
    assert offenders == []


def test_structure_the_ingest_edge_imports_no_storage() -> None:
    offenders = [(path, name) for path, tree in modules() if path.startswith("dci/ingest/")
                 for name in imported(tree) if name.startswith(("dci.storage", "azure.data", "azure.storage"))]
    assert offenders == []


@pytest.mark.parametrize("module", ["dci.linker", "dci.views", "dci.ingest.collect", "function_app"])
def test_structure_modules_that_never_call_dataverse_do_not_load_requests(module: str) -> None:
    code = f"import sys, {module}; print(sorted(m for m in ('requests', 'azure.identity') if m in sys.modules))"
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"


def test_structure_one_guid_check_and_one_time_conversion() -> None:
    guid = re.compile(r"\{8\}-\[0-9a-fA-F\]")
    conversions = re.compile(r"\.timestamp\(\)|datetime\.fromisoformat|timedelta\(milliseconds")
    for path in sorted(PACKAGE.rglob("*.py")):
        text, name = path.read_text(), str(path.relative_to(ROOT))
        if name != "dci/ids.py":
            assert not guid.search(text), f"{name} defines its own GUID pattern; use dci.ids"
        if name not in ("dci/clock.py", "dci/views.py"):  # (views parses a query parameter into a datetime)
            assert not conversions.search(text), f"{name} converts time itself; use dci.clock"
