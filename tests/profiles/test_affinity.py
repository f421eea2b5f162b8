from __future__ import annotations

from datetime import UTC, datetime, timedelta

from profiles.affinity import ProfileEvent, build_profile, signal_weight

NOW = datetime(2026, 6, 1, tzinfo=UTC)


def test_recent_behaviour_weighs_more_and_old_is_excluded():
    assert signal_weight(timedelta(days=0), 90) == 1.0
    assert signal_weight(timedelta(days=90), 90) == 0.5
    # Past 12 months a signal counts half again, on top of its decay.
    assert signal_weight(timedelta(days=400), 90) == 0.5 * 0.5 ** (400 / 90)
    assert signal_weight(timedelta(days=731), 90) == 0.0


def test_category_and_brand_affinity_follow_decayed_weights():
    events = [
        ProfileEvent("purchase", NOW - timedelta(days=2), "Home > Kitchen", "Acme", 20.0),
        ProfileEvent("view", NOW - timedelta(days=1), "Garden", "Leafy", 5.0),
        ProfileEvent("view", NOW - timedelta(days=200), "Garden", "Leafy", 5.0),
        ProfileEvent("purchase", NOW - timedelta(days=800), "Toys", "Old", 1.0),  # beyond 24 months
    ]
    profile = build_profile(events, NOW, price_thresholds=[6.0, 15.0])
    assert list(profile.category_affinity) == ["Home", "Home > Kitchen", "Garden"]
    assert profile.category_affinity["Home"] == 1.0
    assert 0 < profile.category_affinity["Garden"] < 0.3
    assert "Toys" not in profile.category_affinity and "Old" not in profile.brand_affinity
    assert profile.event_counts == {"purchase": 1, "view": 2}
    assert profile.last_seen_at == NOW - timedelta(days=1)
    assert (profile.typical_price, profile.price_band) == (5.0, "budget")
