"""Thin Celery tasks for campaigns; the work is in ``preparation`` and ``delivery``.

Every task is safe to run again after a lost worker (acknowledged late): preparation skips people
who already have a message, and sending claims each message with a conditional update, so a
redelivered batch sends only what was not sent.
"""

from __future__ import annotations

from celery import shared_task

from campaigns import services


@shared_task(ignore_result=True, acks_late=True, reject_on_worker_lost=True, soft_time_limit=3300, time_limit=3600)
def prepare_campaign(campaign_id: int) -> int:
    """Select the audience, render one message per recipient and queue or schedule each."""
    return services.prepare(campaign_id).created


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
