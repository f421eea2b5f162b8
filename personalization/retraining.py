"""Retraining on a schedule: a django-celery-beat row (created by a migration, nightly by default)
runs ``tasks.retrain_on_schedule``, which fits a new version through the activation gate of
``training.train_version`` (the candidate activates only if its hold-out NDCG@20 is at least the
active version's on the same fresh hold-out). The schedule is edited on the model page.

Every fit leaves a version row: a refused one (status *rejected*) with the two hold-out figures, a
failed one with the error. ``fit_problem`` is what the console shows until a later fit succeeds.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from personalization import training
from personalization.models import FitTrigger, LoopChange, ModelVersion, VersionStatus

logger = logging.getLogger(__name__)

SCHEDULE_NAME = "Model: retrain on schedule"
SCHEDULE_TASK = "personalization.tasks.retrain_on_schedule"
# Python's weekday numbers are Monday = 0; cron's (and celery's) Sunday = 0.
DAYS = (("1", "Mon"), ("2", "Tue"), ("3", "Wed"), ("4", "Thu"), ("5", "Fri"), ("6", "Sat"), ("0", "Sun"))
ALL_DAYS = [code for code, _ in DAYS]


# --- the schedule ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Schedule:
    enabled: bool
    hour: int
    minute: int
    days: list[str]  # cron day-of-week codes, Sunday = "0"
    time_zone: str
    last_run_at: datetime | None = None

    @property
    def days_text(self) -> str:
        if sorted(self.days) == sorted(ALL_DAYS):
            return "every day"
        names = dict(DAYS)
        return ", ".join(names[code] for code, _ in DAYS if code in self.days)

    @property
    def text(self) -> str:
        when = f"{self.days_text} at {self.hour:02d}:{self.minute:02d} ({self.time_zone})"
        return when if self.enabled else f"off (was {when})"

    def next_run(self, now: datetime | None = None) -> datetime | None:
        """When the schedule next starts a fit (aware datetime), or None when it is off."""
        import zoneinfo

        if not self.enabled or not self.days:
            return None
        zone = zoneinfo.ZoneInfo(self.time_zone)
        current = (now or timezone.now()).astimezone(zone)
        for ahead in range(8):
            day = current.date() + timedelta(days=ahead)
            at = datetime(day.year, day.month, day.day, self.hour, self.minute, tzinfo=zone)
            if at > current and str((day.weekday() + 1) % 7) in self.days:
                return at
        return None


def _task():
    from django_celery_beat.models import PeriodicTask

    return PeriodicTask.objects.select_related("crontab").filter(name=SCHEDULE_NAME).first()


def _parse_field(value: str, low: int, high: int, default: int) -> int:
    return int(value) if value.isdigit() and low <= int(value) <= high else default


def schedule() -> Schedule:
    task = _task()
    if task is None or task.crontab is None:
        return Schedule(False, 3, 30, list(ALL_DAYS), settings.TIME_ZONE)
    cron = task.crontab
    days = ALL_DAYS if cron.day_of_week == "*" else [d for d in cron.day_of_week.split(",") if d in ALL_DAYS]
    return Schedule(
        enabled=task.enabled,
        hour=_parse_field(cron.hour, 0, 23, 3),
        minute=_parse_field(cron.minute, 0, 59, 30),
        days=list(days),
        time_zone=str(cron.timezone),
        last_run_at=task.last_run_at,
    )


@transaction.atomic
def change_schedule(enabled: bool, hour: int, minute: int, days: list[str], by: str) -> Schedule:
    """Point the beat row at a crontab for ``hour:minute`` on ``days``; beat picks it up at its next tick."""
    from django_celery_beat.models import CrontabSchedule, PeriodicTask

    if not (0 <= hour <= 23 and 0 <= minute <= 59) or not days or set(days) - set(ALL_DAYS):
        raise ValueError("hour 0–23, minute 0–59 and at least one day of the week")
    day_of_week = "*" if set(days) == set(ALL_DAYS) else ",".join(sorted(set(days)))
    cron, _ = CrontabSchedule.objects.get_or_create(
        minute=str(minute),
        hour=str(hour),
        day_of_week=day_of_week,
        day_of_month="*",
        month_of_year="*",
        timezone=settings.TIME_ZONE,
    )
    task = PeriodicTask.objects.select_for_update().filter(name=SCHEDULE_NAME).first()
    if task is None:
        task = PeriodicTask(name=SCHEDULE_NAME, task=SCHEDULE_TASK)
    task.crontab, task.enabled = cron, enabled
    task.save()  # django-celery-beat notes the change, so a running beat reloads its schedule
    after = schedule()
    LoopChange.objects.create(
        by=by, what="schedule", detail={"enabled": enabled, "hour": hour, "minute": minute, "days": after.days}
    )
    return after


# --- one fit --------------------------------------------------------------------------------------


def running_fit() -> ModelVersion | None:
    """A version still training, if any; rows older than the training time limit are marked failed."""
    stale_before = timezone.now() - timedelta(seconds=settings.TRAINING_TIME_LIMIT + 600)
    ModelVersion.objects.filter(status=VersionStatus.TRAINING, created_at__lt=stale_before).update(
        status=VersionStatus.FAILED,
        stage="failed",
        error="Stopped without finishing: the worker was lost or the training time limit ran out.",
    )
    return ModelVersion.objects.filter(status=VersionStatus.TRAINING).order_by("-id").first()


def start_fit(trigger: str, reason: str = "", by: str = "") -> ModelVersion:
    """The version row of a new fit, or a failed row saying why none was started (one already runs)."""
    requested_by = by or dict(FitTrigger.choices)[trigger].lower()
    running = running_fit()
    if running is not None:
        return ModelVersion.objects.create(
            requested_by=requested_by,
            trigger=trigger,
            trigger_reason=reason,
            status=VersionStatus.FAILED,
            stage="failed",
            error=f"Not started: version {running.pk} was still training.",
        )
    return ModelVersion.objects.create(requested_by=requested_by, trigger=trigger, trigger_reason=reason)


def retrain(trigger: str = FitTrigger.SCHEDULE, reason: str = "") -> ModelVersion:
    """Fit now, in this process, through the gate; a failure is recorded on the row, not raised."""
    version = start_fit(trigger, reason)
    if version.status == VersionStatus.FAILED:
        logger.warning("Retraining skipped: %s", version.error)
        return version
    try:
        training.train_version(version)
    except Exception:
        logger.exception("Retraining failed (version %s)", version.pk)
    version.refresh_from_db()
    return version


# --- what the console says about fits --------------------------------------------------------------


def outcome(version: ModelVersion) -> str:
    """One sentence on how a fit ended, with the reason when it did not activate."""
    if version.status == VersionStatus.FAILED:
        return f"Failed: {version.error or 'no reason recorded'}"
    if version.status == VersionStatus.REJECTED:
        metrics = version.metrics or {}
        own = (metrics.get("holdout") or {}).get("ndcg")
        active = metrics.get("active") or {}
        if own is not None and active.get("ndcg") is not None:
            return (
                f"Refused by the gate: hold-out NDCG@20 {own:.4f} below the active version {active.get('version')}'s"
                f" {active['ndcg']:.4f} ({active.get('basis') or 'same hold-out'}); the active version kept serving."
            )
        if active.get("basis"):
            return f"Refused by the gate: {active['basis']}; the active version kept serving."
        return "Refused by the gate; the active version kept serving."
    if version.status == VersionStatus.TRAINING:
        return f"Training: {version.stage or 'starting'} ({version.progress}%)"
    if version.status == VersionStatus.ACTIVE:
        return "Passed the gate and serves."
    return f"{version.get_status_display()}."


def fit_problem() -> ModelVersion | None:
    """The latest fit, when it failed or was refused and no later fit has succeeded; else None."""
    latest = ModelVersion.objects.exclude(status=VersionStatus.TRAINING).order_by("-id").first()
    if latest is not None and latest.status in (VersionStatus.FAILED, VersionStatus.REJECTED):
        return latest
    return None
