from __future__ import annotations

from celery import shared_task

from profiles import outbox, profiling


@shared_task(ignore_result=True, acks_late=True, reject_on_worker_lost=True, max_retries=3, expires=3600)
def refresh_profiles(person_ids: list[int]) -> int:
    """Recompute the profiles of people who just had events ingested (idempotent: from the log)."""
    return profiling.refresh_profiles(person_ids)


@shared_task(ignore_result=True, acks_late=True, reject_on_worker_lost=True, expires=6 * 3600)
def apply_retention() -> dict[str, int]:
    """Delete events and impressions older than RETENTION_MONTHS, in short batches (daily)."""
    from profiles.retention import apply_retention as apply

    return apply().deleted


@shared_task(ignore_result=True, expires=60)
def relay_outbox() -> int:
    """Hand the work that waited in the outbox (broker or Redis away) to them; a beat job."""
    return outbox.relay().delivered


@shared_task(ignore_result=True, acks_late=True, reject_on_worker_lost=True, expires=6 * 3600)
def create_event_partitions() -> list[str]:
    """Create the event log's month partitions of this month and EVENT_PARTITIONS_AHEAD ahead (daily)."""
    from profiles.partitions import create_ahead

    return [str(month) for month in create_ahead()]
