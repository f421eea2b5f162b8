"""Experiment metrics from the event log: what each one means and the SQL that measures it.

This is the one module of the experiments app that reads another app's tables (``profiles``'
people and events), read-only. Everything is measured per unit (person), because the person is
what was randomised:

* only people with an exposure count, and only their events from the first exposure up to the end
  of the attribution window (``first_exposed_at`` ≤ timestamp < ``first_exposed_at`` + window);
* the CUPED covariate is the same quantity over the pre-period before the first exposure
  (``first_exposed_at`` - pre-period ≤ timestamp < ``first_exposed_at``), which the variant cannot
  have changed;
* a person who was merged into another after exposure (an anonymous visitor who signed in on a
  device) is measured through the person who now holds the history, unless that person has an
  exposure of their own, which then stands for both.

Definitions (event kinds come from ``profiles``; names are matched without regard to case):

================================  ===========================================================
conversion                        share of units with at least one ``purchase`` event
revenue_per_unit                  Σ price × quantity (1 if missing) of ``purchase`` events
                                  per unit, zero for units who bought nothing
click_through                     Σ clicks / Σ impressions over units (a ratio metric, delta
                                  method); an impression is an event named one of
                                  IMPRESSION_EVENT_NAMES, a click one of CLICK_EVENT_NAMES
average_order_value               Σ revenue / Σ orders over units (ratio, delta method); an
                                  order is one purchase message (one ``Order Completed``
                                  call, whatever number of products it lists)
unsubscribe_rate                  share of units with an ``unsubscribe`` event (lower is better)
email_open_rate                   share of units with an ``email_open`` event
email_click_rate                  share of units with an ``email_click`` event
================================  ===========================================================
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import numpy as np
from django.db.models import (
    Count,
    ExpressionWrapper,
    F,
    FilteredRelation,
    FloatField,
    Q,
    QuerySet,
    Sum,
    Value,
)
from django.db.models.functions import Coalesce
from django.utils import timezone

from experiments.models import Experiment, Exposure, MetricKey
from profiles.models import Event, EventKind

IMPRESSION_EVENT_NAMES = ("Recommendation Shown", "Recommendations Shown", "Product List Viewed", "Promotion Viewed")
CLICK_EVENT_NAMES = ("Recommendation Clicked", "Product Clicked", "Promotion Clicked")

PROPORTION = "proportion"
MEAN = "mean"
RATIO = "ratio"


@dataclass(frozen=True)
class MetricDefinition:
    key: str
    label: str
    kind: str  # proportion, mean or ratio
    higher_is_better: bool
    description: str
    column: str = ""  # per-unit value (proportion, mean)
    numerator: str = ""  # ratio metrics
    denominator: str = ""
    unit: str = ""  # how to print a mean: "" or "currency"

    @property
    def covariate(self) -> str:
        """The per-unit column of the same quantity in the pre-period (CUPED); ratio metrics have none."""
        return f"pre_{self.column}" if self.column else ""


METRICS: dict[str, MetricDefinition] = {
    m.key: m
    for m in (
        MetricDefinition(
            MetricKey.CONVERSION,
            "Conversion",
            PROPORTION,
            True,
            "Share of exposed people who bought at least once within the attribution window.",
            column="converted",
        ),
        MetricDefinition(
            MetricKey.REVENUE_PER_UNIT,
            "Revenue per person",
            MEAN,
            True,
            "Purchase revenue (price × quantity) per exposed person within the window, zero if none.",
            column="revenue",
            unit="currency",
        ),
        MetricDefinition(
            MetricKey.CLICK_THROUGH,
            "Click-through",
            RATIO,
            True,
            "Clicks per impression of recommendations, product lists and promotions (delta method over people).",
            numerator="clicks",
            denominator="impressions",
        ),
        MetricDefinition(
            MetricKey.AVERAGE_ORDER_VALUE,
            "Average order value",
            RATIO,
            True,
            "Revenue per order among the orders exposed people placed in the window (delta method over people).",
            numerator="revenue",
            denominator="orders",
            unit="currency",
        ),
        MetricDefinition(
            MetricKey.UNSUBSCRIBE_RATE,
            "Unsubscribe rate",
            PROPORTION,
            False,
            "Share of exposed people who unsubscribed within the window; lower is better.",
            column="unsubscribed",
        ),
        MetricDefinition(
            MetricKey.EMAIL_OPEN_RATE,
            "Email open rate",
            PROPORTION,
            True,
            "Share of exposed people who opened an email within the window.",
            column="opened",
        ),
        MetricDefinition(
            MetricKey.EMAIL_CLICK_RATE,
            "Email click rate",
            PROPORTION,
            True,
            "Share of exposed people who clicked a link in an email within the window.",
            column="clicked_email",
        ),
    )
}

# Per-unit columns produced by ``unit_outcomes``; "pre_*" are the same over the pre-period.
OUTCOME_COLUMNS = ("converted", "revenue", "orders", "impressions", "clicks", "unsubscribed", "opened", "clicked_email")
PRE_COLUMNS = ("pre_converted", "pre_revenue", "pre_unsubscribed", "pre_opened", "pre_clicked_email")
ALL_COLUMNS = OUTCOME_COLUMNS + PRE_COLUMNS


def metric(key: str) -> MetricDefinition:
    try:
        return METRICS[key]
    except KeyError:
        raise ValueError(f"Unknown metric {key!r}; choose one of {', '.join(METRICS)}.") from None


@dataclass
class VariantOutcomes:
    """Per-unit outcome arrays of one variant (one entry per exposed person)."""

    variant_id: int
    columns: dict[str, np.ndarray]
    first_exposed_at: list[datetime]

    @property
    def n(self) -> int:
        return len(self.first_exposed_at)


def _name_in(prefix: str, names: Iterable[str]) -> Q:
    """Event name is one of ``names``, ignoring case (``prefix`` is the joined relation, or "")."""
    field = f"{prefix}__name__iexact" if prefix else "name__iexact"
    query = Q()
    for name in names:
        query |= Q(**{field: name})
    return query


def _aggregates(ev: str) -> dict[str, Any]:
    """Conditional aggregates over the joined events ``ev`` of one exposure: one pass, one row per unit."""
    after = Q(**{f"{ev}__timestamp__gte": F("first_exposed_at")})
    before = Q(**{f"{ev}__timestamp__lt": F("first_exposed_at")})

    def kind(value: str) -> Q:
        return Q(**{f"{ev}__kind": value})

    line_revenue = ExpressionWrapper(
        F(f"{ev}__price") * Coalesce(F(f"{ev}__quantity"), Value(1)), output_field=FloatField()
    )
    return {
        "converted": Count(f"{ev}__id", filter=after & kind(EventKind.PURCHASE)),
        "revenue": Sum(line_revenue, filter=after & kind(EventKind.PURCHASE)),
        "orders": Count(f"{ev}__message_id", distinct=True, filter=after & kind(EventKind.PURCHASE)),
        "impressions": Count(f"{ev}__id", filter=after & _name_in(ev, IMPRESSION_EVENT_NAMES)),
        "clicks": Count(f"{ev}__id", filter=after & _name_in(ev, CLICK_EVENT_NAMES)),
        "unsubscribed": Count(f"{ev}__id", filter=after & kind(EventKind.UNSUBSCRIBE)),
        "opened": Count(f"{ev}__id", filter=after & kind(EventKind.EMAIL_OPEN)),
        "clicked_email": Count(f"{ev}__id", filter=after & kind(EventKind.EMAIL_CLICK)),
        "pre_converted": Count(f"{ev}__id", filter=before & kind(EventKind.PURCHASE)),
        "pre_revenue": Sum(line_revenue, filter=before & kind(EventKind.PURCHASE)),
        "pre_unsubscribed": Count(f"{ev}__id", filter=before & kind(EventKind.UNSUBSCRIBE)),
        "pre_opened": Count(f"{ev}__id", filter=before & kind(EventKind.EMAIL_OPEN)),
        "pre_clicked_email": Count(f"{ev}__id", filter=before & kind(EventKind.EMAIL_CLICK)),
    }


BINARY_COLUMNS = {"converted", "unsubscribed", "opened", "clicked_email"}


def _per_unit_rows(exposures: QuerySet[Exposure], relation: str, experiment: Experiment, *extra: str) -> QuerySet[Any]:
    """One row per exposure with its outcomes, joining the events of ``relation`` inside the windows."""
    pre = timedelta(days=experiment.pre_period_days)
    window = timedelta(days=experiment.attribution_window_days)
    condition = Q(
        **{
            f"{relation}__timestamp__gte": F("first_exposed_at") - pre,
            f"{relation}__timestamp__lt": F("first_exposed_at") + window,
        }
    )
    return (
        exposures.annotate(ev=FilteredRelation(relation, condition=condition))
        .values("id", "variant_id", "first_exposed_at", *extra)
        .annotate(**_aggregates("ev"))
        .order_by()
    )


def unit_outcomes(experiment: Experiment) -> dict[int, VariantOutcomes]:
    """Outcome arrays per variant id for every exposed unit of the experiment's current generation."""
    exposures = Exposure.objects.filter(experiment=experiment, generation=experiment.generation)
    rows: list[dict[str, Any]] = list(
        _per_unit_rows(exposures.filter(person__merged_into__isnull=True), "person__events", experiment).iterator(
            chunk_size=5000
        )
    )
    # People absorbed into someone else after their exposure: their events now live under the
    # survivor. Measure them through the survivor, unless the survivor was exposed too.
    exposed_people = exposures.values("person_id")
    absorbed = (
        exposures.filter(person__merged_into__isnull=False)
        .exclude(person__merged_into__in=exposed_people)
        .annotate(survivor=F("person__merged_into"))
    )
    earliest: dict[int, dict[str, Any]] = {}
    for row in _per_unit_rows(absorbed, "person__merged_into__events", experiment, "survivor"):
        kept = earliest.get(row["survivor"])
        if kept is None or row["first_exposed_at"] < kept["first_exposed_at"]:
            earliest[row["survivor"]] = row  # two absorbed people of one survivor are one unit
    rows.extend(earliest.values())

    grouped: dict[int, list[dict[str, Any]]] = {}
    for row in rows:
        grouped.setdefault(row["variant_id"], []).append(row)
    result: dict[int, VariantOutcomes] = {}
    for variant_id, variant_rows in grouped.items():
        columns: dict[str, np.ndarray] = {}
        for column in ALL_COLUMNS:
            values = np.fromiter((float(r[column] or 0) for r in variant_rows), dtype=float, count=len(variant_rows))
            if column in BINARY_COLUMNS or column.removeprefix("pre_") in BINARY_COLUMNS:
                values = (values > 0).astype(float)
            columns[column] = values
        result[variant_id] = VariantOutcomes(variant_id, columns, [r["first_exposed_at"] for r in variant_rows])
    return result


@dataclass(frozen=True)
class Baseline:
    """The primary metric as it is today, per person, over a window as long as the attribution window."""

    mean: float
    sd: float
    units: int


def baseline_from_event_log(metric_key: str, window_days: int, now: datetime | None = None) -> Baseline | None:
    """Mean and standard deviation per person of a metric among the people active in the last window.

    For a ratio metric, ``sd`` is the per-person spread that gives the ratio's delta-method variance
    (so that sd² / n is the variance of the ratio over n people). None when nobody was active.
    """
    definition = metric(metric_key)
    since = (now or timezone.now()) - timedelta(days=window_days)
    line_revenue = ExpressionWrapper(F("price") * Coalesce(F("quantity"), Value(1)), output_field=FloatField())
    purchase = Q(kind=EventKind.PURCHASE)
    per_person = (
        Event.objects.filter(timestamp__gte=since)
        .values("person_id")
        .annotate(
            converted=Count("id", filter=purchase),
            revenue=Sum(line_revenue, filter=purchase),
            orders=Count("message_id", distinct=True, filter=purchase),
            impressions=Count("id", filter=_name_in("", IMPRESSION_EVENT_NAMES)),
            clicks=Count("id", filter=_name_in("", CLICK_EVENT_NAMES)),
            unsubscribed=Count("id", filter=Q(kind=EventKind.UNSUBSCRIBE)),
            opened=Count("id", filter=Q(kind=EventKind.EMAIL_OPEN)),
            clicked_email=Count("id", filter=Q(kind=EventKind.EMAIL_CLICK)),
        )
        .order_by()
    )
    fields = (definition.numerator, definition.denominator) if definition.kind == RATIO else (definition.column,)
    rows = list(per_person.values_list(*fields))
    n = len(rows)
    if n < 2:
        return None
    data = np.asarray([[float(v or 0) for v in row] for row in rows], dtype=float)
    if definition.kind == PROPORTION:
        rate = float((data[:, 0] > 0).mean())
        return Baseline(rate, math.sqrt(rate * (1 - rate)), n)
    if definition.kind == MEAN:
        return Baseline(float(data[:, 0].mean()), float(data[:, 0].std(ddof=1)), n)
    x, y = data[:, 0], data[:, 1]
    if y.mean() <= 0:
        return None
    ratio = float(x.mean() / y.mean())
    cov = np.cov(x, y, ddof=1)
    spread = max(float(cov[0, 0] - 2 * ratio * cov[0, 1] + ratio * ratio * cov[1, 1]), 0.0)
    return Baseline(ratio, math.sqrt(spread) / float(y.mean()), n)
