"""Reading and writing a fitted engine's files: .npy arrays, sparse matrices as three .npy files,
JSON metadata. Plain formats that a model registry can checksum, copy and version file by file."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse as sp


def save_array(folder: Path, name: str, array: np.ndarray) -> None:
    np.save(folder / f"{name}.npy", np.ascontiguousarray(array), allow_pickle=False)


def load_array(folder: Path, name: str) -> np.ndarray:
    return np.load(folder / f"{name}.npy", allow_pickle=False)


def save_sparse(folder: Path, name: str, matrix: sp.csr_matrix) -> None:
    matrix = sp.csr_matrix(matrix)
    save_array(folder, f"{name}.data", matrix.data)
    save_array(folder, f"{name}.indices", matrix.indices)
    save_array(folder, f"{name}.indptr", matrix.indptr)
    save_json(folder, f"{name}.shape", list(matrix.shape))


def load_sparse(folder: Path, name: str) -> sp.csr_matrix:
    shape = tuple(load_json(folder, f"{name}.shape"))
    return sp.csr_matrix(
        (
            load_array(folder, f"{name}.data"),
            load_array(folder, f"{name}.indices"),
            load_array(folder, f"{name}.indptr"),
        ),
        shape=shape,
    )


def save_json(folder: Path, name: str, value: Any) -> None:
    (folder / f"{name}.json").write_text(json.dumps(value, indent=1, sort_keys=True), encoding="utf-8")


def load_json(folder: Path, name: str) -> Any:
    return json.loads((folder / f"{name}.json").read_text(encoding="utf-8"))
