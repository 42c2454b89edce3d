"""The per-instance visitor budget."""

from __future__ import annotations

from dci.ingest.ratelimit import RateLimiter


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_ratelimit_allows_the_limit_then_says_when_to_retry() -> None:
    clock = Clock()
    limiter = RateLimiter(limit=3, window=60, clock=clock)
    assert [limiter.retry_after("v") for _ in range(3)] == [0, 0, 0]
    clock.now += 20
    assert limiter.retry_after("v") == 40
    assert limiter.retry_after("w") == 0  # other keys have their own budget
    clock.now += 40
    assert limiter.retry_after("v") == 0  # a new window


def test_ratelimit_bounded_memory_forgets_expired_keys_first() -> None:
    clock = Clock()
    limiter = RateLimiter(limit=1, window=10, max_keys=3, clock=clock)
    for key in "abc":
        limiter.retry_after(key)
    clock.now += 11
    limiter.retry_after("d")
    assert set(limiter._counts) == {"d"}
    clock.now += 1
    for key in "ef":
        limiter.retry_after(key)
    limiter.retry_after("g")  # all three live: the table starts over instead of growing
    assert len(limiter._counts) <= 3
