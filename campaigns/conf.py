"""The campaign app's knobs: a Django setting of the same name wins, else the environment, else the default.

| name | default | what |
|---|---|---|
| ``CAMPAIGN_SEND_LEASE_SECONDS`` | 300 | how long a claimed message belongs to the worker sending it |
| ``CAMPAIGN_SEND_BATCH`` | 50 | messages sent over one SMTP connection by one task |
| ``CAMPAIGN_MAX_ATTEMPTS`` | 5 | transient failures before a message is marked failed |
| ``CAMPAIGN_DEFAULT_TIMEZONE`` | UTC | for people without a ``timezone`` trait |
| ``CAMPAIGN_SEGMENT_TRAIT`` | plan | the trait whose value is a person's segment (send time, onboarding peers) |
| ``CAMPAIGN_STO_SAMPLE`` | 20000 | engaged people whose history teaches the population and segment patterns |
| ``CAMPAIGN_UNSUBSCRIBE_MAILTO`` | (empty) | an address added to ``List-Unsubscribe`` beside the one-click URL |
| ``CAMPAIGN_PREPARATION_STALE_SECONDS`` | 300 | a preparation silent for this long lost its worker and is resumed |
| ``CAMPAIGN_PREPARATION_CHUNK`` | 500 | people prepared per chunk; the heartbeat is refreshed at every chunk |
| ``CAMPAIGN_BULK_DECISION_INLINE`` | 500 | "all that match" decides up to this many in the request, more in a task |
| ``CAMPAIGN_PREPARE_IN_BACKGROUND`` | True | tasks in-process (no Redis): a launch prepares in a thread |
| ``GLOBAL_CAP_PER_DAY`` | 3 | messages a person gets on a channel per local day, all campaigns and journeys (0: off) |
| ``GLOBAL_CAP_PER_WEEK`` | 10 | the same per local week (Monday to Sunday) |
| ``ITEM_URL`` | (empty) | item links, ``{site}`` and ``{item_id}`` replaced; empty: this site's public item page |
"""

from __future__ import annotations

import os
from urllib.parse import urlsplit

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured


def _value(name: str, default: str) -> str:
    if hasattr(settings, name):
        return str(getattr(settings, name))
    return os.getenv(name) or default


def _int(name: str, default: int, minimum: int = 1) -> int:
    raw = _value(name, str(default))
    try:
        value = int(raw)
    except ValueError:
        raise ImproperlyConfigured(f"Unexpected value {name}={raw}, expected an integer") from None
    if value < minimum:
        raise ImproperlyConfigured(f"{name} must be at least {minimum}, got {value}")
    return value


def global_caps() -> tuple[int | None, int | None]:
    """The frequency policy over everything sent on a channel (campaigns and journeys alike): per local
    day, per local week; None where it is switched off (0). Each campaign's own caps apply within it."""
    day = _int("GLOBAL_CAP_PER_DAY", 3, minimum=0)
    week = _int("GLOBAL_CAP_PER_WEEK", 10, minimum=0)
    return (day or None, week or None)


def send_lease_seconds() -> int:
    return _int("CAMPAIGN_SEND_LEASE_SECONDS", 300)


def preparation_stale_seconds() -> int:
    return _int("CAMPAIGN_PREPARATION_STALE_SECONDS", 300)


def preparation_chunk() -> int:
    return _int("CAMPAIGN_PREPARATION_CHUNK", 500)


def bulk_decision_inline() -> int:
    """About 6 ms a message on PostgreSQL: 500 answer within 3 s, well inside a web worker's timeout."""
    return _int("CAMPAIGN_BULK_DECISION_INLINE", 500, minimum=0)


def send_batch() -> int:
    return _int("CAMPAIGN_SEND_BATCH", 50)


def max_attempts() -> int:
    return _int("CAMPAIGN_MAX_ATTEMPTS", 5)


def default_timezone() -> str:
    return _value("CAMPAIGN_DEFAULT_TIMEZONE", "UTC")


def segment_trait() -> str:
    return _value("CAMPAIGN_SEGMENT_TRAIT", "plan")


def send_time_sample() -> int:
    return _int("CAMPAIGN_STO_SAMPLE", 20000)


def unsubscribe_mailto() -> str:
    return _value("CAMPAIGN_UNSUBSCRIBE_MAILTO", "")


def prepare_in_background() -> bool:
    return _value("CAMPAIGN_PREPARE_IN_BACKGROUND", "True").strip().lower() in ("1", "true", "yes", "on")


def item_url_pattern() -> str:
    """The link to an item, ``{item_id}`` left to fill: ``ITEM_URL`` with ``{site}`` replaced by SITE_URL,
    else this site's public item page ``/items/<id>`` (title, picture, price; ``catalog/pages.py``)."""
    pattern = _value("ITEM_URL", "") or "{site}/items/{item_id}"
    return pattern.replace("{site}", site_url())


def site_url() -> str:
    return str(getattr(settings, "SITE_URL", None) or "http://localhost:8000").rstrip("/")


def mail_domain() -> str:
    """The right-hand side of our Message-ID headers."""
    return urlsplit(site_url()).hostname or "localhost"
