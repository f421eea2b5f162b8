"""A saved engine holds item arrays only: nothing in its files is indexed by person or names one, so an
erased person's data does not live on in model versions trained before the erasure (docs/security.md)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np

from personalization.engine.dataset import load_interchange
from personalization.engine.engine import Engine

from .conftest import small_config


def test_no_artifact_is_indexed_by_person_or_names_one(shop: Callable[..., Path], tmp_path: Path) -> None:
    dataset = load_interchange(shop())
    folder = Engine.fit(dataset, small_config()).save(tmp_path / "model")
    n_items = len(Engine.load(folder).item_ids)
    assert dataset.n_users != n_items, "the shop must tell people and items apart by count"
    arrays = sorted(folder.glob("*.npy"))
    assert arrays
    for path in arrays:
        array = np.load(path, allow_pickle=False)
        if path.name.endswith((".data.npy", ".indices.npy", ".indptr.npy")):
            continue  # the parts of a sparse matrix; its shape is checked below
        assert dataset.n_users not in array.shape, f"{path.name} has a per-person axis {array.shape}"
    for shape_file in folder.glob("*.shape.json"):
        assert dataset.n_users not in [int(n) for n in shape_file.read_text().strip("[]\n").split(",")], shape_file
    text = " ".join(p.read_text(errors="ignore") for p in folder.iterdir() if p.suffix in (".json", ".txt"))
    named = [user for user in dataset.user_ids if f'"{user}"' in text]
    assert named == []
    assert dataset.n_users > 20 and len(dataset.user_ids[0]) >= 2
