"""The shared cache, and what each process does while the Redis behind it cannot be reached.

``redis_client()`` gives code on the serving path a Redis client made once per thread, over the
default cache's connection pool: Django's Redis cache builds a new ``redis.Redis`` object for every
operation, and building one costs about as much as the round trip it makes. Keys still go through
``cache.make_key``. It is ``None`` when the cache is not Redis (the embedded default), so callers
fall back to Django's cache API.

Redis is a cache here, never the record, so losing it must cost speed, not answers:

* ``ResilientRedisCache`` (the cache backend when ``CACHE_URL``/``REDIS_URL`` is set) answers from a
  cache in this process's memory while Redis cannot be reached, and from Redis again once it can.
  What is written during an outage stays in the process that wrote it.
* After a failed call, a process leaves Redis alone for ``RETRY_SECONDS`` (``cache_is_down``), so
  an outage costs one connection attempt per process every few seconds instead of one per call.
  The rate limit, the hot profile and the outbox relay ask ``cache_is_down`` before they call.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any

import redis
from django.core.cache import caches
from django.core.cache.backends.locmem import LocMemCache
from django.core.cache.backends.redis import RedisCache

logger = logging.getLogger(__name__)

RETRY_SECONDS = 5.0
# What "cannot be reached" means: refused, reset, timed out, or still loading its data after a restart.
UNREACHABLE = (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError, OSError)

_local = threading.local()
_down_until: dict[str, float] = {}


def redis_client() -> Any | None:
    backend = caches["default"]
    memo = getattr(_local, "memo", None)
    if memo is not None and memo[0] is backend:
        return memo[1]
    client = backend._cache.get_client(write=True) if isinstance(backend, RedisCache) else None
    _local.memo = (backend, client)
    return client


def _location() -> str:
    backend = caches["default"]
    return str(getattr(backend, "_servers", [""])[0])


def cache_is_down(location: str | None = None) -> bool:
    """Whether a call to the cache's Redis failed less than ``RETRY_SECONDS`` ago in this process."""
    until = _down_until.get(_location() if location is None else location)
    return until is not None and time.monotonic() < until


def note_cache_down(exc: BaseException, location: str | None = None) -> None:
    location = _location() if location is None else location
    if not cache_is_down(location):
        logger.warning("Redis at %s unreachable, working without it for %s s: %s", location, RETRY_SECONDS, exc)
    _down_until[location] = time.monotonic() + RETRY_SECONDS


def note_cache_up(location: str | None = None) -> None:
    _down_until.pop(_location() if location is None else location, None)


def forget_outages() -> None:
    """Try Redis again on the next call (tests; after Redis is known to be back)."""
    _down_until.clear()


def _resilient(name: str) -> Callable[..., Any]:
    def call(self: ResilientRedisCache, *args: Any, **kwargs: Any) -> Any:
        location = self.location
        if not cache_is_down(location):
            try:
                return getattr(RedisCache, name)(self, *args, **kwargs)
            except UNREACHABLE as exc:
                note_cache_down(exc, location)
        return getattr(self._stand_in, name)(*args, **kwargs)

    call.__name__ = name
    call.__doc__ = f"``{name}`` on Redis, or on this process's memory while Redis cannot be reached."
    return call


class ResilientRedisCache(RedisCache):
    """Django's Redis cache, with this process's memory standing in while Redis cannot be reached."""

    def __init__(self, server: str, params: dict[str, Any]) -> None:
        super().__init__(server, params)
        self.location = str(getattr(self, "_servers", [server])[0])
        self._stand_in = LocMemCache(f"stand-in:{server}", {k: v for k, v in params.items() if k != "OPTIONS"})

    add = _resilient("add")
    get = _resilient("get")
    set = _resilient("set")
    touch = _resilient("touch")
    delete = _resilient("delete")
    get_many = _resilient("get_many")
    has_key = _resilient("has_key")
    incr = _resilient("incr")
    set_many = _resilient("set_many")
    delete_many = _resilient("delete_many")

    def clear(self) -> None:
        self._stand_in.clear()
        _resilient("clear")(self)
