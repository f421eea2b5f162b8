"""Model versions: which one serves, switching atomically, rollback to any earlier version.

Web and worker processes keep the active engine in memory and look up which version is active
at most every ``CHECK_SECONDS``; a new activation is picked up by every process within that time.
The files come from the model storage (``personalization.model_storage``: a local folder, the
database or an object store), so processes on several machines serve the same version.
"""

from __future__ import annotations

import gc
import logging
import threading
import time
from pathlib import Path

from django.core.cache import cache
from django.db import transaction
from django.utils import timezone

from personalization import audit, model_storage
from personalization.engine.engine import Engine
from personalization.models import ModelVersion, VersionStatus

ACTIVE_KEY = "registry:active-version:v1"
logger = logging.getLogger(__name__)

CHECK_SECONDS = 2.0


class ActivationRefused(Exception):
    pass


def artifact_path(version: ModelVersion) -> Path:
    """A local folder holding the version's files (from a shared storage: this process's copy of
    them); ``FileNotFoundError`` when the storage has none."""
    return model_storage.store().local_folder(version.artifact_dir)


def has_artifacts(version: ModelVersion) -> bool:
    return model_storage.store().has(version.artifact_dir)


def active_version() -> ModelVersion | None:
    return ModelVersion.objects.filter(status=VersionStatus.ACTIVE).first()


@transaction.atomic
def activate(version: ModelVersion, by: str) -> ModelVersion:
    """Make ``version`` the one that serves; the previous active one is retired. Also a rollback."""
    if version.status not in (VersionStatus.READY, VersionStatus.RETIRED, VersionStatus.ACTIVE):
        raise ActivationRefused(f"Version {version.pk} is {version.get_status_display().lower()}; it cannot serve.")
    if not has_artifacts(version):
        where = model_storage.store().describe(version.artifact_dir)
        raise ActivationRefused(f"Version {version.pk} has no artifacts at {where}.")
    previous = active_version()
    ModelVersion.objects.filter(status=VersionStatus.ACTIVE).exclude(pk=version.pk).update(status=VersionStatus.RETIRED)
    ModelVersion.objects.filter(pk=version.pk).update(
        status=VersionStatus.ACTIVE, activated_at=timezone.now(), activated_by=by
    )
    rolled_back = previous is not None and previous.pk > version.pk
    holdout = (version.metrics or {}).get("holdout") or {}
    audit.record(
        "models",
        "rolled back" if rolled_back else "activated",
        f"Model v{version.pk}",
        by=by,
        target_id=version.pk,
        before={"active version": previous.pk if previous else None},
        after={
            "active version": version.pk,
            "hold-out NDCG": holdout.get("ndcg"),
        },
    )
    transaction.on_commit(lambda: cache.set(ACTIVE_KEY, version.pk, None))
    version.refresh_from_db()
    return version


class _Loaded:
    """The engine this process serves with, reloaded when another version becomes active."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.version_id: int | None = None
        self.engine: Engine | None = None
        self.checked_at = 0.0
        # Why the active version is not the one serving (its files are missing or unreadable), or "".
        self.problem = ""

    def current(self) -> tuple[int | None, Engine | None]:
        now = time.monotonic()
        if now - self.checked_at < CHECK_SECONDS:
            return self.version_id, self.engine
        with self.lock:
            if now - self.checked_at < CHECK_SECONDS:
                return self.version_id, self.engine
            wanted = cache.get(ACTIVE_KEY)
            if wanted is None:
                version = active_version()
                wanted = version.pk if version else 0
                cache.set(ACTIVE_KEY, wanted, None)
            if wanted != (self.version_id or 0):
                try:
                    self._load(wanted)
                    self.problem = ""
                except Exception as exc:
                    # Never a 500 for this: serve what this process holds (or the fallback), say why,
                    # and try again at the next check.
                    missing = isinstance(exc, FileNotFoundError)
                    self.problem = f"model files of version {wanted} {'missing' if missing else 'unreadable'}"
                    logger.error("Cannot load model version %s: %s", wanted, exc)
            self.checked_at = now
            return self.version_id, self.engine

    def _load(self, version_id: int) -> None:
        if not version_id:
            self.version_id, self.engine = None, None
            return
        version = ModelVersion.objects.filter(pk=version_id).first()
        if version is None:
            return
        engine = Engine.load(artifact_path(version))
        engine.ranker.compile()
        # Swap both at once: a request sees the old pair or the new pair, never a mix.
        self.version_id, self.engine = version_id, engine
        settle_heap()

    def forget(self) -> None:
        with self.lock:
            self.version_id, self.engine, self.checked_at, self.problem = None, None, 0.0, ""


def settle_heap() -> None:
    """Move what is loaded now (the engine's item index, the catalogue arrays) out of the garbage
    collector's sight: its full passes otherwise walk every one of those objects again, a pause
    in whichever request happens to trigger it."""
    gc.collect()
    gc.freeze()


_loaded = _Loaded()


def serving_engine() -> tuple[int | None, Engine | None]:
    """(version id, engine) this process should serve with; (None, None) before any training."""
    return _loaded.current()


def serving_problem() -> str:
    """Why this process does not serve with the active version (its files could not be loaded), or ""."""
    return _loaded.problem


def forget_loaded_engine() -> None:
    """Drop the in-process engine (tests, or after deleting artifacts)."""
    _loaded.forget()
    cache.delete(ACTIVE_KEY)
