"""Who is in a saved segment: a segment's rule (a campaign audience rule) evaluated for a person,
as the workers' segment branches and the one-person test run both read it, and since when the
audience trigger has counted them in (``SegmentMember``, kept for segments a live journey uses)."""

from __future__ import annotations

from datetime import datetime

from campaigns import people as campaign_people
from campaigns.rules import parse_rule
from journeys.models import Segment, SegmentMember


def segments_holding(person_id: int, keys: list[str] | set[str], now: datetime | None = None) -> frozenset[str]:
    """The keys among ``keys`` of the saved segments the person is in now (an unknown key: not in)."""
    inside = set()
    for segment in Segment.objects.filter(key__in=sorted(set(keys))).order_by("key"):
        rule = parse_rule(segment.rule, "rule")
        if campaign_people.audience(rule, now).filter(pk=person_id).exists():
            inside.add(segment.key)
    return frozenset(inside)


def member_since(person_id: int, keys: list[str] | set[str]) -> dict[str, datetime]:
    """Segment key → when the audience trigger's last check found the person come into it."""
    return dict(
        SegmentMember.objects.filter(person_id=person_id, segment__key__in=sorted(set(keys))).values_list(
            "segment__key", "since"
        )
    )
