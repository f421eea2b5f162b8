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

from personalization.engine.config import EngineConfig
from personalization.engine.dataset import Dataset, load_interchange
from personalization.engine.engine import Engine, Recommendation
from personalization.engine.history import PersonContext

__all__ = ["Dataset", "Engine", "EngineConfig", "PersonContext", "Recommendation", "load_interchange"]
