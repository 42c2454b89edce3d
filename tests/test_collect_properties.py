"""Property: whatever a client sends to collect, the answer is never a 5xx and never a traceback."""

from __future__ import annotations

import json
from typing import Annotated, Any

import azure.functions as func
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from pydantic import StringConstraints, TypeAdapter, ValidationError

import function_app
from dci.ingest.events import URL, URL_PATTERN
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


# Issue 27: collect checks URL_PATTERN in Python, once per distinct URL, where the schema's pattern (pydantic-core's
# Rust regex) checked every URL of every batch. The same texts must pass: `\S` is what Rust calls it (Python's own
# `\s` also takes \x1c-\x1f), and `$` is the end of the text (Python's also matches before a final newline).
RUST_URL = TypeAdapter(Annotated[str, StringConstraints(pattern=URL_PATTERN)])
url_texts = st.one_of(
    st.text(max_size=40),
    st.builds(lambda scheme, host, rest: f"{scheme}://{host}{rest}", st.sampled_from(["https", "HTTP", "hTtPs", "ftp"]),
              st.text(st.characters(codec="ascii"), max_size=12), st.text(max_size=20)),
    st.builds(lambda rest: "https://portal.example.com/" + rest, st.text(max_size=30)),
)


@settings(derandomize=True, max_examples=3000, deadline=None)
@given(url_texts)
@example("https://portal.example.com/a\x1fb")  # Python's \s takes the information separators, Rust's does not
@example("https://portal.example.com/a\n")  # Python's $ matches before a final newline
@example("https://portal.example.com/\u0085")  # NEL is white space to both
@example("https://portal.example.com/\u180e")  # the Mongolian vowel separator is not (since Unicode 6.3)
@example("https://portal.example.com/\ufeff")  # nor the byte order mark
@example("http://[")
def test_collect_url_check_means_what_the_schemas_pattern_meant(text: str) -> None:
    try:
        RUST_URL.validate_python(text)
        rust = True
    except ValidationError:
        rust = False
    assert (URL.fullmatch(text) is not None) == rust
