"""Domain errors that carry what the client needs to hear, as RFC 9457 problem details."""

from __future__ import annotations

from dataclasses import dataclass, field
from http import HTTPStatus

# Problem types are URNs, listed with their meaning in docs/API.md.
PROBLEM_BASE = "urn:dci:problem:"


@dataclass(frozen=True)
class FieldError:
    """One thing wrong with one field of a request body."""

    field: str
    detail: str

    def as_dict(self) -> dict[str, str]:
        """The RFC 9457 `errors` member shape: a JSON pointer plus a readable field path."""
        return {"field": self.field, "pointer": _pointer(self.field), "detail": self.detail}


@dataclass
class Problem(Exception):
    """An error answer: status, a short title, a sentence of detail, and field errors."""

    status: int
    detail: str
    kind: str = ""
    errors: list[FieldError] = field(default_factory=list)
    headers: dict[str, str] = field(default_factory=dict)
    extensions: dict[str, object] = field(default_factory=dict)

    def __post_init__(self) -> None:
        super().__init__(self.detail)

    @property
    def title(self) -> str:
        return HTTPStatus(self.status).phrase

    def as_dict(self) -> dict[str, object]:
        """The problem+json document."""
        body: dict[str, object] = {
            "type": PROBLEM_BASE + self.kind if self.kind else "about:blank",
            "title": self.title,
            "status": self.status,
            "detail": self.detail,
        }
        if self.errors:
            body["errors"] = [error.as_dict() for error in self.errors]
        body.update(self.extensions)
        return body


def _pointer(path: str) -> str:
    """`events[3].ts` -> `/events/3/ts` (RFC 6901)."""
    parts = path.replace("[", ".").replace("]", "").split(".")
    return "/" + "/".join(p.replace("~", "~0").replace("/", "~1") for p in parts if p)
