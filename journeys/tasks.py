"""Thin Celery tasks for journeys; the work is in ``advancing`` and ``entering``."""

from __future__ import annotations

from celery import shared_task
from django.db import transaction

from journeys import advancing, entering


@shared_task(
    ignore_result=True, acks_late=True, reject_on_worker_lost=True, soft_time_limit=55, time_limit=60, expires=30
)
def advance_journeys() -> int:
    """The periodic round (every 5 seconds): advance due entries; due messages go to the senders at once."""
    report = advancing.advance_due()
    if report.messages:
        from campaigns.tasks import send_messages

        transaction.on_commit(lambda: send_messages.delay(report.messages))
    return report.advanced


@shared_task(
    ignore_result=True, acks_late=True, reject_on_worker_lost=True, soft_time_limit=240, time_limit=300, expires=600
)
def enter_scheduled_journeys() -> int:
    """The periodic check (every 15 minutes): people whose local time reached a schedule's time enter, and
    people who came into a saved segment a journey starts from."""
    return entering.on_schedule() + entering.on_audiences()
