"""Where model artifacts live: a local folder, PostgreSQL, or an object store (``MODEL_STORAGE``).

A fitted engine is a folder of files (``Engine.save``), one per version (``ModelVersion.artifact_dir``).

* ``local`` (the default): folders under ``MODEL_STORAGE_DIR``, read in place. One machine, or
  several that mount the same directory.
* ``database``: the files in PostgreSQL (``ArtifactChunk``, cut into parts), so every machine that
  reaches the database reads them; nothing else to run or back up.
* ``s3``: an S3-compatible object store through django-storages (the ``model_artifacts`` entry of
  ``STORAGES``; bucket, endpoint and prefix from the environment, see the settings).

For the shared stores a folder is written whole before it is visible: its files first, then a
``MANIFEST.json`` naming each file with its size and SHA-256 (in the database, in one transaction).
A process that loads a version copies the folder into a local cache, keyed by the version and the
manifest's id, and loads the engine from there; the copy is made under a temporary name and
renamed, so a half-copied folder is never read, and each file is checked against the manifest.
The cache is a temporary directory of the process unless ``MODEL_CACHE_DIR`` names one that the
processes of a machine share.
"""

from __future__ import annotations

import atexit
import hashlib
import json
import logging
import os
import shutil
import tempfile
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any, BinaryIO

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

logger = logging.getLogger(__name__)

MANIFEST = "MANIFEST.json"
MARKER = "engine.json"  # every engine folder has it (Engine.save)
CACHED_VERSIONS_KEPT = 2  # the version serving and the one before it
KINDS = ("local", "database", "s3")


class ArtifactStore:
    """The operations the registry and training need, whatever holds the files."""

    kind = ""

    @contextmanager
    def new_folder(self, name: str) -> Iterator[Path]:
        """A local folder to write a version's files into; stored under ``name`` when the block ends."""
        with tempfile.TemporaryDirectory(prefix=f"artifacts-{name}-") as tmp:
            yield Path(tmp)
            self.publish(Path(tmp), name)

    def publish(self, folder: Path, name: str) -> None:
        raise NotImplementedError

    def has(self, name: str) -> bool:
        raise NotImplementedError

    def local_folder(self, name: str) -> Path:
        """A local folder holding the version's files; ``FileNotFoundError`` if the store has none."""
        raise NotImplementedError

    def describe(self, name: str) -> str:
        raise NotImplementedError


class LocalStore(ArtifactStore):
    """Folders under ``MODEL_STORAGE_DIR``, read where they are."""

    kind = "local"

    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    @contextmanager
    def new_folder(self, name: str) -> Iterator[Path]:
        # Written beside the final folder, then renamed into place: a reader never sees half of it.
        self.root.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{name}-", dir=self.root))
        try:
            yield tmp
            self._replace(tmp, self.root / name)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)

    def publish(self, folder: Path, name: str) -> None:
        target = self.root / name
        if Path(folder).resolve() == target.resolve():
            return
        self.root.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{name}-", dir=self.root))
        try:
            shutil.copytree(folder, tmp, dirs_exist_ok=True)
            self._replace(tmp, target)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)

    @staticmethod
    def _replace(tmp: Path, target: Path) -> None:
        if target.exists():
            old = target.with_name(f".{target.name}-old-{uuid.uuid4().hex[:8]}")
            target.rename(old)
            tmp.rename(target)
            shutil.rmtree(old, ignore_errors=True)
        else:
            tmp.rename(target)

    def has(self, name: str) -> bool:
        return bool(name) and (self.root / name / MARKER).exists()

    def local_folder(self, name: str) -> Path:
        return self.root / name

    def describe(self, name: str) -> str:
        return str(self.root / name)


class SharedStore(ArtifactStore):
    """A store other machines read too: files written, then the manifest; read through a local cache."""

    def publish(self, folder: Path, name: str) -> None:
        files = sorted(p for p in Path(folder).iterdir() if p.is_file() and p.name != MANIFEST)
        if not any(p.name == MARKER for p in files):
            raise ValueError(f"{folder} holds no {MARKER}: not an engine folder")
        manifest = {"id": uuid.uuid4().hex, "files": {p.name: _describe_file(p) for p in files}}
        self._write_all(name, files, manifest)

    def has(self, name: str) -> bool:
        return bool(name) and self._manifest(name) is not None

    def local_folder(self, name: str) -> Path:
        manifest = self._manifest(name) if name else None
        if manifest is None:
            raise FileNotFoundError(f"{self.describe(name)} holds no model files")
        cache = cache_dir()
        target = cache / f"{name}-{manifest['id'][:16]}"
        if (target / MANIFEST).exists():
            _touch(target)
            return target
        tmp = Path(tempfile.mkdtemp(prefix=f".{name}-", dir=cache))
        try:
            for file, expected in manifest["files"].items():
                with open(tmp / file, "wb") as out:
                    self._read_file(name, file, out)
                if _describe_file(tmp / file) != expected:
                    raise ValueError(f"{self.describe(name)}/{file} does not match its manifest")
            (tmp / MANIFEST).write_text(json.dumps(manifest), encoding="utf-8")
            try:
                tmp.rename(target)
            except OSError:
                if not (target / MANIFEST).exists():  # another process of this machine got there first
                    raise
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        _prune(cache, keep=target)
        return target

    def _manifest(self, name: str) -> dict[str, Any] | None:
        raise NotImplementedError

    def _write_all(self, name: str, files: list[Path], manifest: dict[str, Any]) -> None:
        raise NotImplementedError

    def _read_file(self, name: str, file: str, out: BinaryIO) -> None:
        raise NotImplementedError


class DatabaseStore(SharedStore):
    """The files in PostgreSQL (``ArtifactChunk``), cut into parts of ``chunk_bytes``."""

    kind = "database"

    def __init__(self, chunk_bytes: int) -> None:
        self.chunk_bytes = chunk_bytes

    def _write_all(self, name: str, files: list[Path], manifest: dict[str, Any]) -> None:
        from django.db import transaction

        from personalization.models import ArtifactChunk

        with transaction.atomic():
            ArtifactChunk.objects.filter(folder=name).delete()
            for path in files:
                with open(path, "rb") as handle:
                    part = 0
                    while True:
                        data = handle.read(self.chunk_bytes)
                        if not data and part:
                            break
                        ArtifactChunk.objects.create(folder=name, file=path.name, part=part, data=data)
                        part += 1
                        if len(data) < self.chunk_bytes:
                            break
            ArtifactChunk.objects.create(folder=name, file=MANIFEST, part=0, data=json.dumps(manifest).encode())

    def _manifest(self, name: str) -> dict[str, Any] | None:
        from personalization.models import ArtifactChunk

        data = ArtifactChunk.objects.filter(folder=name, file=MANIFEST, part=0).values_list("data", flat=True).first()
        return json.loads(bytes(data)) if data is not None else None

    def _read_file(self, name: str, file: str, out: BinaryIO) -> None:
        from personalization.models import ArtifactChunk

        # One part at a time: a file of any size never needs more memory than a part.
        parts = ArtifactChunk.objects.filter(folder=name, file=file).order_by("part").values_list("pk", flat=True)
        for pk in list(parts):
            data = ArtifactChunk.objects.filter(pk=pk).values_list("data", flat=True).get()
            out.write(bytes(data))

    def describe(self, name: str) -> str:
        return f"the database's model artifacts {name}"


class StorageBackendStore(SharedStore):
    """Any Django storage (``STORAGES[alias]``): an S3-compatible object store through django-storages."""

    kind = "s3"

    def __init__(self, alias: str) -> None:
        from django.core.files.storage import storages

        self.alias = alias
        self.storage = storages[alias]

    def _write_all(self, name: str, files: list[Path], manifest: dict[str, Any]) -> None:
        from django.core.files import File
        from django.core.files.base import ContentFile

        for path in files:
            with open(path, "rb") as handle:
                self._save(f"{name}/{path.name}", File(handle))
        # Last: until the manifest is there, the folder does not exist for a reader.
        self._save(f"{name}/{MANIFEST}", ContentFile(json.dumps(manifest).encode()))

    def _save(self, key: str, content: Any) -> None:
        if self.storage.exists(key):  # a storage that does not overwrite would pick another name
            self.storage.delete(key)
        saved = self.storage.save(key, content)
        if saved != key:
            raise ImproperlyConfigured(f"the model artifact storage saved {key} as {saved}; let it overwrite")

    def _manifest(self, name: str) -> dict[str, Any] | None:
        key = f"{name}/{MANIFEST}"
        if not self.storage.exists(key):
            return None
        with self.storage.open(key, "rb") as handle:
            return json.loads(handle.read())

    def _read_file(self, name: str, file: str, out: BinaryIO) -> None:
        with self.storage.open(f"{name}/{file}", "rb") as handle:
            shutil.copyfileobj(handle, out, 1024 * 1024)

    def describe(self, name: str) -> str:
        return f"the {self.alias} storage's {name}"


def store() -> ArtifactStore:
    """The store the settings name (read on each call: tests change the settings)."""
    kind = getattr(settings, "MODEL_STORAGE", "local")
    if kind == "local":
        return LocalStore(Path(settings.MODEL_STORAGE_DIR))
    if kind == "database":
        return DatabaseStore(int(settings.MODEL_STORAGE_CHUNK_BYTES))
    if kind == "s3":
        return StorageBackendStore("model_artifacts")
    raise ImproperlyConfigured(f"Unexpected value MODEL_STORAGE={kind}, use one of {', '.join(KINDS)}")


# --- the local cache of a shared store -------------------------------------------------------------

_cache_lock = threading.Lock()
_process_cache: Path | None = None


def cache_dir() -> Path:
    """``MODEL_CACHE_DIR`` if set (the processes of a machine may share it), else a directory of
    this process, removed when it exits."""
    global _process_cache
    configured = getattr(settings, "MODEL_CACHE_DIR", None)
    if configured:
        path = Path(configured)
        path.mkdir(parents=True, exist_ok=True)
        return path
    with _cache_lock:
        if _process_cache is None or not _process_cache.exists():
            _process_cache = Path(tempfile.mkdtemp(prefix=f"pe-models-{os.getpid()}-"))
            atexit.register(shutil.rmtree, _process_cache, True)
        return _process_cache


def _touch(folder: Path) -> None:
    with suppress(OSError):
        os.utime(folder)


def _prune(cache: Path, keep: Path) -> None:
    """Keep the versions used last; an engine already loaded holds its arrays in memory."""
    _touch(keep)
    folders = [p for p in cache.iterdir() if p.is_dir() and not p.name.startswith(".")]
    folders.sort(key=lambda p: p.stat().st_mtime, reverse=True)
    for old in folders[CACHED_VERSIONS_KEPT:]:
        if old != keep:
            shutil.rmtree(old, ignore_errors=True)


def _describe_file(path: Path) -> dict[str, Any]:
    digest = hashlib.sha256()
    size = 0
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1024 * 1024), b""):
            digest.update(block)
            size += len(block)
    return {"size": size, "sha256": digest.hexdigest()}
