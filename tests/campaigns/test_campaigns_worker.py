"""A real Celery worker is killed (SIGKILL) in the middle of sending a campaign and restarted: no
recipient gets a message twice and none is lost.

The SMTP server on loopback stalls on the third message until the worker is dead, either before
the message data (RCPT: the server never gets the message) or after the whole message arrived and
before it answers 250 (the server has it, the worker never heard back). The first must be sent
again by the restarted worker; the second must never be sent again.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings

from campaigns.models import Message, MessageState, Reason
from campaigns.tasks import send_due_messages
from personalization.celery import app
from tests.campaigns.conftest import Mailbox, launch_and_prepare, make_campaign, person
from tests.processes import database_url_of_test_db

pytestmark = [
    pytest.mark.services,
    pytest.mark.slow,
    pytest.mark.skipif(
        not (settings.REDIS_URL and os.getenv("DATABASE_URL")),
        reason="needs DATABASE_URL (PostgreSQL) and REDIS_URL: the worker runs in another process",
    ),
]

RECIPIENTS = 6
LEASE_SECONDS = 3


class Worker:
    """A Celery worker process sending through the loopback SMTP server."""

    def __init__(self, port: int, log: Path) -> None:
        self.env = {
            **os.environ,
            "DATABASE_URL": database_url_of_test_db(),
            "EMAIL_BACKEND": "django.core.mail.backends.smtp.EmailBackend",
            "EMAIL_HOST": "127.0.0.1",
            "EMAIL_PORT": str(port),
            "CAMPAIGN_SEND_LEASE_SECONDS": str(LEASE_SECONDS),
            "CAMPAIGN_SEND_BATCH": "50",
        }
        self.log = log
        self.process: subprocess.Popen[str] | None = None

    def start(self) -> None:
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "celery",
                "-A",
                "personalization",
                "worker",
                "--pool",
                "solo",
                "--loglevel",
                "info",
                "--without-gossip",
                "--without-mingle",
                "--without-heartbeat",
            ],
            cwd=Path(__file__).resolve().parents[2],
            env=self.env,
            stdout=self.log.open("a"),
            stderr=subprocess.STDOUT,
            text=True,
        )

    def kill(self) -> None:
        assert self.process is not None
        os.kill(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=10)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None


def _wait(condition: Any, seconds: float, what: str, worker: Worker, nudge: bool = False) -> None:
    deadline = time.monotonic() + seconds
    last_nudge = 0.0
    while time.monotonic() < deadline:
        if condition():
            return
        if not worker.alive():
            pytest.fail(f"the worker exited:\n{worker.log.read_text()[-4000:]}")
        if nudge and time.monotonic() - last_nudge > 2:
            send_due_messages.delay()  # what celery beat does every minute
            last_nudge = time.monotonic()
        time.sleep(0.2)
    pytest.fail(f"timed out waiting for {what}:\n{worker.log.read_text()[-4000:]}")


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("stall", ["rcpt", "data"], ids=["killed-before-the-message-data", "killed-awaiting-250"])
def test_killing_the_worker_mid_send_neither_duplicates_nor_loses_messages(
    stall: str, mailbox: tuple[Mailbox, int], tmp_path: Path
) -> None:
    box, port = mailbox
    app.control.purge()
    for n in range(RECIPIENTS):
        person(f"w{n}", first_name=f"W{n}")
    campaign = make_campaign("worker-kill")
    launch_and_prepare(campaign)
    assert Message.objects.filter(campaign=campaign, state=MessageState.SCHEDULED).count() == RECIPIENTS

    box.stall_at = (stall, 3)
    worker = Worker(port, tmp_path / "worker.log")
    worker.start()
    try:
        send_due_messages.delay()
        _wait(box.stalled.is_set, 60, "the send to stall on the third message", worker)
        stuck = Message.objects.get(campaign=campaign, state=MessageState.SENDING)
        assert stuck.handed_at is None if stall == "rcpt" else stuck.handed_at is not None

        worker.kill()
        box.release.set()  # the server answers a connection that is gone

        worker.start()

        def settled() -> bool:
            open_states = (MessageState.SCHEDULED, MessageState.SENDING)
            return not Message.objects.filter(campaign=campaign, state__in=open_states).exists()

        _wait(settled, 90, "every message to be sent after the restart", worker, nudge=True)
    finally:
        worker.stop()

    # Each recipient received exactly one message: none twice, none lost.
    assert box.by_recipient() == {f"w{n}@example.com": 1 for n in range(RECIPIENTS)}
    assert len({str(m["Message-ID"]) for m in box.received}) == RECIPIENTS

    final = {m.to_email: (m.state, m.reason) for m in Message.objects.filter(campaign=campaign)}
    interrupted = final.pop(stuck.to_email)
    assert set(final.values()) == {(MessageState.SENT, "")}
    if stall == "rcpt":
        # The data never ended, so the server dropped it: the restarted worker sent it again.
        assert interrupted == (MessageState.SENT, "")
        assert Message.objects.get(pk=stuck.pk).attempts == 2
    else:
        # The server had the whole message: it is never sent again, and it is flagged for a person.
        assert interrupted == (MessageState.FAILED, Reason.UNCONFIRMED)
