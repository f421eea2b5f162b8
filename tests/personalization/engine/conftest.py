"""Tiny generated shops for the engine's tests: a few dozen people, items in themed groups."""

from __future__ import annotations

import csv
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest

from personalization.engine.config import EngineConfig

THEMES = ("tea cup", "garden lantern", "wooden toy", "party candle")
COLOURS = ("red", "blue", "green", "white", "pink", "black")
START = datetime(2024, 1, 1, tzinfo=UTC)


def write_shop(
    folder: Path,
    *,
    people: int = 60,
    days: int = 120,
    timestamps: bool = True,
    items_file: bool = True,
    users_file: bool = True,
    extra_items: list[tuple[str, str]] | None = None,
    seed: int = 7,
) -> Path:
    """Each person likes one theme, comes back every few days and buys two or three of its items,
    often the same ones again."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    items = [(f"{t[:3].upper()}{c[:2].upper()}", f"{c} {t}", t) for t in THEMES for c in COLOURS]
    by_theme = {t: [i for i in items if i[2] == t] for t in THEMES}
    rows = []
    for p in range(people):
        theme = THEMES[p % len(THEMES)]
        favourites = rng.permutation(len(by_theme[theme]))[:3]
        day = float(rng.uniform(0, 10))
        while day < days:
            for _ in range(int(rng.integers(2, 4))):
                pick = favourites[0] if rng.random() < 0.4 else int(rng.integers(len(by_theme[theme])))
                item_id = by_theme[theme][pick][0]
                when = START + timedelta(days=day, minutes=float(rng.uniform(0, 20)))
                rows.append((f"p{p}", item_id, "purchase", when))
            day += float(rng.uniform(3, 12))
    rows.sort(key=lambda r: r[3])
    with open(folder / "events.csv", "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(("user_id", "item_id", "event_type", "timestamp"))
        for user_id, item_id, event_type, when in rows:
            writer.writerow((user_id, item_id, event_type, when.isoformat() if timestamps else ""))
    if items_file:
        with open(folder / "items.csv", "w", newline="", encoding="utf-8") as handle:
            writer = csv.writer(handle)
            writer.writerow(("item_id", "title", "description", "category", "brand", "price"))
            for item_id, title, theme in items:
                writer.writerow((item_id, title.title(), title, theme, "", "2.50"))
            for item_id, title in extra_items or []:
                writer.writerow((item_id, title.title(), title, "", "", "3.00"))
    if users_file:
        with open(folder / "users.csv", "w", newline="", encoding="utf-8") as handle:
            writer = csv.writer(handle)
            writer.writerow(("user_id", "country"))
            for p in range(people):
                writer.writerow((f"p{p}", ("France", "Spain", "Norway")[p % 3]))
    return folder


def small_config(**overrides: object) -> EngineConfig:
    """Sized for a catalogue of two dozen items so that a fit takes well under a second."""
    values: dict[str, object] = {
        "als_factors": 8,
        "als_factors_without_clock": None,
        "als_fits_without_clock": None,
        "als_iterations": 5,
        "horizon_days": 14.0,
        "training_windows": 3,
        "ranker_trees": 20,
        "ranker_min_child_samples": 5,
        "train_threads": 1,
        "n_candidates": 50,
        "train_candidates": 50,
    }
    values.update(overrides)
    return EngineConfig(**values)  # type: ignore[arg-type]


@pytest.fixture
def shop(tmp_path: Path) -> Callable[..., Path]:
    def make(**options: object) -> Path:
        return write_shop(tmp_path / "shop", **options)  # type: ignore[arg-type]

    return make
