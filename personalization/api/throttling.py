"""Rate limits per API key or signed-in user, counted in the shared cache in one round trip.

DRF's stock throttle keeps a list of every request's timestamp in the cache and reads and writes
the whole list on each request: at a few thousand requests a minute that is tens of kilobytes
pickled twice per request, and two concurrent requests can overwrite each other's entries. Here
each principal has one counter per window of the rate's length, and the limit is checked against
a sliding estimate: this window's count plus the previous window's, weighted by how much of it
still overlaps the last ``duration`` seconds. With Redis that is one pipelined round trip
(``INCRBY``, ``EXPIRE``, ``GET``); with another cache backend the same counts go through Django's
cache API.

A web process does not make that round trip for every request: far from the limit it takes a few
slots of the window's count at once (a lease: at most ``LEASE_MOST``, at most a twentieth of the
room left under the limit, kept for ``LEASE_SECONDS``) and counts its requests against them in
memory. Near the limit the lease shrinks to one slot, so the last requests before the limit are
counted one by one as before; slots a process leased and did not use go back to the count when it
takes its next lease in the same window (a process that stops keeps at most ``LEASE_MOST`` of
them counted until the window passes). A refused request gives its slot and the lease's unused
ones back at once.

While Redis cannot be reached the counts are kept in this process's memory instead: the limit then
holds per web process, so a key may get up to (number of web processes) × the rate until Redis is
back. A rate limit that needs Redis to answer would turn a cache outage into an API outage.
"""

from __future__ import annotations

import contextlib
import threading
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from django.core.cache import cache
from rest_framework.request import Request
from rest_framework.settings import api_settings
from rest_framework.throttling import BaseThrottle

from personalization.models import ApiKey
from personalization.shared_cache import UNREACHABLE, cache_is_down, note_cache_down, redis_client

if TYPE_CHECKING:
    from rest_framework.views import APIView

PERIODS = {"s": 1, "m": 60, "h": 3600, "d": 86_400}


def parse_rate(rate: str) -> tuple[int, int]:
    """``"6000/min"`` → (6000, 60): requests allowed per window of that many seconds."""
    count, _, period = rate.partition("/")
    try:
        return int(count), PERIODS[period.strip()[:1].lower()]
    except (KeyError, ValueError):
        raise ValueError(f"A rate is '<requests>/<sec|min|hour|day>', not {rate!r}.") from None


class PrincipalRateThrottle(BaseThrottle):
    """Rate limit per API key or per signed-in user; a view may name its own ``throttle_scope``."""

    THROTTLE_RATES: dict[str, Any] = api_settings.DEFAULT_THROTTLE_RATES

    def __init__(self) -> None:
        self.retry_after: float | None = None

    def allow_request(self, request: Request, view: APIView) -> bool:
        scope = getattr(view, "throttle_scope", None) or "principal"
        rate = self.THROTTLE_RATES.get(scope)
        if rate is None:
            return True
        limit, duration = parse_rate(rate)
        now = time.time()
        window = int(now // duration)
        key = f"throttle:{scope}:{self.ident(request)}"
        current, previous = _count(key, window, duration, limit)
        elapsed = now - window * duration
        if current + previous * (1.0 - elapsed / duration) <= limit:
            return True
        # A refused request does not count, so a client retrying too early does not push its own
        # wait further out.
        current -= 1
        _uncount(key, window)
        self.retry_after = max(1.0, _seconds_until_allowed(limit, duration, elapsed, current, previous))
        return False

    def wait(self) -> float | None:
        return self.retry_after

    def ident(self, request: Request) -> str:
        if isinstance(request.auth, ApiKey):
            return f"key-{request.auth.pk}"
        if request.user and request.user.is_authenticated:
            return f"user-{request.user.pk}"
        return f"ip-{self.get_ident(request)}"


def _seconds_until_allowed(limit: int, duration: int, elapsed: float, current: int, previous: int) -> float:
    """When the next request fits the estimate, if none comes before: later in this window as the
    previous window slides out, or else into the next one, where this window becomes the previous."""
    if current + 1 <= limit and previous > 0:
        clears_at = (1.0 - (limit - current - 1) / previous) * duration
        return clears_at - elapsed
    clears_at = max(0.0, 1.0 - (limit - 1) / current) * duration if current > 0 else 0.0
    return duration - elapsed + clears_at


def _uncount(key: str, window: int) -> None:
    client = redis_client()
    if client is not None:
        if not cache_is_down():
            try:
                client.decrby(cache.make_key(f"{key}:{window}"), _leases.give_back(key, window))
                return
            except UNREACHABLE as exc:
                note_cache_down(exc)
        _in_process.uncount(key, window)
        return
    with contextlib.suppress(ValueError):  # the window's counter expired meanwhile
        cache.decr(f"{key}:{window}")


def _count(key: str, window: int, duration: int, limit: int) -> tuple[int, int]:
    """Count this request in ``window`` and return (this window's count, the previous window's)."""
    current_key, previous_key = f"{key}:{window}", f"{key}:{window - 1}"
    client = redis_client()
    if client is not None:
        if not cache_is_down():
            try:
                return _leases.count(client, key, window, duration, limit)
            except UNREACHABLE as exc:
                note_cache_down(exc)
        return _in_process.count(key, window, duration)
    cache.add(current_key, 0, timeout=2 * duration)
    try:
        current = cache.incr(current_key)
    except ValueError:  # expired between add and incr
        cache.set(current_key, 1, timeout=2 * duration)
        current = 1
    return int(current), int(cache.get(previous_key) or 0)


# Slots of a window's shared count a web process takes at once: at most this many, and at most
# 1/LEASE_SHARE of the room left under the limit, so that even many processes leasing together
# cannot hold more than the room; a lease older than LEASE_SECONDS is renewed (fresh counts).
LEASE_MOST = 32
LEASE_SHARE = 20
LEASE_SECONDS = 1.0


@dataclass
class _Lease:
    window: int
    taken_at: float
    shared: int  # the window's shared count right after the lease was taken (its slots included)
    previous: int  # the previous window's count then
    left: int  # slots of the lease not used yet


class _Leases:
    """This process's leases on the shared counts, one per principal and scope."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.held: dict[str, _Lease] = {}

    def count(self, client: Any, key: str, window: int, duration: int, limit: int) -> tuple[int, int]:
        now = time.monotonic()
        with self.lock:
            lease = self.held.pop(key, None)
            if lease is not None and lease.window == window and lease.left > 0 and now - lease.taken_at < LEASE_SECONDS:
                lease.left -= 1
                self.held[key] = lease
                return lease.shared - lease.left, lease.previous
        size, unused = 1, 0
        if lease is not None and lease.window == window:
            unused = lease.left
            room = limit - (lease.shared - lease.left) - lease.previous
            size = max(1, min(LEASE_MOST, room // LEASE_SHARE))
        current_key = cache.make_key(f"{key}:{window}")
        pipeline = client.pipeline(transaction=False)
        pipeline.incrby(current_key, size - unused)
        pipeline.expire(current_key, 2 * duration)
        pipeline.get(cache.make_key(f"{key}:{window - 1}"))
        shared, _, previous = pipeline.execute()
        taken = _Lease(window, now, int(shared), int(previous or 0), size - 1)
        with self.lock:
            self.held[key] = taken
        return taken.shared - taken.left, taken.previous

    def give_back(self, key: str, window: int) -> int:
        """How many slots a refused request returns: its own and its lease's unused ones."""
        with self.lock:
            lease = self.held.pop(key, None)
        return 1 + (lease.left if lease is not None and lease.window == window else 0)

    def clear(self) -> None:
        with self.lock:
            self.held.clear()


_leases = _Leases()


def forget_leases() -> None:
    """Drop this process's leases (the shared counts they were taken from were cleared)."""
    _leases.clear()


class _InProcessCounts:
    """The same two-window counts in this process's memory, for while Redis cannot be reached."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        # Per window length; within one, windows in the order they began (a dict keeps insertion order).
        self.counts: dict[int, dict[tuple[str, int], int]] = {}

    def count(self, key: str, window: int, duration: int) -> tuple[int, int]:
        with self.lock:
            counts = self.counts.setdefault(duration, {})
            oldest = next(iter(counts), None)
            if oldest is not None and (oldest[1] < window - 1 or len(counts) > 100_000):
                # Windows older than the previous one no longer count.
                counts = self.counts[duration] = {k: n for k, n in counts.items() if k[1] >= window - 1}
            current = counts[(key, window)] = counts.get((key, window), 0) + 1
            return current, counts.get((key, window - 1), 0)

    def uncount(self, key: str, window: int) -> None:
        with self.lock:
            for counts in self.counts.values():
                if (key, window) in counts:
                    counts[(key, window)] -= 1

    def clear(self) -> None:
        with self.lock:
            self.counts.clear()


_in_process = _InProcessCounts()
