"""The rate limit's leases: far from the limit a web process counts most requests in memory, near it
every request is counted in Redis, and two processes together never let more than the limit through."""

from __future__ import annotations

import pytest
from django.core.cache import cache

from personalization.api.throttling import LEASE_MOST, _Leases
from personalization.shared_cache import redis_client


@pytest.fixture
def client():
    found = redis_client()
    if found is None:
        pytest.skip("the rate limit leases slots only with Redis")
    cache.clear()
    yield found
    cache.clear()


def _admit(leases: _Leases, client, limit: int, window: int = 7) -> bool:
    """One request through the limit's check, as ``PrincipalRateThrottle`` makes it (no previous window)."""
    current, previous = leases.count(client, "throttle:test:key-1", window, 60, limit)
    if current + previous <= limit:
        return True
    shared = cache.make_key(f"throttle:test:key-1:{window}")
    client.decrby(shared, leases.give_back("throttle:test:key-1", window))
    return False


def test_far_from_the_limit_most_requests_do_not_touch_the_shared_count(client):
    leases = _Leases()
    shared = cache.make_key("throttle:test:key-1:7")
    writes = []
    for _ in range(200):
        before = int(client.get(shared) or 0)
        assert _admit(leases, client, limit=100_000)
        writes.append(int(client.get(shared) or 0) != before)
    # The first request takes one slot, the next a lease of LEASE_MOST, and so on.
    assert sum(writes) <= 2 + 200 // LEASE_MOST
    # The shared count holds every admitted request plus at most one lease's unused slots.
    assert 200 <= int(client.get(shared)) < 200 + LEASE_MOST


def test_two_processes_together_admit_exactly_the_limit(client):
    first, second = _Leases(), _Leases()
    admitted = [_admit(leases, client, limit=500) for _ in range(400) for leases in (first, second)]
    assert sum(admitted) == 500
    # Refused requests gave their slots back: the shared count is the admitted ones.
    assert int(client.get(cache.make_key("throttle:test:key-1:7"))) == 500


def test_a_new_window_starts_with_one_slot_and_unused_slots_go_back(client):
    leases = _Leases()
    for _ in range(3):
        _admit(leases, client, limit=100_000)
    held = leases.held["throttle:test:key-1"]
    assert held.left > 0
    _admit(leases, client, limit=100_000, window=8)
    assert leases.held["throttle:test:key-1"].left == 0  # one slot: no lease carried into a new window
    assert int(client.get(cache.make_key("throttle:test:key-1:8"))) == 1
