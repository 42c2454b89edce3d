"""HTTP answers as plain data, so the domain can say what to answer without the Functions types."""

from __future__ import annotations

import json
from dataclasses import dataclass, field

from dci.problems import Problem

JSON = "application/json"
PROBLEM_JSON = "application/problem+json"


@dataclass(frozen=True)
class Reply:
    """Status, headers and an already-encoded body. A `shared` reply is made once and answers many
    requests (collect's 202): its HTTP response may be made once too (`dci.web.respond`)."""

    status: int
    body: bytes = b""
    content_type: str | None = None
    headers: dict[str, str] = field(default_factory=dict)
    shared: bool = False


def json_reply(status: int, document: object, headers: dict[str, str] | None = None) -> Reply:
    """A JSON answer."""
    return Reply(status, _dumps(document), JSON, dict(headers or {}))


def problem_reply(problem: Problem, headers: dict[str, str] | None = None) -> Reply:
    """A problem+json answer; `headers` add to the problem's own (Retry-After, Allow, …)."""
    merged = {**(headers or {}), **problem.headers}
    return Reply(problem.status, _dumps(problem.as_dict()), PROBLEM_JSON, merged)


def _dumps(document: object) -> bytes:
    return json.dumps(document, ensure_ascii=False, separators=(",", ":")).encode()
