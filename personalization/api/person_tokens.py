"""Identity verification for the public (ingest) key: a person token that the customer's backend signs.

The browser holds the ingest key, so anyone can claim any user id with it. A signed-in visitor proves
who they are with a token their shop's backend computed, never the browser::

    person_token = f"{expires}.{hmac_sha256(identity_secret, f'{user_id}:{expires}').hexdigest()}"

``expires`` is a Unix time in seconds; ``identity_secret`` belongs to the ingest key (shown to the
administrator in the admin, next to the key). See docs/security.md for examples.

Project infrastructure: plain functions, imported by the apps' API views; nothing of the apps here.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import Iterable
from typing import Any

from rest_framework import exceptions

# A token may not be valid for longer than this ahead, so a leaked one does not serve for ever.
MAX_LIFETIME_SECONDS = 31 * 24 * 3600
RESERVED_PREFIXES = ("campaign-", "imp-")
"""Message ids and anonymous ids that the engine's own code writes (tracking links' opens, clicks and
unsubscribes, recipients known only by email, imports). No API caller may send them: an id sent first
would make the real event a duplicate, and ``campaign-recipient-<n>`` would be a guessable visitor."""


def sign(secret: str, user_id: str, expires: int) -> str:
    digest = hmac.new(secret.encode(), f"{user_id}:{expires}".encode(), hashlib.sha256).hexdigest()
    return f"{expires}.{digest}"


def is_valid(secrets: Iterable[str], user_id: str, token: Any, now: float | None = None) -> bool:
    """True when ``token`` was signed for ``user_id`` with one of ``secrets`` and has not expired."""
    if not isinstance(token, str) or not user_id:
        return False
    expires_text, _, digest = token.partition(".")
    if not expires_text.isdigit() or len(expires_text) > 12 or not digest:
        return False
    expires = int(expires_text)
    now = time.time() if now is None else now
    if not now <= expires <= now + MAX_LIFETIME_SECONDS:
        return False
    return any(hmac.compare_digest(sign(secret, user_id, expires), token) for secret in secrets if secret)


def public_key(request: Any) -> Any | None:
    """The ingest key a request was made with, or None (a secret key, a signed-in person, nobody)."""
    key = getattr(request, "auth", None)
    return key if getattr(key, "scope", None) == "ingest" else None


def verified(request: Any, user_id: str | None, token: Any) -> bool:
    key = public_key(request)
    return bool(key is not None and user_id and is_valid(key.identity_secrets(), user_id, token))


def reserved(value: Any) -> bool:
    return isinstance(value, str) and value.strip().startswith(RESERVED_PREFIXES)


class LookupRefused(exceptions.PermissionDenied):
    default_detail = (
        "The ingest key cannot look people up by user id or email. Pass the visitor's anonymous_id, or "
        "person with a person_token signed by your backend (identity verification, docs/security.md)."
    )
    default_code = "identity_not_verified"
