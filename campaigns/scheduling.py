"""When each message goes out: the person's best hour (send-time optimization) or the campaign's fixed
time, deferred past quiet hours, outside the send window and over the frequency caps.

The numbers are ``campaigns/send_time.py`` (Django-free); this module loads what it needs: the
campaign's settings, everyone's and each segment's reading pattern from a sample of engaged people,
each recipient's own history and the messages they already have on the channel.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

import numpy as np
from django.db.models import Q
from django.utils import timezone

from campaigns import conf, people
from campaigns.models import Campaign, Message, MessageState, Reason
from campaigns.send_time import (
    HOURS_PER_WEEK,
    FrequencyCap,
    QuietHours,
    SendLog,
    SendTimeModel,
    SendWindow,
    engagement_counts,
    fit_send_time_model,
    next_allowed_send,
    next_occurrence,
)

# Messages that count against a person's frequency cap when planning (what is already promised)
# and when sending (what has actually gone out).
PLANNED_STATES = (
    MessageState.PENDING_APPROVAL,
    MessageState.APPROVED,
    MessageState.SCHEDULED,
    MessageState.SENDING,
    MessageState.SENT,
    MessageState.OPENED,
    MessageState.CLICKED,
)
SENT_STATES = (MessageState.SENDING, MessageState.SENT, MessageState.OPENED, MessageState.CLICKED)


@dataclass(frozen=True)
class SendPolicy:
    send_at: datetime
    send_until: datetime | None
    quiet_hours: QuietHours | None
    window: SendWindow | None
    cap: FrequencyCap


def _lower(own: int | None, overall: int | None) -> int | None:
    return overall if own is None else own if overall is None else min(own, overall)


def _strictest(per_day: int | None, per_week: int | None) -> FrequencyCap:
    """The campaign's caps within the global frequency policy (``GLOBAL_CAP_PER_DAY`` / ``_WEEK``): the
    lower of each. The caps count every message the person has on the channel, whatever sent it, so
    the policy holds across campaigns and journeys."""
    day, week = conf.global_caps()
    return FrequencyCap(_lower(per_day, day), _lower(per_week, week))


def policy_of(campaign: Campaign, now: datetime | None = None) -> SendPolicy:
    """The campaign's timing settings; raises ``ValueError`` for settings that allow no moment at all."""
    now = now or timezone.now()
    quiet = None
    if (
        campaign.quiet_start is not None
        and campaign.quiet_end is not None
        and campaign.quiet_start != campaign.quiet_end
    ):
        quiet = QuietHours(campaign.quiet_start, campaign.quiet_end)
    window = None
    weekdays = frozenset(int(day) for day in (campaign.window_weekdays or range(7)))
    if campaign.window_start is not None and campaign.window_end is not None:
        window = SendWindow(campaign.window_start, campaign.window_end, weekdays)
    elif weekdays != frozenset(range(7)):
        window = SendWindow(weekdays=weekdays)
    policy = SendPolicy(
        send_at=campaign.send_at or campaign.launched_at or now,
        send_until=campaign.send_until,
        quiet_hours=quiet,
        window=window,
        cap=_strictest(campaign.cap_per_day, campaign.cap_per_week),
    )
    next_allowed_send(now, "UTC", quiet_hours=quiet, window=window)  # refuses an impossible combination
    return policy


# --- the reading patterns -----------------------------------------------------------------------------------


def _counts(history: people.Engagement | None, zone: str, now: datetime) -> np.ndarray:
    if history is None or history.empty:
        return np.zeros(HOURS_PER_WEEK)
    return engagement_counts(zone, opens=history.opens, clicks=history.clicks, activity=history.activity, as_of=now)


def fit_model(now: datetime | None = None, sample: int | None = None) -> SendTimeModel | None:
    """Everyone's and each segment's pattern, from up to ``sample`` people who engaged with email lately;
    None when nobody has yet (there is no best hour to learn: everyone gets the fixed time)."""
    now = now or timezone.now()
    ids = people.engaged_people(sample or conf.send_time_sample(), now)
    if not ids:
        return None
    histories = people.engagement(ids, now)
    traits = people.traits_of(ids)
    trait = conf.segment_trait()
    rows, segments = [], []
    for person_id in ids:
        person_traits = traits.get(person_id, {})
        rows.append(_counts(histories.get(person_id), people.zone_of(person_traits, conf.default_timezone()), now))
        segment = person_traits.get(trait)
        segments.append(str(segment) if segment not in (None, "") else None)
    return fit_send_time_model(np.stack(rows), segments)


# --- one recipient -----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Slot:
    """When to send (None: not before the campaign ends, see ``reason``), and how it was chosen."""

    when: datetime | None
    source: str  # optimized, cold_start or fixed
    reason: str = ""


def _best_occurrence(
    model: SendTimeModel, counts: np.ndarray, segment: str | None, start: datetime, until: datetime | None, zone: str
) -> datetime:
    value = model.patterns(counts[None, :], [segment])[0] @ model.settings.send_value()
    ranked = np.argsort(-value, kind="stable")
    first = next_occurrence(int(ranked[0]), start, zone)
    if until is None or first <= until:
        return first
    # The best hour of the week falls after the campaign ends: take the best hour that comes before.
    for hour in ranked[1:]:
        moment = next_occurrence(int(hour), start, zone)
        if moment <= until:
            return moment
    return first


def plan(
    policy: SendPolicy,
    zone: str,
    *,
    now: datetime,
    model: SendTimeModel | None = None,
    history: people.Engagement | None = None,
    segment: str | None = None,
    sent: Iterable[datetime] = (),
) -> Slot:
    """The moment one message goes out: the best hour (with a model) or the fixed time, then the
    first allowed moment from there. A message that could only go out after the campaign ends is
    not sent, and the reason says which rule held it back."""
    start = max(policy.send_at, now)
    if model is not None:
        counts = _counts(history, zone, now)
        desired = _best_occurrence(model, counts, segment, start, policy.send_until, zone)
        source = "optimized" if counts.any() else "cold_start"
    else:
        desired, source = start, "fixed"
    log = SendLog.from_sends(sent, zone)
    when = next_allowed_send(
        desired, zone, quiet_hours=policy.quiet_hours, window=policy.window, cap=policy.cap, sent=log
    )
    if policy.send_until is None or when <= policy.send_until:
        return Slot(when, source)
    return Slot(None, source, _held_back_by(policy, desired, zone))


def _held_back_by(policy: SendPolicy, desired: datetime, zone: str) -> str:
    until = policy.send_until
    assert until is not None
    if next_allowed_send(desired, zone, quiet_hours=policy.quiet_hours, window=policy.window) <= until:
        return Reason.CAPPED
    if next_allowed_send(desired, zone, quiet_hours=policy.quiet_hours) <= until:
        return Reason.OUTSIDE_WINDOW
    return Reason.QUIET_HOURS


def planned_sends(
    person_ids: Iterable[int], channel: str, exclude_message: int | None = None
) -> dict[int, list[datetime]]:
    """What each person already has on the channel (sent, or promised), for the frequency cap."""
    found: dict[int, list[datetime]] = {}
    rows = Message.objects.filter(person_id__in=list(person_ids), channel=channel, state__in=PLANNED_STATES)
    if exclude_message is not None:
        rows = rows.exclude(pk=exclude_message)
    for person_id, sent_at, scheduled_for in rows.values_list("person_id", "sent_at", "scheduled_for"):
        moment = sent_at or scheduled_for
        if moment is not None:
            found.setdefault(person_id, []).append(moment)
    return found


def sent_before(person_id: int, channel: str, exclude_message: int) -> list[datetime]:
    """What has actually gone out (or is going out right now) to the person on the channel."""
    rows = (
        Message.objects.filter(person_id=person_id, channel=channel, state__in=SENT_STATES)
        .exclude(pk=exclude_message)
        .filter(Q(sent_at__isnull=False) | Q(claimed_at__isnull=False))
        .values_list("sent_at", "claimed_at")
    )
    moments: list[datetime] = []
    for sent_at, claimed_at in rows:
        moment = sent_at or claimed_at
        if moment is not None:
            moments.append(moment)
    return moments


def allowed_now(policy: SendPolicy, zone: str, now: datetime, sent: Iterable[datetime]) -> Slot:
    """At sending: may it go now? Otherwise the next allowed moment (or the reason it never can)."""
    log = SendLog.from_sends(sent, zone)
    when = next_allowed_send(now, zone, quiet_hours=policy.quiet_hours, window=policy.window, cap=policy.cap, sent=log)
    if policy.send_until is not None and when > policy.send_until:
        return Slot(None, "deferred", _held_back_by(policy, now, zone))
    return Slot(when, "now" if when - now < timedelta(seconds=1) else "deferred")
