from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from personalization import registry


@pytest.fixture
def model_storage(settings, tmp_path: Path) -> Iterator[Path]:
    """Model versions written under this test's own folder, and no engine left loaded either side."""
    settings.MODEL_STORAGE_DIR = tmp_path
    registry.forget_loaded_engine()
    yield tmp_path
    registry.forget_loaded_engine()
