"""Two web processes that share nothing but PostgreSQL, Redis and the model storage (here the
database) serve the same model version, and switch together when another is activated.

Each gunicorn has a model folder and a cache folder of its own, and neither folder nor the trainer's
holds a file of any version beforehand: what they serve can only have come from the storage."""

from __future__ import annotations

import http.client
import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from django.conf import settings
from django.core.management import call_command

from personalization import registry
from personalization.models import ApiKey, ArtifactChunk, KeyScope, ModelVersion, VersionStatus
from personalization.tasks import train_engine
from tests.processes import database_url_of_test_db, free_port

pytestmark = [
    pytest.mark.services,
    pytest.mark.slow,
    pytest.mark.skipif(
        not (settings.REDIS_URL and os.getenv("DATABASE_URL")),
        reason="needs DATABASE_URL (PostgreSQL) and REDIS_URL: the web processes are other processes",
    ),
]

ROOT = Path(__file__).resolve().parents[2]
API = "/api/v1/surfaces/homepage/recommendations?person=user-00003"


@dataclass
class Web:
    name: str
    port: int
    folder: Path
    process: subprocess.Popen[bytes]

    def answer(self, key: str) -> dict:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        conn.request("GET", API, headers={"Authorization": f"Bearer {key}"})
        response = conn.getresponse()
        body = response.read()
        assert response.status == 200, (self.name, response.status, body[:500])
        return json.loads(body)

    def cached_versions(self) -> set[str]:
        return {p.name.split("-")[0] for p in (self.folder / "cache").iterdir() if not p.name.startswith(".")}


def _start_web(name: str, tmp_path: Path) -> Web:
    folder = tmp_path / name
    (folder / "models").mkdir(parents=True)
    port = free_port()
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "personalization.settings_for_tests",
        "DATABASE_URL": database_url_of_test_db(),
        "MODEL_STORAGE": "database",
        "MODEL_STORAGE_DIR": str(folder / "models"),
        "MODEL_CACHE_DIR": str(folder / "cache"),
        "ALLOWED_HOSTS": "127.0.0.1",
        "LOG_LEVEL": "WARNING",
    }
    process = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "personalization.wsgi", "--bind", f"127.0.0.1:{port}", "--workers", "1"],
        cwd=ROOT,
        env=env,
        stdout=(folder / "log").open("wb"),
        stderr=subprocess.STDOUT,
    )
    return Web(name, port, folder, process)


def _wait_up(web: Web, seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if web.process.poll() is not None:
            pytest.fail(f"{web.name} exited:\n{(web.folder / 'log').read_text()[-3000:]}")
        try:
            conn = http.client.HTTPConnection("127.0.0.1", web.port, timeout=2)
            conn.request("GET", "/api/v1/track")  # any answer (401) says the app is up
            conn.getresponse().read()
            return
        except OSError:
            time.sleep(0.2)
    pytest.fail(f"{web.name} did not come up")


@pytest.fixture
def webs(transactional_db: object, tmp_path: Path) -> Iterator[list[Web]]:
    started = [_start_web("web-a", tmp_path), _start_web("web-b", tmp_path)]
    try:
        for web in started:
            _wait_up(web)
        yield started
    finally:
        for web in started:
            web.process.terminate()
        for web in started:
            try:
                web.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                web.process.kill()


@pytest.fixture
def database_storage(settings, tmp_path: Path) -> Iterator[None]:
    settings.MODEL_STORAGE = "database"
    settings.MODEL_STORAGE_DIR = tmp_path / "trainer" / "models"
    settings.MODEL_CACHE_DIR = str(tmp_path / "trainer" / "cache")
    registry.forget_loaded_engine()
    yield
    registry.forget_loaded_engine()


def _train() -> ModelVersion:
    version = ModelVersion.objects.create(requested_by="tests")
    train_engine.apply(args=[version.pk])
    version.refresh_from_db()
    assert version.status == VersionStatus.ACTIVE, version.error or version.metrics
    return version


def _serve_until(webs: list[Web], key: str, version: int, seconds: float = 60) -> dict[str, float]:
    """Ask both processes until both answer with ``version``; every answer on the way must be a
    whole answer from one version or the other (the switch is atomic). Returns when each switched
    (seconds; a process checks every two, then copies, loads and compiles the version in the request
    that noticed, and the processes are asked in turn)."""
    started = time.monotonic()
    switched: dict[str, float] = {}
    while time.monotonic() - started < seconds and len(switched) < len(webs):
        for web in webs:
            body = web.answer(key)
            assert not body["degraded"], (web.name, body["degraded_reason"])
            assert len(body["items"]) > 0
            if body["model_version"] == version:
                switched.setdefault(web.name, time.monotonic() - started)
            else:
                assert web.name not in switched, f"{web.name} went back from version {version}"
        time.sleep(0.1)
    assert set(switched) == {web.name for web in webs}, f"only {sorted(switched)} serve version {version}"
    return switched


@pytest.mark.django_db(transaction=True)
def test_two_web_processes_on_shared_storage_serve_and_switch_versions_together(database_storage, webs, tmp_path):
    call_command("seed_demo", people=150, days=60, with_surfaces=True, verbosity=0)
    _, key = ApiKey.issue("two web processes", KeyScope.SECRET)

    first = _train()
    assert ArtifactChunk.objects.filter(folder=first.artifact_dir, file="engine.json").exists()
    assert not (tmp_path / "trainer" / "models").exists(), "the trainer wrote no model folder of its own"
    _serve_until(webs, key, first.pk)

    second = _train()
    assert ModelVersion.objects.get(pk=first.pk).status == VersionStatus.RETIRED
    _serve_until(webs, key, second.pk)

    # A rollback is an activation too: both go back, from the copies they keep.
    registry.activate(first, by="ops")
    _serve_until(webs, key, first.pk)

    for web in webs:
        assert web.cached_versions() == {first.artifact_dir, second.artifact_dir}
        assert not any((web.folder / "models").iterdir()), f"{web.name} wrote into its model folder"
