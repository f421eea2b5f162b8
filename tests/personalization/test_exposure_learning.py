"""What the surfaces show reaches training: each answer records its exploration slots, the export
writes one impression row per item shown with its position, and a model trained on them reads
the person's recent impressions when it serves."""

from __future__ import annotations

import csv
from datetime import timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from django.db.models import F

from personalization import feedback, registry, training
from personalization.engine.config import EngineConfig
from personalization.engine.dataset import load_interchange
from personalization.models import Impression, ModelVersion, VersionStatus
from personalization.tasks import train_engine
from tests.personalization.test_surfaces_serving import _ask, _person, _surface, engine, shared_storage  # noqa: F401  (fixtures)


def test_exploration_slots_are_recorded_and_exported_with_positions(engine: Any, tmp_path: Path) -> None:  # noqa: F811
    _surface(key="explore", exploration_share=0.3, size=8)
    person = _person("user-00004")
    rng = np.random.default_rng(5)
    answers = [_ask("explore", person_id=person, rng=rng) for _ in range(30)]
    explored_slots = 0
    for answer in answers:
        stored = Impression.objects.get(recommendation_id=answer.recommendation_id)
        assert stored.explored == [n for n, item in enumerate(answer.items) if item.exploring]
        explored_slots += len(stored.explored)
    assert explored_slots > 0

    sizes = training.export_interchange(tmp_path)
    assert sizes["impressions"] >= sum(len(a.items) for a in answers)
    with open(tmp_path / "impressions.csv", encoding="utf-8") as handle:
        rows = [r for r in csv.DictReader(handle) if r["user_id"] == str(person)]
    by_time: dict[str, list[dict[str, str]]] = {}
    for row in rows:
        by_time.setdefault(row["timestamp"], []).append(row)
    flagged = sum(r["explored"] == "1" for r in rows)
    assert flagged == explored_slots
    for answer in answers:
        stored = Impression.objects.get(recommendation_id=answer.recommendation_id)
        mine = by_time[f"{stored.served_at.timestamp():.3f}"]
        assert [r["item_id"] for r in sorted(mine, key=lambda r: int(r["position"]))] == stored.item_ids
    dataset = load_interchange(tmp_path)
    assert dataset.exposures is not None and int(dataset.exposures.explored.sum()) >= explored_slots


def test_the_engine_learns_with_the_surfaces_attribution_windows() -> None:
    config = training.engine_config()
    assert config.exposure_click_window_hours * 3600 == feedback.CLICK_WINDOW.total_seconds()
    assert config.exposure_purchase_window_days * 86400 == feedback.PURCHASE_WINDOW.total_seconds()
    assert config != EngineConfig() or feedback.CLICK_WINDOW.total_seconds() == 86400


def test_a_model_trained_on_impressions_serves_with_the_persons_recent_ones(engine: Any, settings: Any) -> None:  # noqa: F811
    _surface(key="shown", exploration_share=0.2, size=8)
    person = _person("user-00006")
    rng = np.random.default_rng(9)
    for n in range(40):
        _ask("shown", person_id=_person(f"user-{n % 30 + 1:05d}"), rng=rng)
    # Served three weeks ago: before the hold-out of the fit, inside its training data.
    Impression.objects.update(served_at=F("served_at") - timedelta(days=21))
    version = ModelVersion.objects.create(requested_by="tests")
    train_engine.apply(args=[version.pk])
    version.refresh_from_db()
    assert version.status in (VersionStatus.ACTIVE, VersionStatus.REJECTED), version.error
    exposure = version.training["engine"]["exposure"]
    # Impressions of people and items the events know (curated picks nobody touched are left out).
    assert exposure["impressions"] > 0
    if version.status == VersionStatus.REJECTED:  # the gate's call; serving it is what this test is about
        version.status = VersionStatus.READY
        version.save(update_fields=["status"])
        registry.activate(version, by="tests")
    registry.forget_loaded_engine()
    _, serving = registry.serving_engine()
    assert serving is not None and serving.exposure is not None
    answer = _ask("shown", person_id=person, rng=rng)
    assert answer.personalized and not answer.degraded


def test_engine_settings_set_a_fit_and_name_an_unknown_setting(settings: Any) -> None:
    settings.ENGINE_SETTINGS = '{"ranker_trees": 10, "exposure_learning": false}'
    config = training.engine_config()
    assert config.ranker_trees == 10 and not config.exposure_learning
    settings.ENGINE_SETTINGS = '{"ranker_tres": 10}'
    with pytest.raises(ValueError, match="ranker_tres"):
        training.engine_config()
