"""Finding 1: Redis (cache, broker, hot profile) goes away mid-run. Ingestion, consent and
recommendations keep answering 2xx with nothing lost; once Redis is back the relay delivers what
waited in the outbox, once. The Redis here is the test's own ``redis-server`` on a spare port."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
from django.core.cache import cache
from django.db import connection
from rest_framework.test import APIClient

from personalization import queues, shared_cache
from personalization.celery import app
from personalization.models import ApiKey, KeyScope
from profiles import outbox
from profiles.models import Event, OutboxEntry
from tests.conftest import track
from tests.processes import free_port

pytestmark = [
    pytest.mark.services,
    pytest.mark.skipif(shutil.which("redis-server") is None, reason="needs redis-server to start its own"),
    pytest.mark.skipif(connection.vendor != "postgresql", reason="the outage is Redis's: PostgreSQL stays"),
]


class OwnRedis:
    """A redis-server of this test's own, that the test stops and starts again."""

    def __init__(self) -> None:
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None

    def url(self, db: int) -> str:
        return f"redis://127.0.0.1:{self.port}/{db}"

    def start(self) -> None:
        self.process = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                if redis.Redis.from_url(self.url(0)).ping():
                    return
            except redis.exceptions.ConnectionError:
                time.sleep(0.05)
        raise RuntimeError("redis-server did not start")

    def stop(self) -> None:
        assert self.process is not None
        self.process.terminate()
        self.process.wait(timeout=10)
        self.process = None

    def queued_tasks(self) -> int:
        client = redis.Redis.from_url(self.url(1))
        return sum(int(client.llen(queue)) for queue in queues.QUEUES)


def _point_celery_at(url: str) -> None:
    app.conf.broker_url = url
    app.amqp._producer_pool = None
    app._pool = None


@pytest.fixture
def own_redis(settings: Any) -> Iterator[OwnRedis]:
    server = OwnRedis()
    server.start()
    settings.CACHES = {
        "default": {
            "BACKEND": "personalization.shared_cache.ResilientRedisCache",
            "LOCATION": server.url(0),
            "KEY_PREFIX": "fault",
            "OPTIONS": {"socket_connect_timeout": 1.0, "socket_timeout": 5.0},
        }
    }
    settings.HOT_PROFILE_SECONDS = 600
    broker = app.conf.broker_url
    _point_celery_at(server.url(1))
    yield server
    if server.process is not None:
        server.stop()
    _point_celery_at(broker)
    shared_cache.forget_outages()
    outbox.forget_outages()


@pytest.fixture
def ingest_key(transactional_db: Any) -> str:
    return ApiKey.issue("outage ingest", KeyScope.INGEST)[1]


@pytest.fixture
def secret_key(transactional_db: Any) -> str:
    return ApiKey.issue("outage secret", KeyScope.SECRET)[1]


def _client(key: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {key}")
    return client


@pytest.mark.django_db(transaction=True)
def test_finding_1_with_redis_down_ingestion_consent_and_recommendations_answer_and_nothing_is_lost(
    own_redis, ingest_key, secret_key, make_item
):
    for n in range(5):
        make_item(f"sku-o{n}")
    ingest, secret = _client(ingest_key), _client(secret_key)

    # Redis up: the follow-up work goes at once, the outbox stays empty.
    first = ingest.post("/api/v1/track", track("Product Viewed", user="o-1", properties={"product_id": "sku-o1"}))
    assert first.status_code == 200
    assert secret.get("/api/v1/recommendations?person=o-1").status_code == 200  # makes a hot profile copy
    assert not OutboxEntry.objects.exists() and own_redis.queued_tasks() == 1
    assert cache.get("probe") is None

    own_redis.stop()
    started = time.monotonic()
    answers = [
        ingest.post("/api/v1/track", track("Product Viewed", user="o-1", properties={"product_id": "sku-o2"})),
        ingest.post("/api/v1/identify", {"userId": "o-2", "traits": {"email": "o2@example.com"}, "messageId": "i-1"}),
        ingest.post("/api/v1/page", {"anonymousId": "a-o3", "name": "Home", "messageId": "p-1"}),
        ingest.post(
            "/api/v1/batch",
            {"batch": [track("Product Added", user=f"o-{n}", properties={"product_id": "sku-o3"}) for n in range(4)]},
        ),
        secret.put("/api/v1/people/o-1/consent", {"purposes": {"personalization": False}}),
        secret.get("/api/v1/people/o-1/consent"),
        secret.get("/api/v1/recommendations?person=o-1"),
        secret.get("/api/v1/recommendations/popular?limit=3"),
        ingest.get("/api/v1/surfaces/homepage/recommendations?anonymous_id=a-o3"),
    ]
    down_for = time.monotonic() - started
    assert [a.status_code for a in answers] == [200] * 8 + [404], [a.content[:200] for a in answers]
    assert answers[3].json()["accepted"] == 4
    consent = {c["purpose"]: c["granted"] for c in answers[5].json()["consents"]}
    assert consent["personalization"] is False
    assert answers[6].json()["personalized"] is False  # the withdrawal holds at once, from the database
    assert down_for < 10, f"answering without Redis took {down_for:.1f} s"

    # Nothing lost: every event is stored, the follow-up work waits in the outbox.
    assert Event.objects.count() == 1 + 1 + 1 + 1 + 4
    waiting = list(OutboxEntry.objects.order_by("pk").values_list("pk", "action", "payload"))
    refreshes = [p for _, action, p in waiting if action == outbox.AFTER_INGEST and p.get("refresh")]
    assert len(refreshes) == 4  # track, identify, page, batch
    assert any(action == outbox.HOT_PROFILE_DROP for _, action, _ in waiting)  # the consent change

    # A relay while Redis is still away delivers nothing and loses nothing.
    report = outbox.relay()
    assert report.delivered == 0 and report.waiting == len(waiting) and report.stopped_by

    own_redis.start()  # empty: --save "" keeps nothing
    report = outbox.relay()
    assert (report.delivered, report.failed, report.waiting) == (len(waiting), 0, 0)
    assert own_redis.queued_tasks() == len(refreshes)
    appended = redis.Redis.from_url(own_redis.url(0)).keys("fault:*outbox:*")
    assert len(appended) == len([1 for _, action, p in waiting if action == outbox.AFTER_INGEST and "append" in p])

    # Nothing twice: a second relay has nothing to do.
    assert outbox.relay().delivered == 0
    assert own_redis.queued_tasks() == len(refreshes)

    # And the requests after the outage use Redis again.
    assert ingest.post("/api/v1/track", track("Signed Up", user="o-9")).status_code == 200
    assert own_redis.queued_tasks() == len(refreshes) + 1 and not OutboxEntry.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_finding_1_the_rate_limit_counts_per_process_while_redis_is_away(own_redis, ingest_key, settings):
    from personalization.api.throttling import PrincipalRateThrottle

    ingest = _client(ingest_key)
    rates = {**PrincipalRateThrottle.THROTTLE_RATES, "ingest": "3/min"}
    PrincipalRateThrottle.THROTTLE_RATES, saved = rates, PrincipalRateThrottle.THROTTLE_RATES
    try:
        own_redis.stop()
        statuses = [ingest.post("/api/v1/track", track("Signed Up", user=f"r-{n}")).status_code for n in range(5)]
    finally:
        PrincipalRateThrottle.THROTTLE_RATES = saved
    assert statuses == [200, 200, 200, 429, 429]
    assert Event.objects.count() == 3


@pytest.mark.django_db(transaction=True)
def test_finding_1_a_process_starts_and_ingests_with_redis_unreachable(ingest_key, secret_key):
    dead = f"redis://127.0.0.1:{free_port()}"
    db = connection.settings_dict
    script = (
        "import django, json; django.setup()\n"
        "from django.test import Client\n"
        f"ik, sk = {ingest_key!r}, {secret_key!r}\n"
        "c = Client()\n"
        "t = c.post('/api/v1/track', json.dumps({'userId': 'cold-1', 'event': 'Signed Up', 'messageId': 'cold-m'}),"
        " content_type='application/json', HTTP_AUTHORIZATION='Bearer ' + ik)\n"
        "r = c.get('/api/v1/recommendations?person=cold-1', HTTP_AUTHORIZATION='Bearer ' + sk)\n"
        "print(t.status_code, r.status_code)\n"
    )
    env = {
        **os.environ,
        "DATABASE_URL": f"postgres://{db['USER']}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}",
        "REDIS_URL": f"{dead}/1",
        "CACHE_URL": f"{dead}/0",
        "LOG_LEVEL": "ERROR",
        # The production shape, whatever the defaults are.
        "DEBUG": "False",
        "SECRET_KEY": "outage-test-only",
        "ALLOWED_HOSTS": "testserver",
    }
    result = subprocess.run(
        [sys.executable, "-c", script],
        cwd=Path(__file__).resolve().parents[2],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.split()[-2:] == ["200", "200"], result.stderr[-2000:]
    assert Event.objects.filter(message_id="cold-m").exists()
    assert OutboxEntry.objects.filter(action=outbox.AFTER_INGEST).count() == 1


def _hot_events(server: OwnRedis, person_id: int) -> int:
    return int(redis.Redis.from_url(server.url(0)).llen(f"fault:1:hot:ev:{person_id}"))


@pytest.mark.django_db(transaction=True)
def test_finding_1_with_only_the_broker_down_the_refresh_waits_and_nothing_is_done_twice(
    own_redis, ingest_key, secret_key, make_item
):
    from profiles.services import find_person

    make_item("sku-b1")
    ingest, secret = _client(ingest_key), _client(secret_key)
    first = ingest.post("/api/v1/track", track("Product Viewed", user="b-1", properties={"product_id": "sku-b1"}))
    assert first.status_code == 200
    person = find_person("b-1")
    assert person is not None
    assert secret.get("/api/v1/recommendations?person=b-1").status_code == 200  # the hot profile copy
    before = _hot_events(own_redis, person.pk)
    assert before == 1

    _point_celery_at(f"redis://127.0.0.1:{free_port()}/1")  # the broker alone goes away
    response = ingest.post("/api/v1/track", track("Product Viewed", user="b-1", properties={"product_id": "sku-b1"}))
    assert response.status_code == 200 and response.json()["accepted"] == 1
    (entry,) = OutboxEntry.objects.all()
    assert entry.payload["refresh"] == [person.pk]
    assert _hot_events(own_redis, person.pk) == before + 1  # the append went; the refresh waits

    queued = own_redis.queued_tasks()
    _point_celery_at(own_redis.url(1))
    report = outbox.relay()
    assert (report.delivered, report.waiting) == (1, 0)
    assert own_redis.queued_tasks() == queued + 1
    assert _hot_events(own_redis, person.pk) == before + 1  # not appended a second time


@pytest.mark.django_db(transaction=True)
def test_a_consent_withdrawal_made_while_redis_was_unreachable_reaches_the_copy_it_kept(
    own_redis, secret_key, settings
):
    from profiles import hot_profile
    from profiles.services import ingest_messages

    ingest_messages([track("Product Viewed", user="c-1", properties={"product_id": "sku-c"})], refresh=False)
    outbox.relay()
    secret = _client(secret_key)
    assert secret.get("/api/v1/recommendations?person=c-1").status_code == 200
    from profiles.services import find_person

    person = find_person("c-1")
    assert person is not None
    person_id = person.pk
    found = hot_profile.lookup(person_id=person_id)
    assert found is not None and found.complete and found.granted is None  # the default: granted

    # Redis unreachable from here (a network partition), but keeping its data.
    reachable = settings.CACHES
    settings.CACHES = {"default": {**reachable["default"], "LOCATION": f"redis://127.0.0.1:{free_port()}/0"}}
    response = secret.put("/api/v1/people/c-1/consent", {"purposes": {"personalization": False}})
    assert response.status_code == 200
    assert OutboxEntry.objects.filter(action=outbox.HOT_PROFILE_DROP).count() == 1

    settings.CACHES = reachable  # back: the copy still says what it said before the withdrawal
    shared_cache.forget_outages()
    stale = hot_profile.lookup(person_id=person_id)
    assert stale is not None and stale.complete and stale.granted is None

    assert outbox.relay().delivered == 1
    fresh = hot_profile.lookup(person_id=person_id)
    assert fresh is not None and not fresh.complete  # dropped: the next read takes the database's answer
    assert secret.get("/api/v1/recommendations?person=c-1").json()["personalized"] is False
