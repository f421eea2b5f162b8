"""The console's home page: what a marketer checks each morning.

Events in (today and the last days), people and their consent shares, each surface's answers,
click-through, conversion and attributed revenue with a sparkline, campaigns in flight with their
funnel, approvals waiting, experiments running with their verdict, the active model and its
validation figures, and anything degraded (a failed or refused fit, the drift rule firing,
degraded answers, a variant stopped by a guardrail).

Every figure is an aggregate over an indexed column (events by ``(kind, timestamp)``, the surfaces'
daily rows, messages by campaign) or a handful of rows; the two that count over all people or a
week of events are kept in the cache for a minute. Each section is shown only to those whose role
may open the page it summarises.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from typing import Any

from django.contrib.auth.views import redirect_to_login
from django.core.cache import cache
from django.db.models import Count, OuterRef, Q, Subquery
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.utils import timezone
from django.views.decorators.http import require_GET

from personalization.access import CONSOLE, SEES_HOME
from personalization.api.permissions import SEES_MESSAGES, SEES_MODEL, satisfied
from personalization.svg_charts import Sparkline, sparkline

TREND_DAYS = 7
SURFACE_DAYS = 14
CACHE_SECONDS = 60
IN_FLIGHT = ("preparing", "running", "paused")


@dataclass
class EventsIn:
    today: int
    days: list[date]
    counts: list[int]
    chart: Sparkline

    @property
    def week(self) -> int:
        return sum(self.counts)


@dataclass
class SurfaceRow:
    key: str
    name: str
    version: int | None
    answers: int
    clicks: int
    purchases: int
    revenue: Decimal
    answers_chart: Sparkline
    ctr_chart: Sparkline

    @property
    def click_through(self) -> float | None:
        return self.clicks / self.answers if self.answers else None

    @property
    def conversion(self) -> float | None:
        return self.purchases / self.answers if self.answers else None


@dataclass
class Degraded:
    text: str
    link: str


@dataclass
class Home:
    sections: set[str] = field(default_factory=set)
    data: dict[str, Any] = field(default_factory=dict)


def _days(count: int, today: date) -> list[date]:
    return [today - timedelta(days=count - 1 - n) for n in range(count)]


def events_in(today: date | None = None) -> EventsIn:
    """Events per day over the last week, today included, by the ``(kind, timestamp)`` index."""
    from profiles.models import Event, EventKind

    today = today or timezone.localdate()
    key = f"home:events:{today.isoformat()}"
    counts: dict[date, int] | None = cache.get(key)
    if counts is None:
        days = _days(TREND_DAYS, today)
        starts = [timezone.make_aware(datetime.combine(d, time.min)) for d in [*days, today + timedelta(days=1)]]
        # One range count per local day in one query (no per-row date function: an index range scan).
        per_day = Event.objects.filter(kind__in=EventKind.values, timestamp__gte=starts[0]).aggregate(
            **{
                f"d{n}": Count("id", filter=Q(timestamp__gte=starts[n], timestamp__lt=starts[n + 1]))
                for n in range(len(days))
            }
        )
        counts = {d: int(per_day[f"d{n}"] or 0) for n, d in enumerate(days)}
        cache.set(key, counts, CACHE_SECONDS)
    days = _days(TREND_DAYS, today)
    series = [counts.get(d, 0) for d in days]
    return EventsIn(
        today=counts.get(today, 0),
        days=days,
        counts=series,
        chart=sparkline([float(v) for v in series], "Events per day, last 7 days"),
    )


def people_and_consent() -> dict[str, Any]:
    from profiles.consent_overview import shares_now

    found: dict[str, Any] | None = cache.get("home:people")
    if found is None:
        shares = shares_now()
        found = {
            "people": shares[0].people if shares else 0,
            "purposes": [{"label": s.label, "share": s.share, "granted": s.granted} for s in shares],
        }
        cache.set("home:people", found, CACHE_SECONDS)
    return found


def surface_rows(today: date | None = None) -> list[SurfaceRow]:
    """Each surface over the last two weeks from its daily rows: totals and a sparkline a day."""
    from personalization.models import Surface, SurfaceDailyStats

    today = today or timezone.localdate()
    days = _days(SURFACE_DAYS, today)
    daily: dict[int, dict[date, tuple[int, int, int, Decimal]]] = {}
    for row in SurfaceDailyStats.objects.filter(day__gte=days[0]).values_list(
        "surface_id", "day", "impressions", "clicks", "purchases", "revenue"
    ):
        daily.setdefault(row[0], {})[row[1]] = (row[2], row[3], row[4], row[5])
    rows = []
    for surface in Surface.objects.select_related("current_version").order_by("key"):
        per_day = daily.get(surface.pk, {})
        shown = [per_day.get(d, (0, 0, 0, Decimal(0))) for d in days]
        rows.append(
            SurfaceRow(
                key=surface.key,
                name=surface.name,
                version=surface.current_version.number if surface.current_version else None,
                answers=sum(s[0] for s in shown),
                clicks=sum(s[1] for s in shown),
                purchases=sum(s[2] for s in shown),
                revenue=sum((s[3] for s in shown), Decimal(0)),
                answers_chart=sparkline([float(s[0]) for s in shown], f"{surface.name}: answers per day"),
                ctr_chart=sparkline(
                    [s[1] / s[0] if s[0] else None for s in shown], f"{surface.name}: click-through per day"
                ),
            )
        )
    return rows


def campaigns_in_flight() -> list[dict[str, Any]]:
    from campaigns.models import Campaign, Message, MessageState

    campaigns = list(Campaign.objects.filter(status__in=IN_FLIGHT).order_by("-created_at", "-id")[:10])
    counts: dict[int, dict[str, int]] = {}
    for campaign_id, state, n in (
        Message.objects.filter(campaign__in=campaigns)
        .values_list("campaign_id", "state")
        .annotate(n=Count("id"))
        .order_by()
    ):
        counts.setdefault(campaign_id, {})[state] = n
    sent_states = (MessageState.SENT, MessageState.OPENED, MessageState.CLICKED)
    rows = []
    for campaign in campaigns:
        c = counts.get(campaign.pk, {})
        sent = sum(c.get(s, 0) for s in sent_states)
        opened = c.get(MessageState.OPENED, 0) + c.get(MessageState.CLICKED, 0)
        clicked = c.get(MessageState.CLICKED, 0)
        rows.append(
            {
                "campaign": campaign,
                "prepared": sum(c.values()),
                "waiting": c.get(MessageState.PENDING_APPROVAL, 0),
                "sent": sent,
                "opened": opened,
                "clicked": clicked,
                "open_rate": opened / sent if sent else None,
                "click_rate": clicked / sent if sent else None,
            }
        )
    return rows


def approvals_waiting(user: Any) -> dict[str, Any]:
    from campaigns.approvals import visible_messages
    from campaigns.models import MessageState

    waiting = visible_messages(user).filter(state=MessageState.PENDING_APPROVAL)
    by_campaign = list(
        waiting.values("campaign__key", "campaign__name").annotate(n=Count("id")).order_by("-n", "campaign__key")[:5]
    )
    return {"total": waiting.count(), "by_campaign": by_campaign}


def experiments_running() -> list[dict[str, Any]]:
    from experiments import pages
    from experiments.models import Experiment, ResultSnapshot, Status

    latest = ResultSnapshot.objects.filter(experiment=OuterRef("pk"), generation=OuterRef("generation")).order_by(
        "-computed_at", "-id"
    )
    found = (
        Experiment.objects.filter(status=Status.RUNNING)
        .annotate(
            latest_decision=Subquery(latest.values("decision")[:1]),
            latest_units=Subquery(latest.values("units")[:1]),
            latest_srm=Subquery(latest.values("srm_mismatch")[:1]),
        )
        .order_by("-started_at", "-id")[:10]
    )
    return [{"experiment": e, "status": pages.status_badge(e.status)} for e in found]


def model_figures() -> dict[str, Any]:
    from personalization import registry

    active = registry.active_version()
    if active is None:
        return {"active": None}
    metrics = active.metrics or {}
    holdout = metrics.get("holdout") or {}
    labels = (("ndcg", "Hold-out NDCG@20"), ("recall", "Hold-out recall@20"), ("people", "People in the hold-out"))
    figures = [(label, holdout[name]) for name, label in labels if isinstance(holdout.get(name), int | float)]
    return {"active": active, "figures": figures, "split": metrics.get("split", "")}


def degraded(user: Any) -> list[Degraded]:
    from experiments.models import Variant
    from personalization import retraining
    from personalization.models import ModelHealthSnapshot

    found: list[Degraded] = []
    if satisfied(user, SEES_MODEL):
        problem = retraining.fit_problem()
        if problem is not None:
            found.append(Degraded(f"Model v{problem.pk}: {retraining.outcome(problem)}", "/model/"))
        latest = ModelHealthSnapshot.objects.order_by("-day").first()
        if latest is not None and latest.day >= timezone.localdate() - timedelta(days=2):
            verdict = latest.drift or {}
            if verdict.get("fired"):
                reasons = "; ".join(str(r) for r in verdict.get("reasons") or []) or "see the model page"
                found.append(Degraded(f"Drift on {latest.day:%b %d}: {reasons}", "/model/"))
            share = (latest.online or {}).get("degraded_share")
            if isinstance(share, int | float) and share >= 0.05:
                found.append(
                    Degraded(f"{share:.0%} of answers on {latest.day:%b %d} were degraded (fallbacks).", "/model/")
                )
    if user.has_perm("experiments.view_experiment"):
        week_ago = timezone.now() - timedelta(days=7)
        for variant in Variant.objects.filter(stopped_by_guardrail=True, stopped_at__gte=week_ago).select_related(
            "experiment"
        )[:5]:
            found.append(
                Degraded(
                    f"Experiment {variant.experiment.name}: variant {variant.name or variant.key} stopped by a "
                    f"guardrail ({variant.stop_reason or 'harm'}).",
                    f"/experiments/{variant.experiment.key}/",
                )
            )
    return found


def home_context(user: Any) -> dict[str, Any]:
    context: dict[str, Any] = {"today": timezone.localdate()}
    sees_surfaces = user.has_perm("personalization.view_surface")
    if sees_surfaces or user.has_perm("profiles.view_person"):
        context["events"] = events_in()
    if user.has_perm("profiles.view_person"):
        context["people"] = people_and_consent()
    if sees_surfaces:
        context["surfaces"] = surface_rows()
    if user.has_perm("campaigns.view_campaign"):
        context["campaigns"] = campaigns_in_flight()
    if satisfied(user, SEES_MESSAGES):
        context["approvals"] = approvals_waiting(user)
    if user.has_perm("experiments.view_experiment"):
        context["experiments"] = experiments_running()
    if satisfied(user, SEES_MODEL):
        context["model"] = model_figures()
    context["degraded"] = degraded(user)
    return context


@require_GET
def home(request: HttpRequest) -> HttpResponse:
    """``/``: the home page for those who read surfaces, campaigns or experiments; anyone else goes to
    the first console page they may open (a CSM to the approvals)."""
    from django.core.exceptions import PermissionDenied

    if not request.user.is_authenticated:
        return redirect_to_login(request.get_full_path())
    if satisfied(request.user, SEES_HOME):
        return render(request, "personalization/home.html", home_context(request.user))
    for url, requirement in CONSOLE[1:]:
        if satisfied(request.user, requirement):
            return HttpResponseRedirect(url)
    if request.user.is_staff:
        return HttpResponseRedirect("/admin/")
    raise PermissionDenied("Your account has no role yet; ask an administrator.")
