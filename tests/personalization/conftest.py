from __future__ import annotations

import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from django.utils import timezone

from personalization import model_storage as storage
from personalization import registry
from personalization.models import ModelVersion, VersionStatus


@pytest.fixture
def model_storage(settings, tmp_path: Path) -> Iterator[Path]:
    """Model versions written under this test's own folder, and no engine left loaded either side."""
    settings.MODEL_STORAGE_DIR = tmp_path
    registry.forget_loaded_engine()
    yield tmp_path
    registry.forget_loaded_engine()


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
