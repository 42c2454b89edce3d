"""Retention drops whole monthly tables, never scans rows."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest

from dci.retention import apply, expired
from tests.conftest import Store, stores_of

NOW = datetime(2026, 11, 28, 3, 30, tzinfo=timezone.utc)


@pytest.mark.parametrize(("days", "dropped"), [
    (90, ["interactions202607"]),  # cutoff 2026-08-30: August still holds rows newer than that
    (30, ["interactions202607", "interactions202608", "interactions202609"]),
    (1, ["interactions202607", "interactions202608", "interactions202609", "interactions202610"]),
    (3650, []),
])
def test_retention_expired_months(days: int, dropped: list[str]) -> None:
    tables = ["interactions202607", "interactions202608", "interactions202609", "interactions202610",
              "interactions202611", "links", "interactionsXYZ"]
    assert expired(tables, NOW, days) == dropped


def test_retention_apply_drops_only_old_interaction_tables(store: Store) -> None:
    for name in ("interactions202601", "interactions202611", "links"):
        store.tables.create_table(name)
    assert apply(stores_of(store), NOW, 90) == ["interactions202601"]
    assert sorted(t.name for t in store.tables.list_tables()) == ["interactions202611", "links"]
