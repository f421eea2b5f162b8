"""Reading and writing a fitted engine's files: .npy arrays, sparse matrices as three .npy files,
JSON metadata. Plain formats that a model registry can checksum, copy and version file by file.

Arrays are read memory-mapped: the web processes of one machine that serve the same version share
one copy of its pages (the operating system's file cache) instead of each holding its own, and a
process only reads the rows it touches. A mapped file stays readable after the folder is replaced
or removed (the mapping holds the file), so a version switch never pulls pages from under a request.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse as sp


def save_array(folder: Path, name: str, array: np.ndarray) -> None:
    np.save(folder / f"{name}.npy", np.ascontiguousarray(array), allow_pickle=False)


def load_array(folder: Path, name: str) -> np.ndarray:
    """The array, memory-mapped read-only (an empty array is read into memory: nothing to map)."""
    return mapped(folder / f"{name}.npy")


def mapped(path: Path) -> np.ndarray:
    """A saved array memory-mapped read-only, as a plain ndarray over the mapping: ``np.memmap``'s
    own indexing runs Python code on every read (a serving request reads such arrays dozens of
    times), the plain view none; the view holds the mapping open."""
    array = np.load(path, allow_pickle=False, mmap_mode="r")
    if array.size == 0:
        return np.array(array)
    return np.asarray(array)


def has_array(folder: Path, name: str) -> bool:
    return (folder / f"{name}.npy").exists()


def save_sparse(folder: Path, name: str, matrix: sp.csr_matrix) -> None:
    matrix = sp.csr_matrix(matrix, copy=True)
    # Canonical (sorted, no duplicates): a loaded matrix is read-only, and scipy would otherwise
    # sort it in place the first time an operation needs sorted indices.
    matrix.sum_duplicates()
    matrix.sort_indices()
    save_array(folder, f"{name}.data", matrix.data)
    save_array(folder, f"{name}.indices", matrix.indices)
    save_array(folder, f"{name}.indptr", matrix.indptr)
    save_json(folder, f"{name}.shape", list(matrix.shape))


def has_sparse(folder: Path, name: str) -> bool:
    return (folder / f"{name}.shape.json").exists()


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
