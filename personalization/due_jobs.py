"""Beat's work without beat: run the periodic jobs that are due, in this process.

The schedule is django-celery-beat's table (each app's migrations add its rows; operators edit them
in the admin). Deployments run ``celery beat`` and workers; the embedded default has neither, so
``manage.py run_due_jobs`` (``make demo`` runs it at start and then every minute beside the web
server) reads the same rows, runs each job that is due as a worker would, with what it queues run
in-process too, and records the run on the row as beat does, so a job is not run again before its
next time.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass
from datetime import datetime

from django.utils import timezone
from django_celery_beat.models import PeriodicTask

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class JobRun:
    name: str
    task: str
    seconds: float
    error: str | None


def is_due(job: PeriodicTask, now: datetime) -> bool:
    """Due as beat sees it: never run yet, or its schedule says so since the last run."""
    if not job.enabled or (job.start_time is not None and job.start_time > now):
        return False
    if job.expires is not None and job.expires <= now:
        return False
    if job.one_off and job.total_run_count > 0:
        return False
    if job.last_run_at is None:
        # A job on an interval runs at once; one on a calendar (a nightly retraining) waits for its
        # first time after the row was made, as beat would: it is not run at every fresh start.
        if job.crontab_id is None:
            return True
        return bool(job.schedule.is_due(job.date_changed).is_due)
    return bool(job.schedule.is_due(job.last_run_at).is_due)


def run_due_jobs(now: datetime | None = None, run_all: bool = False) -> list[JobRun]:
    """Run every due job once (every enabled one with ``run_all``); returns what ran and how it went."""
    from personalization.celery import app

    app.loader.import_default_modules()
    now = now or timezone.now()
    runs: list[JobRun] = []
    eager, propagates = app.conf.task_always_eager, app.conf.task_eager_propagates
    # What a job queues (a sending round's batches, a preparation) runs here too, not on a broker.
    app.conf.task_always_eager, app.conf.task_eager_propagates = True, True
    try:
        for job in PeriodicTask.objects.filter(enabled=True).order_by("name"):
            if not (run_all or is_due(job, now)):
                continue
            task = app.tasks.get(job.task)
            started = time.monotonic()
            error: str | None = None
            if task is None:
                error = f"no task {job.task!r} is registered"
            else:
                try:
                    task.apply(args=json.loads(job.args or "[]"), kwargs=json.loads(job.kwargs or "{}")).get()
                except Exception as failure:  # one failing job must not keep the others from running
                    logger.exception("Periodic job %s failed", job.name)
                    error = f"{type(failure).__name__}: {failure}"
            PeriodicTask.objects.filter(pk=job.pk).update(
                last_run_at=timezone.now(), total_run_count=job.total_run_count + 1
            )
            runs.append(JobRun(job.name, job.task, time.monotonic() - started, error))
    finally:
        app.conf.task_always_eager, app.conf.task_eager_propagates = eager, propagates
    return runs
