"""Finding 9 of issue 12 with real processes: a Celery worker is killed (SIGKILL) in the middle of
preparing a campaign. The broker would hand its unacknowledged task to another worker only after the
visibility timeout (70 minutes with the default limits); instead the periodic check, run by a real
``celery beat`` from the database schedule, notices the silent heartbeat and queues the preparation
again, a second worker resumes it where the first stopped, and every person of the audience ends up
with exactly one message.

The stale time, the chunk size and the check's interval are shortened (settings
``CAMPAIGN_PREPARATION_STALE_SECONDS`` and ``CAMPAIGN_PREPARATION_CHUNK``, and the schedule's row), so
the test runs in seconds; the mechanism is the production one.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import redis
from django.conf import settings
from django.utils import timezone
from django_celery_beat.models import IntervalSchedule, PeriodicTask

from campaigns import services
from campaigns.models import Campaign, CampaignStatus, Message, MessageState
from personalization.celery import app
from profiles import services as profiles
from profiles.models import Person
from tests.campaigns.conftest import make_campaign
from tests.processes import database_url_of_test_db

pytestmark = [
    pytest.mark.services,
    pytest.mark.slow,
    pytest.mark.skipif(
        not (settings.REDIS_URL and os.getenv("DATABASE_URL")),
        reason="needs DATABASE_URL (PostgreSQL) and REDIS_URL: the workers run in other processes",
    ),
]

AUDIENCE = 600
CHUNK = 20
STALE_SECONDS = 4
CHECK_EVERY_SECONDS = 2
ROOT = Path(__file__).resolve().parents[2]
CHECK_TASK = "campaigns.tasks.resume_stalled_preparations"


class Process:
    """``celery -A personalization <args>`` against the test database and broker, logging to a file."""

    def __init__(self, log: Path, *args: str) -> None:
        self.log = log
        self.name = " ".join(args[:1])
        env = {
            **os.environ,
            "DATABASE_URL": database_url_of_test_db(),
            "CAMPAIGN_PREPARATION_STALE_SECONDS": str(STALE_SECONDS),
            "CAMPAIGN_PREPARATION_CHUNK": str(CHUNK),
        }
        self.process = subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "personalization", *args],
            cwd=ROOT,
            env=env,
            stdout=log.open("a"),
            stderr=subprocess.STDOUT,
            text=True,
        )

    @property
    def pid(self) -> int:
        return self.process.pid

    def alive(self) -> bool:
        return self.process.poll() is None

    def text(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def stop(self) -> None:
        if self.alive():
            self.process.terminate()
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)


def _worker(log: Path) -> Process:
    return Process(
        log,
        "worker",
        "--pool",
        "solo",
        "--loglevel",
        "info",
        "--without-gossip",
        "--without-mingle",
        "--without-heartbeat",
    )


def _children(pid: int) -> list[int]:
    """Processes whose parent is ``pid`` (the worker's render process)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        # pid (comm) state ppid ...; comm may hold spaces and parentheses, so split after the last ')'.
        if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
            found.append(int(entry.name))
    return found


def _running(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def _wait(condition: Callable[[], bool], seconds: float, what: str, *watched: Process) -> float:
    """Poll until ``condition`` holds; returns the monotonic time it did. Fails if a process exits."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return time.monotonic()
        for process in watched:
            if not process.alive():
                pytest.fail(f"celery {process.name} exited:\n{process.text()[-4000:]}")
        time.sleep(0.05)
    logs = "\n---\n".join(p.text()[-3000:] for p in watched)
    pytest.fail(f"timed out after {seconds:g} s waiting for {what}:\n{logs}")


@pytest.fixture
def broker() -> Iterator[None]:
    """An empty queue before, and no unacknowledged task of the killed worker left behind after."""
    app.control.purge()
    yield
    app.control.purge()
    redis.Redis.from_url(str(settings.REDIS_URL)).delete("unacked", "unacked_index")


@pytest.fixture
def check_every_few_seconds(transactional_db: None) -> None:
    """Only the stalled-preparation check is scheduled (a transactional test's flush may have dropped
    the row the migration creates), every CHECK_EVERY_SECONDS instead of every minute."""
    PeriodicTask.objects.update(enabled=False)
    every, _ = IntervalSchedule.objects.get_or_create(every=CHECK_EVERY_SECONDS, period=IntervalSchedule.SECONDS)
    PeriodicTask.objects.update_or_create(
        name="Campaigns: resume stalled preparations",
        defaults={"task": CHECK_TASK, "interval": every, "enabled": True, "expire_seconds": 50},
    )


def _audience() -> set[int]:
    profiles.ingest_messages(
        [
            {
                "type": "identify",
                "userId": f"prep-{n}",
                "traits": {"email": f"prep-{n}@example.com", "first_name": f"P{n}"},
                "messageId": f"identify-prep-{n}",
            }
            for n in range(AUDIENCE)
        ],
        refresh=False,
    )
    people = set(Person.objects.filter(identities__value__startswith="prep-").values_list("pk", flat=True))
    assert len(people) == AUDIENCE
    for person_id in people:
        profiles.record_consent(person_id, "email_marketing", True, source="signup form")
    return people


@pytest.mark.django_db(transaction=True)
def test_finding_9_a_worker_killed_mid_preparation_is_resumed_by_the_periodic_check(
    broker: None, check_every_few_seconds: None, tmp_path: Path
) -> None:
    audience = _audience()
    campaign = make_campaign("killed-mid-preparation")
    first = _worker(tmp_path / "worker-1.log")
    beat = Process(
        tmp_path / "beat.log",
        "beat",
        "--scheduler",
        "django_celery_beat.schedulers:DatabaseScheduler",
        "--max-interval",
        "1",
        "--loglevel",
        "info",
    )
    second: Process | None = None
    try:
        _wait(lambda: "ready." in first.text(), 90, "the first worker to start", first, beat)
        services.launch(campaign)  # queues the preparation on commit; the first worker takes it

        def prepared() -> int:
            return Message.objects.filter(campaign=campaign).count()

        # Mid-way: a few chunks committed, most of the audience still to do.
        _wait(lambda: prepared() >= 3 * CHUNK, 120, "the first worker to prepare a few chunks", first, beat)
        render_children = _children(first.pid)
        os.kill(first.pid, signal.SIGKILL)
        first.process.wait(timeout=10)
        killed_at = time.monotonic()

        campaign.refresh_from_db()
        assert campaign.status == CampaignStatus.PREPARING, "the preparation finished before the worker was killed"
        before = {m.person_id: (m.pk, m.created_at) for m in Message.objects.filter(campaign=campaign)}
        assert CHUNK <= len(before) < AUDIENCE - CHUNK
        dead_claim = campaign.preparation_claim
        assert dead_claim

        # The killed worker's render process does not outlive it (it reads EOF on its pipe and exits).
        _wait(lambda: not any(_running(pid) for pid in render_children), 10, "the render process to exit", beat)

        # Nothing happens while no worker runs: the claim stays with the dead run.
        time.sleep(STALE_SECONDS + CHECK_EVERY_SECONDS)
        campaign.refresh_from_db()
        assert campaign.status == CampaignStatus.PREPARING and campaign.preparation_claim == dead_claim
        assert prepared() == len(before)

        second = _worker(tmp_path / "worker-2.log")
        ready_at = _wait(lambda: "ready." in second.text(), 90, "the second worker to start", second, beat)

        def taken_over() -> bool:
            claim = Campaign.objects.filter(pk=campaign.pk).values_list("preparation_claim", flat=True).get()
            return claim != dead_claim

        # The heartbeat is already stale: the next check (every CHECK_EVERY_SECONDS) queues the
        # preparation and the new worker claims it. Slack for a loaded machine, far below the
        # visibility timeout after which the broker itself would have redelivered the task.
        resumed_at = _wait(
            taken_over, STALE_SECONDS + CHECK_EVERY_SECONDS + 20, "the periodic check to resume it", second, beat
        )

        def finished() -> bool:
            return Campaign.objects.get(pk=campaign.pk).status == CampaignStatus.RUNNING

        _wait(finished, 180, "the resumed preparation to finish", second, beat)
    finally:
        for process in (first, second, beat):
            if process is not None:
                process.stop()

    visibility = settings.CELERY_BROKER_TRANSPORT_OPTIONS["visibility_timeout"]
    assert resumed_at - killed_at < visibility / 10
    assert resumed_at - ready_at <= STALE_SECONDS + CHECK_EVERY_SECONDS + 20

    # The periodic check queued it (not the broker redelivering the killed worker's task).
    assert re.search(rf"Task {re.escape(CHECK_TASK)}\[[^\]]+\] succeeded in [^:]+: \[{campaign.pk}\]", second.text())

    # Everyone of the audience has exactly one message: none prepared twice, none missing.
    campaign.refresh_from_db()
    messages = list(Message.objects.filter(campaign=campaign).values_list("pk", "person_id", "created_at", "state"))
    assert len(messages) == AUDIENCE
    assert {person_id for _, person_id, _, _ in messages} == audience
    assert campaign.audience_size == AUDIENCE and campaign.prepared_at is not None
    assert campaign.preparation_heartbeat_at is None
    # What the killed run committed was kept as it was, not prepared again.
    after = {person_id: (pk, created_at) for pk, person_id, created_at, _ in messages}
    assert {person_id: after[person_id] for person_id in before} == before
    # Every message went through the whole preparation (none left half-done as a draft).
    assert {state for _, _, _, state in messages} == {MessageState.SCHEDULED}
    assert campaign.prepared_at <= timezone.now()
