"""Thin Celery tasks for campaigns; the work is in ``preparation`` and ``delivery``.

Every task is safe to run again after a lost worker (acknowledged late): preparation skips people
who already have a message, and sending claims each message with a conditional update, so a
redelivered batch sends only what was not sent.
"""

from __future__ import annotations

from celery import shared_task
from django.conf import settings

from campaigns import services


# Every time limit here is below the broker's visibility timeout (settings.CELERY_BROKER_TRANSPORT_OPTIONS),
# so a task still running is never handed to a second worker (tests/campaigns/test_preparation_resume.py).
@shared_task(
    ignore_result=True,
    acks_late=True,
    reject_on_worker_lost=True,
    soft_time_limit=settings.CELERY_TASK_SOFT_TIME_LIMIT,
    time_limit=settings.CELERY_TASK_TIME_LIMIT,
)
def prepare_campaign(campaign_id: int) -> int:
    """Select the audience, render one message per recipient and queue or schedule each. A run cut
    by its time limit is resumed where it stopped by :func:`resume_stalled_preparations`."""
    return services.prepare(campaign_id).created


@shared_task(
    ignore_result=True, acks_late=True, reject_on_worker_lost=True, soft_time_limit=50, time_limit=60, expires=50
)
def resume_stalled_preparations() -> list[int]:
    """The periodic check (every minute): queue again each preparation whose worker went silent.
    The queued run claims the preparation before it works, so only one run ever proceeds."""
    stalled = services.stalled_preparations()
    for campaign_id in stalled:
        prepare_campaign.delay(campaign_id)
    return stalled


@shared_task(
    ignore_result=True, acks_late=True, reject_on_worker_lost=True, soft_time_limit=240, time_limit=300, expires=120
)
def send_due_messages() -> int:
    """The periodic round: hand the due messages to senders in batches; returns how many."""
    batches = services.due_message_batches()
    for batch in batches:
        send_messages.delay(batch)
    return sum(len(batch) for batch in batches)


@shared_task(ignore_result=True, acks_late=True, reject_on_worker_lost=True, soft_time_limit=1500, time_limit=1800)
def send_messages(message_ids: list[int]) -> dict[str, int]:
    """Send a batch over one connection, each message exactly once."""
    return dict(services.send_batch(message_ids))


@shared_task(
    ignore_result=True,
    acks_late=True,
    reject_on_worker_lost=True,
    soft_time_limit=settings.CELERY_TASK_SOFT_TIME_LIMIT,
    time_limit=settings.CELERY_TASK_TIME_LIMIT,
)
def decide_matching_messages(
    user_id: int, filters: dict[str, str], action: str, confirmed: int, up_to: int, note: str = ""
) -> int:
    """ "Approve/reject all that match" beyond what a request decides inline. Safe to run again: a
    message already decided is no longer pending, and the user's permissions are checked now."""
    from django.contrib.auth import get_user_model

    user = get_user_model().objects.filter(pk=user_id, is_active=True).first()
    if user is None:
        return 0
    decision = services.decide_matching(
        user, services.QueueFilters(**filters), action, confirmed=confirmed, up_to=up_to, note=note
    )
    return len(decision.done)
