"""Advancing due entries: many workers at once, none doing another's work, none losing any.

A worker claims a batch of due entries with ``SELECT … FOR UPDATE SKIP LOCKED`` (the ``entry_due``
index on (state, due_at)) and runs each one's steps until it waits or ends, all in the batch's
transaction: the step records (unique per entry and step, written in one insert for the batch),
the messages a send step creates (unique per entry and step), and the entries' next steps and due
times (one update for the batch) commit together. Another worker
skips the locked rows and takes the next batch. A worker killed mid-batch commits nothing: its
locks go with its connection and the same entries are advanced by the next worker, once.
Emails are handed to the mail server afterwards by the campaign sender, which sends each message
exactly once (``campaigns.delivery``).
"""

from __future__ import annotations

import json
import logging
import time as clock
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from django.db import connection, transaction
from django.db.models import Q
from django.utils import timezone

from campaigns import conf as campaign_conf
from campaigns import people as campaign_people
from journeys import sending
from journeys.definition import local_time
from journeys.models import Entry, EntryState, Journey, JourneyStatus, JourneyVersion, StepRun, SurfacePin
from journeys.segments import segments_holding
from profiles import services as profiles
from profiles.models import Event

logger = logging.getLogger(__name__)

RETRY_AFTER = timedelta(minutes=5)


@dataclass
class AdvanceReport:
    advanced: int = 0
    failed: int = 0
    batches: int = 0
    messages: list[int] = field(default_factory=list)  # created and due now: the caller may send them at once


# One statement claims a batch: the live journeys' ids are read once (an InitPlan), so the locking
# part is an ordered scan of the ``entry_due`` index on (state, due_at) that stops after the batch
# (a join there makes PostgreSQL sort every due row); the people's traits come with the rows (the
# trait branches and local-time waits read them), unlocked.
_CLAIM = (
    "WITH claimed AS ("
    " SELECT e.id FROM journeys_entry e"
    " WHERE e.state = 'active' AND e.due_at <= %s"
    " AND e.journey_id = ANY (ARRAY(SELECT j.id FROM journeys_journey j WHERE j.status = 'live'))"
    " ORDER BY e.due_at LIMIT %s FOR UPDATE OF e SKIP LOCKED)"
    " SELECT e.id, e.journey_id, e.version_id, e.person_id, e.occurrence, e.state, e.step, e.due_at,"
    " e.waiting_for, e.context::text, e.exit_reason, e.entered_at, e.updated_at, p.traits::text"
    " FROM claimed JOIN journeys_entry e ON e.id = claimed.id LEFT JOIN profiles_person p ON p.id = e.person_id"
    " ORDER BY e.due_at, e.id"
)
# Read again entries this transaction is to run one by one (after a failed batch), locking them
# again and skipping any another worker took meanwhile or that is no longer due.
_RECLAIM = (
    "WITH claimed AS ("
    " SELECT e.id FROM journeys_entry e WHERE e.id = ANY(%s) AND e.state = 'active' AND e.due_at <= %s"
    " FOR UPDATE OF e SKIP LOCKED)"
    " SELECT e.id, e.journey_id, e.version_id, e.person_id, e.occurrence, e.state, e.step, e.due_at,"
    " e.waiting_for, e.context::text, e.exit_reason, e.entered_at, e.updated_at, p.traits::text"
    " FROM claimed JOIN journeys_entry e ON e.id = claimed.id LEFT JOIN profiles_person p ON p.id = e.person_id"
    " ORDER BY e.due_at, e.id"
)
VERSIONS_KEPT_SECONDS = 60.0  # a version never changes; its journey's name or status may, so kept briefly
_versions: dict[int, tuple[float, JourneyVersion]] = {}


def _versions_of(ids: set[int]) -> dict[int, JourneyVersion]:
    """The batch's journey versions (with their journeys), read once a minute per process, not per batch."""
    now = clock.monotonic()
    found = {pk: kept[1] for pk in ids if (kept := _versions.get(pk)) and now - kept[0] < VERSIONS_KEPT_SECONDS}
    missing = ids - set(found)
    if missing:
        for pk, version in JourneyVersion.objects.select_related("journey").in_bulk(missing).items():
            _versions[pk] = (now, version)
            found[pk] = version
    return found


def _claim(
    moment: datetime, batch_size: int, pks: list[int] | None = None
) -> tuple[list[Entry], dict[int, dict[str, Any]]]:
    """Lock a batch of due entries of live journeys (or, with ``pks``, those of them still due and not
    taken by another worker) in one statement. Returns the entries and their people's traits."""
    if connection.vendor != "postgresql":
        return _claim_portably(moment, batch_size, pks)
    with connection.cursor() as cursor:
        if pks is None:
            cursor.execute(_CLAIM, [moment, batch_size])
        else:
            cursor.execute(_RECLAIM, [pks, moment])
        rows = cursor.fetchall()
    entries: list[Entry] = []
    traits: dict[int, dict[str, Any]] = {}
    for row in rows:
        pk, journey, version, person, occurrence, state, step, due, waiting, context, reason, entered, at = row[:13]
        entries.append(
            Entry(
                id=pk,
                journey_id=journey,
                version_id=version,
                person_id=person,
                occurrence=occurrence,
                state=state,
                step=step,
                due_at=due,
                waiting_for=waiting,
                context=json.loads(context) if context else {},
                exit_reason=reason,
                entered_at=entered,
                updated_at=at,
            )
        )
        found = json.loads(row[13]) if row[13] else {}
        traits[person] = found if isinstance(found, dict) else {}
    _attach_versions(entries)
    return entries, traits


def _claim_portably(
    moment: datetime, batch_size: int, pks: list[int] | None
) -> tuple[list[Entry], dict[int, dict[str, Any]]]:
    live = list(Journey.objects.filter(status=JourneyStatus.LIVE).values_list("pk", flat=True))
    due = Entry.objects.select_for_update(skip_locked=True, of=("self",)).filter(
        state=EntryState.ACTIVE, due_at__lte=moment
    )
    if pks is not None:
        entries = list(due.filter(pk__in=pks).order_by("due_at", "pk"))
    else:
        entries = list(due.filter(journey_id__in=live).order_by("due_at")[:batch_size])
    _attach_versions(entries)
    return entries, campaign_people.traits_of({e.person_id for e in entries})


def _attach_versions(entries: list[Entry]) -> None:
    versions = _versions_of({e.version_id for e in entries})
    for entry in entries:  # one definition per version for the batch, not one per entry
        entry.version = versions[entry.version_id]
        entry.journey = entry.version.journey


def advance_due(batch_size: int = 500, now: datetime | None = None, budget_seconds: float = 45.0) -> AdvanceReport:
    """Advance due entries of live journeys in batches until none is due or the time budget is spent.

    A batch is one transaction of few statements: the claim (which brings the people's traits), the
    exit events when its journeys have exit conditions, what its send or surface steps do, and one
    statement writing its step records and its entries' new positions. When anything in it fails,
    the batch's transaction is rolled back and its entries are run again one by one, each in its
    own savepoint, so one failing entry holds up no other."""
    report = AdvanceReport()
    started = clock.monotonic()
    while clock.monotonic() - started < budget_seconds:
        moment = now or timezone.now()
        pks: list[int] = []
        try:
            with transaction.atomic():
                entries, traits = _claim(moment, batch_size)
                if not entries:
                    break
                pks = [e.pk for e in entries]
                preparations = sending.Preparations(moment)
                exits = exit_events(entries)
                writes = BatchWrites(entries, traits)
                messages = [
                    m for entry in entries for m in run_entry(entry, moment, preparations, exits.get(entry.pk), writes)
                ]
                writes.flush()
            report.messages.extend(messages)
            report.advanced += len(entries)
        except Exception:
            if not pks:
                raise
            logger.warning("A batch of %d journey entries failed; running them one by one", len(pks))
            with transaction.atomic():
                entries, traits = _claim(moment, batch_size, pks)
                _one_by_one(entries, traits, moment, exit_events(entries), report)
        report.batches += 1
    return report


def _one_by_one(
    entries: list[Entry],
    traits: dict[int, dict[str, Any]],
    moment: datetime,
    exits: dict[int, str],
    report: AdvanceReport,
) -> None:
    preparations = sending.Preparations(moment)
    for entry in entries:
        try:
            with transaction.atomic():
                writes = BatchWrites([entry], traits)
                messages = run_entry(entry, moment, preparations, exits.get(entry.pk), writes)
                writes.flush()
            report.messages.extend(messages)
            report.advanced += 1
        except Exception:
            logger.exception("Journey entry %s failed; it is tried again later", entry.pk)
            report.failed += 1
            Entry.objects.filter(pk=entry.pk).update(due_at=moment + RETRY_AFTER)


class BatchWrites:
    """What a batch's steps write, kept until :meth:`flush`: the step records (``ON CONFLICT DO
    NOTHING`` against (entry, step)) and the entries' new positions, both in one statement. Also
    the batch's people's traits (given by the claim, or read once on first need) for the trait
    branches and local-time waits."""

    FIELDS = ("state", "step", "due_at", "waiting_for", "exit_reason", "context", "updated_at")

    def __init__(self, entries: list[Entry], traits: dict[int, dict[str, Any]] | None = None) -> None:
        self._people = sorted({e.person_id for e in entries})
        self._traits = traits
        self.runs: list[tuple[int, str, str, str, int | None, datetime]] = []
        self.moved: dict[int, Entry] = {}

    def traits(self, person_id: int) -> dict[str, Any]:
        if self._traits is None:
            self._traits = campaign_people.traits_of(self._people)
        return self._traits.get(person_id, {})

    def record(self, entry: Entry, step: dict[str, Any], outcome: str, now: datetime, message_id: int | None) -> None:
        self.runs.append((entry.pk, step["id"], step["type"], outcome[:200], message_id, now))

    def move(self, entry: Entry, now: datetime) -> None:
        entry.updated_at = now
        self.moved[entry.pk] = entry

    def flush(self) -> None:
        if connection.vendor != "postgresql":
            if self.runs:
                StepRun.objects.bulk_create(
                    [
                        StepRun(entry_id=e, step=s, kind=k, outcome=o, message_id=m, ran_at=at)
                        for e, s, k, o, m, at in self.runs
                    ],
                    ignore_conflicts=True,
                )
            if self.moved:
                Entry.objects.bulk_update(list(self.moved.values()), list(self.FIELDS))
        elif self.runs or self.moved:
            _write(self.runs, list(self.moved.values()))
        self.runs, self.moved = [], {}


# The batch's step records and its entries' new positions in one statement, from arrays (Django's
# bulk update writes a CASE per column whose cost grows with the square of the batch). A step
# record already there (ON CONFLICT DO NOTHING) is one an earlier, committed advance wrote.
_WRITE = (
    "WITH runs AS ("
    " INSERT INTO journeys_steprun (entry_id, step, kind, outcome, message_id, ran_at)"
    " SELECT * FROM unnest(%s::bigint[], %s::text[], %s::text[], %s::text[], %s::bigint[], %s::timestamptz[])"
    " ON CONFLICT (entry_id, step) DO NOTHING)"
    " UPDATE journeys_entry AS e SET state = v.state, step = v.step, due_at = v.due_at,"
    " waiting_for = v.waiting_for, exit_reason = v.exit_reason, context = v.context, updated_at = v.updated_at"
    " FROM unnest(%s::bigint[], %s::text[], %s::text[], %s::timestamptz[], %s::text[], %s::text[],"
    " %s::jsonb[], %s::timestamptz[])"
    " AS v(id, state, step, due_at, waiting_for, exit_reason, context, updated_at)"
    " WHERE e.id = v.id"
)


def _write(runs: list[tuple[int, str, str, str, int | None, datetime]], entries: list[Entry]) -> None:
    columns = [list(column) for column in zip(*runs, strict=True)] if runs else [[] for _ in range(6)]
    with connection.cursor() as cursor:
        cursor.execute(
            _WRITE,
            [
                *columns,
                [e.pk for e in entries],
                [e.state for e in entries],
                [e.step for e in entries],
                [e.due_at for e in entries],
                [e.waiting_for for e in entries],
                [e.exit_reason for e in entries],
                [json.dumps(e.context) for e in entries],
                [e.updated_at for e in entries],
            ],
        )


def exit_events(entries: list[Entry]) -> dict[int, str]:
    """For a batch: each entry for which an exit condition happened since it began (the outbox
    usually ended those first; this covers an event whose outbox entry has not been delivered yet).
    One query for the whole batch."""
    names = {c["event"].lower() for e in entries for c in e.version.definition["exit_on"]}
    if not names:
        return {}
    wanted = Q()
    for name in names:
        wanted |= Q(name__iexact=name) | Q(kind=name)
    rows = (
        Event.objects.filter(
            person_id__in={e.person_id for e in entries}, timestamp__gte=min(e.entered_at for e in entries)
        )
        .filter(wanted)
        .values_list("person_id", "name", "kind", "properties", "timestamp")
    )
    by_person: dict[int, list[tuple[str, str, dict[str, Any], datetime]]] = {}
    for person_id, name, kind, properties, timestamp in rows:
        by_person.setdefault(person_id, []).append((name.lower(), kind, properties or {}, timestamp))
    found: dict[int, str] = {}
    for entry in entries:
        for condition in entry.version.definition["exit_on"]:
            wanted_name = condition["event"].lower()
            if any(
                (name == wanted_name or kind == wanted_name)
                and at >= entry.entered_at
                and all(properties.get(k) == v for k, v in condition["where"].items())
                for name, kind, properties, at in by_person.get(entry.person_id, [])
            ):
                found[entry.pk] = condition["event"]
                break
    return found


def _did(entry: Entry, wanted: str) -> bool:
    events = Event.objects.filter(person_id=entry.person_id, timestamp__gte=entry.entered_at)
    return (events.filter(name__iexact=wanted) | events.filter(kind=wanted.lower())).exists()


def condition_holds(entry: Entry, condition: dict[str, Any], writes: BatchWrites | None = None) -> bool:
    if "did_event" in condition:
        return _did(entry, condition["did_event"])
    if "did_not_event" in condition:
        return not _did(entry, condition["did_not_event"])
    if "trait" in condition:
        writes = writes or BatchWrites([entry])
        return writes.traits(entry.person_id).get(condition["trait"]) == condition["equals"]
    if "consent" in condition:
        return profiles.has_consent(entry.person_id, condition["consent"])
    if "segment" in condition:  # a segment deleted since the journey was saved: nobody is in it
        return condition["segment"] in segments_holding(entry.person_id, [condition["segment"]])
    return False


def _next_local_time(entry: Entry, at: str, now: datetime, writes: BatchWrites) -> datetime:
    traits = writes.traits(entry.person_id)
    zone = ZoneInfo(campaign_people.zone_of(traits, campaign_conf.default_timezone()))
    wanted = local_time(at, "until_local_time")
    local_now = now.astimezone(zone)
    candidate = local_now.replace(hour=wanted.hour, minute=wanted.minute, second=0, microsecond=0)
    if candidate <= local_now:
        candidate += timedelta(days=1)
    return candidate.astimezone(ZoneInfo("UTC"))


def pin_on_surface(entry: Entry, step: dict[str, Any], now: datetime) -> None:
    """The person's checklist shows the step's item first, with the journey's note (once per item)."""
    SurfacePin.objects.update_or_create(
        person_id=entry.person_id,
        surface=step["surface"],
        item_id=step["item"],
        defaults={"note": step.get("note", ""), "entry": entry, "pinned_at": now},
    )


def _finish(entry: Entry, writes: BatchWrites, now: datetime, state: str, reason: str = "") -> None:
    entry.state, entry.step, entry.due_at, entry.waiting_for = state, "", None, ""
    entry.exit_reason = reason[:200]
    writes.move(entry, now)


def run_entry(
    entry: Entry,
    now: datetime,
    preparations: sending.Preparations,
    exit_event: str | None = None,
    writes: BatchWrites | None = None,
) -> list[int]:
    """Run an entry's steps from its current one until it waits or ends. Returns the messages
    created that are due now. ``exit_event``: an exit condition that happened since the entry began
    (:func:`exit_events`). Call with the entry's row locked, inside a transaction. The step records
    and the entry's new position go into ``writes`` (written at its flush; without one, at the end).
    A step record already there (ON CONFLICT DO NOTHING) means an earlier advance ran the step and
    committed; what this run did again is idempotent (a send finds its message by origin)."""
    if writes is None:
        writes = BatchWrites([entry])
        due = run_entry(entry, now, preparations, exit_event, writes)
        writes.flush()
        return due
    definition = entry.version.definition
    steps = definition["steps"]
    position = {step["id"]: index for index, step in enumerate(steps)}
    due_messages: list[int] = []
    if exit_event is not None:
        _finish(entry, writes, now, EntryState.EXITED, f"exit event: {exit_event}")
        return due_messages
    while entry.step:
        index = position.get(entry.step)
        if index is None:  # cannot happen with a validated definition; never loop on it
            _finish(entry, writes, now, EntryState.EXITED, f"unknown step {entry.step}")
            return due_messages
        step = steps[index]
        following = steps[index + 1]["id"] if index + 1 < len(steps) else ""
        kind = step["type"]
        if kind == "wait":
            entry.step = following
            if "seconds" in step:
                entry.due_at = now + timedelta(seconds=step["seconds"])
            elif "until_local_time" in step:
                entry.due_at = _next_local_time(entry, step["until_local_time"], now, writes)
            else:
                entry.due_at = now + timedelta(seconds=step["timeout_seconds"])
                entry.waiting_for = step["until_event"].lower()
            writes.record(entry, step, f"waits until {entry.due_at.isoformat()}", now, None)
            if not entry.step:
                _finish(entry, writes, now, EntryState.DONE)
            else:
                writes.move(entry, now)
            return due_messages
        entry.waiting_for = ""
        if kind == "branch":
            holds = condition_holds(entry, step["if"], writes)
            entry.step = step["then"] if holds else step["else"]
            writes.record(entry, step, "then" if holds else "else", now, None)
        elif kind == "require_approval":
            entry.context = {**entry.context, "approval": step["id"]}
            entry.step = following
            writes.record(entry, step, "the next send waits for approval", now, None)
        elif kind == "send_email":
            message = sending.send(entry, step, preparations, needs_approval=bool(entry.context.get("approval")))
            if message is None:
                writes.record(entry, step, "no message: the campaign or the person is gone", now, None)
            elif isinstance(message, str):
                writes.record(entry, step, message, now, None)
            else:
                outcome = message.state + (f": {message.reason}" if message.reason else "")
                writes.record(entry, step, outcome, now, message.pk)
                if message.state == "scheduled" and message.scheduled_for and message.scheduled_for <= now:
                    due_messages.append(message.pk)
            entry.context = {k: v for k, v in entry.context.items() if k != "approval"}
            entry.step = following
        elif kind == "update_surface":
            if "item" in step:
                pin_on_surface(entry, step, now)
                writes.record(entry, step, f"shown first on {step['surface']}: {step['item']}", now, None)
            else:
                shown = sending.send(entry, step, preparations, needs_approval=False)
                if shown is None or isinstance(shown, str):
                    writes.record(entry, step, "no message: the campaign or the person is gone", now, None)
                else:
                    writes.record(entry, step, f"{step['surface']}: {shown.state}", now, shown.pk)
                    if shown.state == "scheduled" and shown.scheduled_for and shown.scheduled_for <= now:
                        due_messages.append(shown.pk)
            entry.step = following
        elif kind == "exit":
            writes.record(entry, step, "exited", now, None)
            _finish(entry, writes, now, EntryState.EXITED, f"exit step {step['id']}")
            return due_messages
    _finish(entry, writes, now, EntryState.DONE)
    return due_messages
