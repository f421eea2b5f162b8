from __future__ import annotations

from unittest import mock

import pytest
from django.core.cache import cache

from personalization.api.throttling import PrincipalRateThrottle
from profiles.models import Event
from tests.conftest import track


def test_throttled_requests_get_the_error_shape(ingest_client):
    rates = {**PrincipalRateThrottle.THROTTLE_RATES, "ingest": "2/min"}
    with mock.patch.object(PrincipalRateThrottle, "THROTTLE_RATES", rates):
        cache.clear()
        codes = [ingest_client.post("/api/v1/track", track("Signed Up", user="u1")).status_code for _ in range(3)]
        response = ingest_client.post("/api/v1/track", track("Signed Up", user="u1"))
    assert codes == [200, 200, 429]
    assert response.json()["type"] == "throttled_error"
    # Two requests this minute at 2/min: the next fits half-way into the next minute at the latest.
    assert 1 <= int(response["Retry-After"]) <= 90
    assert Event.objects.count() == 2


def test_an_unexpected_failure_answers_500_in_the_error_shape_and_stores_nothing(ingest_client):
    with mock.patch("profiles.ingestion.resolve_people", side_effect=RuntimeError("disk on fire")):
        response = ingest_client.post("/api/v1/track", track("Signed Up", user="u1"))
    assert response.status_code == 500
    assert response.json() == {
        "type": "server_error",
        "code": "error",
        "detail": "A server error occurred; it has been logged.",
        "attr": None,
    }
    assert Event.objects.count() == 0


def test_unauthenticated_requests_are_refused_in_the_error_shape(client):
    response = client.post("/api/v1/track", {"userId": "u", "event": "x"}, content_type="application/json")
    assert response.status_code == 401
    assert set(response.json()) == {"type", "code", "detail", "attr"}


def test_retry_after_is_when_the_sliding_estimate_lets_the_next_request_in():
    from personalization.api.throttling import _seconds_until_allowed

    # 10 a minute, 10 already this minute, 20 s in: in the next minute these 10 count for the
    # share of it still to come, and the next request fits once they weigh 9 or less: 6 s into it.
    assert _seconds_until_allowed(10, 60, 20.0, 10, 0) == pytest.approx(46.0)
    # 5 this minute and 10 the minute before, 30 s in: fits once the old 10 weigh 4 (36 s in).
    assert _seconds_until_allowed(10, 60, 30.0, 5, 10) == pytest.approx(6.0)
