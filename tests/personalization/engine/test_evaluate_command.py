"""``manage.py evaluate`` on tiny data: every split, the exclusion flags, --set and the JSON."""

from __future__ import annotations

import json
from collections.abc import Callable
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command

from .test_evaluation_protocols import write_tastes

SMALL = ["--set", "als_factors=8", "--set", "ranker_trees=20", "--set", "ranker_min_child_samples=5"]
SMALL += ["--set", "n_candidates=50", "--set", "train_candidates=50", "--set", "horizon_days=14"]
SMALL += ["--set", "als_iterations=5", "--set", "train_threads=1"]


@pytest.fixture(autouse=True)
def _small_als(monkeypatch: pytest.MonkeyPatch) -> None:
    # The ALS baseline's real grid (64 and 128 factors) is what costs time on a two-dozen-item shop.
    from personalization.engine.baselines import ALSBaseline

    monkeypatch.setattr(ALSBaseline, "default_grid", [{"factors": 8, "regularization": r} for r in (0.1, 1.0)])
    monkeypatch.setattr(ALSBaseline, "threads", 1)


def evaluate(*args: str) -> tuple[str, str]:
    out, err = StringIO(), StringIO()
    call_command("evaluate", *args, *SMALL, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


def test_evaluate_without_timestamps_or_items_file(shop: Callable[..., Path], tmp_path: Path) -> None:
    folder = shop(timestamps=False, items_file=False, users_file=False)
    printed, _ = evaluate(str(folder), "--k", "5", "--json", str(tmp_path / "result.json"))
    result = json.loads((tmp_path / "result.json").read_text())
    assert result["k"] == 5
    # No clock: the default split is the seeded random one and recent popularity has nothing to go on.
    assert result["split"].startswith("random 20%")
    assert {row["model"] for row in result["rows"]} == {
        "engine",
        "popularity",
        "history+popularity",
        "item-knn",
        "ease",
        "als",
    }
    assert result["skipped"] == {"recent popularity": "the data has no timestamps"}
    for row in result["rows"]:
        assert 0.0 <= row["recall"] <= 1.0 and 0.0 <= row["ndcg"] <= 1.0 and row["fit_seconds"] >= 0
    comparison = result["comparison"]
    assert comparison["ci_low"] <= comparison["engine_ndcg"] - comparison["best_ndcg"] <= comparison["ci_high"]
    # The generated shop re-buys its favourites: seen items stay allowed, and the output says why.
    assert result["exclude_seen"] is False
    assert "seen items allowed:" in printed and "at or above the 5% threshold" in printed
    assert "fit s includes the tuning" in printed and "engine vs best baseline" in printed


def test_holdout_last_excludes_seen_items_by_default_and_prints_the_tuned_settings(tmp_path: Path) -> None:
    folder = write_tastes(tmp_path / "tastes")
    printed, _ = evaluate(str(folder), "--holdout", "last:0.2", "--json", str(tmp_path / "r.json"))
    result = json.loads((tmp_path / "r.json").read_text())
    assert result["split"] == "each person's last 20% by time"
    assert result["exclude_seen"] is True and "seen items excluded: 0.0%" in printed
    settings = {row["model"]: row["settings"] for row in result["rows"]}
    assert settings["ease"].startswith("lambda=") and settings["item-knn"].startswith("neighbours=")
    assert settings["recent popularity"].startswith("window_days=")
    assert len(result["tuning"]["ease"]) == 5  # every λ of the grid was tried on validation
    assert "test people without history: 0" in printed

    forced, _ = evaluate(str(folder), "--holdout", "last:0.2", "--no-exclude-seen", "--json", str(tmp_path / "f.json"))
    assert "seen items allowed as asked" in forced
    assert json.loads((tmp_path / "f.json").read_text())["exclude_seen"] is False


def test_holdout_random_is_seeded(tmp_path: Path) -> None:
    folder = write_tastes(tmp_path / "tastes", timestamps=False)
    for seed, name in (("0", "a"), ("0", "b"), ("5", "c")):
        evaluate(
            str(folder), "--holdout", "random:0.25", "--seed", seed, "--exclude-seen", "--json", str(tmp_path / name)
        )
    a, b, c = (json.loads((tmp_path / n).read_text()) for n in "abc")
    assert a["split"] == "random 25% of each person's items (seed 0, people with 5+ items)"
    assert a["rows"][1] == b["rows"][1]  # popularity, same draw
    assert "seed 5" in c["split"]
    with pytest.raises(CommandError, match="needs timestamps"):
        evaluate(str(folder), "--holdout", "last:0.2")


def test_cutoff_reports_people_without_history_and_unseen_items(tmp_path: Path) -> None:
    folder = write_tastes(tmp_path / "tastes", late_people=5)
    with open(folder / "events.csv", "a", encoding="utf-8") as handle:
        handle.write("p0,brand-new,rating,2024-04-09T10:00:00+00:00\n")
    printed, _ = evaluate(str(folder), "--cutoff", "2024-04-01", "--json", str(tmp_path / "r.json"))
    result = json.loads((tmp_path / "r.json").read_text())
    assert "cutoff 2024-04-01" in printed
    assert result["cold_start"]["people"] == 5
    assert [r["model"] for r in result["cold_start"]["rows"]] == ["engine, no history", "popularity, no history"]
    assert "test people without history: 5" in printed
    assert result["unseen_test_items"] == 1
    assert "test items dropped because the history never saw them: 1" in printed
    with pytest.raises(CommandError, match="2011-11-09"):
        evaluate(str(folder), "--cutoff", "April")


def test_evaluate_with_a_given_test_file(shop: Callable[..., Path], tmp_path: Path) -> None:
    folder = shop()
    test_file = tmp_path / "test.csv"
    test_file.write_text("user_id,item_id,event_type\np0,TEARE,purchase\np1,GARBL,purchase\nnobody,TEARE,purchase\n")
    _, _ = evaluate(str(folder), "--test-file", str(test_file), "--json", str(tmp_path / "r.json"))
    result = json.loads((tmp_path / "r.json").read_text())
    assert result["rows"][0]["model"] == "engine" and result["split"] == "given test file"
    assert result["cold_start"]["people"] == 1  # "nobody" is counted, not dropped


@pytest.mark.parametrize(
    ("pairs", "message"),
    [
        (["ranker_treez=5"], "unknown engine setting 'ranker_treez'"),
        (["ranker_trees=many"], "ranker_trees must be a whole number, got 'many'"),
        (["half_life_days"], "expected key=value"),
        (["quotas.history=lots"], "quotas.history must be a whole number"),
    ],
)
def test_set_names_the_bad_key(shop: Callable[..., Path], pairs: list[str], message: str) -> None:
    args = [a for pair in pairs for a in ("--set", pair)]
    with pytest.raises(CommandError, match=message):
        call_command("evaluate", str(shop()), *args, stdout=StringIO(), stderr=StringIO())


def test_set_parses_to_each_fields_type() -> None:
    from personalization.engine.config import EngineConfig
    from personalization.engine.overrides import apply_overrides

    config = apply_overrides(
        EngineConfig(), ["ranker_trees=7", "half_life_days=30", "quotas.history=5", 'quotas={"popular": 3}']
    )
    assert config.ranker_trees == 7 and isinstance(config.ranker_trees, int)
    assert config.half_life_days == 30.0 and isinstance(config.half_life_days, float)
    assert config.quotas == {"popular": 3}
    assert apply_overrides(EngineConfig(), ["quotas.history=5"]).quotas["history"] == 5
    with pytest.raises(ValueError, match="quotas must be JSON of type dict"):
        apply_overrides(EngineConfig(), ["quotas=[1, 2]"])


def test_bad_holdout_is_refused(shop: Callable[..., Path]) -> None:
    for value in ("last", "last:2", "sideways:0.2"):
        with pytest.raises(CommandError, match="--holdout must be last:SHARE or random:SHARE"):
            evaluate(str(shop()), "--holdout", value)
