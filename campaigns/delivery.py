"""Sending messages exactly once, even when a worker dies mid-send and its task is retried.

Each message goes through three committed steps, each a conditional update on the message row:

1. **claim**: ``scheduled → sending`` with a fresh claim token (and ``attempts + 1``). Only one
   worker's update finds the message scheduled; every other one sees 0 rows and moves on.
2. **hand-over marker**: ``handed_at`` is set, on condition that the row is still ``sending`` with
   *our* token, immediately before the SMTP client writes the final dot that completes the message
   data (``campaigns/smtp.py``). Until the dot the server holds an incomplete transaction that it
   discards if the connection breaks.
3. **sent**: ``sending → sent`` with our token once the server answered 250.

A worker that dies leaves the message ``sending``. Once the claim's lease has expired,
:func:`recover_expired_claims` looks at the marker: **no marker** → the final dot was never
written, so nothing was delivered and the message goes back to ``scheduled`` to be sent again;
**marker set** → the server may have accepted it, so it is marked ``failed`` with reason
``unconfirmed`` and never sent again automatically (at most once per claim). Only a crash in the
instant between the dot and step 3 lands there, and an operator decides. Because the marker is
conditional on the claim token and the recovery on the marker being empty, a slow worker whose
lease expired cannot send after its message was given to another worker: its marker update
finds 0 rows and it abandons the data before the dot.
"""

from __future__ import annotations

import logging
import smtplib
import uuid
from collections import Counter
from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.core.mail import get_connection
from django.core.mail.backends.base import BaseEmailBackend
from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone

from campaigns import composition, conf, people, scheduling, smtp
from campaigns.consent import email_refusal
from campaigns.models import Campaign, CampaignStatus, Channel, Message, MessageState, Reason
from campaigns.transitions import move
from experiments import services as experiments

logger = logging.getLogger(__name__)

DJANGO_SMTP = "django.core.mail.backends.smtp.EmailBackend"
# A campaign's messages go while it runs; a journey's (origin set) whenever their step made them,
# the template campaign being a draft that is never launched on its own.
_SENDABLE = Q(campaign__status=CampaignStatus.RUNNING) | ~Q(origin="")
RETRY_DELAYS = (timedelta(minutes=1), timedelta(minutes=5), timedelta(minutes=30), timedelta(hours=2))


def email_backend() -> BaseEmailBackend:
    """The configured backend; Django's SMTP backend is swapped for its commit-point subclass."""
    path = settings.EMAIL_BACKEND
    if path == DJANGO_SMTP:
        path = "campaigns.smtp.EmailBackend"
    return get_connection(path, fail_silently=False)


def _abandon(backend: BaseEmailBackend) -> None:
    if isinstance(backend, smtp.EmailBackend):
        backend.abandon()


# --- housekeeping before each round -------------------------------------------------------------------------


def recover_expired_claims(now: datetime | None = None) -> tuple[int, int]:
    """Claims whose worker is gone: (sent again later, marked unconfirmed)."""
    now = now or timezone.now()
    cutoff = now - timedelta(seconds=conf.send_lease_seconds())
    expired = Message.objects.filter(state=MessageState.SENDING, claimed_at__lt=cutoff)
    rescheduled = expired.filter(handed_at__isnull=True).update(
        state=MessageState.SCHEDULED, claim_token="", claimed_at=None, enqueued_at=None, updated_at=now
    )
    unconfirmed = expired.filter(handed_at__isnull=False).update(
        state=MessageState.FAILED,
        reason=Reason.UNCONFIRMED,
        detail="The worker stopped after handing the message to the mail server and before its answer "
        "was recorded; it is not sent again automatically.",
        updated_at=now,
    )
    if rescheduled or unconfirmed:
        logger.warning("Recovered expired send claims: %s to resend, %s unconfirmed", rescheduled, unconfirmed)
    return rescheduled, unconfirmed


def schedule_approved(now: datetime | None = None, limit: int = 5000) -> int:
    """Approved messages get their send time: the planned one, or the next allowed moment if it passed."""
    now = now or timezone.now()
    count = 0
    rows = Message.objects.filter(state=MessageState.APPROVED).select_related("campaign").order_by("pk")[:limit]
    for message in rows:
        if schedule_one(message, now):
            count += 1
    return count


def schedule_one(message: Message, now: datetime) -> bool:
    campaign = message.campaign
    try:
        policy = scheduling.policy_of(campaign, now)
    except ValueError:
        policy = scheduling.SendPolicy(now, campaign.send_until, None, None, scheduling.FrequencyCap())
    zone = people.zone_of(people.traits_of([message.person_id]).get(message.person_id, {}), conf.default_timezone())
    desired = max(message.scheduled_for or now, now)
    policy = scheduling.SendPolicy(desired, policy.send_until, policy.quiet_hours, policy.window, policy.cap)
    sent = scheduling.planned_sends([message.person_id], message.channel, exclude_message=message.pk)
    slot = scheduling.plan(policy, zone, now=now, sent=sent.get(message.person_id, []))
    if slot.when is None:
        return move(message.pk, [MessageState.APPROVED], MessageState.SUPPRESSED, reason=slot.reason)
    return move(message.pk, [MessageState.APPROVED], MessageState.SCHEDULED, scheduled_for=slot.when)


def log_holdout_exposures(now: datetime | None = None, limit: int = 5000) -> int:
    """People held out of a campaign are exposed to 'nothing' when the others are sent their message."""
    now = now or timezone.now()
    rows = list(
        Message.objects.filter(
            state=MessageState.SUPPRESSED,
            reason=Reason.HOLDOUT,
            exposure_logged_at__isnull=True,
            scheduled_for__lte=now,
        ).values_list("pk", "person_id", "assignments")[:limit]
    )
    for pk, person_id, assignments in rows:
        if Message.objects.filter(pk=pk, exposure_logged_at__isnull=True).update(exposure_logged_at=now) == 1:
            _log_exposures(person_id, assignments)
    return len(rows)


def _log_exposures(person_id: int, assignments: dict[str, Any]) -> None:
    for experiment_key, variant in (assignments or {}).items():
        try:
            # The variant the message was prepared with is what the person saw, even if the weights moved since.
            experiments.log_exposure(experiment_key, person_id, variant, assigned=True)
        except Exception:  # an exposure is measurement; it never blocks or undoes a delivery
            logger.exception("Could not log the exposure of person %s to %s", person_id, experiment_key)


def due_batches(now: datetime | None = None, limit: int = 10_000) -> list[list[int]]:
    """Scheduled messages whose time has come and that no live task holds, in batches for the senders;
    marked as enqueued so the next round does not queue them again while the lease runs."""
    now = now or timezone.now()
    lease = timedelta(seconds=conf.send_lease_seconds())
    ids = list(
        Message.objects.filter(state=MessageState.SCHEDULED, scheduled_for__lte=now)
        .filter(_SENDABLE)
        .filter(Q(enqueued_at__isnull=True) | Q(enqueued_at__lt=now - lease))
        .order_by("scheduled_for", "pk")
        .values_list("pk", flat=True)[:limit]
    )
    if ids:
        Message.objects.filter(pk__in=ids, state=MessageState.SCHEDULED).update(enqueued_at=now)
    size = conf.send_batch()
    return [ids[start : start + size] for start in range(0, len(ids), size)]


# --- sending -----------------------------------------------------------------------------------------------


def send_batch(message_ids: Iterable[int]) -> Counter[str]:
    """Send each message over one connection; returns how many ended in each outcome."""
    outcomes: Counter[str] = Counter()
    backend = email_backend()
    try:
        try:
            backend.open()  # one connection for the batch (each send would open its own otherwise)
        except (smtplib.SMTPException, OSError):
            logger.warning("Could not connect to the mail server; each message will be retried", exc_info=True)
        for message_id in message_ids:
            outcomes[deliver(message_id, backend)] += 1
    finally:
        try:
            backend.close()
        except Exception:  # closing a broken connection must not hide what was sent
            _abandon(backend)
    return outcomes


def _release(message_id: int, token: str, **fields: Any) -> bool:
    return move(
        message_id,
        [MessageState.SENDING],
        MessageState.SCHEDULED,
        where_claim_token=token,
        claim_token="",
        claimed_at=None,
        handed_at=None,
        enqueued_at=None,
        **fields,
    )


def _retry_or_fail(message: Message, token: str, error: str, now: datetime) -> str:
    attempts = message.attempts
    if attempts >= conf.max_attempts():
        move(
            message.pk,
            [MessageState.SENDING],
            MessageState.FAILED,
            where_claim_token=token,
            reason=Reason.ATTEMPTS,
            detail=error[:2000],
        )
        return "failed"
    delay = RETRY_DELAYS[min(attempts - 1, len(RETRY_DELAYS) - 1)]
    _release(message.pk, token, scheduled_for=now + delay, detail=error[:2000])
    return "retry"


def deliver(message_id: int, backend: BaseEmailBackend, now: datetime | None = None) -> str:
    """Send one message if it is due and nobody else holds it. Returns the outcome: sent, skipped,
    suppressed, deferred, retry, failed, unconfirmed or lost (another worker took it over)."""
    now = now or timezone.now()
    token = uuid.uuid4().hex
    claimed = (
        Message.objects.filter(
            pk=message_id,
            state=MessageState.SCHEDULED,
            scheduled_for__lte=now,
        )
        .filter(_SENDABLE)
        .update(
            state=MessageState.SENDING,
            claim_token=token,
            claimed_at=now,
            handed_at=None,
            attempts=F("attempts") + 1,
            updated_at=now,
        )
    )
    if claimed != 1:
        return "skipped"
    message = Message.objects.select_related("campaign").get(pk=message_id)
    campaign = message.campaign

    refusal = email_refusal(message.person_id) if message.channel == Channel.EMAIL else None
    if refusal is not None:
        move(message.pk, [MessageState.SENDING], MessageState.SUPPRESSED, where_claim_token=token, reason=refusal)
        return "suppressed"

    slot = _slot_now(message, campaign, now)
    if slot.when is None:
        move(message.pk, [MessageState.SENDING], MessageState.SUPPRESSED, where_claim_token=token, reason=slot.reason)
        return "suppressed"
    if slot.when > now + timedelta(seconds=1):
        _release(message.pk, token, scheduled_for=slot.when)
        return "deferred"

    if message.channel == Channel.ONBOARDING:
        # In-product messages are "delivered" by being shown by GET /api/v1/onboarding/<person>.
        return _confirm(message, token, now)
    return _hand_over(message, campaign, backend, token, now)


def _slot_now(message: Message, campaign: Campaign, now: datetime) -> scheduling.Slot:
    """Quiet hours, window and caps once more, with what has actually been sent by now."""
    try:
        policy = scheduling.policy_of(campaign, now)
    except ValueError:
        return scheduling.Slot(now, "now")
    zone = people.zone_of(people.traits_of([message.person_id]).get(message.person_id, {}), conf.default_timezone())
    sent = scheduling.sent_before(message.person_id, message.channel, message.pk)
    return scheduling.allowed_now(policy, zone, now, sent)


def _hand_over(message: Message, campaign: Campaign, backend: BaseEmailBackend, token: str, now: datetime) -> str:
    email = composition.email_of(message, campaign)
    handed = False

    def mark_handed() -> bool:
        nonlocal handed
        # Committed on its own (autocommit), before the final dot is written.
        handed = (
            Message.objects.filter(pk=message.pk, state=MessageState.SENDING, claim_token=token).update(
                handed_at=timezone.now()
            )
            == 1
        )
        return handed

    try:
        if isinstance(backend, smtp.EmailBackend):
            marker = smtp.commit_point.set(mark_handed)
            try:
                sent = backend.send_messages([email])
            finally:
                smtp.commit_point.reset(marker)
        else:
            if not mark_handed():
                return "lost"
            sent = backend.send_messages([email])
    except smtp.CommitPointLost:
        _abandon(backend)
        return "lost"
    except smtplib.SMTPRecipientsRefused as error:
        _abandon(backend)
        move(
            message.pk,
            [MessageState.SENDING],
            MessageState.FAILED,
            where_claim_token=token,
            reason=Reason.REFUSED,
            detail=str(error)[:2000],
        )
        return "failed"
    except smtplib.SMTPResponseException as error:
        # The server answered with an error: it did not take the message, so trying again is safe.
        _abandon(backend)
        if 500 <= error.smtp_code < 600:
            move(
                message.pk,
                [MessageState.SENDING],
                MessageState.FAILED,
                where_claim_token=token,
                reason=Reason.REFUSED,
                detail=f"{error.smtp_code} {error.smtp_error!r}"[:2000],
            )
            return "failed"
        return _retry_or_fail(message, token, f"{error.smtp_code} {error.smtp_error!r}", now)
    except (smtplib.SMTPException, OSError) as error:
        _abandon(backend)
        if handed:
            _unconfirmed(message.pk, token, f"The connection failed after the hand-over: {error!r}")
            return "unconfirmed"
        return _retry_or_fail(message, token, repr(error), now)
    if not sent:
        return _retry_or_fail(message, token, "the email backend sent nothing", now)
    return _confirm(message, token, now)


def _unconfirmed(message_id: int, token: str, detail: str) -> None:
    move(
        message_id,
        [MessageState.SENDING],
        MessageState.FAILED,
        where_claim_token=token,
        reason=Reason.UNCONFIRMED,
        detail=detail[:2000],
    )


def _confirm(message: Message, token: str, now: datetime) -> str:
    with transaction.atomic():
        done = (
            Message.objects.filter(pk=message.pk, claim_token=token)
            .filter(Q(state=MessageState.SENDING) | Q(state=MessageState.FAILED, reason=Reason.UNCONFIRMED))
            .update(
                state=MessageState.SENT,
                reason="",
                detail="",
                sent_at=timezone.now(),
                message_id_header=composition.message_id_header(message.campaign_id, message.person_id, message.origin),
                updated_at=timezone.now(),
            )
        )
        if done != 1:
            return "lost"
        Message.objects.filter(pk=message.pk).update(exposure_logged_at=now)
    # The variant was shown when the message went out (committed above); measuring never undoes it.
    _log_exposures(message.person_id, dict(message.assignments or {}))
    return "sent"
