from __future__ import annotations

from datetime import date, timedelta

from celery import shared_task
from django.conf import settings
from django.utils import timezone

from personalization import feedback, retraining, training
from personalization.models import FitTrigger, ModelVersion


@shared_task(
    ignore_result=True,
    acks_late=True,
    reject_on_worker_lost=True,
    time_limit=settings.TRAINING_TIME_LIMIT,
    soft_time_limit=settings.TRAINING_TIME_LIMIT - 300,
)
def train_engine(version_id: int) -> None:
    """Fit, gate and (if not worse) activate a new engine version; progress is on the version row."""
    training.train_version(ModelVersion.objects.get(pk=version_id))


@shared_task(
    ignore_result=True,
    acks_late=True,
    reject_on_worker_lost=True,
    time_limit=settings.TRAINING_TIME_LIMIT,
    soft_time_limit=settings.TRAINING_TIME_LIMIT - 300,
)
def retrain_on_schedule() -> None:
    """What the retraining schedule runs: a fit through the gate; failures are recorded on the version row."""
    retraining.retrain(FitTrigger.SCHEDULE)


@shared_task(ignore_result=True, acks_late=True, time_limit=1800, soft_time_limit=1700)
def attribute_surface_feedback(day: str | None = None) -> None:
    """Per-surface daily click-through and conversion (default: yesterday, whose click window has closed)."""
    wanted = date.fromisoformat(day) if day else timezone.localdate() - timedelta(days=1)
    feedback.compute_daily_stats(wanted)


@shared_task(ignore_result=True, acks_late=True, time_limit=1800, soft_time_limit=1700)
def watch_active_model(day: str | None = None) -> None:
    """The day's watch over the active version (default: yesterday), stored for the model page; the
    drift rule then judges it and may start a retraining early."""
    from personalization import watch

    wanted = date.fromisoformat(day) if day else timezone.localdate() - timedelta(days=1)
    watch.apply_drift_rule(watch.compute_snapshot(wanted))
