"""Salted hashes of erased keys, and the check ingestion makes against them.

An erasure receipt keeps, for each key the person was known by, ``HMAC-SHA256(ERASURE_SALT,
"<kind>:<value>")`` and nothing else of them. A message that carries such a key (its ``userId``,
``anonymousId`` or ``traits.email``) is refused with the field named, so that a client replaying
its queue after an erasure cannot bring the person back. One indexed query per batch.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING

from django.conf import settings

from profiles.models import ErasedKey, IdentityKind

if TYPE_CHECKING:
    from profiles.segment import ParsedMessage

# The message field each identity kind arrives in, as a rejection names it.
FIELD_OF_KIND = {
    IdentityKind.USER_ID.value: "userId",
    IdentityKind.ANONYMOUS_ID.value: "anonymousId",
    IdentityKind.EMAIL.value: "traits.email",
}


def normalized(kind: str, value: str) -> str:
    return value.strip().lower() if kind == IdentityKind.EMAIL else value


def key_hash(kind: str, value: str) -> str:
    message = f"{kind}:{normalized(kind, value)}".encode()
    return hmac.new(str(settings.ERASURE_SALT).encode(), message, hashlib.sha256).hexdigest()


def erased_hashes(hashes: Iterable[str]) -> set[str]:
    wanted = sorted(set(hashes))
    if not wanted:
        return set()
    return set(ErasedKey.objects.filter(key_hash__in=wanted).values_list("key_hash", flat=True))


def is_erased(kind: str, value: str) -> bool:
    return bool(erased_hashes([key_hash(kind, value)]))


def _keys(message: ParsedMessage) -> list[tuple[str, str]]:
    found = []
    for kind, value in (
        (IdentityKind.USER_ID.value, message.user_id),
        (IdentityKind.ANONYMOUS_ID.value, message.anonymous_id),
        (IdentityKind.EMAIL.value, message.email),
    ):
        if value:
            found.append((kind, value))
    return found


def refuse_erased(
    parsed: Sequence[tuple[int, ParsedMessage]],
) -> tuple[list[tuple[int, ParsedMessage]], list[tuple[int, str]]]:
    """Split messages into those to keep and (index, field) of those naming an erased person."""
    hashes = {key: key_hash(*key) for _, message in parsed for key in _keys(message)}
    erased = erased_hashes(hashes.values())
    if not erased:
        return list(parsed), []
    kept: list[tuple[int, ParsedMessage]] = []
    refused: list[tuple[int, str]] = []
    for index, message in parsed:
        hit = next((key for key in _keys(message) if hashes[key] in erased), None)
        if hit is None:
            kept.append((index, message))
        else:
            refused.append((index, FIELD_OF_KIND[hit[0]]))
    return kept, refused
