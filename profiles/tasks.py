from __future__ import annotations

from celery import shared_task

from profiles import profiling


@shared_task(ignore_result=True, acks_late=True, reject_on_worker_lost=True, max_retries=3, expires=3600)
def refresh_profiles(person_ids: list[int]) -> int:
    """Recompute the profiles of people who just had events ingested."""
    return profiling.refresh_profiles(person_ids)


@shared_task(ignore_result=True, acks_late=True, reject_on_worker_lost=True, expires=6 * 3600)
def apply_retention() -> dict[str, int]:
    """Delete events and impressions older than RETENTION_MONTHS, in short batches (daily)."""
    from profiles.retention import apply_retention as apply

    return apply().deleted
