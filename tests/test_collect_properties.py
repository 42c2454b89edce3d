"""Property: whatever a client sends to collect, the answer is never a 5xx and never a traceback."""

from __future__ import annotations

import json
from typing import Any

import azure.functions as func
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import function_app
from dci.runner.invoke import Out
from tests.conftest import BROWSER_UA, PORTAL_ORIGIN
from tests.factories import batch, event

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=50),
    lambda children: st.lists(children, max_size=5) | st.dictionaries(st.text(max_size=10), children, max_size=5),
    max_leaves=30,
)
KINDS = ["page_view", "search", "search_click", "engagement", "case_form", "case_submitted"]


def _call(raw: bytes, content_type: str = "application/json") -> func.HttpResponse:
    request = func.HttpRequest("POST", "http://localhost/api/collect", body=raw, headers={
        "content-type": content_type, "origin": PORTAL_ORIGIN, "user-agent": BROWSER_UA})
    out: Out[str] = Out()
    response = function_app.collect(request, out)
    assert response.status_code < 500, response.get_body()
    if response.status_code == 202:
        json.loads(out.get())  # what is enqueued is JSON
    else:
        assert out.get() is None
        assert b"Traceback" not in response.get_body()
    return response


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(json_values)
def test_collect_random_json_never_5xx(value: Any) -> None:
    _call(json.dumps(value).encode())


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=2000), st.sampled_from(["application/json", "text/plain", "text/plain;charset=latin-1"]))
def test_collect_random_bytes_never_5xx(raw: bytes, content_type: str) -> None:
    _call(raw, content_type)


@settings(max_examples=400, deadline=None)
@given(st.lists(st.sampled_from(KINDS), min_size=1, max_size=5), st.data())
def test_collect_valid_batches_with_one_field_replaced_never_5xx(kinds: list[str], data: st.DataObject) -> None:
    document = batch([event(kind) for kind in kinds])
    target: dict[str, Any] = data.draw(st.sampled_from([document, *document["events"]]))
    key = data.draw(st.sampled_from(sorted(target)))
    target[key] = data.draw(json_values)
    _call(json.dumps(document).encode())
