"""Retention: events and impressions older than RETENTION_MONTHS go, in batches of short statements over
primary-key ranges, each committed on its own; newer rows and consent history stay. On PostgreSQL the
events here are dated before any month partition, so they are in the default partition, which is
deleted from in batches (whole months go by dropping their partition: test_event_partitions.py)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from io import StringIO

import pytest
from django.core.management import call_command
from django.db import OperationalError, connection
from django.db.models import QuerySet
from django.test.utils import CaptureQueriesContext
from django_celery_beat.models import PeriodicTask

from personalization.models import Impression, Surface
from profiles import partitions
from profiles.models import ConsentChange, Event, Person
from profiles.retention import apply_retention, retention_cutoff
from profiles.services import record_consent

NOW = datetime(2026, 11, 27, 3, 15, tzinfo=UTC)


def _events(person: Person, ages_in_days: list[int], prefix: str) -> None:
    Event.objects.bulk_create(
        [
            Event(
                message_id=f"{prefix}-{n}",
                person=person,
                kind="view",
                item_id="sku-1",
                timestamp=NOW - timedelta(days=age),
                received_at=NOW,
            )
            for n, age in enumerate(ages_in_days)
        ]
    )


def _impressions(surface: Surface, ages_in_days: list[int]) -> None:
    Impression.objects.bulk_create(
        [
            Impression(recommendation_id=f"r-{n}", surface=surface, person_id=1, served_at=NOW - timedelta(days=age))
            for n, age in enumerate(ages_in_days)
        ]
    )


def test_the_cutoff_is_retention_months_back(settings):
    settings.RETENTION_MONTHS = 24
    assert retention_cutoff(NOW) == datetime(2024, 11, 27, 3, 15, tzinfo=UTC)
    with pytest.raises(Exception, match="at least 1"):
        retention_cutoff(NOW, months=0)


@pytest.mark.django_db
def test_events_and_impressions_older_than_the_setting_go_in_batches(settings):
    settings.RETENTION_MONTHS = 24
    person = Person.objects.create()
    record_consent(person.pk, "email_marketing", True, at=NOW - timedelta(days=1500))
    # Old and new rows interleaved by primary key, as a late import leaves them. The old ones are all
    # from before the cutoff's month (October 2024 and earlier): on PostgreSQL that month stays whole.
    _events(person, [900, 10, 800, 780, 5, 770, 1000, 760, 1], "e")
    surface = Surface.objects.create(key="homepage", name="Homepage")
    _impressions(surface, [800, 3, 900, 760])
    with CaptureQueriesContext(connection) as queries:
        report = apply_retention(now=NOW, batch_rows=2)
    assert report.deleted == {"profiles.Event": 6, "profiles.EventMessage": 0, "personalization.Impression": 3}
    assert report.batches == 3 + 2
    assert sorted((NOW - e.timestamp).days for e in Event.objects.all()) == [1, 5, 10]
    assert [(NOW - i.served_at).days for i in Impression.objects.all()] == [3]
    assert ConsentChange.objects.filter(person=person).count() == 1  # the record of consent stays
    deletes = [q["sql"] for q in queries.captured_queries if q["sql"].startswith("DELETE")]
    assert len(deletes) == 5
    for sql in deletes:  # each statement bounded by a primary-key range
        assert '"id" >= ' in sql and '"id" <= ' in sql, sql


@pytest.mark.django_db
def test_a_dry_run_counts_and_deletes_nothing(settings):
    settings.RETENTION_MONTHS = 12
    person = Person.objects.create()
    if partitions.is_partitioned():
        partitions.create_month(partitions.Month(2025, 10))  # there whatever day the test database was made
    _events(person, [420, 200, 410], "d")  # two from the month before the cutoff's
    out = StringIO()
    call_command("apply_retention", "--dry-run", stdout=out)
    assert "profiles.Event: would delete 2 rows" in out.getvalue()
    if partitions.is_partitioned():  # PostgreSQL: the two are in October 2025's partition, which would go
        assert "profiles.Event: would drop the partition of 2025-10" in out.getvalue()
    assert Event.objects.count() == 3
    call_command("apply_retention", stdout=StringIO())
    assert Event.objects.count() == 1


@pytest.mark.django_db
def test_the_daily_job_is_scheduled():
    job = PeriodicTask.objects.get(task="profiles.tasks.apply_retention")
    assert job.enabled and job.crontab is not None
    assert (job.crontab.minute, job.crontab.hour, job.crontab.day_of_week) == ("15", "3", "*")


@pytest.mark.django_db(transaction=True)
def test_each_batch_is_committed_on_its_own(monkeypatch):
    """A run stopped in its second batch keeps the first batch's deletion: no statement or transaction
    spans the whole job, so no lock is held longer than one batch; the next run does the rest."""
    person = Person.objects.create()
    _events(person, [900] * 6, "t")
    delete = QuerySet.delete
    calls = 0

    def stopping_delete(self: QuerySet) -> tuple[int, dict[str, int]]:
        nonlocal calls
        calls += 1
        if calls == 2:
            raise OperationalError("the worker was stopped")
        return delete(self)

    monkeypatch.setattr(QuerySet, "delete", stopping_delete)
    with pytest.raises(OperationalError):
        apply_retention(now=NOW, batch_rows=2)
    assert Event.objects.count() == 4
    monkeypatch.setattr(QuerySet, "delete", delete)
    assert apply_retention(now=NOW, batch_rows=2).deleted["profiles.Event"] == 4
    assert Event.objects.count() == 0


@pytest.mark.django_db
def test_the_scheduled_task_applies_retention(settings):
    from profiles.tasks import apply_retention as task

    settings.RETENTION_MONTHS = 24
    person = Person.objects.create()
    _events(person, [10_000, 1], "s")  # ages from today: the task uses the current time
    assert task.run() == {"profiles.Event": 1, "profiles.EventMessage": 0, "personalization.Impression": 0}
    assert Event.objects.count() == 1
