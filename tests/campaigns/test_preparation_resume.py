"""Finding 9 of issue 12: a campaign whose worker was killed while preparing stayed ``preparing`` for
40 minutes (the broker's visibility timeout), and ``prepare_campaign``'s 3,600 s time limit exceeded
that 2,400 s timeout, so a long preparation could be delivered twice. Now a preparation holds a claim
with a heartbeat, a periodic check re-queues one whose heartbeat went stale, only one run can hold
the claim, and every task's time limit is below the visibility timeout."""

from __future__ import annotations

import threading
from datetime import timedelta
from unittest import mock

import pytest
from django.conf import settings
from django.db import connection
from django.utils import timezone

from campaigns import services, tasks
from campaigns.models import Campaign, CampaignStatus, Message
from campaigns.preparation import _heartbeat
from personalization.celery import app
from tests.campaigns.conftest import make_campaign, person


def _launched(key: str) -> Campaign:
    campaign = make_campaign(key)
    services.launch(campaign)  # the queued task runs only on commit, which a test never reaches
    return Campaign.objects.get(pk=campaign.pk)


def _worker_died(campaign: Campaign, minutes_ago: float) -> None:
    """A run claimed the preparation, showed progress ``minutes_ago`` and was killed."""
    assert services.claim_preparation(campaign.pk) is not None
    Campaign.objects.filter(pk=campaign.pk).update(
        preparation_heartbeat_at=timezone.now() - timedelta(minutes=minutes_ago)
    )


def _run_queued_tasks_here():
    return mock.patch.object(
        tasks.prepare_campaign, "delay", side_effect=lambda campaign_id: tasks.prepare_campaign.apply((campaign_id,))
    )


def test_finding_9_a_preparation_whose_worker_died_is_resumed_and_a_live_one_is_not(db):
    for name in ("ann", "bob", "cat"):
        person(name, first_name=name.title())
    dead, alive = _launched("dead-worker"), _launched("live-worker")
    _worker_died(dead, minutes_ago=10)
    _worker_died(alive, minutes_ago=0.5)  # its worker is alive and working

    with _run_queued_tasks_here() as queued:
        resumed = tasks.resume_stalled_preparations()

    assert resumed == [dead.pk]
    assert [call.args for call in queued.call_args_list] == [(dead.pk,)]
    dead.refresh_from_db()
    alive.refresh_from_db()
    assert dead.status == CampaignStatus.RUNNING and dead.audience_size == 3
    assert Message.objects.filter(campaign=dead).count() == 3
    assert alive.status == CampaignStatus.PREPARING
    assert not Message.objects.filter(campaign=alive).exists()


def test_a_resumed_preparation_skips_the_people_already_prepared(db):
    for name in ("ann", "bob"):
        person(name, first_name=name.title())
    campaign = _launched("half-done")
    claim = services.claim_preparation(campaign.pk)
    assert claim is not None
    ann_only = Campaign.objects.get(pk=campaign.pk)
    ann_only.audience = {"all": [{"field": "trait.first_name", "op": "eq", "value": "Ann"}]}
    ann_only.save(update_fields=["audience"])
    Campaign.objects.filter(pk=campaign.pk).update(preparation_heartbeat_at=None)  # claimable again
    services.prepare(campaign.pk)  # a run that prepared Ann, then its worker died before the rest
    assert Message.objects.filter(campaign=campaign).count() == 1
    Campaign.objects.filter(pk=campaign.pk).update(
        status=CampaignStatus.PREPARING,
        audience={"all": [{"field": "trait.first_name", "op": "exists"}]},
        preparation_heartbeat_at=timezone.now() - timedelta(minutes=10),
    )
    with _run_queued_tasks_here():
        assert tasks.resume_stalled_preparations() == [campaign.pk]
    assert sorted(Message.objects.filter(campaign=campaign).values_list("to_email", flat=True)) == [
        "ann@example.com",
        "bob@example.com",
    ]


def test_a_queued_preparation_that_never_started_is_resumed_after_the_stale_time(db):
    person("ann", first_name="Ann")
    lost, fresh = _launched("lost-task"), _launched("just-launched")
    Campaign.objects.filter(pk=lost.pk).update(launched_at=timezone.now() - timedelta(minutes=10))
    with _run_queued_tasks_here():
        assert tasks.resume_stalled_preparations() == [lost.pk]
    assert Campaign.objects.get(pk=lost.pk).status == CampaignStatus.RUNNING
    assert Campaign.objects.get(pk=fresh.pk).status == CampaignStatus.PREPARING


def test_a_run_that_lost_its_claim_stops_at_its_next_chunk(db):
    person("ann", first_name="Ann")
    campaign = _launched("taken-over")
    first = services.claim_preparation(campaign.pk)
    assert first is not None and services.claim_preparation(campaign.pk) is None  # alive: nobody else
    Campaign.objects.filter(pk=campaign.pk).update(preparation_heartbeat_at=timezone.now() - timedelta(minutes=10))
    second = services.claim_preparation(campaign.pk)
    assert second is not None and second != first
    assert _heartbeat(campaign.pk, first) is False
    assert _heartbeat(campaign.pk, second) is True


@pytest.mark.django_db(transaction=True)
def test_finding_9_two_concurrent_resumptions_one_runs():
    for name in ("ann", "bob", "cat", "dan"):
        person(name, first_name=name.title())
    campaign = _launched("raced")
    Campaign.objects.filter(pk=campaign.pk).update(launched_at=timezone.now() - timedelta(minutes=10))

    barrier = threading.Barrier(4)
    claims: list[str | None] = []

    def claim() -> None:
        try:
            barrier.wait()
            claims.append(services.claim_preparation(campaign.pk))
        finally:
            connection.close()

    threads = [threading.Thread(target=claim) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len([c for c in claims if c is not None]) == 1

    # Two whole resumptions at once: one prepares everybody, the other finds the claim held (or the
    # campaign already running); nobody gets two messages.
    Campaign.objects.filter(pk=campaign.pk).update(preparation_heartbeat_at=timezone.now() - timedelta(minutes=10))
    results = []
    start = threading.Barrier(2)

    def resume() -> None:
        try:
            start.wait()
            results.append(services.prepare(campaign.pk))
        finally:
            connection.close()

    runners = [threading.Thread(target=resume) for _ in range(2)]
    for runner in runners:
        runner.start()
    for runner in runners:
        runner.join()
    assert sorted(r.created for r in results) == [0, 4]
    assert Message.objects.filter(campaign=campaign).count() == 4
    assert Campaign.objects.get(pk=campaign.pk).status == CampaignStatus.RUNNING


def test_finding_9_every_task_time_limit_is_below_the_broker_visibility_timeout():
    app.loader.import_default_modules()
    visibility = settings.CELERY_BROKER_TRANSPORT_OPTIONS["visibility_timeout"]
    ours = {name: task for name, task in app.tasks.items() if not name.startswith("celery.")}
    assert "campaigns.tasks.prepare_campaign" in ours and "campaigns.tasks.resume_stalled_preparations" in ours
    for name, task in ours.items():
        hard = task.time_limit or app.conf.task_time_limit
        soft = task.soft_time_limit or app.conf.task_soft_time_limit
        assert hard is not None and hard < visibility, (
            f"{name}: time limit {hard} s >= visibility timeout {visibility} s"
        )
        assert soft is None or soft < hard, name
    # And the periodic check notices a dead preparation long before the broker would redeliver it.
    from campaigns import conf

    assert conf.preparation_stale_seconds() * 2 < visibility
