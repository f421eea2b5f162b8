from __future__ import annotations

import pytest
from django.core.management import call_command

from personalization import registry, serving
from personalization.models import ModelVersion, VersionStatus
from personalization.tasks import train_engine
from profiles.services import find_person, record_consent


@pytest.fixture
def store(db):
    call_command("seed_demo", people=150, days=60, verbosity=0)


def _train() -> ModelVersion:
    version = ModelVersion.objects.create(requested_by="tests")
    train_engine.apply(args=[version.pk])
    version.refresh_from_db()
    return version


def test_first_training_activates_and_serves(store, model_storage):
    version = _train()
    assert version.status == VersionStatus.ACTIVE, version.error
    assert version.progress == 100
    assert (model_storage / version.artifact_dir / "engine.json").exists()
    assert 0 < version.metrics["holdout"]["ndcg"] <= 1
    assert version.training["events"] > 1000

    person = find_person("user-00003")
    assert person is not None
    answer = serving.recommend(person.pk, 20)
    assert answer.personalized and len(answer.items) == 20
    assert {i.source for i in answer.items} - {"co-visited", "popular"}, "the engine, not the baseline, answered"


def test_registry_refuses_a_worse_version(store, model_storage):
    active = _train()
    # No event came since; the active version scored perfectly on this very split, nothing can match it.
    active.metrics = {**active.metrics, "holdout": {"ndcg": 1.0, "recall": 1.0, "people": 50}}
    active.save()

    candidate = _train()

    assert candidate.status == VersionStatus.REJECTED
    assert candidate.metrics["passed_gate"] is False
    assert candidate.metrics["active"]["basis"] == "same hold-out, as recorded"
    assert candidate.metrics["split_as_of"] == active.metrics["split_as_of"]
    assert registry.active_version() == active
    with pytest.raises(registry.ActivationRefused):
        registry.activate(candidate, by="someone")
    assert registry.active_version() == active


def test_the_gate_scores_both_versions_on_a_hold_out_neither_has_seen(store, model_storage):
    active = _train()
    # As if the active version had been fitted two days ago (inside the usual 7-day hold-out), with a
    # perfect figure on its own, earlier hold-out: that figure must not be what the candidate meets.
    data_end = active.training["data_end"] - 2 * 86400.0
    active.metrics = {**active.metrics, "holdout": {"ndcg": 1.0, "recall": 1.0, "people": 50}, "split_as_of": 0.0}
    active.training = {**active.training, "data_end": data_end}
    active.save()

    candidate = _train()

    assert candidate.metrics["active"]["basis"] == "same hold-out"
    # The hold-out starts after the active version's data: both are scored on events neither saw.
    assert data_end < candidate.metrics["split_as_of"] < data_end + 1.0
    assert candidate.metrics["active"]["ndcg"] < 1.0, "scored on the fresh hold-out, not the recorded figure"
    assert candidate.metrics["active"]["people"] == candidate.metrics["holdout"]["people"] > 0
    passed = candidate.metrics["holdout"]["ndcg"] >= candidate.metrics["active"]["ndcg"]
    assert candidate.metrics["passed_gate"] is passed
    assert (registry.active_version() == candidate) is passed


def test_without_events_after_the_active_version_nothing_else_counts_as_its_score(store, model_storage):
    active = _train()
    # A recorded figure from another split (another cut-off) is not the same hold-out.
    active.metrics = {**active.metrics, "split_as_of": active.metrics["split_as_of"] - 86400.0}
    active.save()

    candidate = _train()

    assert candidate.status == VersionStatus.REJECTED
    assert candidate.metrics["active"]["basis"].startswith("no hold-out both are fresh to")
    assert registry.active_version() == active


def test_rollback_to_an_earlier_version_switches_serving(store, model_storage, django_capture_on_commit_callbacks):
    first = _train()
    second = _train()
    assert second.status == VersionStatus.ACTIVE, (first.metrics, second.metrics)
    registry._loaded.checked_at = 0
    assert ModelVersion.objects.get(pk=first.pk).status == VersionStatus.RETIRED
    assert registry.serving_engine()[0] == second.pk

    with django_capture_on_commit_callbacks(execute=True):  # other processes learn of it after the commit
        registry.activate(first, by="ops")
    registry._loaded.checked_at = 0  # skip the wait a serving process would have

    assert registry.active_version() == first
    assert registry.serving_engine()[0] == first.pk


def test_people_without_personalization_consent_are_left_out_of_training(store, model_storage):
    person = find_person("user-00001")
    assert person is not None
    record_consent(person.pk, "personalization", False, "test")
    from personalization.training import export_interchange

    export_interchange(model_storage)
    rows = (model_storage / "events.csv").read_text().splitlines()[1:]
    assert rows and not any(row.split(",")[0] == str(person.pk) for row in rows)


def test_the_version_records_and_the_version_page_shows_what_the_fit_read_and_chose(store, model_storage, admin_client):
    version = _train()
    engine = version.training["engine"]
    assert engine["regime"]["has_time"] is True
    assert engine["ranker_choice"]["chosen"] in {"lightgbm", *engine["ranker_choice"].get("validation_ndcg", {})}
    page = admin_client.get(f"/admin/personalization/modelversion/{version.pk}/change/").content.decode()
    assert "real timestamps" in page
    assert "of events repeat a pair" in page
    assert f"ranking: {engine['ranker_choice']['chosen']}" in page
    assert f"serving ranks {engine['candidates']} candidates a person" in page
