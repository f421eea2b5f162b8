"""Query serializers copy their fields shallowly: each request still validates on its own."""

from __future__ import annotations

from django.http import QueryDict

from personalization.api.surface_serializers import SurfaceQuerySerializer, SurfaceRequestSerializer


def test_each_query_is_validated_on_its_own_fields() -> None:
    first = SurfaceQuerySerializer(data=QueryDict("person=%20u1%20&limit=5"))
    refused = SurfaceQuerySerializer(data=QueryDict(f"limit=0&person_token={'x' * 201}"))
    assert first.is_valid() and first.validated_data == {"person": "u1", "limit": 5}
    assert not refused.is_valid()
    assert set(refused.errors) == {"limit", "person_token"}
    # Binding one request's copies leaves the declared fields and the other request's copies alone.
    assert first.fields["limit"] is not refused.fields["limit"]
    assert first.fields["limit"].parent is first and refused.fields["limit"].parent is refused
    assert SurfaceQuerySerializer._declared_fields["limit"].parent is None
    again = SurfaceQuerySerializer(data=QueryDict("person=u2"))
    assert again.is_valid() and again.validated_data == {"person": "u2"}


def test_a_body_with_lists_and_nested_events_keeps_its_own_deep_copies() -> None:
    body = SurfaceRequestSerializer(data={"cart": ["a"], "recent_events": [{"item_id": "x"}], "person": "u1"})
    other = SurfaceRequestSerializer(data={"recent_events": [{"type": "bought", "item_id": "y"}]})
    assert body.is_valid(), body.errors
    assert body.validated_data["recent_events"] == [{"type": "view", "item_id": "x"}]
    assert not other.is_valid() and "recent_events" in other.errors
    assert body.fields["recent_events"].child is not other.fields["recent_events"].child  # type: ignore[attr-defined]
