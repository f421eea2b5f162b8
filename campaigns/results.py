"""A campaign's results read from its messages and its recipients' purchases: the funnel
(prepared, sent, opened, clicked, converted, revenue) against the holdout, and per day for the chart.

A person converted when they bought within ``CONVERSION_DAYS`` of the moment their message went out
(for the holdout: when it would have gone out); the numbers and the interval are in ``funnel.py``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

from django.db.models import (
    Case,
    Count,
    DecimalField,
    Exists,
    ExpressionWrapper,
    F,
    IntegerField,
    OuterRef,
    Q,
    QuerySet,
    Subquery,
    Sum,
    Value,
    When,
)
from django.db.models.functions import Coalesce, TruncDate
from django.utils import timezone

from campaigns.funnel import Effect, FunnelChart, Group, effect, funnel_chart
from campaigns.models import Campaign, Message, Reason
from profiles.models import Event

CONVERSION_DAYS = 7
WINDOW = timedelta(days=CONVERSION_DAYS)


@dataclass
class Results:
    counts: dict[str, int]
    revenue: float
    treated: Group
    holdout: Group
    effect: Effect | None
    chart: FunnelChart | None


def _purchases() -> QuerySet[Event]:
    return Event.objects.filter(
        person_id=OuterRef("person_id"),
        kind="purchase",
        timestamp__gte=OuterRef("reference"),
        timestamp__lt=OuterRef("reference") + Value(WINDOW),
    )


def _with_outcomes(messages: QuerySet[Message]) -> QuerySet[Message]:
    line = ExpressionWrapper(F("price") * Coalesce(F("quantity"), Value(1)), output_field=DecimalField())
    revenue = _purchases().order_by().values("person_id").annotate(total=Sum(line)).values("total")[:1]
    return (
        messages.annotate(reference=Coalesce("sent_at", "scheduled_for", "created_at"))
        .filter(reference__lte=timezone.now())
        .annotate(
            converted=Case(When(Exists(_purchases()), then=Value(1)), default=Value(0), output_field=IntegerField()),
            revenue=Coalesce(Subquery(revenue, output_field=DecimalField()), Value(0), output_field=DecimalField()),
        )
    )


def _group(messages: QuerySet[Message]) -> Group:
    people = converted = 0
    revenue = 0.0
    rows = _with_outcomes(messages).values_list("converted", "revenue")  # type: ignore[misc]
    for bought, spent in rows.iterator(chunk_size=2000):
        people, converted, revenue = people + 1, converted + int(bought), revenue + float(spent or 0)
    return Group(people, converted, revenue)


def results(campaign: Campaign) -> Results:
    own = Message.objects.filter(campaign=campaign, origin="")
    held = own.filter(reason=Reason.HOLDOUT)
    treated_messages = own.exclude(reason=Reason.HOLDOUT)
    # Both sides from the moment their message went out or would have: not yet is not counted.
    treated, holdout = _group(treated_messages), _group(held)
    counts = treated_messages.aggregate(
        prepared=Count("pk"),
        sent=Count("pk", filter=Q(sent_at__isnull=False)),
        opened=Count("pk", filter=Q(opened_at__isnull=False)),
        clicked=Count("pk", filter=Q(clicked_at__isnull=False)),
    )
    counts = {k: int(v or 0) for k, v in counts.items()}
    counts["converted"] = treated.converted
    counts["holdout"] = held.count()
    chart = _chart(campaign, treated_messages)
    return Results(counts, treated.revenue, treated, holdout, effect(treated, holdout), chart)


def _daily(messages: QuerySet[Message], column: str) -> dict[date, int]:
    rows = (
        messages.filter(**{f"{column}__isnull": False})
        .annotate(day=TruncDate(column))
        .values("day")
        .annotate(n=Count("pk"))
        .order_by()
    )
    return {row["day"]: int(row["n"]) for row in rows}


def _chart(campaign: Campaign, messages: QuerySet[Message]) -> FunnelChart | None:
    if campaign.launched_at is None:
        return None
    daily: dict[str, dict[date, Any]] = {
        "sent": _daily(messages, "sent_at"),
        "opened": _daily(messages, "opened_at"),
        "clicked": _daily(messages, "clicked_at"),
    }
    first_purchase = Subquery(_purchases().order_by("timestamp").values("timestamp")[:1])
    converted = (
        messages.annotate(reference=Coalesce("sent_at", "scheduled_for", "created_at"))
        .annotate(bought_at=first_purchase)
        .filter(bought_at__isnull=False)
        .annotate(day=TruncDate("bought_at"))
        .values("day")
        .annotate(n=Count("pk"))
        .order_by()
    )
    daily["converted"] = {row["day"]: int(row["n"]) for row in converted}
    start = timezone.localdate(campaign.launched_at)
    seen = [day for stage in daily.values() for day in stage]
    end = max([timezone.localdate(), *seen])
    if (end - start).days > 120:
        start = end - timedelta(days=120)
    return funnel_chart(daily, start, end)
