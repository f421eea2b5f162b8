"""The OpenAPI schema holds for what the API really answers: a schema-driven fuzzer over every operation.

Schemathesis generates requests from the schema drf-spectacular writes and sends them to the Django
application in-process (WSGI), against the real PostgreSQL and Redis, with a secret key (and, for
the operations the browser-safe ingest key may call, with that key too). Every answer must be no
server error, a documented status, of a documented content type, and in the documented shape.
The run is bounded and derandomized, so it is the same run every time.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
import schemathesis
from django.contrib.auth.models import User
from django.core.signals import request_finished, request_started
from django.core.wsgi import get_wsgi_application
from django.db import close_old_connections
from drf_spectacular.generators import SchemaGenerator
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from campaigns.models import ApprovalPolicy, Message
from catalog.models import Item
from experiments import services as experiments
from journeys import services as journeys
from personalization.models import ApiKey, KeyScope
from personalization.surfaces import create_surface
from tests.campaigns.conftest import account, launch_and_prepare, make_campaign, person

CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]
EXAMPLES = 12


def _api_schema() -> dict[str, Any]:
    # Round-tripped through JSON, as the schema endpoint serves it (lazy strings become strings).
    return json.loads(json.dumps(SchemaGenerator().get_schema(request=None, public=True), default=str))


schema = schemathesis.openapi.from_dict(_api_schema())
schema.app = get_wsgi_application()
api = schema.include(path_regex=r"^/api/v1/")
# What the browser-safe key may call: events, and recommendations for the visitor in front of it.
ingest_operations = schema.include(path_regex=r"^/api/v1/(batch|track|identify|page|surfaces/|recommendations)")

FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.filter_too_much],
)


@dataclass
class World:
    secret_raw: str
    ingest_raw: str
    message_id: int


def build_world() -> World:
    """A little of everything the paths name: an item, people, a surface, campaigns, experiments, a message."""
    _, secret_raw = ApiKey.issue("fuzz secret", KeyScope.SECRET)
    _, ingest_raw = ApiKey.issue("fuzz ingest", KeyScope.INGEST)
    owner = User.objects.create(username="mara")  # no password to hash: the keys authenticate
    Item.objects.create(external_id="sku-1", title="Kettle", price="19.90", stock=5)
    ann = person("ann", first_name="Ann", account_id="acme", company="Acme")
    person("gus", first_name="Gus", account_id="globex", company="Globex")
    account("acme", name="Acme")
    create_surface("homepage", "Homepage", {"size": 4}, by="tests")
    spring = launch_and_prepare(make_campaign("spring", name="Spring", approval_policy=ApprovalPolicy.ALL))
    make_campaign("draft", name="Draft")
    exit_only = {"trigger": {"type": "event", "event": "Signed Up"}, "steps": [{"id": "out", "type": "exit"}]}
    journeys.create_journey("draft-journey", "Draft journey", exit_only)
    journeys.launch(journeys.create_journey("live-journey", "Live journey", exit_only))
    variants = [
        experiments.VariantSpec("control", "Control", 1.0, {}, True),
        experiments.VariantSpec("treatment", "Treatment", 1.0, {}, False),
    ]
    experiments.start(experiments.create_experiment("exp", "Exp", variants, owner, baseline_mean=0.1), owner)
    experiments.create_experiment("draft-exp", "Draft exp", variants, owner, baseline_mean=0.1)
    message = Message.objects.get(campaign=spring, person=ann)
    return World(secret_raw, ingest_raw, message.pk)


@pytest.fixture
def world(db: Any, settings: Any) -> Iterator[World]:
    settings.ALLOWED_HOSTS = [*settings.ALLOWED_HOSTS, "localhost"]  # the WSGI client's host
    settings.SURFACE_IMPRESSIONS_INLINE = True  # no writer thread outside the test's transaction
    settings.REST_FRAMEWORK = {
        **settings.REST_FRAMEWORK,
        "DEFAULT_THROTTLE_RATES": {"principal": "100000/min", "ingest": "100000/min"},
    }
    # As Django's own test client does: the request must not close the test's connection (and transaction).
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    try:
        yield build_world()
    finally:
        request_started.connect(close_old_connections)
        request_finished.connect(close_old_connections)


# Real objects for the path parameters, so that an operation is exercised beyond its 404.
KNOWN = {
    "key": ("spring", "draft", "exp", "draft-exp", "homepage", "draft-journey", "live-journey"),
    "person_key": ("ann", "gus", "ann@example.com"),
    "external_id": ("sku-1",),
}


def _aim_at_real_objects(case: Any, world: World) -> None:
    for name, value in list((case.path_parameters or {}).items()):
        choices = (str(world.message_id),) if name == "id" else KNOWN.get(name, ())
        text = str(value)
        if choices and len(text) % 2 == 0:  # a deterministic half of the cases hit a real object
            case.path_parameters[name] = choices[len(text) % len(choices)]


@api.parametrize()
@FUZZ
def test_every_operation_answers_as_documented_with_a_secret_key(case: Any, world: World) -> None:
    _aim_at_real_objects(case, world)
    case.call_and_validate(headers={"Authorization": f"Bearer {world.secret_raw}"}, checks=CHECKS)


@ingest_operations.parametrize()
@FUZZ
def test_ingest_key_operations_answer_as_documented(case: Any, world: World) -> None:
    _aim_at_real_objects(case, world)
    case.call_and_validate(headers={"Authorization": f"Bearer {world.ingest_raw}"}, checks=CHECKS)
