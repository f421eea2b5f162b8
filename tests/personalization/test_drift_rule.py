"""The drift rule: fires on a planted drop, stays quiet on seeded noise, and starts a retraining early
with the reason recorded."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import numpy as np
import pytest
from celery import current_app
from django.test import Client
from django.utils import timezone

from personalization import drift
from personalization.celery import app as celery_app
from personalization.loop_stats import wilson
from personalization.models import DriftRule, FitTrigger, LoopChange, ModelHealthSnapshot, ModelVersion, VersionStatus
from tests.access import role_user

RULE = drift.Thresholds()


def daily_clicks(rng: np.random.Generator, rate: float, answers: int, days: int) -> list[tuple[int, int]]:
    return [(int(rng.binomial(answers, rate)), answers) for _ in range(days)]


def judge(days: list[tuple[int, int]], rule: drift.Thresholds = RULE) -> drift.Verdict:
    before = days[:-1][-rule.baseline_days :]
    clicks = [drift.SurfaceClicks("homepage", days[-1], (sum(h for h, _ in before), sum(n for _, n in before)))]
    return drift.evaluate(
        rule, unknown_item_share=None, item_events=0, ndcg_recent=None, ndcg_at_activation=None, clicks=clicks
    )


@pytest.mark.parametrize("seed", range(30))
def test_seeded_noise_does_not_fire(seed):
    rng = np.random.default_rng(seed)
    # Thirty independent stretches of eight days at a steady 8% click-through, 5,000 answers a day.
    assert not judge(daily_clicks(rng, 0.08, 5000, 8)).fired
    # Unknown items and offline quality wander a little around their usual level.
    verdict = drift.evaluate(
        RULE,
        unknown_item_share=float(rng.normal(0.10, 0.03)),
        item_events=5000,
        ndcg_recent=float(rng.normal(0.30, 0.02)),
        ndcg_at_activation=0.30,
    )
    assert not verdict.fired, verdict.reasons


@pytest.mark.parametrize("seed", range(10))
def test_a_planted_click_through_drop_fires_with_its_interval(seed):
    rng = np.random.default_rng(seed)
    days = daily_clicks(rng, 0.08, 5000, 7) + daily_clicks(rng, 0.056, 5000, 1)  # 30% fewer clicks

    verdict = judge(days)

    assert verdict.fired
    check = verdict.checks["ctr:homepage"]
    assert check["interval"][1] < 0 and check["relative"] < -0.15
    assert "click-through of personalized answers on homepage fell" in verdict.text


def test_a_drop_inside_the_noise_does_not_fire_even_when_large():
    # 40% fewer clicks, but on 200 answers a day the interval of the change still includes zero.
    days = [(16, 200)] * 7 + [(10, 200)]
    small = drift.Thresholds(min_answers=100)
    assert not judge(days, small).fired
    assert judge([(1600, 20000)] * 7 + [(1000, 20000)], small).fired  # the same drop, measured well


def test_unknown_items_and_offline_quality_fire_past_their_thresholds():
    verdict = drift.evaluate(RULE, unknown_item_share=0.45, item_events=2000, ndcg_recent=0.20, ndcg_at_activation=0.30)
    assert verdict.fired and len(verdict.reasons) == 2
    assert "45% of the day's item events were on items the model does not know (limit 30%)" in verdict.text
    assert "33% below 0.3000 at activation (limit 20%)" in verdict.text
    off = drift.Thresholds(enabled=False)
    assert not drift.evaluate(
        off, unknown_item_share=0.9, item_events=2000, ndcg_recent=0.0, ndcg_at_activation=0.3
    ).fired


# --- in the watch ----------------------------------------------------------------------------------


def plant_days(clicks: list[tuple[int, int]]) -> ModelHealthSnapshot:
    """Snapshots for the last len(clicks) days, the last one yesterday; returns yesterday's."""
    yesterday = timezone.localdate() - timedelta(days=1)
    latest = None
    for back, (hits, n) in enumerate(reversed(clicks)):
        rate = wilson(hits, n)
        snapshot = ModelHealthSnapshot.objects.create(
            day=yesterday - timedelta(days=back),
            online={
                "surfaces": {
                    "homepage": {"answers": n, "arms": {"personalized": {"answers": n, "ctr": rate.as_dict()}}}
                }
            },
            data={"item_events": 3000, "unknown_item_share": 0.05},
            offline={"ndcg": None},
        )
        latest = latest or snapshot
    assert latest is not None
    return latest


def run_rule(snapshot: ModelHealthSnapshot, capture) -> drift.Verdict:
    from personalization import watch

    with capture(execute=True):  # the retraining is sent once the watch's transaction commits
        return watch.apply_drift_rule(snapshot)


@pytest.fixture
def eager_tasks() -> Iterator[None]:
    """Tasks sent run at once in this process, as on the embedded default."""
    celery_app.conf.update(task_always_eager=True)
    yield
    celery_app.conf.update(task_always_eager=False)


def test_a_planted_drop_starts_a_retraining_early_and_records_why(db, django_capture_on_commit_callbacks, eager_tasks):
    rng = np.random.default_rng(7)
    snapshot = plant_days(daily_clicks(rng, 0.08, 5000, 7) + daily_clicks(rng, 0.05, 5000, 1))

    # The fit is sent after the watch commits and runs at once here: with no events it fails, as a
    # worker's would (the task raises, and the row keeps the error).
    with pytest.raises(ValueError, match="no events to learn from"):
        run_rule(snapshot, django_capture_on_commit_callbacks)

    fit = ModelVersion.objects.get(trigger=FitTrigger.DRIFT)
    assert "click-through of personalized answers on homepage fell" in fit.trigger_reason
    assert fit.status == VersionStatus.FAILED and "no events" in fit.error
    snapshot.refresh_from_db()
    assert snapshot.drift["fired"] and snapshot.drift["action"] == f"retraining: v{fit.pk}"
    assert snapshot.drift["thresholds"]["ctr_drop"] == 0.15

    again = run_rule(snapshot, django_capture_on_commit_callbacks)  # a second look the same day

    assert again.fired and ModelVersion.objects.filter(trigger=FitTrigger.DRIFT).count() == 1
    snapshot.refresh_from_db()
    assert snapshot.drift["action"].startswith(f"not retrained: v{fit.pk} was started by the drift rule")


def test_seeded_noise_in_the_watch_starts_nothing(db, django_capture_on_commit_callbacks):
    rng = np.random.default_rng(11)
    snapshot = plant_days(daily_clicks(rng, 0.08, 5000, 8))

    verdict = run_rule(snapshot, django_capture_on_commit_callbacks)

    assert not verdict.fired and not ModelVersion.objects.exists()
    snapshot.refresh_from_db()
    assert snapshot.drift["fired"] is False and snapshot.drift["action"] == ""
    assert "ctr:homepage" in snapshot.drift["checks"]


def test_the_watch_task_judges_the_day_it_computed(db, django_capture_on_commit_callbacks):
    DriftRule.objects.filter(pk=1).update(unknown_item_share=0.01, min_answers=0)
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        current_app.tasks["personalization.tasks.watch_active_model"].apply()
    snapshot = ModelHealthSnapshot.objects.get()
    assert snapshot.drift["thresholds"]["unknown_item_share"] == 0.01
    assert snapshot.drift["fired"] is False  # no active version: nothing is unknown to it, nothing to judge
    assert not callbacks


def test_an_administrator_edits_the_thresholds_and_bad_ones_are_refused(db):
    admin = Client()
    admin.force_login(role_user("adam", "Administrator"))
    good = {
        "enabled": "on",
        "unknown_item_share": "0.4",
        "ndcg_drop": "0.25",
        "ctr_drop": "0.1",
        "min_answers": "800",
        "baseline_days": "14",
        "cooldown_hours": "12",
    }

    assert admin.post("/model/drift-rule", good).status_code == 302
    rule = DriftRule.current()
    assert (rule.unknown_item_share, rule.baseline_days, rule.updated_by) == (0.4, 14, "adam")
    assert LoopChange.objects.get(what="drift_rule").detail["ctr_drop"] == 0.1

    response = admin.post("/model/drift-rule", {**good, "ndcg_drop": "1.5"})
    assert response.status_code == 400
    assert "NDCG@20 drop: A share between 0 and 1, e.g. 0.2 for 20%." in response.content.decode()
    assert DriftRule.current().ndcg_drop == 0.25

    analyst = Client()
    analyst.force_login(role_user("ana", "Analyst"))
    assert analyst.post("/model/drift-rule", {**good, "ctr_drop": "0.5"}).status_code == 403
    assert DriftRule.current().ctr_drop == 0.1
    assert "Save drift rule" not in analyst.get("/model/").content.decode()
