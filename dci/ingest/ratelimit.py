"""A per-instance request budget per visitor: a cheap guard against one client flooding collect.

Each Functions instance keeps its own counters, so the effective limit scales with instances; it
is a brake on runaway scripts, not an abuse-proof quota.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable


class RateLimiter:
    """Fixed-window counter: at most `limit` calls per `window` seconds for each key."""

    def __init__(
        self, limit: int, window: float, *, max_keys: int = 100_000, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._limit = limit
        self._window = window
        self._max_keys = max_keys
        self._clock = clock
        self._counts: dict[str, tuple[float, int]] = {}
        self._lock = threading.Lock()

    def retry_after(self, key: str) -> int:
        """Count one call for `key`; 0 when allowed, else whole seconds until the window resets.

        No lock on this path (collect's, every request): each dict operation is atomic, and two
        threads counting the same visitor at once can at worst lose one count of a brake."""
        now = self._clock()
        start, count = self._counts.get(key, (now, 0))
        if now - start >= self._window:
            start, count = now, 0
        if count >= self._limit:
            return max(1, int(self._window - (now - start) + 0.999))
        if len(self._counts) >= self._max_keys and key not in self._counts:
            with self._lock:
                self._forget_expired(now)
        self._counts[key] = (start, count + 1)
        return 0

    def _forget_expired(self, now: float) -> None:
        expired = [k for k, (start, _) in list(self._counts.items()) if now - start >= self._window]
        for key in expired:
            self._counts.pop(key, None)
        if len(self._counts) >= self._max_keys:  # all live: start over rather than grow
            self._counts.clear()
