"""The model storage (personalization/model_storage.py): a version's files written whole, read back
byte for byte through each process's cache, in the database and in any Django storage (the code
path of the S3 store, with a folder standing in for the bucket)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from django.core.exceptions import ImproperlyConfigured

from personalization import model_storage, registry
from personalization.models import ArtifactChunk, ModelVersion, VersionStatus

ROOT = Path(__file__).resolve().parents[2]


def write_engine_like_folder(folder: Path, seed: int = 1) -> dict[str, bytes]:
    """Files like an engine's: a JSON marker, a binary array, an empty file."""
    folder.mkdir(parents=True, exist_ok=True)
    np.save(folder / "vectors.npy", np.random.default_rng(seed).random((300, 16), dtype=np.float32))
    (folder / "engine.json").write_text(f'{{"format": 2, "seed": {seed}}}')
    (folder / "empty.json").write_bytes(b"")
    return {p.name: p.read_bytes() for p in folder.iterdir()}


@pytest.fixture
def database_storage(settings, tmp_path: Path) -> model_storage.ArtifactStore:
    settings.MODEL_STORAGE = "database"
    settings.MODEL_STORAGE_CHUNK_BYTES = 4096  # the 19 kB array goes in five parts
    settings.MODEL_CACHE_DIR = str(tmp_path / "cache")
    settings.MODEL_STORAGE_DIR = tmp_path / "no-local-folder"
    return model_storage.store()


@pytest.fixture
def backend_storage(settings, tmp_path: Path) -> model_storage.ArtifactStore:
    settings.MODEL_STORAGE = "s3"
    settings.STORAGES = {
        **settings.STORAGES,
        "model_artifacts": {
            "BACKEND": "django.core.files.storage.FileSystemStorage",
            "OPTIONS": {"location": str(tmp_path / "bucket")},
        },
    }
    settings.MODEL_CACHE_DIR = str(tmp_path / "cache")
    return model_storage.store()


@pytest.mark.django_db
def test_the_database_keeps_a_version_in_parts_and_gives_it_back_byte_for_byte(database_storage, tmp_path):
    files = write_engine_like_folder(tmp_path / "fitted")
    with database_storage.new_folder("v7") as folder:
        write_engine_like_folder(folder)

    assert ArtifactChunk.objects.filter(folder="v7", file="vectors.npy").count() == 5
    assert database_storage.has("v7") and not database_storage.has("v8")
    assert not (tmp_path / "no-local-folder").exists()

    local = database_storage.local_folder("v7")
    assert local.parent == tmp_path / "cache"
    assert {p.name: p.read_bytes() for p in local.iterdir() if p.name != "MANIFEST.json"} == files


@pytest.mark.django_db
def test_a_version_is_copied_once_per_process_cache(database_storage, django_assert_num_queries, tmp_path):
    with database_storage.new_folder("v1") as folder:
        write_engine_like_folder(folder)
    first = database_storage.local_folder("v1")
    with django_assert_num_queries(1):  # the manifest only: the files are in the cache
        assert database_storage.local_folder("v1") == first


@pytest.mark.django_db
def test_a_republished_folder_is_read_anew_and_old_copies_are_pruned(database_storage, tmp_path):
    for seed in (1, 2, 3):
        with database_storage.new_folder("v1") as folder:
            write_engine_like_folder(folder, seed=seed)
        local = database_storage.local_folder("v1")
        assert f'"seed": {seed}' in (local / "engine.json").read_text()
    kept = [p for p in (tmp_path / "cache").iterdir() if not p.name.startswith(".")]
    assert len(kept) == model_storage.CACHED_VERSIONS_KEPT


@pytest.mark.django_db
def test_a_damaged_part_is_refused_and_a_missing_version_is_reported_missing(database_storage):
    with database_storage.new_folder("v3") as folder:
        write_engine_like_folder(folder)
    ArtifactChunk.objects.filter(folder="v3", file="vectors.npy", part=2).update(data=b"\0" * 4096)
    with pytest.raises(ValueError, match="does not match its manifest"):
        database_storage.local_folder("v3")
    assert not any(p.name.startswith("v3") for p in model_storage.cache_dir().iterdir())
    with pytest.raises(FileNotFoundError):
        database_storage.local_folder("v4")


@pytest.mark.django_db
def test_a_folder_that_fails_while_written_never_appears(database_storage):
    with pytest.raises(RuntimeError), database_storage.new_folder("v5") as folder:
        write_engine_like_folder(folder)
        raise RuntimeError("the fit failed")
    assert not database_storage.has("v5")
    assert not ArtifactChunk.objects.filter(folder="v5").exists()
    with pytest.raises(ValueError, match=r"no engine\.json"), database_storage.new_folder("v6"):
        pass
    assert not ArtifactChunk.objects.filter(folder="v6").exists()


@pytest.mark.django_db
def test_a_django_storage_keeps_a_version_as_the_s3_store_does(backend_storage, tmp_path):
    files = write_engine_like_folder(tmp_path / "fitted")
    with backend_storage.new_folder("v2") as folder:
        write_engine_like_folder(folder)
    assert sorted(p.name for p in (tmp_path / "bucket" / "v2").iterdir()) == sorted([*files, "MANIFEST.json"])
    local = backend_storage.local_folder("v2")
    assert {p.name: p.read_bytes() for p in local.iterdir() if p.name != "MANIFEST.json"} == files

    # Published again (same name): overwritten in place, and read anew.
    with backend_storage.new_folder("v2") as folder:
        write_engine_like_folder(folder, seed=9)
    assert '"seed": 9' in (backend_storage.local_folder("v2") / "engine.json").read_text()
    # Files without their manifest are not a version yet.
    (tmp_path / "bucket" / "v2" / "MANIFEST.json").unlink()
    assert not backend_storage.has("v2")


@pytest.mark.django_db
def test_activation_refuses_a_version_the_storage_does_not_hold(database_storage):
    version = ModelVersion.objects.create(status=VersionStatus.READY, artifact_dir="v404")
    with pytest.raises(registry.ActivationRefused, match="no artifacts"):
        registry.activate(version, by="tests")


def _settings_in_subprocess(env: dict[str, str], expr: str) -> subprocess.CompletedProcess[str]:
    code = f"import django; django.setup(); from django.conf import settings; print({expr})"
    clean = {k: v for k, v in os.environ.items() if not k.startswith("MODEL_STORAGE")}
    return subprocess.run(
        [sys.executable, "-c", code],
        env={**clean, "DJANGO_SETTINGS_MODULE": "personalization.settings_for_tests", **env},
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_the_s3_store_is_configured_from_the_environment():
    # No S3 service on this machine: the configuration is checked, not a transfer.
    env = {
        "MODEL_STORAGE": "s3",
        "MODEL_STORAGE_BUCKET": "pe-models",
        "MODEL_STORAGE_ENDPOINT_URL": "http://minio.internal:9000",
        "MODEL_STORAGE_PREFIX": "prod/models",
    }
    expr = (
        "(lambda s: (type(s).__module__ + '.' + type(s).__name__, s.bucket_name, s.endpoint_url, s.location,"
        " s.file_overwrite))(__import__('personalization.model_storage').model_storage.store().storage)"
    )
    result = _settings_in_subprocess(env, expr)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == (
        "('storages.backends.s3.S3Storage', 'pe-models', 'http://minio.internal:9000', 'prod/models', True)"
    )


def test_a_wrong_storage_setting_fails_loudly():
    result = _settings_in_subprocess({"MODEL_STORAGE": "s3"}, "settings.MODEL_STORAGE")
    assert result.returncode != 0 and "MODEL_STORAGE_BUCKET" in result.stderr
    result = _settings_in_subprocess({"MODEL_STORAGE": "nfs"}, "settings.MODEL_STORAGE")
    assert result.returncode != 0 and "MODEL_STORAGE=nfs" in result.stderr
    with pytest.raises(ImproperlyConfigured):
        from django.test import override_settings

        with override_settings(MODEL_STORAGE="nfs"):
            model_storage.store()
