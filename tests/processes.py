"""Helpers for tests that start real processes (Celery workers, beat, gunicorn, Redis, an SMTP server)
against the test database: those processes must connect to the database pytest-django created, not
DATABASE_URL's, and listen on a port no other test is about to take."""

from __future__ import annotations

import itertools
import os
import random
import socket

from django.db import connection

# Under pytest-xdist each worker takes its ports from a band of its own below the kernel's ephemeral
# range (32768 and up on Linux), where neither the other worker's probes nor anyone's outgoing
# connections land: the port a probe found free is still free when the server binds it a moment later.
_BANDS = range(20000, 32000)
_next_port: itertools.cycle[int] | None = None


def _band() -> itertools.cycle[int]:
    worker = int(os.environ["PYTEST_XDIST_WORKER"].removeprefix("gw"))
    workers = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT") or worker + 1)
    width = len(_BANDS) // workers
    ports = list(range(_BANDS.start + worker * width, _BANDS.start + (worker + 1) * width))
    start = random.randrange(len(ports))  # another run of the suite beside this one starts elsewhere
    return itertools.cycle(ports[start:] + ports[:start])


def free_port() -> int:
    """A loopback port nothing listens on, for a server a test starts (or for one that must be away)."""
    global _next_port
    if not os.environ.get("PYTEST_XDIST_WORKER"):
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            return int(probe.getsockname()[1])
    if _next_port is None:
        _next_port = _band()
    for port in itertools.islice(_next_port, len(_BANDS)):
        with socket.socket() as probe:
            try:
                probe.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError("no free port in this worker's band")


def database_url_of_test_db() -> str:
    db = connection.settings_dict
    auth = db["USER"] + (f":{db['PASSWORD']}" if db["PASSWORD"] else "")
    return f"postgres://{auth}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"
