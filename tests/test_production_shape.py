"""The production shape of ``make up`` on loopback: real processes against the test database and Redis.

``deploy/up.py`` (what ``make up`` runs) starts gunicorn with two web processes, a Celery worker per
queue, beat and the outbox relay. The test waits until the web answers and every queue's worker
replies, sends events through the API, sees them stored and the people's profiles refreshed by the
ingestion worker, has the training worker fit and activate a version that the web processes then
serve, and stops the whole shape with SIGINT, as Ctrl-C does: every process exits, none is killed.
"""

from __future__ import annotations

import http.client
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings

from catalog.models import Item
from personalization.celery import app
from personalization.models import ApiKey, KeyScope, ModelVersion, VersionStatus
from personalization.queues import QUEUES
from personalization.surfaces import create_surface
from personalization.tasks import train_engine
from profiles.models import Event, EventMessage, Identity, Profile
from tests.processes import database_url_of_test_db, free_port

pytestmark = [
    pytest.mark.services,
    pytest.mark.slow,
    pytest.mark.skipif(
        not (settings.REDIS_URL and os.getenv("DATABASE_URL")),
        reason="needs DATABASE_URL (PostgreSQL) and REDIS_URL: the shape is other processes",
    ),
]

ROOT = Path(__file__).resolve().parents[1]
PEOPLE = 12


@dataclass
class Shape:
    port: int
    process: subprocess.Popen[bytes]
    log: Path

    def tail(self) -> str:
        return self.log.read_text(errors="replace")[-4000:]

    def call(self, method: str, path: str, key: str, body: Any = None) -> tuple[int, Any]:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
        conn.request(method, path, body=None if body is None else json.dumps(body), headers=headers)
        response = conn.getresponse()
        raw = response.read()
        return response.status, json.loads(raw) if raw else None


def _until(what: str, check: Callable[[], Any], shape: Shape, seconds: float) -> Any:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if shape.process.poll() is not None:
            pytest.fail(f"make up exited while waiting for {what}:\n{shape.tail()}")
        try:
            found = check()
        except OSError:
            found = None
        if found:
            return found
        time.sleep(0.3)
    pytest.fail(f"{what}: not within {seconds} s\n{shape.tail()}")


@pytest.fixture
def shape(transactional_db: object, tmp_path: Path) -> Iterator[Shape]:
    port = free_port()
    log = tmp_path / "up.log"
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "personalization.settings_for_tests",
        "DATABASE_URL": database_url_of_test_db(),
        "HOST": "127.0.0.1",
        "PORT": str(port),
        "WEB_PROCESSES": "2",
        "RELAY_SECONDS": "2",
        "STOP_SECONDS": "30",
        "MODEL_STORAGE_DIR": str(tmp_path / "models"),
        "ALLOWED_HOSTS": "127.0.0.1",
    }
    process = subprocess.Popen(
        [sys.executable, "deploy/up.py", "--no-migrate"],  # the test database is migrated already
        cwd=ROOT,
        env=env,
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
    )
    started = Shape(port, process, log)
    try:
        yield started
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGINT)
            try:
                process.wait(timeout=40)
            except subprocess.TimeoutExpired:
                process.kill()


def _workers_reply() -> set[str]:
    replies = app.control.ping(timeout=1.0)
    return {name.split("@")[0] for reply in replies for name in reply}


def test_make_up_runs_the_whole_shape_and_stops_on_ctrl_c(shape: Shape) -> None:
    began = time.monotonic()
    create_surface("homepage", "Homepage", {"size": 5}, by="tests")
    Item.objects.bulk_create(
        Item(external_id=f"sku-{n}", title=f"Item {n}", category="Home > Kitchen", price="10.00", stock=5)
        for n in range(12)
    )
    _, key = ApiKey.issue("shape", KeyScope.SECRET)

    _until("the web processes answering", lambda: shape.call("GET", "/api/v1/track", key)[0] == 405, shape, 60)
    _until("a worker on every queue", lambda: _workers_reply() >= set(QUEUES), shape, 60)
    up_at = time.monotonic() - began
    up_log = shape.log.read_text(errors="replace")
    assert "started beat" in up_log and "started relay" in up_log, up_log[-3000:]

    # Events through the API: each person views and buys from one of three groups of items.
    batch = []
    for person in range(PEOPLE):
        group = [f"sku-{(person % 3) * 4 + n}" for n in range(4)]
        for n, sku in enumerate(group):
            kind = "Order Completed" if n == 3 else "Product Viewed"
            properties = {"products": [{"product_id": sku}]} if n == 3 else {"product_id": sku}
            batch.append(
                {
                    "type": "track",
                    "event": kind,
                    "userId": f"u{person}",
                    "messageId": f"{person}-{n}",
                    "properties": properties,
                }
            )
    status, body = shape.call("POST", "/api/v1/batch", key, {"batch": batch})
    assert status == 200 and body["accepted"] == len(batch), body
    assert Event.objects.count() == len(batch) and EventMessage.objects.count() == len(batch)
    people = set(Identity.objects.filter(kind="user_id").values_list("person_id", flat=True))
    assert len(people) == PEOPLE
    # The ingestion worker refreshed their profiles (the outbox entry went to it after the commit).
    _until(
        "profiles refreshed by the ingestion worker",
        lambda: Profile.objects.filter(person_id__in=people).count() == PEOPLE,
        shape,
        30,
    )

    # The training worker fits a version and activates it; the web processes serve it.
    version = ModelVersion.objects.create(requested_by="tests")
    train_engine.delay(version.pk)

    def trained() -> bool:
        version.refresh_from_db()
        assert version.status not in (VersionStatus.FAILED, VersionStatus.REJECTED), version.error
        return version.status == VersionStatus.ACTIVE

    _until("a version trained by the training worker", trained, shape, 90)

    def served() -> dict[str, Any] | None:
        status, body = shape.call("GET", "/api/v1/surfaces/homepage/recommendations?person=u0", key)
        assert status == 200, body
        return body if body["model_version"] == version.pk and body["items"] else None

    answer = _until("a recommendation from the new version", served, shape, 30)
    assert answer["recommendation_id"] and all(i["item_id"].startswith("sku-") for i in answer["items"])

    # Ctrl-C: the supervisor stops every process the clean way and exits 0.
    shape.process.send_signal(signal.SIGINT)
    assert shape.process.wait(timeout=40) == 0, shape.tail()
    log = shape.log.read_text()
    assert "stopped" in log.splitlines()[-1] and "killed" not in log, log[-3000:]
    assert _workers_reply() == set()
    with pytest.raises(OSError):
        shape.call("GET", "/api/v1/track", key)
    print(f"the shape was up after {up_at:.1f} s, trained, served and stopped after {time.monotonic() - began:.1f} s")
