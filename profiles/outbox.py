"""The outbox: work that must follow a commit, kept in PostgreSQL until the broker or Redis takes it.

Ingestion and consent need only the database to answer. What follows them (the profile refresh a
worker does, the hot profile append or drop in Redis) is written as an ``OutboxEntry`` in the same
transaction as the change, so it exists exactly when the change does. After the commit the request
tries to deliver its entry at once; when the broker or Redis is away it leaves it, and the relay
(``relay``: the ``profiles.tasks.relay_outbox`` beat job every 15 seconds, or ``manage.py
relay_outbox``) delivers it once they are back.

Nothing is done twice: whoever delivers an entry first locks it (``SELECT … FOR UPDATE SKIP
LOCKED``), so a relay and a request, or two relays, never hold the same one, and the entry is
deleted in the transaction that held the lock. Only a crash between the delivery and that commit
can deliver an entry again; for that the work is idempotent: a hot profile append is marked done
in Redis by the entry's id, a drop can be repeated, and a profile refresh recomputes from the log.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any

from django.db import transaction
from django.db.models import F
from django.utils import timezone
from kombu.exceptions import OperationalError

from personalization.shared_cache import UNREACHABLE, cache_is_down, note_cache_up
from profiles import hot_profile
from profiles.models import OutboxEntry

logger = logging.getLogger(__name__)

AFTER_INGEST = "after_ingest"  # {"refresh": [person ids], "append": {person id: [events]}, "drop": [person ids]}
HOT_PROFILE_DROP = "hot_profile_drop"  # {"people": [person ids], "what": "profile" | "aliases" | "gone"}
BROKER_RETRY_SECONDS = 5.0

_broker_down_until = 0.0

# Work that other apps hang on this outbox (journeys): an action's performer, and followers of the
# events ingestion commits. They register from their AppConfig.ready, so this app imports none of them.
Performer = Callable[[int, dict[str, Any]], None]
EventFollower = Callable[[Sequence[Any]], "tuple[str, dict[str, Any]] | None"]
_performers: dict[str, Performer] = {}
_event_followers: list[EventFollower] = []


def register_action(action: str, perform: Performer) -> None:
    """``perform(entry_id, payload)`` does the work of ``action``'s entries; it runs in the transaction
    that deletes the entry, and may run again after a crash, so it must be idempotent."""
    _performers[action] = perform


def follow_events(follower: EventFollower) -> None:
    """``follower(rows)`` sees each ingested batch's stored events, as ``(EventRow, person id)``, and
    returns ``(action, payload)`` to record in the batch's transaction, or None."""
    if follower not in _event_followers:
        _event_followers.append(follower)


def record_event_followers(rows: Sequence[Any]) -> None:
    """Called by ingestion in the batch's transaction: what the followers want, as outbox entries."""
    for follower in _event_followers:
        wanted = follower(rows)
        if wanted is not None:
            record(*wanted)


class BrokerUnreachable(Exception):
    """The Celery broker did not take a task: the entry waits for the relay."""


def record(action: str, payload: dict[str, Any]) -> int:
    """Keep ``payload`` for ``action`` in the current transaction; deliver it once that commits."""
    entry = OutboxEntry.objects.create(action=action, payload=payload, created_at=timezone.now())
    transaction.on_commit(partial(deliver_now, entry.pk), robust=True)
    return entry.pk


def deliver_now(entry_id: int) -> bool:
    """Deliver one entry right after its commit, unless its services were away a moment ago (then
    the relay does, without this request waiting on them). Never raises."""
    if cache_is_down() or _broker_is_down():
        return False
    try:
        with transaction.atomic():
            found = (
                OutboxEntry.objects.select_for_update(skip_locked=True)
                .filter(pk=entry_id)
                .values_list("action", "payload")
                .first()
            )
            if found is None:  # the relay has it, or had it
                return False
            _perform(entry_id, *found)
            OutboxEntry.objects.filter(pk=entry_id).delete()
        return True
    except Exception as exc:
        logger.warning("Outbox entry %s left for the relay: %s", entry_id, exc)
        return False


@dataclass
class RelayReport:
    delivered: int = 0
    failed: int = 0
    waiting: int = 0
    stopped_by: str = ""  # why the relay stopped early: the broker or Redis was away


def relay(batch_size: int = 200) -> RelayReport:
    """Deliver waiting entries, oldest first, until none is left or the broker or Redis fails.

    An entry whose work fails for another reason is counted in its ``attempts`` with the error
    (admin → *Outbox entries*) and the relay goes on with the next one."""
    global _broker_down_until
    # The relay is what finds out that the services are back: it always tries.
    _broker_down_until = 0.0
    note_cache_up()
    report = RelayReport()
    skipped: set[int] = set()
    while not report.stopped_by:
        with transaction.atomic():
            entries = list(
                OutboxEntry.objects.select_for_update(skip_locked=True)
                .exclude(pk__in=skipped)
                .order_by("pk")
                .values_list("pk", "action", "payload")[:batch_size]
            )
            if not entries:
                break
            done: list[int] = []
            for entry_id, action, payload in entries:
                try:
                    with transaction.atomic():
                        _perform(entry_id, action, payload)
                except (BrokerUnreachable, hot_profile.Unreachable) as exc:
                    report.stopped_by = str(exc)
                    _count_failure(entry_id, exc)
                    break
                except Exception as exc:
                    logger.exception("Outbox entry %s failed", entry_id)
                    report.failed += 1
                    skipped.add(entry_id)
                    _count_failure(entry_id, exc)
                    continue
                done.append(entry_id)
            OutboxEntry.objects.filter(pk__in=done).delete()
            report.delivered += len(done)
    report.waiting = OutboxEntry.objects.count()
    return report


def _count_failure(entry_id: int, exc: Exception) -> None:
    OutboxEntry.objects.filter(pk=entry_id).update(attempts=F("attempts") + 1, last_error=str(exc)[:500])


def _perform(entry_id: int, action: str, payload: dict[str, Any]) -> None:
    if action == HOT_PROFILE_DROP:
        hot_profile.drop(payload["people"], what=payload["what"])
    elif action == AFTER_INGEST:
        if payload.get("drop"):
            hot_profile.drop(payload["drop"])
        if payload.get("append"):
            events = {int(person): [tuple(e) for e in found] for person, found in payload["append"].items()}
            hot_profile.append(events, done_key=f"outbox:{entry_id}")
        if payload.get("refresh"):
            from profiles.tasks import refresh_profiles

            _publish(refresh_profiles, payload["refresh"])
    elif action in _performers:
        _performers[action](entry_id, payload)
    else:
        raise ValueError(f"Unknown outbox action {action!r}.")


def _broker_is_down() -> bool:
    return time.monotonic() < _broker_down_until


def _publish(task: Any, *args: Any) -> None:
    """Hand a task to the broker in one attempt (Celery would otherwise retry for a while)."""
    global _broker_down_until
    if _broker_is_down():
        raise BrokerUnreachable("The broker was unreachable a moment ago.")
    try:
        task.apply_async(args=list(args), retry=False)
    except (OperationalError, *UNREACHABLE) as exc:
        if not _broker_is_down():
            logger.warning("Broker unreachable, follow-up work waits in the outbox: %s", exc)
        _broker_down_until = time.monotonic() + BROKER_RETRY_SECONDS
        raise BrokerUnreachable(str(exc)) from exc


def forget_outages() -> None:
    """Try the broker again on the next delivery (tests)."""
    global _broker_down_until
    _broker_down_until = 0.0
