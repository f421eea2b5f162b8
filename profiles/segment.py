"""Parse messages of the Segment HTTP Tracking API into flat event rows.

Plain Python, free of Django: the ingest path is hot, so this is hand-written validation rather
than a serializer per event. Every error names the field it is about.

A message is checked against what the database can hold before anything is written, so one bad
message is rejected by itself instead of failing the statement that would store its whole batch:
no NUL character and no lone UTF-16 surrogate in any string or key (PostgreSQL's text and JSON
cannot hold them), no infinite number, at most ``MAX_NESTING`` levels of objects and arrays, at
most ``MAX_MESSAGE_BYTES``, ids and names within their columns, integers within 32 bits, prices
within ``numeric(12, 2)``, at most ``MAX_PRODUCTS`` products an order, and a timestamp, once
corrected for the client's clock, between ``EARLIEST`` and a day after it was received.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any

MESSAGE_TYPES = ("track", "identify", "page", "screen")
MAX_ID_LENGTH = 200
MAX_EVENT_NAME_LENGTH = 200
MAX_EMAIL_LENGTH = 254  # RFC 5321's limit for a path; the identity column holds 255
MAX_PRODUCTS = 500  # an order's products become rows at positions 0..499
MAX_NESTING = 32  # levels of objects and arrays in a message, the message itself being the first
MAX_MESSAGE_BYTES = 32 * 1024  # as compact UTF-8 JSON; Segment's own limit
INTEGER_RANGE = (-(2**31), 2**31 - 1)  # an integer column
MAX_PRICE = Decimal("9999999999.99")  # numeric(12, 2)
# A timestamp, once corrected with sentAt, must fall in [EARLIEST, received + MAX_FUTURE]; one
# between received + MAX_FUTURE_SKEW and that is taken as the receive time plus MAX_FUTURE_SKEW.
EARLIEST = datetime(2000, 1, 1, tzinfo=UTC)
MAX_FUTURE = timedelta(days=1)
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


def event_time(timestamp: datetime | None, sent_at: datetime | None, received_at: datetime) -> datetime:
    """When it happened, corrected for the client's clock as Segment does: the timestamp shifted by
    how far the client's ``sentAt`` is from the time we received the message.

    Comparing aware datetimes never overflows; adding a skew may (past year 9999 or before year 1),
    and such a result is out of the window anyway."""
    if timestamp is None:  # no time of its own: when we received it (sentAt has nothing to correct)
        return received_at
    latest = received_at + MAX_FUTURE
    try:
        corrected = timestamp if sent_at is None else timestamp + (received_at - sent_at)
    except OverflowError:
        corrected = None
    if corrected is None or not EARLIEST <= corrected <= latest:
        window = f"between {EARLIEST:%Y-%m-%d} and a day after it was received"
        if sent_at is not None and EARLIEST <= timestamp <= latest:
            raise MessageError(
                "sentAt", f"Correcting the timestamp by sentAt puts it outside the accepted window ({window})."
            )
        raise MessageError("timestamp", f"Must be {window}.")
    return min(corrected, received_at + MAX_FUTURE_SKEW)


def check_values(message: dict[str, Any]) -> None:
    """Every string and key storable (no NUL, no lone surrogate), every number finite, the nesting
    within ``MAX_NESTING``; the first offence is raised with its dotted path."""
    stack: list[tuple[Any, tuple[str, ...]]] = [(message, ())]
    while stack:
        value, path = stack.pop()
        if isinstance(value, str):
            _check_text(value, path)
        elif isinstance(value, dict):
            if len(path) >= MAX_NESTING:
                raise MessageError(_dotted(path), f"Nested deeper than {MAX_NESTING} levels.", code="too_deep")
            for key, item in value.items():
                _check_text(key, path, key=True)
                stack.append((item, (*path, key)))
        elif isinstance(value, list):
            if len(path) >= MAX_NESTING:
                raise MessageError(_dotted(path), f"Nested deeper than {MAX_NESTING} levels.", code="too_deep")
            stack.extend((item, (*path, str(index))) for index, item in enumerate(value))
        elif isinstance(value, float) and not math.isfinite(value):
            raise MessageError(_dotted(path), "Must be a finite number.")


def _dotted(path: tuple[str, ...]) -> str:
    return ".".join(path)


def _check_text(text: str, path: tuple[str, ...], key: bool = False) -> None:
    if text.isascii() and "\x00" not in text:
        return
    where = f"A key of {_dotted(path) or 'the message'}" if key else "The value"
    if "\x00" in text:
        raise MessageError(_dotted(path), f"{where} contains a NUL character (\\u0000).")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise MessageError(_dotted(path), f"{where} contains a lone UTF-16 surrogate (invalid Unicode).") from None


def checked_size(message: dict[str, Any]) -> int:
    """``check_values`` and the message's size as compact UTF-8 JSON, in one pass of C code for the
    usual message: the encoder refuses infinities and a lone surrogate cannot be encoded as UTF-8;
    NUL is always escaped; nesting cannot pass the limit with fewer brackets than that. Only a
    message that trips one of these is walked, to name the field (a false alarm walks for nothing)."""
    try:
        encoded = json.dumps(message, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
        size = len(encoded.encode())
    except (ValueError, RecursionError):  # an infinity (UnicodeEncodeError is a ValueError too), or too deep
        check_values(message)
        raise MessageError("", "The message cannot be stored as JSON.") from None
    if "\\u0000" in encoded or encoded.count("{") + encoded.count("[") > MAX_NESTING:
        check_values(message)
    return size


def _optional_id(message: dict[str, Any], key: str) -> str | None:
    value = message.get(key)
    if value in (None, ""):
        return None
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        raise MessageError(key, "Must be a string.")
    return _bounded_text(value, key, MAX_ID_LENGTH) or None


def _bounded_text(value: str | int, attr: str, limit: int) -> str:
    if isinstance(value, int) and abs(value) >= 10**limit:  # str() of a huge integer would be refused
        raise MessageError(attr, f"Longer than {limit} characters.")
    text = str(value).strip()
    if len(text) > limit:
        raise MessageError(attr, f"Longer than {limit} characters.")
    return text


def _object(message: dict[str, Any], key: str, attr: str | None = None) -> dict[str, Any]:
    value = message.get(key)
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise MessageError(attr or key, "Must be an object.")
    return value


def _number(value: Any, attr: str, integer: bool = False) -> Any:
    if value in (None, ""):
        return None
    if type(value) is int and integer and INTEGER_RANGE[0] <= value <= INTEGER_RANGE[1]:
        return value  # the usual case, at once
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise MessageError(attr, "Must be a number.")
    if isinstance(value, int) and abs(value) > 10**15:  # before str(): a huge integer would not convert
        raise MessageError(attr, "Out of range.")
    try:
        number = Decimal(str(value).strip())
    except (InvalidOperation, ValueError):
        raise MessageError(attr, "Must be a number.") from None
    if not number.is_finite():
        raise MessageError(attr, "Must be a finite number.")
    if integer:
        if number != number.to_integral_value():
            raise MessageError(attr, "Must be a whole number.")
        if not INTEGER_RANGE[0] <= number <= INTEGER_RANGE[1]:
            raise MessageError(attr, f"Out of range: {INTEGER_RANGE[0]} to {INTEGER_RANGE[1]}.")
        return int(number)
    if abs(number) > MAX_PRICE:
        raise MessageError(attr, f"Out of range: at most {MAX_PRICE} in absolute value.")
    quantized = number.quantize(Decimal("0.01"))  # cannot overflow: bounded above
    if abs(quantized) > MAX_PRICE:
        raise MessageError(attr, f"Out of range: at most {MAX_PRICE} in absolute value.")
    return quantized


def _item_id(properties: dict[str, Any], attr: str) -> str:
    for key in ITEM_ID_KEYS:
        value = properties.get(key)
        if value not in (None, ""):
            if isinstance(value, bool) or not isinstance(value, (str, int)):
                raise MessageError(f"{attr}.{key}", "Must be a string.")
            return _bounded_text(value, f"{attr}.{key}", MAX_ID_LENGTH)
    return ""


def _order_id(properties: dict[str, Any]) -> str:
    for key in ("order_id", "orderId"):
        value = properties.get(key)
        if value not in (None, ""):
            if isinstance(value, bool) or not isinstance(value, (str, int)):
                raise MessageError(f"properties.{key}", "Must be a string.")
            return _bounded_text(value, f"properties.{key}", MAX_ID_LENGTH)
    return ""


def content_message_id(message: dict[str, Any]) -> str:
    """A stable id for a message that came without one, so that a replay is still recognised."""
    digest = hashlib.sha256(json.dumps(message, sort_keys=True, default=str).encode()).hexdigest()
    return f"auto-{digest[:40]}"


def parse_message(
    message: Any,
    received_at: datetime,
    default_type: str | None = None,
    max_bytes: int = MAX_MESSAGE_BYTES,
) -> ParsedMessage:
    """Validate one message; raise ``MessageError`` naming the first bad field."""
    if not isinstance(message, dict):
        raise MessageError("", "Each message must be a JSON object.")
    size = checked_size(message)
    if size > max_bytes:
        raise MessageError("", f"The message is {size} bytes; at most {max_bytes} are accepted.", code="too_large")
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
    traits_attr = "traits" if _object(message, "traits") else "context.traits"
    traits = _object(message, "traits") or _object(context, "traits", "context.traits")

    sent_at = parse_time(message.get("sentAt"), "sentAt")
    timestamp_attr = "timestamp" if message.get("timestamp") else "originalTimestamp"
    try:
        timestamp = event_time(parse_time(message.get(timestamp_attr), timestamp_attr), sent_at, received_at)
    except MessageError as error:
        error.attr = timestamp_attr if error.attr == "timestamp" else error.attr
        raise

    parsed = ParsedMessage(message_id, kind_of_call, anonymous_id, user_id, traits)
    email = parsed.email
    if email is not None and len(email) > MAX_EMAIL_LENGTH:
        raise MessageError(f"{traits_attr}.email", f"Longer than {MAX_EMAIL_LENGTH} characters.")

    order_id = _order_id(properties)

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
        name_attr = "name" if message.get("name") else "properties.name"
        name = message.get("name") or properties.get("name") or ""
        if not isinstance(name, str):
            raise MessageError(name_attr, "Must be a string.")
        if len(name) > MAX_EVENT_NAME_LENGTH:
            raise MessageError(name_attr, f"Longer than {MAX_EVENT_NAME_LENGTH} characters.")
        row(0, "page", name, _item_id(properties, "properties"))
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
            if len(products) > MAX_PRODUCTS:
                raise MessageError(
                    "properties.products",
                    f"At most {MAX_PRODUCTS} products a message; got {len(products)}. Split the order.",
                    code="max_length",
                )
            # One row per product; each keeps the order's own properties beside its product.
            order_properties = {k: v for k, v in properties.items() if k != "products"}
            for index, product in enumerate(products):
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
