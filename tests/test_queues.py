"""Each kind of work has a queue of its own (personalization/queues.py): routing by task name."""

from __future__ import annotations

import pytest
from celery import current_app

from personalization import queues
from personalization.celery import app
from profiles.models import Profile
from profiles.services import find_person
from tests.conftest import track

PROJECT_APPS = ("catalog.", "profiles.", "experiments.", "personalization.", "campaigns.", "journeys.")


def queue_of(task_name: str) -> str:
    return app.amqp.router.route({}, task_name)["queue"].name


def project_tasks() -> list[str]:
    app.loader.import_default_modules()
    return sorted(name for name in app.tasks if name.startswith(PROJECT_APPS))


def test_every_task_of_the_project_is_routed_on_purpose():
    tasks = project_tasks()
    assert "personalization.tasks.train_engine" in tasks and "campaigns.tasks.send_messages" in tasks
    assert set(tasks) == set(queues.ROUTES), "a new task needs a line in personalization/queues.py ROUTES"


def test_each_kind_of_work_lands_on_its_own_queue():
    assert queue_of("personalization.tasks.train_engine") == "training"
    assert queue_of("campaigns.tasks.send_messages") == "sending"
    assert queue_of("campaigns.tasks.send_due_messages") == "sending"
    assert queue_of("campaigns.tasks.prepare_campaign") == "preparation"
    assert queue_of("profiles.tasks.refresh_profiles") == "ingestion"
    assert queue_of("profiles.tasks.relay_outbox") == "ingestion"
    assert queue_of("experiments.tasks.reweight_bandits") == "serving"
    assert queue_of("profiles.tasks.apply_retention") == "maintenance"


def test_a_training_task_never_lands_on_the_send_queue():
    sending = {name for name in project_tasks() if queue_of(name) == queues.SENDING}
    assert sending == {"campaigns.tasks.send_due_messages", "campaigns.tasks.send_messages"}
    # Nor on the queues whose work is expected within seconds.
    assert queue_of("personalization.tasks.train_engine") not in {queues.SENDING, queues.INGESTION, queues.SERVING}


def test_a_worker_without_queues_named_consumes_every_queue():
    # `make worker` (no -Q) on a small box must still run everything.
    assert set(app.amqp.queues) == set(queues.QUEUES)
    assert set(queues.ROUTES.values()) <= set(queues.QUEUES)
    assert app.conf.task_default_queue == queues.MAINTENANCE


@pytest.mark.django_db
def test_the_embedded_default_still_runs_routed_tasks_in_process(ingest_client, make_item):
    # No REDIS_URL: tasks run eagerly, in the request; the routes must not get in the way.
    was = current_app.conf.task_always_eager
    current_app.conf.task_always_eager = True
    try:
        _ingest_and_refresh(ingest_client, make_item)
    finally:
        current_app.conf.task_always_eager = was


def _ingest_and_refresh(ingest_client, make_item) -> None:
    make_item("sku-q", category="Home > Lamps", brand="Lumo")
    response = ingest_client.post(
        "/api/v1/track", track("Product Viewed", user="queue-u1", properties={"product_id": "sku-q"})
    )
    assert response.status_code == 200
    from profiles.tasks import refresh_profiles

    person = find_person("queue-u1")
    assert person is not None
    refresh_profiles.delay([person.pk])
    profile = Profile.objects.get(person=person)
    assert profile.brand_affinity == {"Lumo": 1.0}
