"""Splits, seen-item exclusion, tuning on validation only, the cold-start row and the interval."""

from __future__ import annotations

import csv
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest

from personalization.engine.baselines import (
    ALSBaseline,
    EASEBaseline,
    HistoryPopularityBaseline,
    ItemKNNBaseline,
    PopularityBaseline,
    RecentPopularityBaseline,
)
from personalization.engine.dataset import load_interchange
from personalization.engine.evaluation import run_evaluation
from personalization.engine.metrics import paired_bootstrap_interval
from personalization.engine.splits import (
    repeat_share,
    split_by_cutoff,
    split_by_last_share,
    split_by_random_share,
    split_by_test_pairs,
)
from personalization.engine.tuning import tune_baselines

from .conftest import small_config

START = datetime(2024, 1, 1, tzinfo=UTC)
THEMES = 4
PER_THEME = 15


def write_tastes(
    folder: Path,
    *,
    people: int = 48,
    per_person: int = 10,
    timestamps: bool = True,
    late_people: int = 0,
    seed: int = 3,
) -> Path:
    """Each person has ``per_person`` distinct items of one theme, each once (nobody re-consumes);
    ``late_people`` more arrive only in the last ten days."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    rows = []
    for p in range(people + late_people):
        theme = p % THEMES
        picks = rng.permutation(PER_THEME)[:per_person]
        first_day = 95.0 if p >= people else 0.0
        for pick in picks:
            when = START + timedelta(days=first_day + float(rng.uniform(0, 100 - first_day)))
            rows.append((f"p{p}", f"i{theme * PER_THEME + int(pick)}", "rating", when))
    rows.sort(key=lambda r: r[3])
    with open(folder / "events.csv", "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(("user_id", "item_id", "event_type", "timestamp"))
        for user_id, item_id, kind, when in rows:
            writer.writerow((user_id, item_id, kind, when.isoformat() if timestamps else ""))
    return folder


def test_last_share_holds_out_each_persons_latest_with_ties_by_item_id(tmp_path: Path) -> None:
    folder = tmp_path / "d"
    folder.mkdir()
    (folder / "events.csv").write_text(
        "user_id,item_id,event_type,timestamp\n"
        # a: five events, the last two at the same second: 20 % is one, the tie goes to the higher id.
        "a,10,rating,100\na,2,rating,200\na,30,rating,300\na,9,rating,400\na,11,rating,400\n"
        # b: two events, at least one is held out; c: one event, all history.
        "b,2,rating,150\nb,30,rating,250\nc,11,rating,50\n"
    )
    dataset = load_interchange(folder)
    split = split_by_last_share(dataset, 0.2)
    ids = split.train.catalogue.item_ids
    test = {dataset.user_ids[p]: sorted(ids[i] for i in items) for p, items in split.test.items()}
    assert test == {"a": ["11"], "b": ["30"]}
    assert split.now is not None
    assert split.person_now(dataset.user_index["a"]) == 400.0  # a's own last history event
    assert split.person_now(dataset.user_index["b"]) == 150.0
    assert len(split.train.events) == 6 and not split.cold_test


def test_random_share_is_seeded_keeps_people_under_five_whole_and_holds_at_least_one(tmp_path: Path) -> None:
    dataset = load_interchange(write_tastes(tmp_path / "d", timestamps=False, people=20, per_person=6))
    small = tmp_path / "small"
    small.mkdir()
    (small / "events.csv").write_text(
        "user_id,item_id,event_type,timestamp\n" + "".join(f"a,i{i},play,\n" for i in range(4))
    )
    assert split_by_random_share(load_interchange(small), 0.2, seed=0).test == {}

    first = split_by_random_share(dataset, 0.2, seed=0)
    again = split_by_random_share(dataset, 0.2, seed=0)
    other = split_by_random_share(dataset, 0.2, seed=1)
    assert all(len(items) == 1 for items in first.test.values())  # floor(6 * 0.2) = 1
    assert {p: v.tolist() for p, v in first.test.items()} == {p: v.tolist() for p, v in again.test.items()}
    assert {p: v.tolist() for p, v in first.test.items()} != {p: v.tolist() for p, v in other.test.items()}
    assert first.now is None  # no clock: nobody gets a time made up from row order
    assert len(first.train.events) + sum(len(v) for v in first.test.values()) + first.unseen_test_items >= 100


def test_cutoff_and_test_file_count_people_without_history_and_unseen_items(tmp_path: Path) -> None:
    dataset = load_interchange(write_tastes(tmp_path / "d", late_people=6))
    split = split_by_cutoff(dataset, (START + timedelta(days=90)).timestamp())
    assert len(split.cold_test) == 6
    assert all(dataset.user_ids[p].startswith("p4") or int(dataset.user_ids[p][1:]) >= 48 for p in split.cold_test)
    assert split.as_of == (START + timedelta(days=90)).timestamp() and split.now is None

    given = split_by_test_pairs(dataset, [("p0", "i1"), ("p0", "never-seen"), ("stranger", "i2"), ("p1", "i3")])
    assert given.unseen_test_items == 1
    assert len(given.cold_test) == 1 and sum(len(v) for v in given.test.values()) == 2


def test_repeat_share_reads_re_consumption_without_a_clock(tmp_path: Path) -> None:
    tastes = load_interchange(write_tastes(tmp_path / "d", timestamps=False))
    assert repeat_share(tastes) == 0.0
    folder = tmp_path / "r"
    folder.mkdir()
    (folder / "events.csv").write_text(
        "user_id,item_id,event_type\na,x,purchase\na,x,purchase\na,y,purchase\nb,x,purchase\n"
    )
    assert repeat_share(load_interchange(folder)) == pytest.approx(0.25)


def test_excluded_seen_items_never_appear_in_the_engine_or_a_baseline_list(tmp_path: Path) -> None:
    dataset = load_interchange(write_tastes(tmp_path / "d"))
    split = split_by_last_share(dataset, 0.3)
    baselines = [
        PopularityBaseline(),
        RecentPopularityBaseline(),
        HistoryPopularityBaseline(),
        ItemKNNBaseline(),
        EASEBaseline(),
        ALSBaseline([{"factors": 8, "regularization": 1.0}]),
    ]
    report = run_evaluation(split, k=10, config=small_config(), baselines=baselines, bootstrap_samples=200)
    assert report.exclude_seen and "below the 5% threshold" in report.exclusion_reason
    events = split.train.events
    seen = {(int(u), int(i)) for u, i in zip(events.user, events.item, strict=True)}
    assert [r.model for r in report.results] == ["engine", *(b.name for b in baselines)]
    for result in report.results:
        assert result.people == len(split.test)
        for person, items in zip(result.person_ids.tolist(), result.lists, strict=True):
            assert len(items) > 0
            assert not any((person, int(i)) in seen for i in items), result.model

    allowed = run_evaluation(
        split, k=10, config=small_config(), exclude_seen=False, baselines=[HistoryPopularityBaseline()]
    )
    popular = next(r for r in allowed.results if r.model == "history+popularity")
    assert any(
        (p, int(i)) in seen for p, items in zip(popular.person_ids.tolist(), popular.lists, strict=True) for i in items
    )


def test_the_tuner_never_reads_the_test_split(tmp_path: Path) -> None:
    dataset = load_interchange(write_tastes(tmp_path / "d"))
    cutoff = (START + timedelta(days=80)).timestamp()
    split = split_by_cutoff(dataset, cutoff)
    # A poisoned copy: every event from the cut-off on is moved to another theme's items.
    poisoned = dataset.with_events(dataset.events.subset(np.ones(len(dataset.events), dtype=bool)))
    late = poisoned.events.time >= cutoff
    poisoned.events.item[late] = (poisoned.events.item[late] + 17) % dataset.n_items
    poisoned_split = split_by_cutoff(poisoned, cutoff)
    assert {p: v.tolist() for p, v in split.test.items()} != {p: v.tolist() for p, v in poisoned_split.test.items()}

    def chosen(history_split: object) -> list[tuple[str, dict[str, object], list[tuple[dict[str, object], float]]]]:
        tuned, validation = tune_baselines(
            history_split.train,  # type: ignore[attr-defined]
            history_split.protocol,  # type: ignore[attr-defined]
            [RecentPopularityBaseline(), ItemKNNBaseline(), EASEBaseline()],
            exclude_seen=True,
            k=10,
        )
        assert float(validation.train.events.time.max()) < cutoff - 19 * 86400  # an earlier cut-off, same span
        return [(t.name, t.settings, t.validation) for t in tuned]

    assert chosen(split) == chosen(poisoned_split)
    assert all(len(tried) > 1 for _, _, tried in chosen(split))


def test_people_without_history_get_their_own_rows(tmp_path: Path) -> None:
    dataset = load_interchange(write_tastes(tmp_path / "d", late_people=6))
    split = split_by_cutoff(dataset, (START + timedelta(days=90)).timestamp())
    report = run_evaluation(
        split, k=10, config=small_config(), baselines=[PopularityBaseline(), HistoryPopularityBaseline()]
    )
    assert report.cold_people == 6
    assert [r.model for r in report.cold_start] == ["engine, no history", "popularity, no history"]
    assert all(r.people == 6 and len(r.lists[0]) == 10 for r in report.cold_start)
    assert report.as_json()["cold_start"]["people"] == 6  # type: ignore[index]


def test_paired_bootstrap_interval() -> None:
    rng = np.random.default_rng(0)
    better = rng.normal(0.05, 0.1, size=400)
    low, high = paired_bootstrap_interval(better, samples=2000, seed=0)
    assert low < better.mean() < high and low > 0
    assert paired_bootstrap_interval(better, samples=2000, seed=0) == (low, high)
    assert paired_bootstrap_interval(np.zeros(50), samples=100) == (0.0, 0.0)
