"""A deliberately slow task for the queue tests, imported by the worker they start (``-I``).

It marks in the shared cache when it starts and when it ends, so that a test can tell whether
other work was done while it still held its worker.
"""

from __future__ import annotations

import time

from celery import shared_task
from django.core.cache import cache

STARTED = "queue-probe:started"
FINISHED = "queue-probe:finished"


@shared_task(ignore_result=True)
def hold_worker(seconds: float) -> None:
    cache.set(STARTED, time.time(), 600)
    time.sleep(seconds)
    cache.set(FINISHED, time.time(), 600)
