"""Cross-origin rules for the beacon endpoint: only the configured portal origins are answered."""

from __future__ import annotations

from collections.abc import Iterable

from dci.problems import Problem

PREFLIGHT_MAX_AGE = 86_400


def allow(origin: str | None, allowed: Iterable[str]) -> dict[str, str]:
    """Response headers for a request from `origin`; Problem(403) when that origin is not allowed.

    Requests without an Origin header (server-side callers, same-origin navigations) need no CORS
    headers and are not refused here: the portal host check on every URL still applies.
    """
    check(origin, allowed)
    return {} if origin is None else {"Access-Control-Allow-Origin": origin, "Vary": "Origin"}


def check(origin: str | None, allowed: Iterable[str]) -> None:
    """Problem(403) unless `origin` is None or one of `allowed`."""
    if origin is not None and origin.rstrip("/").lower() not in allowed:
        raise Problem(403, f"Origin {origin!r} is not allowed to send events (ALLOWED_ORIGINS).", "origin-not-allowed")


def preflight(origin: str | None, allowed: Iterable[str], methods: str) -> dict[str, str]:
    """Headers answering an OPTIONS preflight from an allowed origin."""
    headers = allow(origin, allowed)
    headers.update(
        {
            "Access-Control-Allow-Methods": methods,
            "Access-Control-Allow-Headers": "Content-Type",
            "Access-Control-Max-Age": str(PREFLIGHT_MAX_AGE),
            "Allow": methods,
        }
    )
    return headers
