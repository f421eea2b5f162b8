from __future__ import annotations

import itertools
import shutil
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from django.core.cache import cache
from django.utils import timezone
from rest_framework.test import APIClient

from catalog.models import Item
from personalization import model_storage as storage
from personalization import registry
from personalization.models import ApiKey, KeyScope, ModelVersion, VersionStatus

_ids = itertools.count(1)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    # Schemathesis names each operation's case of a test (``test_…[GET /api/v1/…]``), but pytest 9 gives
    # them all the test's node id; pytest-xdist hands tests out by node id, and would run one case of each.
    ids = Counter(item.nodeid for item in items)
    for item in items:
        if ids[item.nodeid] > 1 and item.parent is not None:
            item._id = type(item.id).parse(f"{item.parent.nodeid}::{item.name}")


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config: pytest.Config, log: Any) -> Any:
    """``--dist loadfile`` (``make test``) keeps Django's order of the tests in each worker (tests/scheduling.py)."""
    if config.getvalue("dist") != "loadfile":
        return None
    from tests.scheduling import FileRunsInOrder

    return FileRunsInOrder(config, log)


@pytest.fixture(autouse=True)
def _no_hot_profile(settings: Any) -> None:
    # The hot profile follows changes once their transaction commits, and a test's transaction never
    # does: tests of it turn it on and run the commit callbacks (tests/profiles/test_hot_profile.py).
    settings.HOT_PROFILE_SECONDS = 0


@pytest.fixture(autouse=True)
def _roles_after_a_flush(request: pytest.FixtureRequest) -> None:
    # The roles are rows a migration writes; a transactional test ends by emptying every table, so
    # the ones after it would find no roles. Give them back to each transactional test (ordinary
    # tests roll back and keep them).
    if not ({"transactional_db", "live_server"} & set(request.fixturenames)):
        return
    request.getfixturevalue("transactional_db")
    from django.contrib.auth.models import Group, Permission

    from personalization.roles import ensure_roles

    ensure_roles(Group, Permission)


@pytest.fixture(autouse=True)
def _clear_cache() -> None:
    # The shared cache, and what each process keeps of the database for a few seconds: a test must
    # not see the surfaces or keys of one whose rows were rolled back.
    from personalization import shared_cache
    from personalization.api.authentication import forget_keys
    from personalization.api.throttling import forget_leases
    from personalization.surfaces import forget_live_surfaces
    from profiles import outbox

    # A test that made Redis or the broker unreachable must not leave the next one working without them.
    shared_cache.forget_outages()
    outbox.forget_outages()
    cache.clear()
    forget_leases()
    forget_live_surfaces()
    forget_keys()


@pytest.fixture
def secret_client(db: Any) -> APIClient:
    _, raw = ApiKey.issue("tests", KeyScope.SECRET)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")
    return client


@pytest.fixture
def ingest_client(db: Any) -> APIClient:
    key, raw = ApiKey.issue("tests ingest", KeyScope.INGEST)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")
    client.api_key = key  # type: ignore[attr-defined]  # for person_token()
    return client


def person_token(client: APIClient, user_id: str, lifetime: int = 3600) -> str:
    """What the shop's backend gives its page for a signed-in visitor (identity verification)."""
    from personalization.api.person_tokens import sign

    return sign(client.api_key.identity_secret, user_id, int(time.time()) + lifetime)  # type: ignore[attr-defined]


@pytest.fixture
def make_item(db: Any) -> Callable[..., Item]:
    def make(external_id: str | None = None, **fields: Any) -> Item:
        n = next(_ids)
        defaults: dict[str, Any] = {
            "title": f"Item {n}",
            "category": "Home > Kitchen",
            "brand": "Acme",
            "price": "10.00",
            "stock": 5,
        }
        return Item.objects.create(external_id=external_id or f"sku-{n}", **{**defaults, **fields})

    return make


def track(event: str, user: str | None = None, anon: str | None = None, **extra: Any) -> dict[str, Any]:
    message: dict[str, Any] = {"type": "track", "event": event, "messageId": f"m-{next(_ids)}"}
    if user:
        message["userId"] = user
    if anon:
        message["anonymousId"] = anon
    message.update(extra)
    return message


# The first fit of the demo store (``seed_demo --people 150 --days 60``, no version active before):
# its files and the records the training task wrote, kept for the rest of the session.
_first_fit: dict[str, Any] = {}


@pytest.fixture(scope="session")
def _first_fit_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("demo-first-fit")


@pytest.fixture
def demo_first_fit(db: Any, _first_fit_folder: Path) -> Callable[[], ModelVersion]:
    """Activates the demo store's first fit in this test's model storage, as the training task does.

    Call it after seeding the demo store with 150 people over 60 days (the seed is fixed, so every
    test's store is the same one). The first call of the session trains it through the training task;
    later calls give a new version row the same files and records (what it read, its hold-out
    scores, what it chose) and activate it: the same model for serving, without fitting it again.
    Tests of the training itself (the gate, a second version, a fit on other data) train for real.
    """

    def activate() -> ModelVersion:
        from personalization.tasks import train_engine

        assert registry.active_version() is None, "the first fit is made with no version active"
        version = ModelVersion.objects.create(requested_by="tests")
        if not _first_fit:
            train_engine.apply(args=[version.pk])
            version.refresh_from_db()
            assert version.status == VersionStatus.ACTIVE, version.error
            files = _first_fit_folder / "files"
            shutil.copytree(registry.artifact_path(version), files)
            _first_fit.update(files=files, metrics=version.metrics, training=version.training)
            return version
        version.artifact_dir = f"v{version.pk}"
        with storage.store().new_folder(version.artifact_dir) as written:
            shutil.copytree(_first_fit["files"], written, dirs_exist_ok=True)
        version.metrics, version.training = _first_fit["metrics"], _first_fit["training"]
        version.status, version.progress, version.stage = VersionStatus.READY, 100, "done"
        version.trained_at = timezone.now()
        version.save()
        return registry.activate(version, by=version.requested_by)

    return activate
