"""Signed tracking links: the open pixel, click redirects and one-click unsubscribe.

A token names a message by (campaign id, person id), plus the link's position for clicks, and is
signed with the site's secret key (``django.core.signing``), one salt per purpose, so a pixel token
cannot unsubscribe anybody and nobody can forge a token for another message. A click token carries
the position of a link in the message, never a URL: the redirect target is read from the message,
so the endpoint cannot be used as an open redirect.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.conf import settings
from django.core import signing

from campaigns import conf

_signers: dict[tuple[str, str], signing.Signer] = {}
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
    # One signer per purpose and secret key (building one costs as much as a signature).
    key = (purpose, str(settings.SECRET_KEY))
    signer = _signers.get(key)
    if signer is None:
        signer = _signers[key] = signing.Signer(salt=_SALTS[purpose])
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
