"""The learning core: candidate sources, ranking features, the LightGBM ranker, offline evaluation.

Plain Python + numpy, free of Django (a test enforces it), so that Celery tasks, management
commands and benchmarks can all call it. The entry points:

    dataset = load_interchange("/path/to/folder")
    engine = Engine.fit(dataset, EngineConfig())
    engine.save("/models/v42")
    engine = Engine.load("/models/v42")
    engine.recommend(PersonContext(item_ids=[...], timestamps=[...], segment="France"), k=20)
"""

from __future__ import annotations

import logging

# FAISS announces at INFO which CPU build it loaded, in every process that imports it; that is
# noise in worker logs and in ``manage.py evaluate``'s table. Set before anything imports faiss.
logging.getLogger("faiss.loader").setLevel(logging.WARNING)

from personalization.engine.config import EngineConfig  # noqa: E402
from personalization.engine.dataset import Dataset, load_interchange  # noqa: E402
from personalization.engine.engine import Engine, Recommendation  # noqa: E402
from personalization.engine.history import PersonContext  # noqa: E402

__all__ = ["Dataset", "Engine", "EngineConfig", "PersonContext", "Recommendation", "load_interchange"]
