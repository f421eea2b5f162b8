"""Exactly-once sending, step by step: the claim, the hand-over marker written just before the end of
the SMTP data, recovery after a lost worker, and what each SMTP answer does."""

from __future__ import annotations

from datetime import timedelta

from django.core import mail
from django.utils import timezone
from django_celery_beat.models import PeriodicTask

from campaigns import delivery, services, tracking
from campaigns.models import Message, MessageState, Reason
from tests.campaigns.conftest import launch_and_prepare, make_campaign, person, send_all


def _scheduled() -> Message:
    person("ann", first_name="Ann")
    campaign = launch_and_prepare(make_campaign("d"))
    return Message.objects.get(campaign=campaign)


def test_a_message_is_claimed_once_and_a_second_delivery_skips_it(db):
    message = _scheduled()
    backend = delivery.email_backend()
    assert delivery.deliver(message.pk, backend) == "sent"
    assert delivery.deliver(message.pk, backend) == "skipped"
    assert services.send_batch([message.pk, message.pk]) == {"skipped": 2}
    assert len(mail.outbox) == 1
    message.refresh_from_db()
    assert (message.state, message.attempts) == (MessageState.SENT, 1)
    assert message.handed_at is not None and message.sent_at is not None


def test_due_messages_are_queued_once_while_their_lease_runs(db):
    message = _scheduled()
    assert services.due_message_batches() == [[message.pk]]
    assert services.due_message_batches() == []  # enqueued, a task holds it
    later = timezone.now() + timedelta(seconds=301)
    assert services.due_message_batches(later) == [[message.pk]]  # that task never ran: queue it again


def _claimed(message: Message, ago: timedelta, handed: bool) -> None:
    when = timezone.now() - ago
    Message.objects.filter(pk=message.pk).update(
        state=MessageState.SENDING, claim_token="dead-worker", claimed_at=when, handed_at=when if handed else None
    )


def test_a_dead_workers_claim_without_the_marker_is_sent_again(db):
    message = _scheduled()
    _claimed(message, timedelta(minutes=10), handed=False)
    assert delivery.recover_expired_claims() == (1, 0)
    assert send_all() == {"sent": 1}
    assert len(mail.outbox) == 1


def test_a_dead_workers_claim_with_the_marker_is_never_sent_again(db):
    message = _scheduled()
    _claimed(message, timedelta(minutes=10), handed=True)
    assert delivery.recover_expired_claims() == (0, 1)
    assert send_all() == {}
    assert mail.outbox == []
    message.refresh_from_db()
    assert (message.state, message.reason) == (MessageState.FAILED, Reason.UNCONFIRMED)


def test_a_live_claim_is_left_alone(db):
    message = _scheduled()
    _claimed(message, timedelta(seconds=5), handed=False)
    assert delivery.recover_expired_claims() == (0, 0)
    assert send_all() == {}
    assert Message.objects.get(pk=message.pk).state == MessageState.SENDING


def test_a_slow_sender_whose_claim_was_taken_over_abandons_the_data_before_the_end(db, smtp):
    message = _scheduled()
    now = timezone.now()
    Message.objects.filter(pk=message.pk).update(state=MessageState.SENDING, claim_token="mine", claimed_at=now)
    # Meanwhile its lease expired and another worker claimed the message.
    Message.objects.filter(pk=message.pk).update(claim_token="theirs")
    backend = delivery.email_backend()
    message = Message.objects.select_related("campaign").get(pk=message.pk)
    assert delivery._hand_over(message, message.campaign, backend, "mine", now) == "lost"
    assert smtp.seen["rcpt"] == 1 and smtp.received == []  # the server got the data but never its end
    message.refresh_from_db()
    assert (message.state, message.claim_token, message.handed_at) == (MessageState.SENDING, "theirs", None)


def test_a_slow_sender_can_still_confirm_a_message_marked_unconfirmed(db):
    message = _scheduled()
    Message.objects.filter(pk=message.pk).update(
        state=MessageState.FAILED, reason=Reason.UNCONFIRMED, claim_token="slow", handed_at=timezone.now()
    )
    assert delivery._confirm(message, "slow", timezone.now()) == "sent"
    message.refresh_from_db()
    assert (message.state, message.reason) == (MessageState.SENT, "")


def test_a_refused_recipient_fails_the_message_for_good(db, smtp):
    smtp.rcpt_reply = "550 5.1.1 No such user"
    message = _scheduled()
    assert send_all() == {"failed": 1}
    message.refresh_from_db()
    assert (message.state, message.reason) == (MessageState.FAILED, Reason.REFUSED)
    assert "No such user" in message.detail


def test_a_temporary_refusal_is_retried_later_and_then_given_up(db, smtp, settings):
    settings.CAMPAIGN_MAX_ATTEMPTS = 2
    smtp.data_reply = "451 4.3.0 Try again later"
    message = _scheduled()
    assert send_all() == {"retry": 1}
    message.refresh_from_db()
    assert message.state == MessageState.SCHEDULED and message.attempts == 1
    assert message.scheduled_for is not None
    assert message.scheduled_for > timezone.now() + timedelta(seconds=50)  # backs off
    assert message.handed_at is None  # the server answered: it does not have the message
    assert send_all() == {}  # not due yet
    Message.objects.filter(pk=message.pk).update(scheduled_for=timezone.now())
    assert send_all() == {"failed": 1}
    message.refresh_from_db()
    assert (message.state, message.reason, message.attempts) == (MessageState.FAILED, Reason.ATTEMPTS, 2)
    assert smtp.received == []


def test_an_unreachable_server_keeps_the_message_for_later(db, settings):
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT, settings.EMAIL_TIMEOUT = "127.0.0.1", 9, 2  # nothing listens
    message = _scheduled()
    assert send_all() == {"retry": 1}
    message.refresh_from_db()
    assert message.state == MessageState.SCHEDULED and message.handed_at is None


def test_the_message_id_is_the_same_on_every_attempt(db, smtp):
    smtp.data_reply = "451 busy"
    message = _scheduled()
    send_all()
    smtp.data_reply = "250 OK"
    Message.objects.filter(pk=message.pk).update(scheduled_for=timezone.now())
    assert send_all() == {"sent": 1}
    message.refresh_from_db()
    assert [str(m["Message-ID"]) for m in smtp.received] == [message.message_id_header]
    assert message.message_id_header == f"<campaign.{message.campaign_id}.{message.person_id}@localhost>"


def test_the_sender_runs_every_minute_from_celery_beat(db):
    job = PeriodicTask.objects.get(task="campaigns.tasks.send_due_messages")
    assert job.enabled and job.interval is not None
    assert (job.interval.every, job.interval.period) == (1, "minutes")


def test_an_open_confirms_a_message_whose_hand_over_was_unconfirmed(db, client):
    message = _scheduled()
    _claimed(message, timedelta(minutes=10), handed=True)
    delivery.recover_expired_claims()
    client.get(f"/t/o/{tracking.open_token(message.campaign_id, message.person_id)}.gif")
    message.refresh_from_db()
    assert (message.state, message.reason) == (MessageState.OPENED, "")
    assert message.sent_at == message.handed_at
