"""The console's people search: by email, user id or anonymous id, exact or by prefix.

Every lookup reads an index: one range scan per kind of key, on PostgreSQL over
``identity_kind_value_prefix`` (``(kind, value COLLATE "C")``, migration 0007), which holds both the
range of ``LIKE 'prefix%'`` and its order under any database collation, so each scan stops after the
rows of the page asked for, a one-letter prefix over millions of anonymous ids as cheap as a long one.
A one-character query matches exactly only (``MIN_PREFIX``). Exact matches come first, then user ids, emails and
anonymous ids in key order. No total is counted: pages go on while there is a next one, up to
``MAX_PAGE`` (past it, the search is to be narrowed).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime

from django.conf import settings
from django.db import connection
from django.db.models import F, QuerySet
from django.db.models.functions import Collate

from profiles.models import Consent, Identity, IdentityKind, Person, Profile, Purpose

PAGE_SIZE = 25
MAX_PAGE = 40
# A one-character query matches exactly only: as a prefix it names nobody in particular.
MIN_PREFIX = 2
# The order of kinds among prefix matches (a user id is what support is usually given).
KIND_ORDER = (IdentityKind.USER_ID, IdentityKind.EMAIL, IdentityKind.ANONYMOUS_ID)


@dataclass(frozen=True)
class ConsentMark:
    purpose: str
    label: str
    granted: bool
    explicit: bool  # False: nobody asked them, the default holds


@dataclass
class PersonRow:
    person_id: int
    matched: str  # "user id ann-1", "email ann@…", or "" when listing without a query
    email: str = ""
    user_id: str = ""
    anonymous_ids: int = 0
    name: str = ""
    last_seen_at: datetime | None = None
    created_at: datetime | None = None
    consents: list[ConsentMark] = field(default_factory=list)


@dataclass
class SearchPage:
    query: str
    page: int
    rows: list[PersonRow]
    has_next: bool
    too_deep: bool = False  # past MAX_PAGE: narrow the search

    @property
    def exact_only(self) -> bool:
        return 0 < len(self.query) < MIN_PREFIX

    @property
    def has_previous(self) -> bool:
        return self.page > 1


def _by_key(identities: QuerySet) -> QuerySet:
    """Identities with ``key``: their value compared byte by byte, as the prefix index holds it on
    PostgreSQL (migration 0007); SQLite compares bytes already."""
    if connection.vendor == "postgresql":
        return identities.annotate(key=Collate("value", "C"))
    return identities.annotate(key=F("value"))


def _candidates(query: str, want: int, within: QuerySet | None) -> list[tuple[int, str, str]]:
    """(person id, kind, value) of identities matching ``query``: exact ones first, then prefix ones
    per kind in index order; at most ``want`` per kind."""
    exact: list[tuple[int, str, str]] = []
    prefixed: list[tuple[int, str, str]] = []
    for kind in KIND_ORDER:
        value = query.lower() if kind == IdentityKind.EMAIL else query
        base = Identity.objects.filter(kind=kind)
        if within is not None:
            base = base.filter(person_id__in=within)
        exact += [(p, kind, value) for p in base.filter(value=value).values_list("person_id", flat=True)[:1]]
        if len(query) < MIN_PREFIX:
            continue
        rows = (
            _by_key(base)
            .filter(key__startswith=value)  # Django escapes % and _
            .exclude(value=value)
            .order_by("kind", "key")
            .values_list("person_id", "value")[:want]
        )
        prefixed += [(p, kind, v) for p, v in rows]
    return exact + prefixed


def _describe(kind: str) -> str:
    return dict(IdentityKind.choices).get(kind, kind).lower()


def search_people(query: str, page: int = 1, within: QuerySet | None = None, per_page: int = PAGE_SIZE) -> SearchPage:
    """One page of the people whose user id, email or anonymous id is ``query`` or starts with it; with
    an empty query, the newest people. ``within`` (a queryset of person ids) narrows it, e.g. to a
    CSM's accounts."""
    query = query.strip()[:255]
    page = max(1, page)
    if page > MAX_PAGE:
        return SearchPage(query, page, [], has_next=False, too_deep=True)
    start = (page - 1) * per_page
    if not query:
        people = Person.objects.filter(merged_into=None)
        if within is not None:
            people = people.filter(pk__in=within)
        ids = list(people.order_by("-pk").values_list("pk", flat=True)[start : start + per_page + 1])
        matched = {pid: "" for pid in ids}
    else:
        # Twice what the page needs: one person may match by several keys.
        found = _candidates(query, 2 * (start + per_page + 1), within)
        matched = {}
        for person_id, kind, value in found:
            matched.setdefault(person_id, f"{_describe(kind)} {value}")
        ids = list(matched)[start : start + per_page + 1]
    has_next = len(ids) > per_page
    ids = ids[:per_page]
    return SearchPage(query, page, describe_people(ids, matched), has_next)


def consent_marks(person_ids: Iterable[int]) -> dict[int, list[ConsentMark]]:
    """Each person's answer per purpose, the default where they never said anything."""
    ids = list(person_ids)
    stored: dict[tuple[int, str], bool] = {
        (c["person_id"], c["purpose"]): c["granted"]
        for c in Consent.objects.filter(person_id__in=ids).values("person_id", "purpose", "granted")
    }
    labels = dict(Purpose.choices)
    marks: dict[int, list[ConsentMark]] = {}
    for pid in ids:
        marks[pid] = []
        for purpose in Purpose.values:
            granted = stored.get((pid, purpose))
            explicit = granted is not None
            if granted is None:
                granted = settings.CONSENT_DEFAULTS[purpose]
            marks[pid].append(ConsentMark(purpose, labels[purpose], granted, explicit))
    return marks


def describe_people(person_ids: list[int], matched: dict[int, str] | None = None) -> list[PersonRow]:
    """Who each person is, for a list: email, user id, name, last seen, consent; four queries a page."""
    if not person_ids:
        return []
    people = {p.pk: p for p in Person.objects.filter(pk__in=person_ids).only("pk", "traits", "created_at")}
    rows = {
        pid: PersonRow(pid, (matched or {}).get(pid, ""), created_at=people[pid].created_at)
        for pid in person_ids
        if pid in people
    }
    identities = Identity.objects.filter(person_id__in=person_ids).order_by("created_at", "id")
    for pid, kind, value in identities.values_list("person_id", "kind", "value"):
        row = rows.get(pid)
        if row is None:
            continue
        if kind == IdentityKind.EMAIL and not row.email:
            row.email = value
        elif kind == IdentityKind.USER_ID and not row.user_id:
            row.user_id = value
        elif kind == IdentityKind.ANONYMOUS_ID:
            row.anonymous_ids += 1
    for pid, seen in Profile.objects.filter(person_id__in=person_ids).values_list("person_id", "last_seen_at"):
        if pid in rows:
            rows[pid].last_seen_at = seen
    marks = consent_marks(rows)
    for pid, row in rows.items():
        traits = people[pid].traits if isinstance(people[pid].traits, dict) else {}
        row.email = row.email or str(traits.get("email") or "")
        row.name = " ".join(str(traits[k]) for k in ("first_name", "last_name") if traits.get(k)) or str(
            traits.get("name") or ""
        )
        row.consents = marks[pid]
    return list(rows.values())
