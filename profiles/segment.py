"""Parse messages of the Segment HTTP Tracking API into flat event rows.

Plain Python, free of Django: the ingest path is hot, so this is hand-written validation rather
than a serializer per event. Every error names the field it is about.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any

MESSAGE_TYPES = ("track", "identify", "page", "screen")
MAX_ID_LENGTH = 200
MAX_EVENT_NAME_LENGTH = 200
# How far into the future a corrected timestamp may be before we clamp it to the receive time.
MAX_FUTURE_SKEW = timedelta(minutes=5)

_NORMALIZE = re.compile(r"[\s_\-]+")

# Names we understand, normalized (lowercase, single spaces), mapped to our event kinds.
EVENT_KINDS = {
    "product viewed": "view",
    "content viewed": "view",
    "article viewed": "view",
    "item viewed": "view",
    "viewed": "view",
    "view": "view",
    "product clicked": "view",
    "product added": "add_to_cart",
    "added to cart": "add_to_cart",
    "add to cart": "add_to_cart",
    "product added to cart": "add_to_cart",
    "order completed": "purchase",
    "purchased": "purchase",
    "purchase": "purchase",
    "products searched": "search",
    "product searched": "search",
    "searched": "search",
    "search": "search",
    "email opened": "email_open",
    "email link clicked": "email_click",
    "email clicked": "email_click",
    "unsubscribed": "unsubscribe",
    "email unsubscribed": "unsubscribe",
    "feature activated": "feature_activated",
    "signed up": "signup",
    "sign up": "signup",
    "user signed up": "signup",
}
ITEM_ID_KEYS = ("product_id", "item_id", "content_id", "feature_id", "sku", "id")


class MessageError(ValueError):
    def __init__(self, attr: str, detail: str, code: str = "invalid") -> None:
        super().__init__(detail)
        self.attr, self.detail, self.code = attr, detail, code


@dataclass(frozen=True, slots=True)
class OversizedMessage:
    """Stands in for a message that was over the size limit, so it is rejected with its index."""

    limit: int


@dataclass(slots=True)
class EventRow:
    message_id: str
    position: int
    kind: str
    name: str
    item_id: str
    quantity: int | None
    price: Decimal | None
    order_id: str
    properties: dict[str, Any]
    context: dict[str, Any]
    timestamp: datetime


@dataclass(slots=True)
class ParsedMessage:
    message_id: str
    type: str
    anonymous_id: str | None
    user_id: str | None
    traits: dict[str, Any]
    rows: list[EventRow] = field(default_factory=list)

    @property
    def email(self) -> str | None:
        value = self.traits.get("email")
        return value.strip().lower() if isinstance(value, str) and "@" in value else None


def event_kind(name: str) -> str:
    return EVENT_KINDS.get(_NORMALIZE.sub(" ", name.strip().lower()), "other")


def parse_time(value: Any, attr: str) -> datetime | None:
    if value in (None, ""):
        return None
    if not isinstance(value, str):
        raise MessageError(attr, "Must be an ISO 8601 date-time string.")
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise MessageError(attr, f"Not an ISO 8601 date-time: {value[:40]!r}.") from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _optional_id(message: dict[str, Any], key: str) -> str | None:
    value = message.get(key)
    if value in (None, ""):
        return None
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        raise MessageError(key, "Must be a string.")
    text = str(value).strip()
    if len(text) > MAX_ID_LENGTH:
        raise MessageError(key, f"Longer than {MAX_ID_LENGTH} characters.")
    return text or None


def _object(message: dict[str, Any], key: str) -> dict[str, Any]:
    value = message.get(key)
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise MessageError(key, "Must be an object.")
    return value


def _number(value: Any, attr: str, integer: bool = False) -> Any:
    if value in (None, ""):
        return None
    if isinstance(value, bool):
        raise MessageError(attr, "Must be a number.")
    try:
        number = Decimal(str(value))
    except InvalidOperation:
        raise MessageError(attr, "Must be a number.") from None
    if not number.is_finite() or abs(number) >= Decimal("1e10"):
        raise MessageError(attr, "Out of range.")
    if integer:
        return int(number)
    return number.quantize(Decimal("0.01"))


def _item_id(properties: dict[str, Any], attr: str) -> str:
    for key in ITEM_ID_KEYS:
        value = properties.get(key)
        if value not in (None, ""):
            if isinstance(value, bool) or not isinstance(value, (str, int)):
                raise MessageError(f"{attr}.{key}", "Must be a string.")
            text = str(value).strip()
            if len(text) > MAX_ID_LENGTH:
                raise MessageError(f"{attr}.{key}", f"Longer than {MAX_ID_LENGTH} characters.")
            return text
    return ""


def content_message_id(message: dict[str, Any]) -> str:
    """A stable id for a message that came without one, so that a replay is still recognised."""
    digest = hashlib.sha256(json.dumps(message, sort_keys=True, default=str).encode()).hexdigest()
    return f"auto-{digest[:40]}"


def parse_message(message: Any, received_at: datetime, default_type: str | None = None) -> ParsedMessage:
    """Validate one message; raise ``MessageError`` naming the first bad field."""
    if isinstance(message, OversizedMessage):
        raise MessageError("", f"The message is larger than {message.limit} bytes.", code="too_large")
    if not isinstance(message, dict):
        raise MessageError("", "Each message must be a JSON object.")
    kind_of_call = message.get("type") or default_type
    if kind_of_call not in MESSAGE_TYPES:
        raise MessageError("type", f"Must be one of {', '.join(MESSAGE_TYPES)}.")
    if default_type and message.get("type") not in (None, default_type):
        raise MessageError("type", f"This endpoint takes '{default_type}' messages.")

    anonymous_id = _optional_id(message, "anonymousId")
    user_id = _optional_id(message, "userId")
    if anonymous_id is None and user_id is None:
        raise MessageError("userId", "Either userId or anonymousId is required.", code="required")
    message_id = _optional_id(message, "messageId") or content_message_id(message)

    properties = _object(message, "properties")
    context = _object(message, "context")
    traits = _object(message, "traits") or _object(context, "traits")

    sent_at = parse_time(message.get("sentAt"), "sentAt")
    timestamp = parse_time(message.get("timestamp") or message.get("originalTimestamp"), "timestamp") or received_at
    if sent_at is not None:
        # The client's clock may be off: shift by how far its sentAt is from our receive time.
        timestamp += received_at - sent_at
    timestamp = min(timestamp, received_at + MAX_FUTURE_SKEW)

    parsed = ParsedMessage(message_id, kind_of_call, anonymous_id, user_id, traits)

    order_id = str(properties.get("order_id") or properties.get("orderId") or "")[:MAX_ID_LENGTH]

    def row(
        position: int,
        kind: str,
        name: str,
        item_id: str = "",
        quantity: Any = None,
        price: Any = None,
        props: dict[str, Any] = properties,
    ) -> None:
        parsed.rows.append(
            EventRow(message_id, position, kind, name, item_id, quantity, price, order_id, props, context, timestamp)
        )

    if kind_of_call == "identify":
        row(0, "identify", "identify")
    elif kind_of_call in ("page", "screen"):
        name = message.get("name") or properties.get("name") or ""
        if not isinstance(name, str):
            raise MessageError("name", "Must be a string.")
        row(0, "page", name[:MAX_EVENT_NAME_LENGTH], _item_id(properties, "properties"))
    else:
        name = message.get("event")
        if not isinstance(name, str) or not name.strip():
            raise MessageError("event", "The event name is required for track calls.", code="required")
        if len(name) > MAX_EVENT_NAME_LENGTH:
            raise MessageError("event", f"Longer than {MAX_EVENT_NAME_LENGTH} characters.")
        kind = event_kind(name)
        products = properties.get("products")
        if products is not None and not isinstance(products, list):
            raise MessageError("properties.products", "Must be a list of products.")
        if products and kind in ("purchase", "add_to_cart", "view"):
            # One row per product; each keeps the order's own properties beside its product.
            order_properties = {k: v for k, v in properties.items() if k != "products"}
            for index, product in enumerate(products[:500]):
                attr = f"properties.products.{index}"
                if not isinstance(product, dict):
                    raise MessageError(attr, "Each product must be an object.")
                item_id = _item_id(product, attr)
                if not item_id:
                    raise MessageError(f"{attr}.product_id", "Each product needs a product_id.", code="required")
                row(
                    index,
                    kind,
                    name,
                    item_id,
                    _number(product.get("quantity"), f"{attr}.quantity", True),
                    _number(product.get("price"), f"{attr}.price"),
                    {**order_properties, "product": product},
                )
        else:
            row(
                0,
                kind,
                name,
                _item_id(properties, "properties"),
                _number(properties.get("quantity"), "properties.quantity", True),
                _number(properties.get("price"), "properties.price"),
            )
    return parsed
