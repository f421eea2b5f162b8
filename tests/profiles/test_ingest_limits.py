"""Every message is checked against what the database can hold before anything is written: a bad
message is refused by itself, named by index and field, and the good ones beside it are stored."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta, timezone
from io import StringIO
from typing import Any

import pytest
from django.core.management import call_command
from django.db import connection
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from profiles.models import Event, Identity
from profiles.segment import (
    EARLIEST,
    MAX_EVENT_NAME_LENGTH,
    MAX_NESTING,
    MAX_PRODUCTS,
    MessageError,
    event_time,
)
from tests.conftest import track


def _good(n: int) -> list[dict[str, Any]]:
    return [track("Product Viewed", user=f"lim-{n}", properties={"product_id": f"sku-{i}"}) for i in range(n)]


def _nested(depth: int) -> Any:
    value: Any = "deep"
    for _ in range(depth):
        value = {"a": value}
    return value


HOSTILE: dict[str, tuple[dict[str, Any], str]] = {
    # name: (fields that make a good track message bad, the attr the answer must name)
    "nul in the event name": ({"event": "Product\x00Viewed"}, "event"),
    "nul in a property key": ({"properties": {"product_id": "a", "col\x00or": "red"}}, "properties"),
    "lone surrogate in a property": ({"properties": {"product_id": "a", "note": "x\ud800y"}}, "properties.note"),
    "lone surrogate in the user id": ({"userId": "u\udfff"}, "userId"),
    "quantity of 2**31": ({"properties": {"product_id": "a", "quantity": 2**31}}, "properties.quantity"),
    "quantity of 10**40": ({"properties": {"product_id": "a", "quantity": 10**40}}, "properties.quantity"),
    "price past numeric(12, 2)": ({"properties": {"product_id": "a", "price": 9999999999.999}}, "properties.price"),
    "an email of 300 characters": (
        {"type": "identify", "traits": {"email": "a" * 288 + "@example.com"}},
        "traits.email",
    ),
    "a year-one timestamp": ({"timestamp": "0001-01-01T00:00:00+14:00"}, "timestamp"),
    "a timestamp in year 9999": ({"timestamp": "9999-12-31T23:59:59-14:00"}, "timestamp"),
    "timestamp and sentAt far apart": (
        {"timestamp": "2026-01-01T00:00:00Z", "sentAt": "0001-01-01T00:00:00+14:00"},
        "sentAt",
    ),
    "nested past the limit": ({"properties": {"product_id": "a", "x": _nested(MAX_NESTING)}}, "properties.x"),
    "too many products": (
        {
            "event": "Order Completed",
            "properties": {"order_id": "o", "products": [{"product_id": f"p{i}"} for i in range(MAX_PRODUCTS + 100)]},
        },
        "properties.products",
    ),
    "over 32 KB": ({"properties": {"product_id": "a", "blob": "x" * 40_000}}, ""),
    "an infinite number": ({"properties": {"product_id": "a", "ratio": float("inf")}}, "properties.ratio"),
}


@pytest.mark.parametrize("case", sorted(HOSTILE))
def test_finding_3_one_bad_message_in_a_batch_never_costs_the_good_ones(ingest_client, case):
    batch = _good(4)
    fields, attr = HOSTILE[case]
    batch[2] = {**batch[2], **fields}
    body = json.dumps({"batch": batch}).replace("Infinity", "1e400")  # what a client can send: 1e400

    response = ingest_client.post("/api/v1/batch", body, content_type="application/json")

    assert response.status_code == 200, response.content
    answer = response.json()
    assert answer["accepted"] == 3 and answer["rejected"] == 1
    (error,) = answer["errors"]
    # The field, or for one nested too deeply the place within it where the limit was passed.
    assert error["index"] == 2 and error["attr"].startswith("batch.2" + (f".{attr}" if attr else "")), error
    stored = set(Event.objects.values_list("message_id", flat=True))
    assert stored == {batch[i]["messageId"] for i in (0, 1, 3)}


def test_finding_3_an_order_with_more_products_than_the_limit_is_refused_not_truncated(ingest_client):
    products = [{"product_id": f"p{i}", "quantity": 1} for i in range(600)]
    response = ingest_client.post(
        "/api/v1/track",
        track("Order Completed", user="big", properties={"order_id": "o-600", "products": products}),
        format="json",
    )
    assert response.status_code == 400
    assert response.json()["attr"] == "properties.products"
    assert "At most 500 products" in response.json()["detail"]
    assert not Event.objects.exists()


@pytest.mark.parametrize("endpoint", ["track", "identify", "page"])
def test_finding_3_every_endpoint_refuses_a_message_over_32_kb(ingest_client, endpoint):
    message = {"userId": "u-big", "event": "Signed Up", "properties": {"blob": "x" * 40_000}}
    response = ingest_client.post(f"/api/v1/{endpoint}", message, format="json")
    assert response.status_code == 400
    assert response.json()["code"] == "too_large"
    assert not Event.objects.exists()


def test_a_message_just_under_32_kb_is_taken(ingest_client):
    message = {"userId": "u-fit", "event": "Signed Up", "properties": {"blob": "x" * 32_000}}
    assert ingest_client.post("/api/v1/track", message, format="json").status_code == 200


def test_finding_3_json_nested_5000_deep_is_a_400(ingest_client):
    body = '{"batch": [' + "[" * 5000 + "]" * 5000 + "]}"
    response = ingest_client.post("/api/v1/batch", body, content_type="application/json")
    assert response.status_code == 400
    assert "nested too deeply" in response.json()["detail"]
    assert not Event.objects.exists()


def test_finding_3_a_nul_in_the_consent_key_is_a_400_not_a_500(secret_client):
    response = secret_client.put(
        "/api/v1/people/ab%00c/consent", {"purposes": {"personalization": False}}, format="json"
    )
    assert response.status_code == 400 and response.json()["attr"] == "person"
    assert not Identity.objects.exists()


def test_finding_2_a_year_one_timestamp_is_refused_not_stored(ingest_client):
    response = ingest_client.post(
        "/api/v1/track",
        {"userId": "u-bc", "event": "Product Viewed", "timestamp": "0001-01-01T00:00:00+14:00"},
        format="json",
    )
    assert response.status_code == 400
    assert response.json()["attr"] == "timestamp"
    assert list(Event.objects.values_list("timestamp", flat=True)) == []


def test_a_device_clock_far_behind_is_corrected_by_sent_at(ingest_client):
    # A phone whose clock says 1970 sends both in 1970: the event is placed at the receive time.
    response = ingest_client.post(
        "/api/v1/track",
        {
            "userId": "u-1970",
            "event": "Signed Up",
            "timestamp": "1970-01-01T00:00:00Z",
            "sentAt": "1970-01-01T00:00:05Z",
        },
        format="json",
    )
    assert response.status_code == 200
    stored = Event.objects.get().timestamp
    assert abs(stored - (datetime.now(UTC) - timedelta(seconds=5))) < timedelta(seconds=30)


def _store_as_an_older_version_did(timestamp: str) -> int:
    from profiles.models import Person

    person = Person.objects.create()
    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO profiles_event (message_id, position, person_id, kind, name, item_id, order_id,"
            " properties, context, timestamp, received_at)"
            " VALUES (%s, 0, %s, 'view', 'Product Viewed', 'a', '', '{}', '{}', %s::timestamptz, now()) RETURNING id",
            [f"old-{uuid.uuid4().hex}", person.pk, timestamp],
        )
        return int(cursor.fetchone()[0])


@pytest.mark.skipif(connection.vendor != "postgresql", reason="the year-one row is PostgreSQL's to keep")
def test_finding_2_repair_events_fixes_the_rows_an_older_version_stored(db):
    bad = _store_as_an_older_version_did("0001-01-01T00:00:00+14:00")
    good = _store_as_an_older_version_did("2026-01-01T00:00:00Z")
    with pytest.raises(Exception, match="year"):  # what broke training, export and the admin
        list(Event.objects.values_list("timestamp", flat=True))

    dry = StringIO()
    call_command("repair_events", "--dry-run", stdout=dry)
    assert "1 event(s) with a timestamp out of range" in dry.getvalue() and "BC" in dry.getvalue()
    with pytest.raises(Exception, match="year"):
        list(Event.objects.values_list("timestamp", flat=True))  # a dry run changes nothing

    out = StringIO()
    call_command("repair_events", stdout=out)
    assert "Gave 1 event(s) their receive time" in out.getvalue()
    rows = dict(Event.objects.values_list("pk", "timestamp"))
    assert rows[good] == datetime(2026, 1, 1, tzinfo=UTC)
    assert abs(rows[bad] - datetime.now(UTC)) < timedelta(minutes=5)


@pytest.mark.skipif(connection.vendor != "postgresql", reason="the year-one row is PostgreSQL's to keep")
def test_repair_events_can_delete_instead(db):
    _store_as_an_older_version_did("0001-01-01T00:00:00+14:00")
    call_command("repair_events", "--delete", stdout=StringIO())
    assert not Event.objects.exists()


# --- property: hostile messages mixed into batches of good ones ------------------------------------

_text = st.text(st.characters(codec="utf-8", exclude_characters="\x00"), min_size=1, max_size=12)
_hostile_string = st.one_of(
    st.tuples(_text, _text).map(lambda t: t[0] + "\x00" + t[1]),
    st.tuples(_text, st.integers(0xD800, 0xDFFF), _text).map(lambda t: t[0] + chr(t[1]) + t[2]),
)


@st.composite
def hostile_message(draw: st.DrawFn, n: int) -> tuple[dict[str, Any], str]:
    """A message that must be refused, and the attr that must name it (within ``batch.<i>``)."""
    base = track("Product Viewed", user=f"h-{uuid.uuid4().hex[:8]}", properties={"product_id": "sku-h"})
    kind = draw(
        st.sampled_from(
            ["string", "key", "user", "int", "email", "time", "skew", "deep", "products", "size", "inf", "name"]
        )
    )
    if kind == "string":
        base["properties"]["note"] = draw(_hostile_string)
        return base, "properties.note"
    if kind == "key":
        base["context"] = {draw(_hostile_string): 1}
        return base, "context"
    if kind == "user":
        base["userId"] = draw(_hostile_string)
        return base, "userId"
    if kind == "int":
        base["properties"]["quantity"] = draw(
            st.one_of(st.integers(min_value=2**31, max_value=10**60), st.integers(max_value=-(2**31) - 1))
        )
        return base, "properties.quantity"
    if kind == "email":
        local = draw(st.integers(min_value=243, max_value=2000))
        return {**base, "type": "identify", "traits": {"email": "a" * local + "@example.com"}}, "traits.email"
    if kind == "time":
        year = draw(st.one_of(st.integers(1, 1999), st.integers(2100, 9999)))
        offset = draw(st.sampled_from(["+14:00", "-14:00", "Z", "+05:30"]))
        base["timestamp"] = f"{year:04d}-01-01T00:00:00{offset}"
        return base, "timestamp"
    if kind == "skew":
        base["timestamp"] = "2026-01-01T00:00:00Z"
        year = draw(st.one_of(st.integers(1, 1900), st.integers(2200, 9999)))
        base["sentAt"] = f"{year:04d}-06-01T00:00:00+14:00"
        return base, "sentAt"
    if kind == "deep":
        base["properties"]["x"] = _nested(draw(st.integers(MAX_NESTING, 400)))
        return base, "properties.x"
    if kind == "products":
        count = draw(st.integers(MAX_PRODUCTS + 1, MAX_PRODUCTS + 200))
        base["event"] = "Order Completed"
        base["properties"] = {"order_id": "o", "products": [{"product_id": f"p{i}"} for i in range(count)]}
        return base, "properties.products"
    if kind == "size":
        base["properties"]["blob"] = "x" * draw(st.integers(33_000, 60_000))
        return base, ""
    if kind == "inf":
        base["properties"]["ratio"] = float("inf")
        return base, "properties.ratio"
    base["event"] = "E" * draw(st.integers(201, 1000))
    return base, "event"


# Text a client may send: anything but NUL and lone surrogates, astral characters included (JSON
# carries them as surrogate pairs, which must be read back as one character, not refused).
_good_text = st.text(st.characters(codec="utf-8", exclude_characters="\x00"), max_size=40)
_recent_moment = st.builds(
    lambda days, minutes, offset: (
        (datetime.now(UTC) - timedelta(days=days, minutes=minutes))
        .astimezone(timezone(timedelta(minutes=offset)))
        .isoformat()
    ),
    st.integers(0, 365 * 20),
    st.integers(0, 24 * 60),
    st.integers(-(14 * 60), 14 * 60),
)


@st.composite
def good_message(draw: st.DrawFn, n: int) -> tuple[dict[str, Any], int]:
    """A message that must be stored, often at the edge of a limit, and how many rows it makes."""
    user = f"g-{uuid.uuid4().hex[:12]}"
    kind = draw(st.sampled_from(["view", "order", "identify", "page", "edges"]))
    if kind == "order":
        count = draw(st.sampled_from([1, 2, 7, MAX_PRODUCTS]))  # exactly the limit is fine
        products = [{"product_id": f"p{i}", "quantity": 1, "price": 9.5} for i in range(count)]
        message = track("Order Completed", user=user, properties={"order_id": f"o-{n}", "products": products})
        rows = count
    elif kind == "identify":
        local = draw(st.integers(1, 254 - len("@example.com") - 13))  # the longest email still fits
        email = f"{uuid.uuid4().hex[:12]}{'a' * local}@example.com"
        message = {"type": "identify", "userId": user, "traits": {"email": email, "name": draw(_good_text)}}
        rows = 1
    elif kind == "page":
        message = {"type": "page", "anonymousId": f"anon-{uuid.uuid4().hex}", "name": draw(_good_text)[:200]}
        rows = 1
    elif kind == "edges":
        message = track(
            "E" * MAX_EVENT_NAME_LENGTH,
            user=user,
            properties={
                "product_id": "p" * 200,
                "quantity": draw(st.sampled_from([2**31 - 1, -(2**31)])),
                "price": 9999999999.99,
                "x": _nested(MAX_NESTING - 2),  # the message and properties are the first two levels
            },
        )
        rows = 1
    else:
        message = track(
            draw(st.sampled_from(["Product Viewed", "Product Added", "Signed Up"])),
            user=user,
            properties={
                "product_id": f"sku-{n}",
                "quantity": draw(st.integers(-5, 2**31 - 1)),
                "note": draw(_good_text),
            },
        )
        rows = 1
    if draw(st.booleans()):
        message["timestamp"] = draw(_recent_moment)
        if draw(st.booleans()):  # a device clock some hours wrong, corrected by sentAt
            message["sentAt"] = draw(_recent_moment)
            message.pop("timestamp")
    message["messageId"] = f"good-{uuid.uuid4().hex}"
    return message, rows


@st.composite
def mixed_batch(draw: st.DrawFn) -> tuple[list[dict[str, Any]], dict[int, str], dict[str, int], int]:
    """(the batch, attr per bad index, rows per good message id, how many good ones are repeats)."""
    good = [draw(good_message(n)) for n in range(draw(st.integers(1, 6)))]
    bad = [draw(hostile_message(n)) for n in range(draw(st.integers(1, 4)))]
    # A client may send the same message twice in one batch: the second is a duplicate, not a row.
    repeats = draw(st.lists(st.sampled_from(range(len(good))), max_size=2))
    messages: list[tuple[dict[str, Any], str | None]] = [(m, None) for m, _ in good]
    messages += [(dict(good[i][0]), None) for i in repeats]
    messages += [(m, attr) for m, attr in bad]
    order = draw(st.permutations(range(len(messages))))
    batch = [messages[i][0] for i in order]
    expected = {index: messages[i][1] for index, i in enumerate(order) if messages[i][1] is not None}
    rows = {m["messageId"]: count for m, count in good}
    return batch, expected, rows, len(repeats)  # type: ignore[return-value]


@given(case=mixed_batch())
@hypothesis_settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_hostile_messages_never_cost_the_good_ones_their_place(ingest_client, case):
    """The acceptance property of issue 12: hostile messages mixed into batches of good ones (at the
    edges of every limit): never a 5xx, every good message stored exactly once (also when the client
    retries the whole batch, as Segment's libraries do), every bad one named by index and field and
    nothing of it stored."""
    batch, expected, rows, repeats = case
    body = json.dumps({"batch": batch}).replace("Infinity", "1e400")
    bad_ids = [m["messageId"] for i, m in enumerate(batch) if i in expected]
    events_before = Event.objects.count()

    response = ingest_client.post("/api/v1/batch", body, content_type="application/json")

    assert response.status_code == 200, response.content
    answer = response.json()
    named = {error["index"]: error["attr"] for error in answer["errors"]}
    assert set(named) == set(expected), answer["errors"]
    for index, attr in expected.items():
        assert named[index].startswith(f"batch.{index}" + (f".{attr}" if attr else "")), (named[index], attr)
    assert all(error["code"] and error["detail"] for error in answer["errors"])
    assert (answer["accepted"], answer["duplicates"], answer["rejected"]) == (len(rows), repeats, len(expected))
    for message_id, count in rows.items():
        positions = sorted(Event.objects.filter(message_id=message_id).values_list("position", flat=True))
        assert positions == list(range(count)), message_id
    assert Event.objects.count() == events_before + sum(rows.values())
    assert not Event.objects.filter(message_id__in=bad_ids).exists()
    assert not Identity.objects.filter(value__startswith="h-").exists()  # no bad sender became a person

    # The client did not hear the answer and sends the same batch again: nothing new is stored.
    again = ingest_client.post("/api/v1/batch", body, content_type="application/json")

    assert again.status_code == 200, again.content
    retry = again.json()
    assert (retry["accepted"], retry["duplicates"]) == (0, len(rows) + repeats)
    assert retry["errors"] == answer["errors"]
    assert Event.objects.count() == events_before + sum(rows.values())


_any_moment = st.builds(
    lambda moment, minutes: moment.replace(tzinfo=timezone(timedelta(minutes=minutes))),
    st.datetimes(min_value=datetime(1, 1, 1), max_value=datetime(9999, 12, 31, 23, 59, 59)),
    st.integers(-(24 * 60 - 1), 24 * 60 - 1),
)


@given(timestamp=_any_moment, sent_at=st.none() | _any_moment)
def test_any_timestamp_and_sent_at_give_a_time_in_the_window_or_a_named_error(timestamp, sent_at):
    received = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)
    try:
        corrected = event_time(timestamp, sent_at, received)
    except MessageError as error:
        assert error.attr in ("timestamp", "sentAt")
        return
    assert EARLIEST <= corrected <= received + timedelta(minutes=5)
