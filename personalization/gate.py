"""The activation gate: score fitted engines on the same hold-out, by item id, so a new version
can be compared with the active one even though their catalogues and indices differ.

Plain Python + numpy, free of Django.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from personalization.engine.engine import Engine
from personalization.engine.evaluation import EvaluationSplit
from personalization.engine.history import PersonContext
from personalization.engine.metrics import ndcg_at_k, recall_at_k


@dataclass(frozen=True)
class HoldoutScore:
    ndcg: float
    recall: float
    people: int

    def as_dict(self) -> dict[str, float | int]:
        # Full precision: a recorded score is compared with fresh ones later, rounding would bias that.
        return {"ndcg": self.ndcg, "recall": self.recall, "people": self.people}


def person_contexts(split: EvaluationSplit) -> dict[int, PersonContext]:
    """Each test person's history in the split's training data, as serving would see it."""
    train = split.train
    events = train.events
    order = np.lexsort((events.time, events.user))
    users = events.user[order]
    contexts: dict[int, PersonContext] = {}
    wanted = np.asarray(sorted(split.test), dtype=np.int64)
    starts = np.searchsorted(users, wanted, side="left")
    ends = np.searchsorted(users, wanted, side="right")
    item_ids = train.catalogue.item_ids
    for person, start, end in zip(wanted.tolist(), starts.tolist(), ends.tolist(), strict=True):
        rows = order[start:end]
        segment = int(train.user_segment[person]) if train.user_segment.shape[0] > person else -1
        contexts[person] = PersonContext(
            item_ids=[item_ids[i] for i in events.item[rows].tolist()],
            timestamps=events.time[rows].tolist() if train.has_timestamps else None,
            event_types=[train.event_types[t] for t in events.event_type[rows].tolist()],
            quantities=events.quantity[rows].tolist(),
            segment=train.segment_names[segment] if segment >= 0 else None,
            now=split.as_of if train.has_timestamps else None,
        )
    return contexts


def holdout_score(engine: Engine, split: EvaluationSplit, k: int = 20) -> HoldoutScore:
    contexts = person_contexts(split)
    index = split.train.catalogue.index
    ndcg = recall = 0.0
    for person, relevant in split.test.items():
        # Items the split's catalogue does not know cannot be hits; -1 keeps their rank slot.
        recommended = [index.get(item.item_id, -1) for item in engine.recommend(contexts[person], k=k)]
        ndcg += ndcg_at_k(recommended, relevant, k)
        recall += recall_at_k(recommended, relevant, k)
    n = max(len(split.test), 1)
    return HoldoutScore(ndcg / n, recall / n, len(split.test))


def not_worse(candidate: HoldoutScore, active: HoldoutScore | None, tolerance: float = 0.0) -> bool:
    """The gate: a candidate may replace the active version when its NDCG is at least as good."""
    return active is None or candidate.ndcg + tolerance >= active.ndcg
