"""Candidate sources, fitted together on the events before one point in time.

``CandidateSources.fit`` is called once per training window (on that window's past) and once for
the engine that serves; ``signals`` turns one person's ``History`` into per-source scores and
``generate`` proposes the union of each source's best items, cut to ``n_candidates`` by the best
rank an item reached in any source relative to that source's quota.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import scipy.sparse as sp

from personalization.engine.artifacts import (
    has_array,
    has_sparse,
    load_array,
    load_json,
    load_sparse,
    save_array,
    save_json,
    save_sparse,
)
from personalization.engine.collaborative import ALSModel, BM25Weighting, EASEModel
from personalization.engine.config import EngineConfig
from personalization.engine.content import ContentIndex
from personalization.engine.covisitation import fit_covisitation
from personalization.engine.dataset import EventLog
from personalization.engine.history import History
from personalization.engine.popularity import Popularity
from personalization.engine.retrieval import VectorIndex
from personalization.engine.sequence import fit_transitions
from personalization.engine.similarity import SparseScores, cosine_item_similarity, score_from_neighbours
from personalization.engine.threads import blas_threads, faiss_threads
from personalization.engine.timeline import ItemTimeline

SOURCES = (
    "history",
    "als",
    "ease",
    "item_knn",
    "covisitation",
    "content",
    "popular",
    "segment",
    "trending",
    "new",
    "segment_trending",
    "sequence",
)
# Sources that need a clock: without real timestamps they propose nothing.
TIMED_SOURCES = frozenset({"covisitation", "trending", "new", "segment_trending", "sequence"})


@dataclass
class Signals:
    """One person's scores from each source, never dense over the catalogue: sparse over the
    precomputed neighbours of their items (item kNN, co-visitation, content, sequence), over EASE's
    own items, and for ALS a vector that candidates are scored against one by one. A request's
    work depends on the person's history and the candidates, not on how many items there are."""

    als_vector: np.ndarray
    ease: SparseScores | None
    item_knn: SparseScores
    covisitation_recent: SparseScores
    covisitation_all: SparseScores
    content: SparseScores | None  # what the content source proposes from (its neighbours)
    sequence: SparseScores
    # The person's taste in terms (dense over the vocabulary): the content feature of a candidate
    # is its exact cosine with this profile.
    content_profile: np.ndarray | None = None

    def content_scores(self, content: ContentIndex, items: np.ndarray) -> np.ndarray | None:
        if self.content_profile is None:
            return None
        return content.scores(self.content_profile, items)


@dataclass
class Candidates:
    items: np.ndarray  # int32
    best_rank: np.ndarray  # float32: min over sources of rank / quota (0 = top of some source)
    source: np.ndarray  # int8 index into SOURCES of the source that ranked the item best


@dataclass
class CandidateSources:
    as_of: float
    fitted_until: float  # the latest event time the sources saw; < as_of by construction
    n_items: int
    als: ALSModel
    retrieval: VectorIndex
    ease: EASEModel | None
    item_knn: sp.csr_matrix
    covisitation: sp.csr_matrix
    content: ContentIndex
    popularity: Popularity
    sequence: sp.csr_matrix
    timeline: ItemTimeline
    has_time: bool = True  # real timestamps: time features and timed sources are used
    exclude_seen: bool = False  # re-consumption is rare: a person's own items are never candidates
    timings: dict[str, float] = field(default_factory=dict)

    @classmethod
    def fit(
        cls,
        log: EventLog,
        *,
        n_users: int,
        n_items: int,
        texts: list[str],
        user_segment: np.ndarray,
        n_segments: int,
        as_of: float,
        config: EngineConfig,
        content: ContentIndex | None = None,
        has_time: bool = True,
        exclude_seen: bool = False,
        ease: EASEModel | None = None,
        approximate_retrieval: bool = True,
    ) -> CandidateSources:
        """Fit every source on ``log`` (which must hold only events before ``as_of``).

        ``content`` may be passed in: item text does not change with the window, so training
        windows share one index; so may ``ease``, when the caller fitted it while choosing its
        regularization. ``approximate_retrieval=False`` (training windows) searches ALS exactly
        instead of building an HNSW graph (retrieval.py).
        """
        if log.time.shape[0] and float(log.time.max()) >= as_of:
            raise ValueError("candidate sources must be fitted on events strictly before as_of")
        timings: dict[str, float] = {}
        started = time.perf_counter()
        matrix = log.matrix(n_users, n_items)
        als = ALSModel.fit(
            matrix,
            factors=config.als_factors,
            regularization=config.als_regularization,
            alpha=config.als_alpha,
            iterations=config.als_iterations,
            threads=config.train_threads,
            seed=config.seed,
            bm25_k1=config.bm25_k1,
            bm25_b=config.bm25_b,
            fits=config.als_fits,
        )
        with faiss_threads(config.train_threads):
            retrieval = VectorIndex.build(
                als.item_factors,
                exact_max_items=config.exact_search_max_items,
                approximate=approximate_retrieval,
                hnsw_neighbours=config.hnsw_neighbours,
                hnsw_ef_construction=config.hnsw_ef_construction,
                hnsw_ef_search=config.hnsw_ef_search,
            )
        timings["als"] = time.perf_counter() - started

        started = time.perf_counter()
        binary = sp.csr_matrix(matrix, copy=True)
        binary.data[:] = 1.0
        if ease is None and config.quotas.get("ease", 0) > 0:
            with blas_threads(config.train_threads):
                ease = EASEModel.fit(
                    binary, config.ease_lambda, min_support=config.ease_min_support, max_items=config.ease_max_items
                )
        timings["ease"] = time.perf_counter() - started

        started = time.perf_counter()
        item_knn = cosine_item_similarity(matrix, config.knn_neighbours)
        covisitation = fit_covisitation(
            log,
            n_items=n_items,
            as_of=as_of,
            window_days=config.covisitation_window_days,
            neighbours=config.covisitation_neighbours,
        )
        sequence = (
            fit_transitions(log, n_items=n_items, window=config.sequence_window, neighbours=config.sequence_neighbours)
            if has_time
            else sp.csr_matrix((n_items, n_items), dtype=np.float32)
        )
        timeline = ItemTimeline.fit(log if has_time else log.subset(np.zeros(len(log), dtype=bool)))
        timings["neighbours"] = time.perf_counter() - started

        started = time.perf_counter()
        content = content if content is not None else ContentIndex.fit(texts)
        if content.neighbours is None:
            content.with_neighbours(
                np.unique(log.item), config.content_neighbours, config.content_max_postings, config.train_threads
            )
        popularity = Popularity.fit(log, n_items=n_items, user_segment=user_segment, n_segments=n_segments, as_of=as_of)
        timings["content_popularity"] = time.perf_counter() - started
        return cls(
            as_of=as_of,
            fitted_until=float(log.time.max()) if log.time.shape[0] else -np.inf,
            n_items=n_items,
            als=als,
            retrieval=retrieval,
            ease=ease,
            item_knn=item_knn,
            covisitation=covisitation,
            content=content,
            popularity=popularity,
            sequence=sequence,
            timeline=timeline,
            has_time=has_time,
            exclude_seen=exclude_seen,
            timings=timings,
        )

    # -- per person ---------------------------------------------------------------------------

    def signals(self, history: History, config: EngineConfig) -> Signals:
        items, weights = history.unique_items, history.decayed
        seeds = history.recent_items[: config.covisitation_seed_items]
        # The most recent item weighs most; the tenth still counts a third as much.
        seed_weights = (1.0 / np.sqrt(1.0 + np.arange(seeds.shape[0]))).astype(np.float32)
        latest = seeds[: config.sequence_seed_items] if self.has_time else seeds[:0]
        content_scores = profile = None
        if self.content.has_text:
            profile = self.content.profile(items, weights)
            content_scores = score_from_neighbours(self.content_neighbours(config), items, weights)
        return Signals(
            als_vector=self.als.person_vector(items, history.weight_sum),
            ease=self.ease.scores(items, np.minimum(history.counts, 1.0)) if self.ease is not None else None,
            item_knn=score_from_neighbours(self.item_knn, items, weights),
            covisitation_recent=score_from_neighbours(self.covisitation, seeds, seed_weights),
            covisitation_all=score_from_neighbours(self.covisitation, items, weights),
            content=content_scores,
            sequence=score_from_neighbours(self.sequence, latest, seed_weights[: latest.shape[0]]),
            content_profile=profile,
        )

    def content_neighbours(self, config: EngineConfig) -> sp.csr_matrix:
        """The content neighbour rows; an engine saved before they were kept computes them for every
        item once (such engines are small: their content scores were dense over the catalogue)."""
        if self.content.neighbours is None:
            self.content.with_neighbours(
                np.arange(self.n_items), config.content_neighbours, config.content_max_postings
            )
        assert self.content.neighbours is not None
        return self.content.neighbours

    def generate(
        self,
        history: History,
        signals: Signals,
        config: EngineConfig,
        n_candidates: int,
        excluded: np.ndarray | None = None,
        als_found: np.ndarray | None = None,
    ) -> Candidates:
        """The union of the sources' proposals, cut to ``n_candidates``. ``als_found``: what ALS
        retrieval found for this person, when the caller searched for many people at once."""
        quotas = config.quotas
        proposals: list[tuple[int, np.ndarray]] = []

        def propose(source: str, items: np.ndarray) -> None:
            quota = quotas.get(source, 0)
            if not self.has_time and source in TIMED_SOURCES:
                return
            if quota > 0 and items.shape[0]:
                proposals.append((SOURCES.index(source), items[:quota].astype(np.int32)))

        popularity = self.popularity
        propose("history", history.recent_items)
        if quotas.get("als", 0) and history.n_events:
            found = als_found if als_found is not None else self.retrieval.search(signals.als_vector, quotas["als"])[0]
            propose("als", found)
        if signals.ease is not None:
            propose("ease", _best(signals.ease, quotas.get("ease", 0)))
        propose("item_knn", _best(signals.item_knn, quotas.get("item_knn", 0)))
        propose("covisitation", _best(signals.covisitation_recent, quotas.get("covisitation", 0)))
        if signals.content is not None:
            propose("content", _best(signals.content, quotas.get("content", 0)))
        propose("popular", popularity.popular_top)
        if history.segment >= 0 and history.segment < popularity.segment_top.shape[0]:
            segment_top = popularity.segment_top[history.segment]
            propose("segment", segment_top[segment_top >= 0])
            segment_trending_top = popularity.segment_trending_top[history.segment]
            propose("segment_trending", segment_trending_top[segment_trending_top >= 0])
        propose("trending", popularity.trending_top)
        propose("new", popularity.new_pool)
        propose("sequence", _best(signals.sequence, quotas.get("sequence", 0)))

        items = np.concatenate([p[1] for p in proposals]) if proposals else np.zeros(0, dtype=np.int32)
        ranks = (
            np.concatenate(
                [np.arange(p[1].shape[0], dtype=np.float32) / max(quotas.get(SOURCES[p[0]], 1), 1) for p in proposals]
            )
            if proposals
            else np.zeros(0, dtype=np.float32)
        )
        sources = (
            np.concatenate([np.full(p[1].shape[0], p[0], dtype=np.int8) for p in proposals])
            if proposals
            else (np.zeros(0, dtype=np.int8))
        )
        if self.exclude_seen:
            excluded = history.unique_items if excluded is None else np.concatenate([excluded, history.unique_items])
        if excluded is not None and excluded.shape[0]:
            keep = ~np.isin(items, excluded)
            items, ranks, sources = items[keep], ranks[keep], sources[keep]
        order = np.argsort(ranks, kind="stable")
        items, ranks, sources = items[order], ranks[order], sources[order]
        _, first = np.unique(items, return_index=True)
        first.sort()
        first = first[:n_candidates]
        return Candidates(items=items[first], best_rank=ranks[first], source=sources[first])

    # -- artifacts ----------------------------------------------------------------------------

    def save(self, folder: Path) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        save_array(folder, "als_item_factors", self.als.item_factors)
        save_array(folder, "bm25_idf", self.als.weighting.idf)
        if self.als.gram is not None:
            save_array(folder, "als_gram", self.als.gram)
        self.retrieval.save(folder / "retrieval.faiss")
        if self.ease is not None:
            save_array(folder, "ease_weights", self.ease.weights)
            save_array(folder, "ease_items", self.ease.items)
        save_sparse(folder, "sequence", self.sequence)
        save_array(folder, "timeline_keys", self.timeline.keys)
        save_sparse(folder, "item_knn", self.item_knn)
        save_sparse(folder, "covisitation", self.covisitation)
        save_sparse(folder, "content_vectors", self.content.vectors)
        if self.content.neighbours is not None:
            save_sparse(folder, "content_neighbours", self.content.neighbours)
        save_array(folder, "content_idf", self.content.idf)
        save_json(
            folder, "content_vocabulary", sorted(self.content.vocabulary, key=self.content.vocabulary.__getitem__)
        )
        popularity = self.popularity
        for name in POPULARITY_ARRAYS:
            save_array(folder, f"popularity_{name}", getattr(popularity, name))
        save_json(
            folder,
            "sources",
            {
                "as_of": self.as_of,
                "fitted_until": self.fitted_until,
                "n_items": self.n_items,
                "als_regularization": self.als.regularization,
                "als_alpha": self.als.alpha,
                "als_blocks": self.als.blocks,
                "bm25_average_length": self.als.weighting.average_length,
                "bm25_k1": self.als.weighting.k1,
                "bm25_b": self.als.weighting.b,
                "retrieval": self.retrieval.kind,
                "ease": self.ease is not None,
                "has_time": self.has_time,
                "exclude_seen": self.exclude_seen,
                "timeline_origin": self.timeline.origin,
            },
        )

    @classmethod
    def load(cls, folder: Path) -> CandidateSources:
        meta = load_json(folder, "sources")
        weighting = BM25Weighting(
            idf=load_array(folder, "bm25_idf"),
            average_length=meta["bm25_average_length"],
            k1=meta["bm25_k1"],
            b=meta["bm25_b"],
        )
        vocabulary = load_json(folder, "content_vocabulary")
        popularity = Popularity(
            as_of=meta["as_of"], **{name: load_array(folder, f"popularity_{name}") for name in POPULARITY_ARRAYS}
        )
        return cls(
            as_of=meta["as_of"],
            fitted_until=meta["fitted_until"],
            n_items=meta["n_items"],
            als=ALSModel(
                item_factors=load_array(folder, "als_item_factors"),
                weighting=weighting,
                regularization=meta["als_regularization"],
                alpha=meta["als_alpha"],
                gram=np.array(load_array(folder, "als_gram")) if has_array(folder, "als_gram") else None,
                blocks=int(meta.get("als_blocks", 1)),
            ),
            retrieval=VectorIndex.load(folder / "retrieval.faiss"),
            ease=EASEModel(
                items=load_array(folder, "ease_items"),
                weights=load_array(folder, "ease_weights"),
                n_items=meta["n_items"],
            )
            if meta["ease"]
            else None,
            item_knn=load_sparse(folder, "item_knn"),
            covisitation=load_sparse(folder, "covisitation"),
            content=ContentIndex(
                vocabulary={term: i for i, term in enumerate(vocabulary)},
                idf=load_array(folder, "content_idf"),
                vectors=load_sparse(folder, "content_vectors"),
                neighbours=load_sparse(folder, "content_neighbours")
                if has_sparse(folder, "content_neighbours")
                else None,
            ),
            popularity=popularity,
            sequence=load_sparse(folder, "sequence"),
            timeline=ItemTimeline(keys=load_array(folder, "timeline_keys"), origin=meta["timeline_origin"]),
            has_time=meta["has_time"],
            exclude_seen=meta["exclude_seen"],
        )


POPULARITY_ARRAYS = (
    "count_7",
    "count_14",
    "count_30",
    "count_90",
    "count_all",
    "people",
    "popular",
    "trending",
    "segment_popular",
    "first_seen_days",
    "last_seen_days",
    "repurchase_rate",
    "repeat_interval_days",
    "popular_top",
    "trending_top",
    "segment_top",
    "segment_trending",
    "segment_trending_top",
    "new_pool",
)


def _best(scores: np.ndarray | SparseScores, n: int) -> np.ndarray:
    """Indices of the ``n`` highest positive scores, best first."""
    if isinstance(scores, SparseScores):
        return scores.best(n)
    n = min(n, scores.shape[0])
    if n <= 0:
        return np.zeros(0, dtype=np.int32)
    top = np.argpartition(-scores, n - 1)[:n]
    top = top[scores[top] > 0]
    return top[np.argsort(-scores[top], kind="stable")].astype(np.int32)
