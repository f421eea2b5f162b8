"""What campaigns read about people straight from the profiles app's tables.

Everything else goes through ``profiles.services``; these are the aggregate questions that need a
query over many people at once (an audience, engagement histories for send-time optimization,
activation counts for onboarding), kept in this one module and read-only.
"""

from __future__ import annotations

import operator
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import reduce
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from django.db.models import Count, Exists, OuterRef, Q, QuerySet
from django.utils import timezone

from campaigns import conf
from campaigns.account_people import ACCOUNT_TRAITS
from campaigns.models import Account
from campaigns.rules import Condition, Rule
from profiles.models import Consent, Event, Person

ACTIVITY_KINDS = ("view", "add_to_cart", "purchase", "search", "page", "feature_activated")
HISTORY = timedelta(days=730)


# --- audiences ---------------------------------------------------------------------------------------------


def _string_match(lookup: str, value: Any) -> Q:
    if isinstance(value, str):
        return Q(**{f"{lookup}__iexact": value})
    return Q(**{lookup: value})


def _event_exists(kind: str | None, days: int | None, now: datetime) -> Exists:
    events = Event.objects.filter(person_id=OuterRef("pk"))
    if kind is not None:
        events = events.filter(kind=kind)
    if days is not None:
        events = events.filter(timestamp__gte=now - timedelta(days=days))
    return Exists(events)


def _trait(name: str, op: str, value: Any) -> Q:
    """A trait condition that is true or false for everyone, never unknown: SQL comparisons with a
    missing key are NULL, and NOT NULL would drop people that Python's reading keeps."""
    lookup = f"traits__{name}"
    defined = Q(traits__has_key=name) & ~Q(**{lookup: None})
    if op in ("ne", "not_in", "not_exists"):
        return ~_trait(name, {"ne": "eq", "not_in": "in", "not_exists": "exists"}[op], value)
    if op == "eq":
        return defined & _string_match(lookup, value)
    if op == "in":
        any_of = Q()
        for option in value:
            any_of |= _string_match(lookup, option)
        return defined & any_of
    if op == "exists":
        return defined & ~Q(**{lookup: ""})
    if op == "contains":
        return defined & Q(**{f"{lookup}__icontains": value})
    return defined & Q(**{f"{lookup}__{op}": value})


def _has(name: str) -> Q:
    return Q(traits__has_key=name) & ~Q(**{f"traits__{name}": None}) & ~Q(**{f"traits__{name}": ""})


def _account_in(keys: list[str]) -> Q:
    """People whose account (the first of ``ACCOUNT_TRAITS`` set, as ``account_key`` reads it) is one of ``keys``."""
    found, earlier = Q(pk__in=[]), Q()
    for name in ACCOUNT_TRAITS:
        found |= earlier & _has(name) & Q(**{f"traits__{name}__in": keys})
        earlier &= ~_has(name)
    return found


def _account(name: str, op: str, value: Any) -> Q:
    if op in ("ne", "not_in", "not_exists"):
        return ~_account(name, {"ne": "eq", "not_in": "in", "not_exists": "exists"}[op], value)
    if op == "exists":
        anything = Q(pk__in=[])
        for trait in ACCOUNT_TRAITS:
            anything |= _has(trait)
        return anything
    options = value if op == "in" else [value]
    if name == "id":
        return _account_in([str(option) for option in options])
    column = {"plan": "plan", "name": "name"}[name]
    matching = Q(pk__in=[])
    for option in options:
        matching |= Q(**{f"{column}__iexact": str(option)})
    return _account_in(list(Account.objects.filter(matching).values_list("external_id", flat=True)))


def _segment(op: str, value: Any) -> Q:
    if op in ("ne", "not_in"):
        return ~_segment({"ne": "eq", "not_in": "in"}[op], value)
    trait = conf.segment_trait()
    found = Q(pk__in=[])
    for option in value if op == "in" else [value]:
        found |= _trait(trait, "eq", option)
        found |= Q(traits__has_key="segments") & Q(traits__segments__contains=[option])
    return found


def _event_count(kind: str, times: int, days: int | None, now: datetime) -> Q:
    events = Event.objects.filter(kind=kind)
    if days is not None:
        events = events.filter(timestamp__gte=now - timedelta(days=days))
    often = events.values("person_id").annotate(n=Count("id")).filter(n__gte=times).values("person_id")
    return Q(pk__in=often)


def _condition(condition: Condition, now: datetime) -> Q:
    op, value, name = condition.op, condition.value, condition.name
    if condition.namespace == "trait":
        return _trait(name, op, value)
    if condition.namespace == "account":
        return _account(name, op, value)
    if condition.field == "segment":
        return _segment(op, value)
    if condition.namespace == "consent":
        granted = Exists(Consent.objects.filter(person_id=OuterRef("pk"), purpose=name, granted=True))
        return Q(granted) if op == "granted" else ~Q(granted)
    if op in ("at_least", "fewer_than"):
        often = _event_count(name, value["times"], value.get("days"), now)
        return often if op == "at_least" else ~often
    if condition.namespace == "affinity":
        column = "category_affinity" if condition.field.startswith("affinity.category.") else "brand_affinity"
        return Q(**{f"profile__{column}__has_key": name}) & Q(**{f"profile__{column}__{name}__{op}": value})
    if condition.field == "price_band":
        if op in ("in", "not_in"):
            found = Q(profile__price_band__in=value)
            return found if op == "in" else ~found
        found = Q(profile__price_band=value)
        return found if op == "eq" else ~found
    kind = name if condition.namespace == "event" else None
    if op in ("ever", "never"):
        exists = _event_exists(kind, None, now)
        return Q(exists) if op == "ever" else ~Q(exists)
    exists = _event_exists(kind, int(value), now)
    return Q(exists) if op == "within_days" else ~Q(exists)


def rule_to_q(rule: Rule, now: datetime | None = None) -> Q:
    """The rule as a filter on people (campaigns never use ``account.*`` fields here)."""
    now = now or timezone.now()
    if isinstance(rule, Condition):
        return _condition(rule, now)
    if rule.kind == "not":
        return ~rule_to_q(rule.parts[0], now)
    if not rule.parts:
        return Q(pk__isnull=False)  # an empty "all" is everyone (an empty Q would vanish inside an "any")
    parts = [rule_to_q(part, now) for part in rule.parts]
    return reduce(operator.and_ if rule.kind == "all" else operator.or_, parts)


def audience(rule: Rule, now: datetime | None = None) -> QuerySet[Person]:
    """Live (not merged away) people matching the rule."""
    return Person.objects.filter(merged_into__isnull=True).filter(rule_to_q(rule, now))


def without_email_consent(people: QuerySet[Person]) -> QuerySet[Person]:
    """Those of ``people`` whose email marketing consent is not granted (never asked, refused or
    unsubscribed): preparation suppresses their messages."""
    granted = Consent.objects.filter(person_id=OuterRef("pk"), purpose="email_marketing", granted=True)
    return people.exclude(Exists(granted))


def audience_count(rule: Rule) -> int:
    return audience(rule).count()


def audience_ids(rule: Rule, exclude_campaign_id: int | None = None, chunk: int = 500) -> Iterator[list[int]]:
    """Audience person ids in ascending chunks; people who already have a message of the campaign
    are skipped, so an interrupted preparation resumes where it stopped."""
    people = audience(rule)
    if exclude_campaign_id is not None:
        people = people.exclude(campaign_messages__campaign_id=exclude_campaign_id)
    last = 0
    while True:
        ids = list(people.filter(pk__gt=last).order_by("pk").values_list("pk", flat=True)[:chunk])
        if not ids:
            return
        yield ids
        last = ids[-1]


# --- facts about people ------------------------------------------------------------------------------------


def zone_of(traits: dict[str, Any], default: str = "UTC") -> str:
    name = traits.get("timezone") or traits.get("tz")
    if isinstance(name, str) and name:
        try:
            ZoneInfo(name)
            return name
        except (ZoneInfoNotFoundError, ValueError):
            pass
    return default


def traits_of(person_ids: Iterable[int]) -> dict[int, dict[str, Any]]:
    ids = list(person_ids)
    return {
        pk: (traits if isinstance(traits, dict) else {})
        for pk, traits in Person.objects.filter(pk__in=ids).values_list("pk", "traits")
    }


def live_person(person_id: int) -> Person | None:
    """The person who holds the history now (following merges)."""
    person = Person.objects.filter(pk=person_id).first()
    seen: set[int] = set()
    while person is not None and person.merged_into_id is not None and person.pk not in seen:
        seen.add(person.pk)
        person = Person.objects.filter(pk=person.merged_into_id).first()
    return person


def event_identity(person_id: int) -> dict[str, Any] | None:
    """The fields an ingested message needs to land on this person: a user id when there is one,
    else an anonymous id, else the email (with a throwaway anonymous id); None when there is nothing."""
    person = live_person(person_id)
    if person is None:
        return None
    identities = dict(person.identities.order_by("created_at").values_list("kind", "value"))
    if identities.get("user_id"):
        return {"userId": identities["user_id"]}
    if identities.get("anonymous_id"):
        return {"anonymousId": identities["anonymous_id"]}
    if identities.get("email"):
        return {"anonymousId": f"campaign-recipient-{person.pk}", "traits": {"email": identities["email"]}}
    return None


# --- engagement histories (send-time optimization) ----------------------------------------------------------


@dataclass
class Engagement:
    opens: list[datetime] = field(default_factory=list)
    clicks: list[datetime] = field(default_factory=list)
    activity: list[datetime] = field(default_factory=list)

    @property
    def empty(self) -> bool:
        return not (self.opens or self.clicks or self.activity)


def engagement(person_ids: Iterable[int], now: datetime | None = None) -> dict[int, Engagement]:
    """Each person's opens, clicks and other activity over the last two years."""
    since = (now or timezone.now()) - HISTORY
    found: dict[int, Engagement] = {}
    ids = list(person_ids)
    for start in range(0, len(ids), 1000):
        rows = (
            Event.objects.filter(person_id__in=ids[start : start + 1000], timestamp__gte=since)
            .filter(kind__in=("email_open", "email_click", *ACTIVITY_KINDS))
            .values_list("person_id", "kind", "timestamp")
            .order_by()
        )
        for person_id, kind, moment in rows:
            record = found.setdefault(person_id, Engagement())
            if kind == "email_open":
                record.opens.append(moment)
            elif kind == "email_click":
                record.clicks.append(moment)
            else:
                record.activity.append(moment)
    return found


def engaged_people(limit: int, now: datetime | None = None) -> list[int]:
    """People who opened or clicked an email in the last year, most recent first (the sample that
    teaches send-time optimization everyone's and each segment's reading pattern)."""
    since = (now or timezone.now()) - timedelta(days=365)
    rows = (
        Event.objects.filter(kind__in=("email_open", "email_click"), timestamp__gte=since)
        .values_list("person_id", flat=True)
        .order_by("person_id")
        .distinct()[:limit]
    )
    return list(rows)


# --- activation counts (onboarding) -------------------------------------------------------------------------


def people_count(peer_trait: str | None = None, peer_value: Any = None) -> int:
    people = Person.objects.filter(merged_into__isnull=True)
    if peer_trait:
        people = people.filter(_string_match(f"traits__{peer_trait}", peer_value))
    return people.count()


def activations(
    item_ids: Iterable[str], kinds: Iterable[str], peer_trait: str | None = None, peer_value: Any = None
) -> dict[str, int]:
    """How many distinct people (optionally only those sharing a trait value) activated each item."""
    ids = list(set(item_ids))
    if not ids:
        return {}
    events = Event.objects.filter(item_id__in=ids, kind__in=list(kinds), timestamp__gte=timezone.now() - HISTORY)
    if peer_trait:
        events = events.filter(_string_match(f"person__traits__{peer_trait}", peer_value))
    rows = events.values("item_id").annotate(n=Count("person_id", distinct=True)).order_by()
    return {row["item_id"]: int(row["n"]) for row in rows}


def activated_by(person_id: int, item_ids: Iterable[str], kinds: Iterable[str]) -> set[str]:
    return set(
        Event.objects.filter(person_id=person_id, item_id__in=list(item_ids), kind__in=list(kinds))
        .values_list("item_id", flat=True)
        .distinct()
    )


def activated_items(kind: str, limit: int = 200) -> list[str]:
    """Items most often activated with events of ``kind`` (the onboarding checklist's candidates)."""
    rows = (
        Event.objects.filter(kind=kind, timestamp__gte=timezone.now() - HISTORY)
        .exclude(item_id="")
        .values("item_id")
        .annotate(n=Count("person_id", distinct=True))
        .order_by("-n")[:limit]
    )
    return [row["item_id"] for row in rows]
