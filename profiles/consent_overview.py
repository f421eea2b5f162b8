"""The consent overview: each purpose's share of people who may be reached for it, per day, and the
latest changes.

A day's share is (people who said yes + people who never said anything, when the purpose's default is
yes) / people known by the end of that day. It is rebuilt from the history in one grouped query:
each change is compared with the same person's previous one for the purpose (a window ``LAG``), so a
day contributes "+1 said something for the first time" and "+1/−1 now granted"; running sums give
every day. People merged away are not counted (their history moved to the survivor); erased people
are gone from both sides.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from django.conf import settings
from django.core.cache import cache
from django.db import connection
from django.db.models import Count, F, Window
from django.db.models.functions import Lag, TruncDate
from django.utils import timezone

from profiles.models import Consent, ConsentChange, Identity, IdentityKind, Person, Purpose

CHANGES_PAGE = 50
CACHE_SECONDS = 300
PURPOSE_LABELS = dict(Purpose.choices)


@dataclass(frozen=True)
class PurposeNow:
    purpose: str
    label: str
    people: int
    granted: int  # may be reached: said yes, or never said anything and the default is yes
    said_yes: int
    said_no: int
    default: bool

    @property
    def share(self) -> float | None:
        return self.granted / self.people if self.people else None


@dataclass(frozen=True)
class ChangeRow:
    at: datetime
    person_id: int
    who: str  # the person's email or user id
    purpose: str
    label: str
    granted: bool
    source: str
    recorded_by: str


def shares_now() -> list[PurposeNow]:
    people = Person.objects.filter(merged_into=None).count()
    said: dict[tuple[str, bool], int] = {
        (row["purpose"], row["granted"]): row["n"]
        for row in Consent.objects.filter(person__merged_into=None).values("purpose", "granted").annotate(n=Count("id"))
    }
    rows = []
    for purpose in Purpose.values:
        yes, no = said.get((purpose, True), 0), said.get((purpose, False), 0)
        default = bool(settings.CONSENT_DEFAULTS[purpose])
        undecided = max(people - yes - no, 0)
        rows.append(
            PurposeNow(purpose, PURPOSE_LABELS[purpose], people, yes + (undecided if default else 0), yes, no, default)
        )
    return rows


def _daily_deltas() -> dict[tuple[date, str], tuple[int, int]]:
    """(day, purpose) → (people who said something for the first time, change in people saying yes)."""
    history = ConsentChange.objects.annotate(
        previous=Window(
            Lag("granted"),
            partition_by=[F("person_id"), F("purpose")],
            order_by=[F("recorded_at").asc(), F("id").asc()],
        ),
        day=TruncDate("recorded_at"),
    ).values("purpose", "granted", "previous", "day")
    inner, params = history.query.sql_with_params()
    sql = (
        "SELECT day, purpose,"
        " SUM(CASE WHEN previous IS NULL THEN 1 ELSE 0 END),"
        " SUM(CASE WHEN granted AND (previous IS NULL OR NOT previous) THEN 1"
        " WHEN (NOT granted) AND previous THEN -1 ELSE 0 END)"
        f" FROM ({inner}) AS history GROUP BY day, purpose"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        found = {}
        for day, purpose, first, granted in cursor.fetchall():
            if isinstance(day, str):  # SQLite answers dates as text
                day = date.fromisoformat(day)
            found[(day, purpose)] = (int(first or 0), int(granted or 0))
    return found


def _people_per_day() -> dict[date, int]:
    rows = (
        Person.objects.filter(merged_into=None)
        .annotate(day=TruncDate("created_at"))
        .values("day")
        .annotate(n=Count("id"))
        .values_list("day", "n")
    )
    return {(date.fromisoformat(d) if isinstance(d, str) else d): n for d, n in rows}


def daily_shares(days: int = 90, today: date | None = None) -> tuple[list[date], dict[str, list[float | None]]]:
    """The last ``days`` days and, per purpose, the share that may be reached at the end of each."""
    today = today or timezone.localdate()
    key = f"consent-overview:v1:{days}:{today.isoformat()}"
    cached = cache.get(key)
    if cached is not None:
        return cached
    window = [today - timedelta(days=days - 1 - i) for i in range(days)]
    deltas = _daily_deltas()
    created = _people_per_day()
    people = sum(n for d, n in created.items() if d < window[0])
    first: dict[str, int] = defaultdict(int)
    yes: dict[str, int] = defaultdict(int)
    for (day, purpose), (f, g) in deltas.items():
        if day < window[0]:
            first[purpose] += f
            yes[purpose] += g
    shares: dict[str, list[float | None]] = {p: [] for p in Purpose.values}
    for day in window:
        people += created.get(day, 0)
        for purpose in Purpose.values:
            f, g = deltas.get((day, purpose), (0, 0))
            first[purpose] += f
            yes[purpose] += g
            undecided = max(people - first[purpose], 0)
            reached = yes[purpose] + (undecided if settings.CONSENT_DEFAULTS[purpose] else 0)
            shares[purpose].append(min(max(reached / people, 0.0), 1.0) if people else None)
    result = (window, shares)
    cache.set(key, result, CACHE_SECONDS)
    return result


def recent_changes(
    purpose: str | None = None, page: int = 1, per_page: int = CHANGES_PAGE
) -> tuple[list[ChangeRow], bool]:
    """The latest changes, newest first (read along the ``recorded_at`` index), and whether there are more."""
    page = max(1, page)
    start = (page - 1) * per_page
    changes = ConsentChange.objects.order_by("-recorded_at", "-id")
    if purpose:
        changes = changes.filter(purpose=purpose)
    rows = list(
        changes.values("recorded_at", "person_id", "purpose", "granted", "source", "recorded_by")[
            start : start + per_page + 1
        ]
    )
    has_next = len(rows) > per_page
    rows = rows[:per_page]
    names: dict[int, str] = {}
    keys = Identity.objects.filter(
        person_id__in={r["person_id"] for r in rows}, kind__in=[IdentityKind.EMAIL, IdentityKind.USER_ID]
    )
    # "email" sorts before "user_id": a person is named by their email where they gave one.
    for pid, value in keys.order_by("kind", "created_at").values_list("person_id", "value"):
        names.setdefault(pid, value)
    return (
        [
            ChangeRow(
                at=r["recorded_at"],
                person_id=r["person_id"],
                who=names.get(r["person_id"], f"person {r['person_id']}"),
                purpose=r["purpose"],
                label=PURPOSE_LABELS.get(r["purpose"], r["purpose"]),
                granted=r["granted"],
                source=r["source"],
                recorded_by=r["recorded_by"],
            )
            for r in rows
        ],
        has_next,
    )
