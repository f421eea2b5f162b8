"""A psycopg cursor on Django's own PostgreSQL connection that binds parameters on the server.

Django's cursors interpolate parameters on the client, which rules out prepared statements and
sends arrays as quoted text. The hot paths that need either (serving's person query, prepared; the
bulk inserts of events and impressions, binary arrays) open one of these instead: it shares the
ORM's connection, and so its transaction.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import psycopg
from django.db import connection

# Django opens its connections with ``prepare_threshold=None``, which makes psycopg ignore
# ``execute(..., prepare=True)`` too: every execution of the serving query was planned again (7 ms
# of PostgreSQL's time with a partitioned event log). A threshold no query reaches by repetition
# leaves automatic preparing off and lets the statements that ask for it be prepared. Django's own
# cursors bind on the client and never prepare, whatever the threshold.
ONLY_WHEN_ASKED = 2**31 - 1


@contextmanager
def server_bound_cursor() -> Iterator[psycopg.Cursor]:
    connection.ensure_connection()
    raw = connection.connection
    if raw.prepare_threshold is None:
        raw.prepare_threshold = ONLY_WHEN_ASKED
    with psycopg.Cursor(raw) as cursor:
        yield cursor
