"""Finding 3: a body sent with ``Transfer-Encoding: chunked`` (no Content-Length) was read as empty.
Sent here for real to gunicorn, which de-chunks it, as in production."""

from __future__ import annotations

import http.client
import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from django.db import connection

from personalization.models import ApiKey, KeyScope
from profiles.models import Event
from tests.processes import free_port

pytestmark = [
    pytest.mark.services,
    pytest.mark.slow,
    pytest.mark.skipif(connection.vendor != "postgresql", reason="gunicorn in another process needs PostgreSQL"),
]


def _wait_for(port: int, seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            conn.request("GET", "/api/v1/track")  # any answer (401) says the app is up
            conn.getresponse().read()
            return
        except OSError:
            time.sleep(0.2)
    raise RuntimeError("gunicorn did not come up")


@pytest.fixture
def gunicorn(transactional_db: object) -> Iterator[int]:
    db = connection.settings_dict
    port = free_port()
    env = {
        **os.environ,
        "DATABASE_URL": f"postgres://{db['USER']}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}",
        "LOG_LEVEL": "WARNING",
        "DEBUG": "False",
        "SECRET_KEY": "chunked-test-only",
        "ALLOWED_HOSTS": "127.0.0.1",
    }
    process = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "personalization.wsgi", "--bind", f"127.0.0.1:{port}", "--workers", "1"],
        cwd=Path(__file__).resolve().parents[2],
        env=env,
    )
    try:
        _wait_for(port)
        yield port
    finally:
        process.terminate()
        process.wait(timeout=20)


def _send_chunked(port: int, key: str, body: bytes, chunk: int = 1000) -> tuple[int, dict[str, object]]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    pieces = (body[i : i + chunk] for i in range(0, len(body), chunk))
    conn.request(
        "POST",
        "/api/v1/batch",
        body=pieces,
        headers={"Authorization": f"Bearer {key}", "Content-Type": "application/json"},
        encode_chunked=True,
    )
    response = conn.getresponse()
    return response.status, json.loads(response.read())


def test_finding_3_a_chunked_body_is_read_not_taken_as_empty(gunicorn, settings):
    key = ApiKey.issue("chunked", KeyScope.INGEST)[1]
    batch = [
        {"type": "track", "userId": "chunky", "event": "Product Viewed", "messageId": f"ch-{n}", "properties": {}}
        for n in range(50)
    ]
    status, answer = _send_chunked(gunicorn, key, json.dumps({"batch": batch}).encode())
    assert status == 200, answer
    assert answer["accepted"] == 50
    assert Event.objects.filter(message_id__startswith="ch-").count() == 50

    # The body limit holds for a chunked body too.
    body = b'{"batch": ["' + b"x" * (settings.INGEST_MAX_BODY_BYTES + 10) + b'"]}'
    status, answer = _send_chunked(gunicorn, key, body, chunk=256 * 1024)
    assert status == 413, answer
