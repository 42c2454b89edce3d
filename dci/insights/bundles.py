"""Fact bundles: the event facts of one visitor's batch on one day, stored as one Table row. Pure.

A queue message's facts used to be one row each, written in a second entity-group transaction
after the message's events: a second multipart request whose client-side cost (azure-core builds
and parses one MIME part per row) doubled the linker's cost per message. As one bundle they are
one plain upsert (docs/PERFORMANCE.md, docs/ARCHITECTURE.md).

A bundle row keeps what the queries need:

* `facts`: the facts as JSON, each with its `key` (the per-event row key it replaces, `fact_ref`);
* `visitor`: the visitor hash of its facts (one visitor per bundle), so that an erasure finds the
  bundles of a visitor's days with a filter;
* a marker column per term (`t_…`) and per article (`a_…`) among its facts, `true`, so that a
  term's or an article's drill-down keeps filtering in the service (`… or t_… eq true`).

Its RowKey is `b~` and a hash of its facts' keys (`bundle_key`): a re-delivered message rebuilds
the same bundle; another message's facts make another row, even when the two share an event.
Readers `unbundle` rows of either layout (bundles, and the single-fact rows of earlier builds) into
the rows the rollups always read, in the order the single-fact layout had them (by key).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from typing import Any

from dci.insights.bounds import COLUMN_BUDGET, encode, utf16_len

BUNDLE_PREFIX = "b~"  # no fact key starts so: they are hex hashes or ISO-8601 times
MAX_MARKERS = 120  # marker columns per bundle: a Table entity holds at most 252 properties


def marker(kind: str, value: str) -> str:
    """The column that marks a bundle holding facts of a term (`search`) or an article (`article`)."""
    prefix = "t_" if kind == "search" else "a_"
    return prefix + hashlib.sha256(value.encode("utf-8", "surrogatepass")).hexdigest()[:24]


def _markers(fact: Mapping[str, Any]) -> set[str]:
    found = set()
    if fact.get("term") is not None and fact.get("kind") in ("search", "click"):
        found.add(marker("search", str(fact["term"])))
    if fact.get("article") is not None:
        found.add(marker("article", str(fact["article"])))
    return found


def bundles(facts: Iterable[tuple[str, str, Mapping[str, Any]]]) -> list[dict[str, Any]]:
    """Bundle rows (PartitionKey `e_{day}`) for (day, key, fact) triples: one per day and visitor,
    split where the facts would not fit one string property or the markers one entity."""
    groups: dict[tuple[str, str], list[tuple[str, Mapping[str, Any]]]] = {}
    for day, key, fact in facts:
        groups.setdefault((day, str(fact.get("visitor") or "")), []).append((key, fact))
    rows = []
    for (day, visitor), members in groups.items():
        members.sort(key=lambda member: member[0])
        chunk: list[dict[str, Any]] = []
        marks: set[str] = set()
        size = 2  # the list's brackets
        for key, fact in members:
            item = {**fact, "key": key}
            item_size, item_marks = utf16_len(encode(item)) + 1, _markers(fact)
            if chunk and (size + item_size > COLUMN_BUDGET or len(marks | item_marks) > MAX_MARKERS):
                rows.append(_row(day, visitor, chunk, marks))
                chunk, marks, size = [], set(), 2
            chunk.append(item)
            marks |= item_marks
            size += item_size
        rows.append(_row(day, visitor, chunk, marks))
    return rows


def _row(day: str, visitor: str, chunk: list[dict[str, Any]], marks: set[str]) -> dict[str, Any]:
    return {"PartitionKey": f"e_{day}", "RowKey": bundle_key(item["key"] for item in chunk), "visitor": visitor,
            "facts": encode(chunk), **dict.fromkeys(sorted(marks), True)}


def bundle_key(keys: Iterable[str]) -> str:
    """A bundle's RowKey: `b~` and a hash of all its facts' keys. The same facts make the same row
    (a re-delivered message); any other set another row, even one sharing a fact (two messages
    stamped in the same millisecond can both count an event theirs: `unbundle` reads it once)."""
    return BUNDLE_PREFIX + hashlib.sha256("\x00".join(sorted(keys)).encode()).hexdigest()[:32]


def is_bundle(row: Mapping[str, Any]) -> bool:
    return str(row.get("RowKey", "")).startswith(BUNDLE_PREFIX)


def unbundle(rows: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """The fact rows of `rows` (bundles and single-fact rows alike) as single-fact rows: each with
    its `PartitionKey` and its key as `RowKey`, once per key, in the service's order (partition,
    then row key) as if every fact were a row of its own."""
    out: dict[tuple[str, str], dict[str, Any]] = {}
    for row in rows:
        if not is_bundle(row):
            out.setdefault((row["PartitionKey"], row["RowKey"]), dict(row))
            continue
        for fact in json.loads(row["facts"]):
            key = fact.pop("key")
            out.setdefault((row["PartitionKey"], key), {"PartitionKey": row["PartitionKey"], "RowKey": key, **fact})
    return [out[place] for place in sorted(out)]
