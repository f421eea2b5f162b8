"""Consent per person and purpose, with full history. Checked where data is used."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from profiles.models import Consent, ConsentChange, Purpose


@dataclass(frozen=True, slots=True)
class ConsentState:
    purpose: str
    granted: bool
    source: str
    updated_at: datetime | None  # None: nobody said anything, the default holds


def has_consent(person_id: int | None, purpose: str) -> bool:
    default = settings.CONSENT_DEFAULTS[purpose]
    if person_id is None:
        return default
    granted = Consent.objects.filter(person_id=person_id, purpose=purpose).values_list("granted", flat=True).first()
    return default if granted is None else granted


def consent_states(person_id: int) -> list[ConsentState]:
    current = {c.purpose: c for c in Consent.objects.filter(person_id=person_id)}
    states = []
    for purpose in Purpose.values:
        row = current.get(purpose)
        if row is None:
            states.append(ConsentState(purpose, settings.CONSENT_DEFAULTS[purpose], "default", None))
        else:
            states.append(ConsentState(purpose, row.granted, row.source, row.updated_at))
    return states


@transaction.atomic
def record_consent(
    person_id: int,
    purpose: str,
    granted: bool,
    source: str = "",
    recorded_by: str = "",
    at: datetime | None = None,
) -> ConsentState:
    if purpose not in Purpose.values:
        raise ValueError(f"Unknown purpose {purpose!r}.")
    at = at or timezone.now()
    ConsentChange.objects.create(
        person_id=person_id, purpose=purpose, granted=granted, source=source, recorded_at=at, recorded_by=recorded_by
    )
    Consent.objects.update_or_create(
        person_id=person_id, purpose=purpose, defaults={"granted": granted, "source": source, "updated_at": at}
    )
    return ConsentState(purpose, granted, source, at)
