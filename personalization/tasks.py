from __future__ import annotations

from celery import shared_task

from personalization import training
from personalization.models import ModelVersion


@shared_task(ignore_result=True, acks_late=True, reject_on_worker_lost=True, time_limit=3600, soft_time_limit=3300)
def train_engine(version_id: int) -> None:
    """Fit, gate and (if not worse) activate a new engine version; progress is on the version row."""
    training.train_version(ModelVersion.objects.get(pk=version_id))
