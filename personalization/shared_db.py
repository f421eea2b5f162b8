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


@contextmanager
def server_bound_cursor() -> Iterator[psycopg.Cursor]:
    connection.ensure_connection()
    with psycopg.Cursor(connection.connection) as cursor:
        yield cursor
