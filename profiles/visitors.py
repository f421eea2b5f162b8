"""What the public (ingest) key may write about people and whom it may read.

The ingest key ships in browsers, so whatever it can do, anyone can. It may:

- send events for the visitor in front of it: by anonymous id, or by user id (Segment clients do);
- read for that visitor only: by anonymous id when that visitor is not a known person (someone with a
  user id or an email), or by a user id whose person token the customer's backend signed.

It may not, whatever token comes along: tie a visitor to a person known by an email, change or set
the email of a known person (where their campaign email goes), merge two known people, or use the
ids the engine writes itself (``personalization.api.person_tokens.RESERVED_PREFIXES``, refused from
every API caller). A message that would is refused whole and named by index and field; the others
in the batch are stored.

The checks read the identities before ingestion's transaction: a link made by another request in
between is possible but cannot be steered by this one.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from django.db.models import Q

from personalization.api.person_tokens import RESERVED_PREFIXES
from profiles.ingestion import IngestResult, MessageRejection, ingest_messages
from profiles.models import Identity, IdentityKind, Person

Verifier = Callable[[str, Any], bool]  # (user id, token) → signed by the customer's backend?
KNOWN_KINDS = (IdentityKind.USER_ID, IdentityKind.EMAIL)
NOT_PERMITTED = "not_permitted"


def person_by(kind: str, value: str | None) -> int | None:
    if not value:
        return None
    value = value.strip().lower() if kind == IdentityKind.EMAIL else value
    return Identity.objects.filter(kind=kind, value=value).values_list("person_id", flat=True).first()


def is_known(person_id: int) -> bool:
    """Known: someone with a user id or an email, whose history the public key must not reveal."""
    return Identity.objects.filter(person_id=person_id, kind__in=KNOWN_KINDS).exists()


def public_reader(anonymous_id: str | None, verified_user_id: str | None, *, history: bool = True) -> int | None:
    """The person a public-key request is for, or None (serve an unknown visitor).

    Never by email, by user id only when verified. With ``history`` (the answer reflects what the
    person did), an anonymous id that now belongs to a known person does not count: anyone can tie an
    anonymous id to a user id with the ingest key, so only a person token opens a known person's history.
    """
    if verified_user_id:
        return person_by(IdentityKind.USER_ID, verified_user_id)
    if not anonymous_id or anonymous_id.startswith(RESERVED_PREFIXES):
        return None
    person_id = person_by(IdentityKind.ANONYMOUS_ID, anonymous_id)
    if person_id is None or (history and is_known(person_id)):
        return None
    return person_id


# Longer than any identity column holds; see profiles.segment's limits.
MAX_IDENTITY_LENGTH = 255


def _text(value: Any) -> str | None:
    """The value as an identity would be looked up, or None when no identity can hold it (a NUL,
    a lone surrogate, too long): ingestion's own checks refuse such a message, naming the field."""
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        return None
    text = str(value).strip()
    if not text or len(text) > MAX_IDENTITY_LENGTH or "\x00" in text:
        return None
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return None
    return text


def _traits(message: dict[str, Any]) -> dict[str, Any]:
    # As profiles.segment reads them: the message's traits, else those in its context.
    traits = message.get("traits")
    if isinstance(traits, dict) and traits:
        return traits
    context = message.get("context")
    inner = context.get("traits") if isinstance(context, dict) else None
    return inner if isinstance(inner, dict) else {}


def _reserved(message: dict[str, Any]) -> MessageRejection | None:
    for field in ("messageId", "anonymousId"):
        value = message.get(field)
        if isinstance(value, str) and value.strip().startswith(RESERVED_PREFIXES):
            return MessageRejection(
                0, field, "reserved", f"Ids starting with {' or '.join(RESERVED_PREFIXES)} are the engine's own."
            )
    return None


@dataclass(frozen=True)
class _Claim:
    """What one message says about who it is for."""

    user_id: str | None
    anonymous_id: str | None
    token: Any
    has_email: bool  # the message sets the email trait (to anything)
    email: str | None  # normalized


def _claim(message: dict[str, Any]) -> _Claim:
    context = message.get("context")
    traits = _traits(message)
    raw = traits.get("email")
    return _Claim(
        user_id=_text(message.get("userId")),
        anonymous_id=_text(message.get("anonymousId")),
        token=context.get("personToken") if isinstance(context, dict) else None,
        has_email="email" in traits,
        email=_text(str(raw).lower()) if raw not in (None, "") else None,
    )


class _People:
    """The identities, known-ness and emails the claims of one request refer to, read in three queries."""

    def __init__(self, claims: Sequence[_Claim]) -> None:
        wanted = Q(pk__in=[])
        kind: str
        for kind, values in (
            (IdentityKind.USER_ID, {c.user_id for c in claims if c.user_id}),
            (IdentityKind.ANONYMOUS_ID, {c.anonymous_id for c in claims if c.anonymous_id}),
            (IdentityKind.EMAIL, {c.email for c in claims if c.email}),
        ):
            if values:
                wanted |= Q(kind=kind, value__in=values)
        self.owner = {
            (k, v): p for k, v, p in Identity.objects.filter(wanted).values_list("kind", "value", "person_id")
        }
        people = set(self.owner.values())
        self.known: set[int] = set()
        self.email: dict[int, str] = {}
        for person_id, kind, value in Identity.objects.filter(person_id__in=people, kind__in=KNOWN_KINDS).values_list(
            "person_id", "kind", "value"
        ):
            self.known.add(person_id)
            if kind == IdentityKind.EMAIL:
                self.email.setdefault(person_id, value)
        for person_id, traits in Person.objects.filter(pk__in=self.known).values_list("pk", "traits"):
            email = traits.get("email") if isinstance(traits, dict) else None
            if email:  # where their campaign email goes: the trait, else the email they are known by
                self.email[person_id] = str(email).strip().lower()

    def of(self, kind: str, value: str | None) -> int | None:
        return self.owner.get((kind, value)) if value else None


def _refusal(claim: _Claim, people: _People, verify: Verifier) -> MessageRejection | None:
    by_user = people.of(IdentityKind.USER_ID, claim.user_id)
    by_anonymous = people.of(IdentityKind.ANONYMOUS_ID, claim.anonymous_id)
    by_email = people.of(IdentityKind.EMAIL, claim.email)
    own = by_user or by_anonymous
    if len({p for p in (by_user, by_anonymous) if p in people.known}) > 1:
        return MessageRejection(
            0,
            "userId",
            NOT_PERMITTED,
            "The ingest key cannot merge two known people; send this from your backend with the secret key.",
        )
    if not claim.has_email:
        return None
    if by_email is not None and by_email != own:
        return MessageRejection(
            0,
            "traits.email",
            NOT_PERMITTED,
            "The ingest key cannot tie a visitor to the person this email belongs to; "
            "send this from your backend with the secret key.",
        )
    if own is not None and own in people.known:
        current = people.email.get(own)
        if current == claim.email:
            return None  # the same email again: nothing changes
        verified = bool(claim.user_id and verify(claim.user_id, claim.token))
        if current is not None or not verified:
            return MessageRejection(
                0,
                "traits.email",
                NOT_PERMITTED,
                "The ingest key cannot change the email of a known person; "
                "send this from your backend with the secret key.",
            )
    return None


def _without_token(message: Any) -> Any:
    """The person token is a credential until it expires: it is checked, never stored with the event."""
    context = message.get("context") if isinstance(message, dict) else None
    if not isinstance(context, dict) or "personToken" not in context:
        return message
    return {**message, "context": {k: v for k, v in context.items() if k != "personToken"}}


def ingest_from_api(messages: Sequence[Any], default_type: str | None, verify: Verifier | None) -> IngestResult:
    """Ingest what an API caller sent. ``verify`` is given for the public key, whose messages are
    screened first (see the module's docstring); the engine's own ids are refused from every caller."""
    refused: list[MessageRejection] = []
    kept: list[int] = []
    claims = {i: _claim(m) for i, m in enumerate(messages) if verify is not None and isinstance(m, dict)}
    people = _People(list(claims.values())) if claims else None
    for index, message in enumerate(messages):
        refusal = None
        if isinstance(message, dict):
            refusal = _reserved(message)
            if refusal is None and people is not None and verify is not None:
                refusal = _refusal(claims[index], people, verify)
        if refusal is None:
            kept.append(index)
        else:
            refusal.index = index
            refused.append(refusal)
    if not kept:
        return IngestResult(rejected=refused)
    result = ingest_messages([_without_token(messages[i]) for i in kept], default_type=default_type)
    for rejection in result.rejected:
        rejection.index = kept[rejection.index]
    result.rejected = sorted([*result.rejected, *refused], key=lambda r: r.index)
    return result
