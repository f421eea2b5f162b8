"""Tuning the baselines on a validation split carved out of the history, never the test.

``tune_baselines`` is given the history and the protocol that cut the test, nothing else: it
applies the protocol inside the history (``Protocol.validation``), fits every setting of each
baseline's grid on the validation history, keeps the one with the best NDCG@k on the validation
test. The evaluation then refits each baseline with its chosen setting on the whole history.
Plain numpy, free of Django.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from personalization.engine.baselines import Baseline, Interactions, Settings
from personalization.engine.dataset import Dataset
from personalization.engine.metrics import ndcg_at_k
from personalization.engine.splits import EvaluationSplit, Protocol, scored_people


@dataclass
class TunedBaseline:
    baseline: Baseline
    settings: Settings
    seconds: float  # tuning; the evaluation adds the final fit
    validation: list[tuple[Settings, float]] = field(default_factory=list)  # NDCG@k per setting tried
    skipped: str | None = None

    @property
    def name(self) -> str:
        return self.baseline.name


def interactions(split: EvaluationSplit) -> Interactions:
    return Interactions.from_dataset(split.train, split.as_of if split.now is None else split.now)


def validation_ndcg(
    baseline: Baseline, data: Interactions, people: np.ndarray, relevant: list[np.ndarray], k: int, exclude_seen: bool
) -> float:
    lists = baseline.recommend(people, k, data.binary if exclude_seen else None)
    return float(np.mean([ndcg_at_k(r, t, k) for r, t in zip(lists, relevant, strict=True)])) if lists else 0.0


def tune_baselines(
    history: Dataset,
    protocol: Protocol,
    baselines: list[Baseline],
    *,
    exclude_seen: bool,
    k: int = 20,
    progress: Callable[[str], None] | None = None,
) -> tuple[list[TunedBaseline], EvaluationSplit]:
    """Each baseline with its chosen settings, and the validation split the choice was made on."""
    validation = protocol.validation(history)
    data = interactions(validation)
    people, relevant, _ = scored_people(validation, exclude_seen)
    tuned: list[TunedBaseline] = []
    for baseline in baselines:
        started = time.perf_counter()
        reason = baseline.applicable(data)
        if reason:
            tuned.append(TunedBaseline(baseline, {}, 0.0, skipped=reason))
            continue
        tried: list[tuple[Settings, float]] = []
        grid = baseline.settings_grid(data)
        if len(grid) > 1 and people.shape[0]:
            for settings in grid:
                baseline.fit(data, settings)
                tried.append((settings, validation_ndcg(baseline, data, people, relevant, k, exclude_seen)))
                if progress:
                    progress(f"{baseline.name} {settings}: validation NDCG@{k} {tried[-1][1]:.4f}")
            best = max(range(len(tried)), key=lambda i: (tried[i][1], -i))  # the first of equals
            chosen = tried[best][0]
        else:
            chosen = grid[0]
        tuned.append(TunedBaseline(baseline, chosen, time.perf_counter() - started, tried))
    return tuned, validation
