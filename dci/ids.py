"""The one check of a row id (a Dataverse GUID): the whole string, nothing before or after it.

`re.match` with `$` accepts a GUID followed by a newline (`$` matches before a final `\n`); the
attack run used that to get a token through collect that the linker then refused, and route ids
that read nothing and erased nothing. Everything that checks an id calls `is_guid`.
"""

from __future__ import annotations

import re

from dci.problems import FieldError, Problem

GUID_PATTERN = r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"
# For pydantic-core, whose (Rust) `$` is the end of the input: a whole-string pattern there too.
GUID_FULL_PATTERN = f"^{GUID_PATTERN}$"
_GUID = re.compile(GUID_PATTERN)


def is_guid(value: object) -> bool:
    """True when `value` is a GUID and nothing else."""
    return isinstance(value, str) and _GUID.fullmatch(value) is not None


def contact_id(raw: str) -> str:
    """A contact id from a route, lower case, or Problem(400) naming it."""
    if not is_guid(raw):
        raise Problem(400, "A contact id is a GUID like 6f1c2a4e-0b7d-4c1e-9a55-2f4d8b1e7c30.", "invalid-contact-id",
                      [FieldError("contact_id", "must be a GUID")])
    return raw.lower()
