"""The hot profile: what serving needs of a person (country, consent, latest item events) kept in
Redis, so that answering for someone seen recently reads Redis instead of the database.

The database stays the record; Redis holds a copy that is filled on a miss and kept current:

* ``id:<key>`` — the person a user id, anonymous id or email resolved to (every spelling a caller
  used is remembered in ``aliases:<person>``, so all of them can be dropped together);
* ``pf:<person>`` — the header: consent decision (``1``, ``0`` or empty for none) and country;
* ``ev:<person>`` — the latest ``EVENTS_KEPT`` item events, oldest first, one list entry each;
* ``gen:<person>`` — bumped by every change, so a fill that read the database before the change
  is refused instead of writing a stale copy;
* ``gone:<person>`` — set when a person is merged into another or erased: a lookup that finds it
  falls back to the database, and no fill may map a key to that person again.

Ingested events are appended to a profile that is in Redis (and only then: a profile is either
whole or absent). Consent, traits, identity changes, merges and erasure drop the copy after their
transaction commits. Both go through the outbox (``profiles.outbox``): written in the transaction
of the change, done at once after the commit, or by the relay once Redis is back, so a change made
while Redis cannot be reached still reaches it. Whatever Redis missed meanwhile is bounded anyway
by the copy's life, ``HOT_PROFILE_SECONDS`` (default ten minutes) after it was copied from the
database however many events were appended since, so that bound holds for the most active person too.

Each operation is one Lua script, one round trip. Without Redis (the embedded default) there is no
hot profile and every read goes to the database; while Redis cannot be reached, reads go to the
database too (``personalization.shared_cache.cache_is_down``).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.core.cache import cache

from personalization.shared_cache import UNREACHABLE, cache_is_down, note_cache_down, redis_client

if TYPE_CHECKING:
    from profiles.recent import RecentEvent

logger = logging.getLogger(__name__)

KINDS = frozenset({"view", "add_to_cart", "purchase", "feature_activated"})  # the kinds serving reads
EVENTS_KEPT = 200
SEPARATOR = "\x1f"


@dataclass(frozen=True, slots=True)
class Found:
    """What one lookup found: the person (None: the key is not mapped), the person's generation,
    and, when the profile is in Redis, the consent decision, country and events."""

    person_id: int | None
    generation: str = "0"
    complete: bool = False
    granted: bool | None = None
    country: str | None = None
    events: tuple[RecentEvent, ...] = ()


_LOOKUP = """
local p = ARGV[1]
local pid = ARGV[3] or redis.call('GET', KEYS[1])
if not pid then return false end
if redis.call('EXISTS', p .. 'gone:' .. pid) == 1 then return false end
local gen = redis.call('GET', p .. 'gen:' .. pid) or '0'
local head = redis.call('GET', p .. 'pf:' .. pid)
if not head then return {pid, gen} end
return {pid, gen, head, redis.call('LRANGE', p .. 'ev:' .. pid, -tonumber(ARGV[2]), -1)}
"""

_REMEMBER_KEY = """
local p, pid = ARGV[1], ARGV[2]
if redis.call('EXISTS', p .. 'gone:' .. pid) == 1 then return 0 end
redis.call('SET', KEYS[1], pid, 'EX', ARGV[3])
redis.call('SADD', p .. 'aliases:' .. pid, KEYS[1])
redis.call('EXPIRE', p .. 'aliases:' .. pid, ARGV[3])
return 1
"""

_FILL = """
local p, pid, ttl = ARGV[1], ARGV[2], ARGV[4]
if (redis.call('GET', p .. 'gen:' .. pid) or '0') ~= ARGV[3] then return 0 end
if redis.call('EXISTS', p .. 'gone:' .. pid) == 1 then return 0 end
redis.call('DEL', p .. 'ev:' .. pid)
if #ARGV > 5 then
  redis.call('RPUSH', p .. 'ev:' .. pid, unpack(ARGV, 6))
  redis.call('EXPIRE', p .. 'ev:' .. pid, ttl)
end
redis.call('SET', p .. 'pf:' .. pid, ARGV[5], 'EX', ttl)
return 1
"""

# ARGV: prefix, ttl, kept, the name of a key that marks this append done ('' for none: it may then
# be done twice), then per person: id, number of events, the events.
_APPEND = """
local p, ttl, kept = ARGV[1], ARGV[2], tonumber(ARGV[3])
if ARGV[4] ~= '' and not redis.call('SET', p .. ARGV[4], '1', 'NX', 'EX', 2 * tonumber(ttl)) then return 0 end
local i = 5
while i <= #ARGV do
  local pid, n = ARGV[i], tonumber(ARGV[i + 1])
  redis.call('INCR', p .. 'gen:' .. pid)
  redis.call('EXPIRE', p .. 'gen:' .. pid, ttl)
  if n > 0 and redis.call('EXISTS', p .. 'pf:' .. pid) == 1 then
    redis.call('RPUSH', p .. 'ev:' .. pid, unpack(ARGV, i + 2, i + 1 + n))
    redis.call('LTRIM', p .. 'ev:' .. pid, -kept, -1)
    redis.call('EXPIRE', p .. 'ev:' .. pid, ttl)
  end
  i = i + 2 + n
end
return 1
"""

# ARGV: prefix, ttl, what (profile | aliases | gone), then person ids.
_DROP = """
local p, ttl, what = ARGV[1], ARGV[2], ARGV[3]
for i = 4, #ARGV do
  local pid = ARGV[i]
  redis.call('INCR', p .. 'gen:' .. pid)
  redis.call('EXPIRE', p .. 'gen:' .. pid, ttl)
  redis.call('DEL', p .. 'pf:' .. pid, p .. 'ev:' .. pid)
  if what ~= 'profile' then
    local aliases = redis.call('SMEMBERS', p .. 'aliases:' .. pid)
    for _, key in ipairs(aliases) do redis.call('DEL', key) end
    redis.call('DEL', p .. 'aliases:' .. pid)
  end
  if what == 'gone' then redis.call('SET', p .. 'gone:' .. pid, '1', 'EX', ttl) end
end
return 1
"""

_scripts: dict[tuple[int, str], Any] = {}


def _script(client: Any, source: str) -> Any:
    """A registered script (EVALSHA, loaded again by redis-py if the server lost it)."""
    found = _scripts.get((id(client), source))
    if found is None:
        found = _scripts[(id(client), source)] = client.register_script(source)
    return found


class Unreachable(Exception):
    """Redis holds hot profiles but cannot be reached now: the change waits in the outbox."""


def enabled() -> bool:
    """Whether there are hot profiles at all (Redis is the cache and ``HOT_PROFILE_SECONDS`` > 0)."""
    return getattr(settings, "HOT_PROFILE_SECONDS", 0) > 0 and redis_client() is not None


def _client() -> Any | None:
    """The client for a read or a best-effort write: None without hot profiles or while Redis is away."""
    if not enabled() or cache_is_down():
        return None
    return redis_client()


def _failed(exc: Exception, what: str) -> None:
    if isinstance(exc, UNREACHABLE):
        note_cache_down(exc)
    logger.warning("%s: %s", what, exc)


def _prefix() -> str:
    return cache.make_key("hot:")


def serves(kinds: Sequence[str], limit: int) -> bool:
    """Whether a read of these kinds and this many events can be answered from the hot profile."""
    return _client() is not None and limit <= EVENTS_KEPT and set(kinds) <= KINDS


def encode_event(item_id: str, timestamp: float, kind: str, quantity: float) -> str:
    # The item id goes last: it is the one field that may hold any character.
    return f"{timestamp!r}{SEPARATOR}{kind}{SEPARATOR}{quantity!r}{SEPARATOR}{item_id}"


def _decode_event(raw: bytes) -> RecentEvent:
    timestamp, kind, quantity, item_id = raw.decode().split(SEPARATOR, 3)
    return item_id, float(timestamp), kind, float(quantity)


def lookup(key: str | None = None, person_id: int | None = None) -> Found | None:
    """What Redis holds for a key (or a known person); None when Redis is not there or not answering."""
    client = _client()
    if client is None:
        return None
    keys, args = (
        ([], [_prefix(), EVENTS_KEPT, person_id])
        if person_id is not None
        else ([_prefix() + "id:" + str(key)], [_prefix(), EVENTS_KEPT])
    )
    try:
        reply = _script(client, _LOOKUP)(keys=keys, args=args)
    except Exception as exc:
        _failed(exc, "Hot profile not read")
        return None
    if not reply:
        return Found(person_id=None)
    person_id, generation = int(reply[0]), reply[1].decode()
    if len(reply) < 3:
        return Found(person_id=person_id, generation=generation)
    granted, _, country = reply[2].decode().partition(SEPARATOR)
    seen: set[RecentEvent] = set()
    events: list[RecentEvent] = []
    for raw in reply[3]:
        event = _decode_event(raw)
        if event not in seen:  # an event appended while a fill was reading the database comes twice
            seen.add(event)
            events.append(event)
    events.sort(key=lambda e: e[1])
    return Found(
        person_id=person_id,
        generation=generation,
        complete=True,
        granted=None if granted == "" else granted == "1",
        country=country or None,
        events=tuple(events),
    )


def remember_key(key: str, person_id: int) -> None:
    client = _client()
    if client is None:
        return
    try:
        _script(client, _REMEMBER_KEY)(
            keys=[_prefix() + "id:" + key], args=[_prefix(), person_id, settings.HOT_PROFILE_SECONDS]
        )
    except Exception as exc:
        _failed(exc, "Hot profile key not kept")


def fill(
    person_id: int, generation: str, granted: bool | None, country: str | None, events: Sequence[RecentEvent]
) -> bool:
    """Keep a copy read from the database, unless the person changed since ``generation`` was read."""
    client = _client()
    if client is None:
        return False
    head = f"{'' if granted is None else int(granted)}{SEPARATOR}{country or ''}"
    encoded = [encode_event(*e) for e in events if e[2] in KINDS][-EVENTS_KEPT:]
    try:
        return bool(
            _script(client, _FILL)(
                args=[_prefix(), person_id, generation, settings.HOT_PROFILE_SECONDS, head, *encoded]
            )
        )
    except Exception as exc:
        _failed(exc, "Hot profile not kept")
        return False


def append(events_by_person: dict[int, list[RecentEvent]], *, done_key: str = "") -> None:
    """Newly stored events, added to the profiles Redis holds (a profile not there stays absent).

    Raises ``Unreachable`` when Redis cannot be reached. ``done_key`` names this append, so that it
    is done once however often it is asked for (the outbox may deliver an entry again)."""
    if not enabled() or not events_by_person:
        return
    client = _client()
    if client is None:
        raise Unreachable("Redis was unreachable a moment ago")
    args: list[Any] = [_prefix(), settings.HOT_PROFILE_SECONDS, EVENTS_KEPT, done_key]
    for person_id, events in events_by_person.items():
        encoded = [encode_event(*e) for e in sorted(events, key=lambda e: e[1]) if e[2] in KINDS and e[0]]
        args += [person_id, len(encoded), *encoded]
    _run(client, _APPEND, args)


def drop(person_ids: Iterable[int], *, what: str = "profile") -> None:
    """Forget the copies of these people: their ``profile``; with ``aliases`` also which keys lead
    to them (an identity changed); ``gone``: they were merged away or erased, for good.

    Raises ``Unreachable`` when Redis cannot be reached."""
    ids = sorted(set(person_ids))
    if not enabled() or not ids:
        return
    client = _client()
    if client is None:
        raise Unreachable("Redis was unreachable a moment ago")
    _run(client, _DROP, [_prefix(), settings.HOT_PROFILE_SECONDS, what, *ids])


def _run(client: Any, source: str, args: list[Any]) -> None:
    try:
        _script(client, source)(args=args)
    except UNREACHABLE as exc:
        note_cache_down(exc)
        raise Unreachable(str(exc)) from exc


def drop_on_commit(person_ids: Iterable[int], *, what: str = "profile") -> None:
    """``drop`` once the current transaction commits (at once outside one), through the outbox: a
    fill racing the change either ran before the drop or finds the generation moved, and a drop
    Redis was not there for is done when it is back."""
    ids = sorted(set(person_ids))
    if ids and enabled():
        from profiles import outbox

        outbox.record(outbox.HOT_PROFILE_DROP, {"people": ids, "what": what})


def forget_keys(keys: Iterable[str]) -> None:
    """Forget which person these user ids, anonymous ids or emails led to (an erasure: the person is
    gone, and no spelling of their keys may stay in Redis)."""
    client = _client()
    names = sorted({_prefix() + "id:" + k for key in keys for k in (key, key.strip().lower())})
    if client is None or not names:
        return
    try:
        client.delete(*names)
    except Exception as exc:
        logger.warning("Hot profile keys not dropped (they expire within %s s): %s", settings.HOT_PROFILE_SECONDS, exc)
