"""Signed tracking links: the open pixel, click redirects and one-click unsubscribe.

A token names a message by (campaign id, person id), plus the link's position for clicks, and is
signed (``django.core.signing``) with a key of its own, ``TRACKING_SECRET_KEY``, one salt per
purpose, so a pixel token cannot unsubscribe anybody and nobody can forge a token for another
message. The key is rotated by moving the current one to ``TRACKING_SECRET_KEYS_OLD``: tokens are
then signed with the new key and those in emails already sent still verify until the old key is
removed from the list. A click token carries
the position of a link in the message, never a URL: the redirect target is read from the message,
so the endpoint cannot be used as an open redirect.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.conf import settings
from django.core import signing

from campaigns import conf

_signers: dict[tuple[str, ...], signing.Signer] = {}
_SALTS = {
    "open": "campaigns.tracking.open",
    "click": "campaigns.tracking.click",
    "unsubscribe": "campaigns.unsubscribe",
}


@dataclass(frozen=True)
class TrackedMessage:
    campaign_id: int
    person_id: int
    link: int | None = None


def base_url() -> str:
    return conf.site_url()


def _signer(purpose: str) -> signing.Signer:
    # One signer per purpose and set of keys (building one costs as much as a signature).
    current, old = str(settings.TRACKING_SECRET_KEY), tuple(settings.TRACKING_SECRET_KEYS_OLD)
    cache_key = (purpose, current, *old)
    signer = _signers.get(cache_key)
    if signer is None:
        signer = _signers[cache_key] = signing.Signer(key=current, fallback_keys=list(old), salt=_SALTS[purpose])
    return signer


def _sign(purpose: str, value: str) -> str:
    return _signer(purpose).sign(value)


def open_token(campaign_id: int, person_id: int) -> str:
    return _sign("open", f"{campaign_id}-{person_id}")


def click_token(campaign_id: int, person_id: int, link: int) -> str:
    return _sign("click", f"{campaign_id}-{person_id}-{link}")


def unsubscribe_token(campaign_id: int, person_id: int) -> str:
    return _sign("unsubscribe", f"{campaign_id}-{person_id}")


def open_url(campaign_id: int, person_id: int) -> str:
    return f"{base_url()}/t/o/{open_token(campaign_id, person_id)}.gif"


def click_url(campaign_id: int, person_id: int, link: int) -> str:
    return f"{base_url()}/t/c/{click_token(campaign_id, person_id, link)}"


def unsubscribe_url(campaign_id: int, person_id: int) -> str:
    return f"{base_url()}/t/u/{unsubscribe_token(campaign_id, person_id)}"


def read(purpose: str, token: str) -> TrackedMessage | None:
    """The message a token names, or None when it was not signed by us for this purpose."""
    try:
        value = _signer(purpose).unsign(token)
    except signing.BadSignature:
        return None
    parts = value.split("-")
    expected = 3 if purpose == "click" else 2
    if len(parts) != expected or not all(part.isdigit() for part in parts):
        return None
    numbers = [int(part) for part in parts]
    return TrackedMessage(numbers[0], numbers[1], numbers[2] if purpose == "click" else None)
