"""``make up`` and the systemd units of ``deploy/systemd`` start the same processes with the same
commands, and both have a worker for every queue: a queue added to ``personalization/queues.py``
without a worker in either would leave its work waiting."""

from __future__ import annotations

import importlib.util
import re
import shlex
import sys
from pathlib import Path
from types import ModuleType

import pytest

from personalization.queues import QUEUES, TRAINING

ROOT = Path(__file__).resolve().parents[1]
UNITS = ROOT / "deploy" / "systemd"
PYTHON = "/srv/pe/app/.venv/bin/python"


def _up() -> ModuleType:
    if "deploy_up" in sys.modules:
        return sys.modules["deploy_up"]
    spec = importlib.util.spec_from_file_location("deploy_up", ROOT / "deploy" / "up.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules["deploy_up"] = module  # its dataclasses look their module up by name
    spec.loader.exec_module(module)
    return module


def _exec_start(unit: str, instance: str = "") -> list[str]:
    text = (UNITS / unit).read_text()
    defaults = dict(
        pair.split("=", 1) for line in re.findall(r"^Environment=(.+)$", text, re.M) for pair in line.split()
    )
    line = re.search(r"^ExecStart=(.+)$", text, re.M)
    assert line, f"{unit} has no ExecStart"
    command = line[1].replace("%i", instance).replace("%%", "%")
    command = re.sub(r"\$\{(\w+)\}", lambda m: defaults.get(m[1], f"<{m[1]}>"), command)
    return shlex.split(command)


def _unit_of(name: str) -> tuple[str, str]:
    if name == f"worker-{TRAINING}":
        return "pe-worker-training.service", ""
    if name.startswith("worker-"):
        return "pe-worker@.service", name.removeprefix("worker-")
    return f"pe-{name}.service", ""


@pytest.fixture
def shape(monkeypatch: pytest.MonkeyPatch) -> list:
    # The units' defaults, so that both sides are compared with the same numbers.
    for name, value in {"WEB_PROCESSES": "2", "WORKER_CONCURRENCY": "1", "RELAY_SECONDS": "1"}.items():
        monkeypatch.setenv(name, value)
    return _up().shape(PYTHON, "0.0.0.0", 8000)


def test_make_up_has_web_a_worker_per_queue_beat_and_the_relay(shape):
    assert [p.name for p in shape] == ["web", *(f"worker-{q}" for q in QUEUES), "beat", "relay"]


def test_each_systemd_unit_runs_what_make_up_runs(shape):
    for process in shape:
        unit, instance = _unit_of(process.name)
        assert (UNITS / unit).exists(), f"no unit for {process.name}"
        assert _exec_start(unit, instance) == process.argv, unit
        assert "WantedBy=pe.target" in (UNITS / unit).read_text()


def test_make_up_refuses_to_start_without_postgresql_and_redis(monkeypatch, capsys):
    monkeypatch.delenv("DATABASE_URL", raising=False)
    monkeypatch.setenv("REDIS_URL", "redis://127.0.0.1:6379/0")
    monkeypatch.setattr("sys.argv", ["up.py"])
    assert _up().main() == 2
    assert "set DATABASE_URL" in capsys.readouterr().err
