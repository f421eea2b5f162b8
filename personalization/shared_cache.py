"""A Redis client made once per thread for the hot path, over the default cache's connection pool.

Django's Redis cache builds a new ``redis.Redis`` object for every operation, and building one
costs about as much as the round trip it makes. Code on the serving path that talks to the cache
on every request (the rate limit, the person lookup) asks here for a client made once, on the
cache's own pool; keys still go through ``cache.make_key``. ``None`` when the cache is not Redis
(the embedded default), so callers fall back to Django's cache API.
"""

from __future__ import annotations

import threading
from typing import Any

from django.core.cache import caches
from django.core.cache.backends.redis import RedisCache

_local = threading.local()


def redis_client() -> Any | None:
    backend = caches["default"]
    memo = getattr(_local, "memo", None)
    if memo is not None and memo[0] is backend:
        return memo[1]
    client = backend._cache.get_client(write=True) if isinstance(backend, RedisCache) else None
    _local.memo = (backend, client)
    return client
