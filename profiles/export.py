"""What is held about a person: a summary for support, and the whole of it as streamed JSON.

Both cover the person and everyone merged into them, over the same map erasure walks
(``profiles.person_data``): every table with rows that cascade from ``Person`` and every field that
holds a person's id without a foreign key. The export is written table by table from server-side
cursors, so a person with millions of events is exported in constant memory.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import asdict
from datetime import datetime
from typing import Any

from django.core.serializers.json import DjangoJSONEncoder
from django.db.models import Max
from django.utils import timezone

from profiles.consent import consent_states
from profiles.models import Event, Identity, Person, Profile
from profiles.person_data import all_person_tables, people_of

_encoder = DjangoJSONEncoder(ensure_ascii=False, separators=(",", ":"))
CHUNK_ROWS = 2000


def _profile(person_id: int) -> dict[str, Any] | None:
    stored = Profile.objects.filter(person_id=person_id).first()
    if stored is None:
        return None
    return {
        "event_counts": stored.event_counts,
        "last_seen_at": stored.last_seen_at,
        "category_affinity": stored.category_affinity,
        "brand_affinity": stored.brand_affinity,
        "price_band": stored.price_band,
        "typical_price": float(stored.typical_price) if stored.typical_price is not None else None,
        "computed_at": stored.computed_at,
    }


def person_summary(person: Person) -> dict[str, Any]:
    """What a support agent needs: who, what they agreed to, how much we hold, when last seen."""
    person_ids = people_of(person.pk)
    counts = {}
    for table in all_person_tables()[1:]:
        counts[table.label] = table.rows_of(person_ids).count()
    last_event: datetime | None = Event.objects.filter(person_id__in=person_ids).aggregate(at=Max("timestamp"))["at"]
    return {
        "person_id": person.pk,
        "merged_people": len(person_ids) - 1,
        "created_at": person.created_at,
        "identities": list(
            Identity.objects.filter(person_id__in=person_ids)
            .order_by("created_at", "id")
            .values("kind", "value", "created_at")
        ),
        "traits": person.traits or {},
        "consents": [asdict(state) for state in consent_states(person.pk)],
        "counts": counts,
        "last_seen_at": last_event,
        "profile": _profile(person.pk),
    }


def export_person(person: Person) -> Iterator[str]:
    """Everything held about the person and everyone merged into them, as pieces of one JSON document:
    ``{"exported_at", "person_id", "people", "summary", "tables": {"app.Model": [rows…]}}``."""
    person_ids = people_of(person.pk)
    yield "{"
    yield f'"exported_at":{_encoder.encode(timezone.now())},'
    yield f'"person_id":{person.pk},"people":{_encoder.encode(person_ids)},'
    yield f'"summary":{_encoder.encode(person_summary(person))},'
    yield '"tables":{'
    for n, table in enumerate(all_person_tables()):
        yield ("," if n else "") + f"{_encoder.encode(table.label)}:["
        rows = table.rows_of(person_ids).order_by("pk").values().iterator(chunk_size=CHUNK_ROWS)
        buffer: list[str] = []
        first = True
        for row in rows:
            buffer.append(_encoder.encode(row))
            if len(buffer) >= CHUNK_ROWS:
                yield ("" if first else ",") + ",".join(buffer)
                first, buffer = False, []
        if buffer:
            yield ("" if first else ",") + ",".join(buffer)
        yield "]"
    yield "}}"
