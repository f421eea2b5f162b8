"""Settings a fit chooses for itself on its validation lists, never on anything held out later.

The first training window of a fit (its most recent time window, or the share of each person's
history it holds out) doubles as the validation split: the models are fitted on that window's past
and scored on what the people did next, exactly as the ranker's training lists are built.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from personalization.engine.baselines import top_k
from personalization.engine.collaborative import EASEModel
from personalization.engine.config import EngineConfig
from personalization.engine.dataset import Dataset
from personalization.engine.examples import ExampleWindow, target_events
from personalization.engine.metrics import ndcg_of_hits
from personalization.engine.threads import blas_threads

# People scored per setting: enough for a stable mean, few enough to keep the grid cheap.
MAX_VALIDATION_PEOPLE = 3000
BATCH = 512


def _columns(items: np.ndarray, wanted: np.ndarray) -> np.ndarray:
    position = np.searchsorted(items, wanted)
    position = np.minimum(position, max(items.shape[0] - 1, 0))
    return position[items[position] == wanted] if items.shape[0] else position[:0]


def ndcg_of_top(scores: np.ndarray, relevant: list[np.ndarray], k: int = 20, ideal: list[int] | None = None) -> float:
    """Mean NDCG@k (binary gain) of each row's top ``k`` against its relevant items (``ideal``: how
    many relevant items each row has in all, when some are outside ``scores``' columns)."""
    counts = ideal if ideal is not None else [w.shape[0] for w in relevant]
    lists = top_k(scores, k)
    total = sum(
        ndcg_of_hits(np.isin(row, wanted), count, k) for row, wanted, count in zip(lists, relevant, counts, strict=True)
    )
    return total / max(len(relevant), 1)


def validation_labels(dataset: Dataset, window: ExampleWindow, seed: int) -> tuple[np.ndarray, list[np.ndarray]]:
    """People with both a past and a labelled future in the window (a sample of at most
    ``MAX_VALIDATION_PEOPLE``), and each one's future items."""
    events = dataset.events
    labelled = window.future & target_events(dataset)
    has_past = np.zeros(dataset.n_users, dtype=bool)
    has_past[events.user[window.past]] = True
    users, items = events.user[labelled], events.item[labelled]
    keep = has_past[users]
    users, items = users[keep], items[keep]
    people = np.unique(users)
    if people.shape[0] > MAX_VALIDATION_PEOPLE:
        people = np.sort(np.random.default_rng(seed).choice(people, MAX_VALIDATION_PEOPLE, replace=False))
    order = np.lexsort((items, users))
    users, items = users[order], items[order]
    starts = np.searchsorted(users, people, side="left")
    ends = np.searchsorted(users, people, side="right")
    return people, [np.unique(items[s:e]) for s, e in zip(starts.tolist(), ends.tolist(), strict=True)]


def choose_ease(
    dataset: Dataset, window: ExampleWindow, config: EngineConfig, *, exclude_seen: bool
) -> tuple[EASEModel | None, dict[str, object]]:
    """EASE fitted on the window's past with each regularization of ``config.ease_lambdas``; the
    one whose top 20 best matches the window's labels wins. None when the catalogue is too large."""
    if config.quotas.get("ease", 0) <= 0:
        return None, {"ease": "off"}
    past = dataset.events.subset(window.past)
    matrix = past.matrix(dataset.n_users, dataset.n_items)
    lambdas = [float(x) for x in config.ease_lambdas] or [config.ease_lambda]
    with blas_threads(config.train_threads):
        models = EASEModel.fit_grid(
            matrix, lambdas, min_support=config.ease_min_support, max_items=config.ease_max_items
        )
    if not models:
        return None, {"ease": f"off: more than {config.ease_max_items} items with {config.ease_min_support}+ people"}
    people, relevant = validation_labels(dataset, window, config.seed)
    if len(models) == 1 or people.shape[0] == 0:
        return models[0], {"ease_lambda": lambdas[0], "ease_items": int(models[0].items.shape[0])}
    binary = sp.csr_matrix(matrix, copy=True)
    binary.data[:] = 1.0
    figures: dict[str, float] = {}
    for regularization, model in zip(lambdas, models, strict=True):
        total = 0.0
        for start in range(0, people.shape[0], BATCH):
            # Scored over the model's own items only; labels are mapped into the same columns.
            rows = binary[people[start : start + BATCH]][:, model.items]
            scores = np.asarray(rows @ model.weights, dtype=np.float32)
            if exclude_seen:
                seen_rows, seen_columns = rows.nonzero()
                scores[seen_rows, seen_columns] = -np.inf
            chunk = relevant[start : start + BATCH]
            columns = [_columns(model.items, wanted) for wanted in chunk]
            total += ndcg_of_top(scores, columns, ideal=[w.shape[0] for w in chunk]) * len(chunk)
        figures[f"{regularization:g}"] = round(total / people.shape[0], 4)
    best = max(range(len(lambdas)), key=lambda i: figures[f"{lambdas[i]:g}"])
    return models[best], {
        "ease_lambda": lambdas[best],
        "ease_items": int(models[best].items.shape[0]),
        "ease_validation_ndcg": figures,
    }
