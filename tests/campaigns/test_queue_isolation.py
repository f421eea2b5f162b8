"""A long training never delays a send: real workers, one per queue, over the test Redis broker.

One worker consumes ``training`` and one ``sending`` (as docs/deploy.md runs them). A deliberately
slow task is put on the queue training is routed to; while it still holds the training worker, a
sending round is enqueued, and every due message must reach the loopback SMTP server before the
slow task ends.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from django.conf import settings
from django.core.cache import cache

from campaigns.models import Message, MessageState
from campaigns.tasks import send_due_messages
from personalization.celery import app
from tests import queue_probe
from tests.campaigns.conftest import Mailbox, launch_and_prepare, make_campaign, person
from tests.processes import database_url_of_test_db

pytestmark = [
    pytest.mark.services,
    pytest.mark.slow,
    pytest.mark.skipif(
        not (settings.REDIS_URL and os.getenv("DATABASE_URL")),
        reason="needs DATABASE_URL (PostgreSQL) and REDIS_URL: the workers run in other processes",
    ),
]

RECIPIENTS = 4
TRAINING_SECONDS = 40.0


def start_worker(queue: str, smtp_port: int, log: Path) -> subprocess.Popen[str]:
    env = {
        **os.environ,
        "DATABASE_URL": database_url_of_test_db(),
        "EMAIL_BACKEND": "django.core.mail.backends.smtp.EmailBackend",
        "EMAIL_HOST": "127.0.0.1",
        "EMAIL_PORT": str(smtp_port),
    }
    command = [sys.executable, "-m", "celery", "-A", "personalization", "worker", "-Q", queue, "-n", f"{queue}@%h"]
    command += ["-I", "tests.queue_probe", "--pool", "solo", "--loglevel", "info"]
    command += ["--without-gossip", "--without-mingle", "--without-heartbeat"]
    return subprocess.Popen(
        command,
        cwd=Path(__file__).resolve().parents[2],
        env=env,
        stdout=log.open("w"),
        stderr=subprocess.STDOUT,
        text=True,
    )


def _wait(condition: Callable[[], bool], seconds: float, what: str, workers: dict[str, subprocess.Popen[str]]) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return
        for name, process in workers.items():
            if process.poll() is not None:
                pytest.fail(f"the {name} worker exited")
        time.sleep(0.2)
    pytest.fail(f"timed out waiting for {what}")


@pytest.mark.django_db(transaction=True)
def test_a_long_training_does_not_delay_a_send(mailbox: tuple[Mailbox, int], tmp_path: Path) -> None:
    box, port = mailbox
    app.control.purge()
    cache.delete_many([queue_probe.STARTED, queue_probe.FINISHED])
    for n in range(RECIPIENTS):
        person(f"q{n}", first_name=f"Q{n}")
    campaign = make_campaign("queue-isolation")
    launch_and_prepare(campaign)
    assert Message.objects.filter(campaign=campaign, state=MessageState.SCHEDULED).count() == RECIPIENTS

    training_queue = app.amqp.router.route({}, "personalization.tasks.train_engine")["queue"].name
    workers = {
        "training": start_worker("training", port, tmp_path / "training.log"),
        "sending": start_worker("sending", port, tmp_path / "sending.log"),
    }
    try:
        queue_probe.hold_worker.apply_async(args=[TRAINING_SECONDS], queue=training_queue)
        _wait(lambda: cache.get(queue_probe.STARTED) is not None, 60, "the training worker to start", workers)

        enqueued = time.monotonic()
        send_due_messages.delay()  # routed by name, as beat sends it every minute

        def all_sent() -> bool:
            return Message.objects.filter(campaign=campaign, state=MessageState.SENT).count() == RECIPIENTS

        _wait(all_sent, 60, "the messages to be sent", workers)
        sent_after = time.monotonic() - enqueued
        still_training = cache.get(queue_probe.FINISHED) is None

        # And the slow task did hold its worker the whole time: it ends only afterwards.
        _wait(lambda: cache.get(queue_probe.FINISHED) is not None, TRAINING_SECONDS + 30, "the training", workers)
    finally:
        for process in workers.values():
            process.terminate()
        for process in workers.values():
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()

    assert still_training, f"the send waited for the training ({sent_after:.1f} s)"
    assert sent_after < TRAINING_SECONDS / 2
    assert box.by_recipient() == {f"q{n}@example.com": 1 for n in range(RECIPIENTS)}
    # Each worker did only its own queue's work (Celery logs "Task <name>[<id>] received").
    training_log = (tmp_path / "training.log").read_text()
    sending_log = (tmp_path / "sending.log").read_text()
    assert "Task campaigns.tasks.send_messages[" not in training_log
    assert "Task campaigns.tasks.send_messages[" in sending_log
    assert "Task tests.queue_probe.hold_worker[" not in sending_log
