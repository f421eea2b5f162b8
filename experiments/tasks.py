"""Thin Celery tasks for the experiments app; the work is in ``guardrails``, ``reweighting`` and ``results``."""

from __future__ import annotations

from celery import shared_task

from experiments import services
from experiments.models import Experiment, Status

# Each job is idempotent (a look at the results, conditional stops, weights recomputed from the
# data), so a redelivery after a lost worker does no harm: acknowledge late. A periodic run that
# waited past the next one is dropped (expires) rather than run twice in a row.


@shared_task(
    ignore_result=True, acks_late=True, reject_on_worker_lost=True, soft_time_limit=900, time_limit=1200, expires=3000
)
def recompute_results(experiment_id: int | None = None) -> int:
    """Store a fresh look at one experiment (or every running one); returns how many were computed."""
    experiments = Experiment.objects.filter(status=Status.RUNNING)
    if experiment_id is not None:
        experiments = Experiment.objects.filter(pk=experiment_id)
    count = 0
    for experiment in experiments:
        services.record_results(experiment)
        count += 1
    return count


@shared_task(
    ignore_result=True, acks_late=True, reject_on_worker_lost=True, soft_time_limit=900, time_limit=1200, expires=3000
)
def run_guardrails() -> int:
    """Recompute every running experiment and stop variants that harm a guardrail metric."""
    return len(services.run_guardrails())


@shared_task(
    ignore_result=True, acks_late=True, reject_on_worker_lost=True, soft_time_limit=900, time_limit=1200, expires=3000
)
def reweight_bandits() -> int:
    """Move bandit traffic toward the best arms (Thompson sampling with floors and a minimum sample)."""
    return len(services.reweight_bandits())
