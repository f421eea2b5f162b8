"""Entering people into live journeys: from committed events (one person's or an account's count),
from restocks and price drops, from coming into a saved segment, from the schedule.

Exactly one entry per (journey, person, occurrence): the entry is inserted with ``ON CONFLICT DO
NOTHING`` against that unique constraint, so an outbox entry delivered twice, or two workers
evaluating the same event, enter nobody twice. The re-entry rule (once ever, after the last entry
ended, or every time) is checked under a per-(journey, person) transaction lock, so two different
occurrences arriving at once cannot both pass it.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from django.db import connection, transaction
from django.db.models import F, Q
from django.utils import timezone

from campaigns import conf as campaign_conf
from campaigns import people as campaign_people
from campaigns.account_people import ACCOUNT_TRAITS, account_key, billing_day
from campaigns.rules import parse_rule
from catalog import services as catalog
from journeys import billing_cycle
from journeys.definition import EventFacts, local_time, matches_event
from journeys.models import Entry, EntryState, JourneyStatus, JourneyVersion, Segment, SegmentMember
from profiles.models import Event, Person


def live_versions() -> list[JourneyVersion]:
    """The current version of every live journey."""
    return list(
        JourneyVersion.objects.filter(journey__status=JourneyStatus.LIVE, journey__current_version=F("pk"))
        .select_related("journey")
        .order_by("journey_id")
    )


def any_live(trigger_type: str) -> bool:
    """Is any live journey's trigger of this type? (the catalogue sync asks before writing work)"""
    return any(v.definition["trigger"]["type"] == trigger_type for v in live_versions())


def held_out(journey_key: str, person_id: int, share: float) -> bool:
    """Deterministic: the same person is always in or always out of a journey's holdout."""
    if share <= 0:
        return False
    digest = hashlib.sha256(f"journey-holdout:{journey_key}:{person_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64 < share


def _lock(journey_id: int, who: int | str) -> None:
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))", [f"journey:{journey_id}:{who}"])


def enter(
    version: JourneyVersion,
    person_id: int,
    occurrence: str,
    context: dict[str, Any],
    now: datetime,
    since: datetime | None = None,
    account: str | None = None,
) -> bool:
    """Enter one person for one occurrence, if the re-entry rule allows; True when entered.
    ``since`` is when the trigger happened (an event's time): what the person did after it counts
    for exits and branches even when it was evaluated in the same breath. ``account``: the occurrence
    is the account's (a count per account), so one person of the account enters for it, not each.
    Call inside a transaction."""
    entered_at = min(since, now) if since is not None else now
    journey = version.journey
    definition = version.definition
    rule = definition["reentry"]
    if account is not None:
        _lock(journey.pk, f"account:{account}")
        if Entry.objects.filter(journey_id=journey.pk, occurrence=occurrence[:200]).exists():
            return False
    _lock(journey.pk, person_id)
    theirs = Entry.objects.filter(journey_id=journey.pk, person_id=person_id)
    if theirs.filter(occurrence=occurrence[:200]).exists():  # under the lock: nobody inserts it meanwhile
        return False
    if rule["mode"] == "once" and theirs.exists():
        return False
    if rule["mode"] == "after_exit" and theirs.filter(state=EntryState.ACTIVE).exists():
        return False
    if rule["cooldown_hours"] and theirs.filter(entered_at__gt=now - timedelta(hours=rule["cooldown_hours"])).exists():
        return False
    out = held_out(journey.key, person_id, definition["holdout_share"])
    entry = Entry(
        journey_id=journey.pk,
        version=version,
        person_id=person_id,
        occurrence=occurrence[:200],
        state=EntryState.HELD_OUT if out else EntryState.ACTIVE,
        step="" if out else definition["steps"][0]["id"],
        due_at=None if out else now,
        context=context,
        entered_at=entered_at,
    )
    # ON CONFLICT DO NOTHING against (journey, person, occurrence): a second delivery inserts nothing.
    Entry.objects.bulk_create([entry], ignore_conflicts=True)
    return True


def enter_many(
    version: JourneyVersion, candidates: list[tuple[int, str, dict[str, Any], datetime]], now: datetime
) -> int:
    """:func:`enter` for a batch's occurrences ``(person, occurrence, context, since)``, in order, with
    a fixed number of statements whatever their count: the (journey, person) locks taken in one
    statement (in a fixed order, so two batches cannot wait on each other), the people's entries in
    this journey read in one, the new entries inserted in one. Returns how many entered."""
    if not candidates:
        return 0
    if connection.vendor != "postgresql":
        return sum(enter(version, p, o, c, now, since) for p, o, c, since in candidates)
    journey = version.journey
    definition = version.definition
    rule = definition["reentry"]
    people = sorted({person_id for person_id, _, _, _ in candidates})
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(pg_advisory_xact_lock(hashtextextended(k, 0))) FROM "
            "(SELECT k FROM unnest(%s::text[]) AS k ORDER BY k) AS keys",
            [[f"journey:{journey.pk}:{person_id}" for person_id in people]],
        )
    theirs: dict[int, list[tuple[str, str, datetime]]] = {}
    for person_id, occurrence, state, entered_at in Entry.objects.filter(
        journey_id=journey.pk, person_id__in=people
    ).values_list("person_id", "occurrence", "state", "entered_at"):
        theirs.setdefault(person_id, []).append((occurrence, state, entered_at))
    cooled = now - timedelta(hours=rule["cooldown_hours"]) if rule["cooldown_hours"] else None
    new: list[Entry] = []
    for person_id, occurrence, context, since in candidates:
        occurrence = occurrence[:200]
        known = theirs.setdefault(person_id, [])
        if any(o == occurrence for o, _, _ in known):
            continue
        if rule["mode"] == "once" and known:
            continue
        if rule["mode"] == "after_exit" and any(state == EntryState.ACTIVE for _, state, _ in known):
            continue
        if cooled is not None and any(at > cooled for _, _, at in known):
            continue
        out = held_out(journey.key, person_id, definition["holdout_share"])
        entry = Entry(
            journey_id=journey.pk,
            version=version,
            person_id=person_id,
            occurrence=occurrence,
            state=EntryState.HELD_OUT if out else EntryState.ACTIVE,
            step="" if out else definition["steps"][0]["id"],
            due_at=None if out else now,
            context=context,
            entered_at=min(since, now),
        )
        new.append(entry)
        known.append((occurrence, entry.state, entry.entered_at))
    # ON CONFLICT DO NOTHING against (journey, person, occurrence): a second delivery inserts nothing.
    Entry.objects.bulk_create(new, ignore_conflicts=True)
    return len(new)


def _event_context(event: EventFacts) -> dict[str, Any]:
    return {
        "event": {
            "name": event.name,
            "kind": event.kind,
            "item_id": event.item_id,
            "properties": event.properties,
            "at": event.timestamp,
        }
    }


def _count_bucket(timestamp: float, period_days: int) -> tuple[datetime, datetime, str]:
    period = period_days * 86400
    start = int(timestamp // period) * period
    begins = datetime.fromtimestamp(start, tz=ZoneInfo("UTC"))
    return begins, begins + timedelta(seconds=period), f"count:{begins.date().isoformat()}"


def _count_period(trigger: dict[str, Any], event: EventFacts, account: str | None) -> tuple[datetime, datetime, str]:
    """The period the event is counted in: (start, end, occurrence). A billing cycle is the account's
    (the person's account when counted per person; calendar months when it names none or has no day),
    so its occurrence names the cycle's start and the next cycle's count is a new occurrence."""
    if trigger.get("period") == "billing_cycle":
        day = billing_day(account)
        start = billing_cycle.cycle_start(_time_of(event), day)
        return start, billing_cycle.cycle_end(start, day), f"cycle:{start.date().isoformat()}"
    return _count_bucket(event.timestamp, trigger["period_days"])


def _matching(events: Any, wanted: str, since: datetime, until: datetime) -> Any:
    """Events of the name or kind in [since, until]: up to the event being evaluated, so the count is
    the one it made, whenever it is evaluated."""
    return events.filter(timestamp__gte=since, timestamp__lte=until).filter(
        Q(name__iexact=wanted) | Q(kind=wanted.lower())
    )


def _count_since(person_id: int, wanted: str, since: datetime, until: datetime) -> int:
    return _matching(Event.objects.filter(person_id=person_id), wanted, since, until).count()


def _account_of(person_id: int) -> str | None:
    traits = campaign_people.traits_of([person_id]).get(person_id, {})
    return account_key(traits)


def _account_count_since(account: str, wanted: str, since: datetime, until: datetime) -> int:
    """Events of every person of the account (by the traits that name it, as ``account_key`` reads them)."""
    members = Q()
    for name in ACCOUNT_TRAITS:
        members |= Q(**{f"traits__{name}": account})
    people = Person.objects.filter(members, merged_into__isnull=True).values("pk")
    return _matching(Event.objects.filter(person_id__in=people), wanted, since, until).count()


def _time_of(event: EventFacts) -> datetime:
    return datetime.fromtimestamp(event.timestamp, tz=ZoneInfo("UTC"))


def on_events(events: list[EventFacts], now: datetime | None = None) -> dict[str, int]:
    """Triggers, exits and waits for a batch of committed events. Idempotent."""
    now = now or timezone.now()
    counts = {"entered": 0, "exited": 0, "woken": 0}
    for version in live_versions():
        definition = version.definition
        trigger = definition["trigger"]
        candidates: list[tuple[int, str, dict[str, Any], datetime]] = []
        for event in events:
            exits = [c for c in definition["exit_on"] if matches_event(event, c["event"], c["where"])]
            wakes = [s for s in definition["steps"] if s.get("until_event") and matches_event(event, s["until_event"])]
            if (exits or wakes) and candidates:  # who entered on earlier events of the batch can exit or wake
                counts["entered"] += enter_many(version, candidates, now)
                candidates = []
            for condition in exits:
                counts["exited"] += exit_person(version.journey_id, event, condition["event"], now)
            for step in wakes:
                counts["woken"] += wake(version.journey_id, event, step["until_event"], now)
            if trigger["type"] == "event" and matches_event(event, trigger["event"], trigger["where"]):
                occurrence = f"event:{event.message_id}:{event.position}"
                candidates.append((event.person_id, occurrence, _event_context(event), _time_of(event)))
            elif trigger["type"] == "event_count" and matches_event(event, trigger["event"], trigger["where"]):
                counts["entered"] += _on_count(version, trigger, event, now)
        counts["entered"] += enter_many(version, candidates, now)
    return counts


def _on_count(version: JourneyVersion, trigger: dict[str, Any], event: EventFacts, now: datetime) -> int:
    """An event a count trigger counts: enter when, with it, the count of its period reached the
    threshold, once per person and period (per account: once per account and period)."""
    per_account = trigger.get("per") == "account"
    account = _account_of(event.person_id) if per_account or trigger.get("period") == "billing_cycle" else None
    if per_account and account is None:
        return 0
    since, end, occurrence = _count_period(trigger, event, account)
    # The event's own time, give or take the float's rounding, and never past its period's end.
    until = min(_time_of(event) + timedelta(microseconds=1), end - timedelta(microseconds=1))
    if account is not None and per_account:
        if _account_count_since(account, trigger["event"], since, until) < trigger["threshold"]:
            return 0
        context = {
            **_event_context(event),
            "account": {"id": account, "count": trigger["threshold"], "period_start": since.isoformat()},
        }
        occurrence = f"account:{account}:{occurrence}"
        return int(enter(version, event.person_id, occurrence, context, now, _time_of(event), account=account))
    if _count_since(event.person_id, trigger["event"], since, until) < trigger["threshold"]:
        return 0
    return int(enter(version, event.person_id, occurrence, _event_context(event), now, _time_of(event)))


def exit_person(journey_id: int, event: EventFacts, name: str, now: datetime) -> int:
    """Active entries of the person that began before the event leave, with the reason."""
    at = _time_of(event)
    return Entry.objects.filter(
        journey_id=journey_id, person_id=event.person_id, state=EntryState.ACTIVE, entered_at__lte=at
    ).update(state=EntryState.EXITED, exit_reason=f"exit event: {name}"[:200], step="", due_at=None, updated_at=now)


def wake(journey_id: int, event: EventFacts, name: str, now: datetime) -> int:
    """A wait for this event ends now instead of at its timeout."""
    return Entry.objects.filter(
        journey_id=journey_id,
        person_id=event.person_id,
        state=EntryState.ACTIVE,
        waiting_for=name.lower(),
        due_at__gt=now,
    ).update(due_at=now, waiting_for="", updated_at=now)


def _item_context(item_id: str, item: catalog.ItemFacts | None) -> dict[str, Any]:
    return {
        "id": item_id,
        "title": item.title if item else item_id,
        "price": item.price if item else None,
        "category": item.category if item else "",
        "brand": item.brand if item else "",
    }


def _interested(item_id: str, trigger: dict[str, Any], now: datetime) -> list[int]:
    since = now - timedelta(days=trigger["within_days"])
    interested = (
        Event.objects.filter(item_id=item_id, kind__in=trigger["interest"], timestamp__gte=since)
        .values_list("person_id", flat=True)
        .distinct()
    )
    return sorted(set(interested))


def on_restock(item_ids: Iterable[str], now: datetime | None = None) -> int:
    """People with a recent interest in an item that came back in stock enter, once per person and item."""
    now = now or timezone.now()
    ids = sorted(set(item_ids))
    entered = 0
    facts = catalog.item_facts(ids)
    for version in live_versions():
        trigger = version.definition["trigger"]
        if trigger["type"] != "back_in_stock":
            continue
        for item_id in ids:
            context = {"item": _item_context(item_id, facts.get(item_id))}
            for person_id in _interested(item_id, trigger, now):
                entered += enter(version, person_id, f"item:{item_id}", context, now)
    return entered


def on_price_drop(drops: Iterable[tuple[str, float, float]], now: datetime | None = None) -> int:
    """People with a recent interest in an item whose price fell by at least the trigger's share enter,
    once per person, item and new price (a further drop is a new occurrence)."""
    now = now or timezone.now()
    drops = sorted(set(drops))
    entered = 0
    facts = catalog.item_facts(key for key, _, _ in drops)
    for version in live_versions():
        trigger = version.definition["trigger"]
        if trigger["type"] != "price_drop":
            continue
        for item_id, before, after in drops:
            if before <= 0 or (before - after) / before * 100 < trigger["min_drop_percent"]:
                continue
            item = _item_context(item_id, facts.get(item_id))
            item.update(price=after, price_before=before, drop_percent=round((before - after) / before * 100, 1))
            for person_id in _interested(item_id, trigger, now):
                entered += enter(version, person_id, f"price:{item_id}:{after:.2f}", {"item": item}, now)
    return entered


def on_audiences(now: datetime | None = None, people: Iterable[int] | None = None) -> int:
    """People who came into a saved segment since its last check enter the journeys it triggers, once
    per coming in (someone who leaves the segment and comes back enters again, as re-entry allows).
    Membership is kept per segment a live journey uses (``SegmentMember``).

    ``people``: check only them (those of a batch ingestion just committed, whose events or traits
    may have brought them in or out), with the segment's rule narrowed to them in one query; without
    it, everyone (the periodic check, which catches what time alone changes, such as "last seen")."""
    now = now or timezone.now()
    touched = None if people is None else sorted(set(people))
    if touched is not None and not touched:
        return 0
    entered = 0
    by_segment: dict[str, list[JourneyVersion]] = {}
    for version in live_versions():
        trigger = version.definition["trigger"]
        if trigger["type"] == "audience":
            by_segment.setdefault(trigger["segment"], []).append(version)
    for segment in Segment.objects.filter(key__in=sorted(by_segment)).order_by("key"):
        with transaction.atomic():
            # The periodic check and every batch's check of a segment take turns: each compares the
            # members it reads with the rule under the same lock, so nobody comes in twice.
            _lock(0, f"segment:{segment.pk}")
            audience = campaign_people.audience(parse_rule(segment.rule, "rule"), now)
            members = SegmentMember.objects.filter(segment=segment)
            if touched is not None:
                audience = audience.filter(pk__in=touched)
                members = members.filter(person_id__in=touched)
            now_in = set(audience.values_list("pk", flat=True))
            known = set(members.values_list("person_id", flat=True))
            left = known - now_in
            SegmentMember.objects.filter(segment=segment, person_id__in=left).delete()
            came = sorted(now_in - known)
            SegmentMember.objects.bulk_create(
                [SegmentMember(segment=segment, person_id=pid, since=now) for pid in came], ignore_conflicts=True
            )
            occurrence = f"segment:{segment.key}:{now.isoformat()}"
            for version in by_segment[segment.key]:
                for person_id in came:
                    entered += enter(version, person_id, occurrence, {"segment": segment.key}, now)
    return entered


def _schedule_occurrence(trigger: dict[str, Any], zone: str, now: datetime) -> str | None:
    """The local day, when it is that day's (or that weekday's) hour in the person's time zone."""
    local_now = now.astimezone(ZoneInfo(zone))
    at = local_time(trigger["local_time"], "trigger.local_time")
    start = local_now.replace(hour=at.hour, minute=at.minute, second=0, microsecond=0)
    if not (start <= local_now < start + timedelta(hours=1)):
        return None
    if trigger["every"] == "weekly" and local_now.weekday() != trigger["weekday"]:
        return None
    return f"day:{local_now.date().isoformat()}"


def on_schedule(now: datetime | None = None, chunk: int = 1000, people: Iterable[int] | None = None) -> int:
    """Everyone with an email address whose local time is within the hour after a schedule's time
    enters, once per local day (the beat job runs more often than hourly, so nobody is missed).
    ``people``: only those of them (the demo's sample); the beat job leaves it out."""
    now = now or timezone.now()
    only = None if people is None else sorted(set(people))
    entered = 0
    default_zone = campaign_conf.default_timezone()
    for version in live_versions():
        trigger = version.definition["trigger"]
        if trigger["type"] != "schedule":
            continue
        last = 0
        while True:
            rows = list(
                Person.objects.filter(pk__gt=last, merged_into__isnull=True, traits__has_key="email")
                .filter(**({} if only is None else {"pk__in": only}))
                .order_by("pk")
                .values_list("pk", "traits")[:chunk]
            )
            if not rows:
                break
            last = rows[-1][0]
            with transaction.atomic():
                for person_id, traits in rows:
                    zone = campaign_people.zone_of(traits if isinstance(traits, dict) else {}, default_zone)
                    occurrence = _schedule_occurrence(trigger, zone, now)
                    if occurrence is not None:
                        entered += enter(version, person_id, occurrence, {"local_day": occurrence[4:]}, now)
    return entered
