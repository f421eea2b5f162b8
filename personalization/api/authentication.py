"""API keys for machines: ``Authorization: Bearer <key>``, or HTTP Basic with the key as the user
name (what Segment's libraries send with a write key).

A key found in the database is remembered in process memory for ``KEY_MEMORY_SECONDS``, so a busy
client costs no query per request; a revoked key therefore stops working everywhere within that
time (at once in the process that revoked it). Unknown keys are never remembered.
"""

from __future__ import annotations

import base64
import binascii
import threading
import time
from datetime import timedelta

from django.utils import timezone
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework import authentication, exceptions
from rest_framework.request import Request

from personalization.models import ApiKey, hash_key

LAST_USED_RESOLUTION = timedelta(minutes=1)
KEY_MEMORY_SECONDS = 10.0
KEY_MEMORY_SIZE = 10_000

_remembered: dict[str, tuple[float, ApiKey]] = {}
_lock = threading.Lock()


def _find_key(digest: str) -> ApiKey | None:
    now = time.monotonic()
    found = _remembered.get(digest)
    if found is not None and now - found[0] < KEY_MEMORY_SECONDS:
        return found[1]
    key = ApiKey.objects.filter(key_hash=digest, revoked_at__isnull=True).first()
    with _lock:
        if key is None:
            _remembered.pop(digest, None)
        else:
            if len(_remembered) >= KEY_MEMORY_SIZE:
                _remembered.clear()
            _remembered[digest] = (now, key)
    return key


def forget_keys() -> None:
    """Drop remembered keys (after a revocation, so this process refuses the key at once)."""
    with _lock:
        _remembered.clear()


class ApiKeyPrincipal:
    """What ``request.user`` is for a request made with an API key."""

    is_authenticated = True
    is_anonymous = False
    is_staff = False
    is_superuser = False

    def __init__(self, key: ApiKey) -> None:
        self.key = key
        self.pk = None
        self.username = f"api-key:{key.prefix}"

    def __str__(self) -> str:
        return self.username


class ApiKeyAuthentication(authentication.BaseAuthentication):
    def authenticate(self, request: Request) -> tuple[ApiKeyPrincipal, ApiKey] | None:
        raw = self._raw_key(request)
        if raw is None:
            return None
        key = _find_key(hash_key(raw))
        if key is None:
            raise exceptions.AuthenticationFailed("Unknown or revoked API key.")
        now = timezone.now()
        if key.last_used_at is None or now - key.last_used_at > LAST_USED_RESOLUTION:
            key.last_used_at = now
            ApiKey.objects.filter(pk=key.pk).update(last_used_at=now)
        return ApiKeyPrincipal(key), key

    def authenticate_header(self, request: Request) -> str:
        return 'Bearer realm="api"'

    @staticmethod
    def _raw_key(request: Request) -> str | None:
        header = request.META.get("HTTP_AUTHORIZATION", "")
        scheme, _, value = header.partition(" ")
        if scheme.lower() == "bearer" and value.strip():
            return value.strip()
        if scheme.lower() == "basic" and value.strip():
            try:
                decoded = base64.b64decode(value.strip(), validate=True).decode()
            except (binascii.Error, UnicodeDecodeError):
                raise exceptions.AuthenticationFailed("Malformed Basic credentials.") from None
            user, _, _ = decoded.partition(":")
            return user or None
        return None


class ApiKeyScheme(OpenApiAuthenticationExtension):
    target_class = ApiKeyAuthentication
    name = "ApiKey"

    def get_security_definition(self, auto_schema: object) -> dict[str, str]:
        return {"type": "http", "scheme": "bearer", "description": "An API key: `Authorization: Bearer <key>`."}
