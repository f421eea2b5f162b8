"""Assignment through the service and the API: stable, deterministic, independent, exclusive in layers."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest
from scipy import stats

from experiments import services, serving
from experiments.models import ChangeAction, ExperimentChange
from tests.experiments.conftest import ab, make_people

REPO = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.django_db


def test_a_person_gets_the_same_variant_from_the_service_the_api_and_after_a_restart(running, secret_client):
    experiment = running("hero-banner")
    ids = make_people(50)
    first = {pid: services.assign("hero-banner", pid) for pid in ids}
    assert all(a is not None and a.active for a in first.values())
    assert {a.variant for a in first.values() if a} == {"control", "treatment"}

    serving.forget_local_configuration()  # as a freshly started process would
    again = {pid: services.assign("hero-banner", pid) for pid in ids}
    assert again == first

    for i, pid in enumerate(ids[:10]):
        response = secret_client.get("/api/v1/experiments/assignments", {"person": f"u{i}"})
        assert response.status_code == 200
        body = response.json()
        assert body["known"] is True
        [answer] = [a for a in body["assignments"] if a["experiment"] == "hero-banner"]
        assert answer["variant"] == first[pid].variant  # type: ignore[union-attr]
        assert answer["active"] is True
    assert experiment.allocation_version == 1


def test_another_process_with_another_hash_seed_computes_the_same_variants(running):
    experiment = running("checkout-copy", variants=ab((1, 1, 1), ("a", "b", "c")))
    ids = list(range(1, 301))
    ours = [services.assign("checkout-copy", pid).variant for pid in ids]  # type: ignore[union-attr]
    script = (
        "import json, sys\n"
        "from experiments.assignment import Allocation, ExperimentSplit\n"
        "config = json.loads(sys.argv[1])\n"
        "split = ExperimentSplit(config['salt'], Allocation.from_dict(config['allocation']))\n"
        "print(json.dumps([split.variant_for(str(pid)) for pid in config['ids']]))\n"
    )
    config = json.dumps({"salt": experiment.salt, "allocation": experiment.allocation, "ids": ids})
    env = {**os.environ, "PYTHONHASHSEED": "12345", "PYTHONPATH": str(REPO)}
    output = subprocess.run(
        [sys.executable, "-c", script, config], check=True, capture_output=True, text=True, cwd=REPO, env=env
    ).stdout
    assert json.loads(output) == ours


def test_assignments_of_two_experiments_are_independent(running):
    running("first")
    running("second")
    pairs = Counter(
        (services.assign("first", pid).variant, services.assign("second", pid).variant)  # type: ignore[union-attr]
        for pid in range(1, 8001)
    )
    table = [[pairs[("control", "control")], pairs[("control", "treatment")]]]
    table.append([pairs[("treatment", "control")], pairs[("treatment", "treatment")]])
    chi2, p_value, _, _ = stats.chi2_contingency(table)
    assert p_value > 0.001, (table, chi2)
    assert all(cell > 1700 for row in table for cell in row)


def test_a_weight_change_moves_only_the_people_whose_bucket_must_move(running, staff):
    experiment = running("grid", variants=ab((34, 33, 33), ("a", "b", "c")))
    ids = range(1, 20001)
    before = {pid: services.assign("grid", pid).variant for pid in ids}  # type: ignore[union-attr]

    services.set_weights(experiment, {"a": 50, "b": 25, "c": 25}, staff)
    after = {pid: services.assign("grid", pid).variant for pid in ids}  # type: ignore[union-attr]

    assert all(after[pid] == "a" for pid in ids if before[pid] == "a")  # the growing variant keeps everyone
    moved = sum(before[pid] != after[pid] for pid in ids) / len(ids)
    assert 0.13 < moved < 0.19  # the least possible: B and C each give up 8% of all people
    assert all(after[pid] == before[pid] or after[pid] == "a" for pid in ids)  # nobody moves between B and C
    change = ExperimentChange.objects.get(experiment=experiment, action=ChangeAction.WEIGHTS)
    assert change.changed_by == staff
    assert change.detail["before"]["weights"] == {"a": 34, "b": 33, "c": 33}
    assert change.detail["after"]["weights"] == {"a": 50, "b": 25, "c": 25}


def test_ramping_traffic_up_keeps_everyone_already_enrolled_in_their_variant(running, staff):
    experiment = running("ramp", traffic=0.1)
    ids = range(1, 10001)
    before = {pid: services.assign("ramp", pid) for pid in ids}
    enrolled = {pid: a.variant for pid, a in before.items() if a is not None}
    assert 800 < len(enrolled) < 1200

    services.set_weights(experiment, {}, staff, traffic=0.5)
    after = {pid: services.assign("ramp", pid) for pid in ids}
    assert all(after[pid] is not None and after[pid].variant == v for pid, v in enrolled.items())  # type: ignore[union-attr]
    assert 4600 < sum(a is not None for a in after.values()) < 5400


def test_rebucketing_reshuffles_people_and_starts_a_new_generation(running, staff):
    experiment = running("reshuffle")
    ids = range(1, 4001)
    before = {pid: services.assign("reshuffle", pid).variant for pid in ids}  # type: ignore[union-attr]
    services.rebucket(experiment, staff, note="exposure logging was broken")
    experiment.refresh_from_db()
    after = {pid: services.assign("reshuffle", pid).variant for pid in ids}  # type: ignore[union-attr]
    changed = sum(before[pid] != after[pid] for pid in ids) / len(ids)
    assert 0.45 < changed < 0.55
    assert experiment.generation == 1 and experiment.salt == "reshuffle:1"


def test_experiments_in_one_layer_never_share_a_person(running, staff):
    running("grid-a", layer="homepage", layer_share=0.5)
    running("grid-b", layer="homepage", layer_share=0.5)
    ids = range(1, 6001)
    in_a = {pid for pid in ids if services.assign("grid-a", pid) is not None}
    in_b = {pid for pid in ids if services.assign("grid-b", pid) is not None}
    assert not in_a & in_b
    assert 2800 < len(in_a) < 3200 and 2800 < len(in_b) < 3200
    assert len(services.assignments_for(1)) == 1

    third = services.create_experiment("grid-c", "Grid C", ab(), staff, layer="homepage", layer_share=0.2)
    with pytest.raises(services.ExperimentError, match="free"):
        services.start(third, staff)


def test_stopping_an_experiment_frees_its_slice_and_keeps_the_other_in_place(running, staff):
    first = running("slot-a", layer="pdp", layer_share=0.5)
    running("slot-b", layer="pdp", layer_share=0.5)
    ids = range(1, 3001)
    in_b = {pid: services.assign("slot-b", pid) for pid in ids}
    services.stop(first, staff, reason="done")
    third = services.start(services.create_experiment("slot-c", "C", ab(), staff, layer="pdp", layer_share=0.5), staff)
    assert third.status == "running"
    assert {pid: services.assign("slot-b", pid) for pid in ids} == in_b
    in_c = {pid for pid in ids if services.assign("slot-c", pid) is not None}
    assert not in_c & {pid for pid, a in in_b.items() if a is not None}


def test_what_drafts_stopped_and_concluded_experiments_answer(running, staff):
    draft = services.create_experiment("later", "Later", ab(), staff)
    assert services.assign("later", 1) is None
    assert services.assign("no-such-experiment", 1) is None

    experiment = running("done-soon")
    services.stop(experiment, staff, reason="enough")
    answers = [services.assign("done-soon", pid) for pid in range(1, 50)]
    assert {(a.variant, a.active) if a else None for a in answers} == {("control", False)}
    assert services.assignments_for(1) == []

    services.conclude(experiment, staff, winner="treatment")
    answers = [services.assign("done-soon", pid) for pid in range(1, 50)]
    assert {(a.variant, a.active) if a else None for a in answers} == {("treatment", False)}
    assert draft.status == "draft"


def test_assignments_for_filters_by_target_and_marks_the_holdout(running):
    running(
        "personalization-holdout",
        variants=[
            services.VariantSpec("personalized", "Personalized", 95, {}, True),
            services.VariantSpec("holdout", "Holdout", 5, {"holdout": True}),
        ],
        target_kind="surface",
        target_key="homepage",
    )
    running("subject-line", target_kind="campaign", target_key="spring-sale")
    homepage = services.assignments_for(7, target_kind="surface", target_key="homepage")
    assert [a.experiment for a in homepage] == ["personalization-holdout"]
    holdouts = [pid for pid in range(1, 4001) if services.assign("personalization-holdout", pid).is_holdout]  # type: ignore[union-attr]
    assert 120 < len(holdouts) < 290


def test_a_change_made_by_another_process_is_picked_up(running, monkeypatch):
    experiment = running("elsewhere")
    assert services.assign("elsewhere", 5).active  # type: ignore[union-attr]
    # Another process stops it: the row changes and so does the shared stamp.
    type(experiment).objects.filter(pk=experiment.pk).update(status="stopped")
    monkeypatch.setattr(serving, "STAMP_CHECK_SECONDS", 0.0)
    serving.cache.set(serving.CONFIG_STAMP_KEY, "changed-by-another-process", timeout=None)
    answer = services.assign("elsewhere", 5)
    assert answer is not None and (answer.variant, answer.active) == ("control", False)
