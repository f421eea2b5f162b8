"""Factories for the experiments tests: people, events, experiments and exposures built directly."""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterable, Sequence
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.utils import timezone

from experiments import services, serving
from experiments.models import Experiment, Exposure, Variant
from profiles.models import Event, Identity, Person

_messages = itertools.count(1)


@pytest.fixture(autouse=True)
def _fresh_experiment_configuration() -> Iterable[None]:
    serving.forget_local_configuration()
    yield
    serving.forget_local_configuration()


def make_people(count: int, prefix: str = "u") -> list[int]:
    """``count`` people, each with a user id ``{prefix}{i}``; returns their ids in order."""
    people = Person.objects.bulk_create([Person() for _ in range(count)])
    Identity.objects.bulk_create(
        [Identity(person=p, kind="user_id", value=f"{prefix}{i}") for i, p in enumerate(people)]
    )
    return [p.pk for p in people]


def event(
    person_id: int,
    kind: str,
    at: datetime,
    name: str = "",
    price: str | float | None = None,
    quantity: int | None = None,
    message_id: str | None = None,
    position: int = 0,
) -> Event:
    return Event(
        message_id=message_id or f"m-{next(_messages)}",
        position=position,
        person_id=person_id,
        kind=kind,
        name=name or kind,
        price=Decimal(str(price)) if price is not None else None,
        quantity=quantity,
        timestamp=at,
        received_at=at,
    )


def expose(experiment: Experiment, variant_key: str, person_ids: Sequence[int], at: datetime) -> None:
    """Exposures written directly (the service's cache gate and consent check are tested elsewhere)."""
    variant = Variant.objects.get(experiment=experiment, key=variant_key)
    experiment.refresh_from_db()
    Exposure.objects.bulk_create(
        [
            Exposure(
                experiment=experiment,
                variant=variant,
                person_id=pid,
                generation=experiment.generation,
                allocation_version=experiment.allocation_version,
                first_exposed_at=at,
            )
            for pid in person_ids
        ]
    )


def ab(weights: Sequence[float] = (1, 1), keys: Sequence[str] = ("control", "treatment")) -> list[services.VariantSpec]:
    return [
        services.VariantSpec(key, key.capitalize(), w, {}, i == 0)
        for i, (key, w) in enumerate(zip(keys, weights, strict=True))
    ]


@pytest.fixture
def staff(db: Any) -> Any:
    return get_user_model().objects.create_user(
        "marketer", "marketer@example.com", "pw-for-tests", is_staff=True, is_superuser=True
    )


@pytest.fixture
def running(db: Any, staff: Any) -> Callable[..., Experiment]:
    """A started experiment; keyword arguments are its settings."""

    def make(key: str = "exp", variants: Sequence[services.VariantSpec] | None = None, **options: Any) -> Experiment:
        options.setdefault("baseline_mean", 0.1)
        experiment = services.create_experiment(key, key.title(), variants or ab(), staff, **options)
        return services.start(experiment, staff)

    return make


@pytest.fixture
def now() -> datetime:
    return timezone.now().replace(microsecond=0)


@pytest.fixture
def days() -> Callable[[float], timedelta]:
    return lambda n: timedelta(days=n)


def surface_with_versions(key: str = "homepage", versions: int = 5) -> None:
    """A surface with versions 1..``versions``, for variant payloads that name one."""
    from personalization.surfaces import change_config, create_surface

    surface = create_surface(key, key.title(), {"size": 10}, by="tests")
    for _ in range(versions - 1):
        change_config(surface, {"size": 10}, by="tests")
