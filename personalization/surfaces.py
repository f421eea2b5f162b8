"""Surfaces and their versioned configuration.

A surface's configuration (``SurfaceConfig``) is validated by the dataclasses below, stored as JSON on
an immutable ``SurfaceVersion`` and maps onto the re-ranker's ``RerankConfig`` plus what only
serving knows: candidate source quotas, the curated default list and the cold-start rules. A change
adds a version; a rollback adds a version that copies an old one, so the trail of who changed what,
when, is never rewritten.

Serving reads configuration through ``live_surface``: each process keeps the surfaces in memory and
looks up their current version at most every ``CHECK_SECONDS``.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

from django.db import transaction
from django.db.models import Max

from personalization.engine.candidates import SOURCES
from personalization.models import Surface, SurfaceVersion
from personalization.reranking import (
    CandidateFilters,
    DiversityQuota,
    Exploration,
    RankingWeights,
    RerankConfig,
)

CHECK_SECONDS = 2.0
CONTEXT_KEYS = ("country", "device", "referrer", "interest", "role")


class SurfaceConfigError(ValueError):
    """A configuration that cannot serve; the message names the field."""


@dataclass(frozen=True)
class ColdStartRule:
    """For a visitor the engine knows nothing about: when the context matches, show these items first.

    ``when`` maps context keys (country, device, referrer, interest, role) to the value they must have;
    ``segment`` (e.g. a country) asks the engine for what is popular in that segment; ``items`` are
    shown first when in stock. ``reason`` is the text shown with them.
    """

    when: dict[str, str]
    items: tuple[str, ...] = ()
    segment: str = ""
    reason: str = ""

    def matches(self, context: Mapping[str, Any]) -> bool:
        for key, wanted in self.when.items():
            value = context.get(key)
            values = value if isinstance(value, list | tuple) else [value]
            if not any(str(v).lower() == str(wanted).lower() for v in values if v is not None):
                return False
        return True


@dataclass(frozen=True)
class SurfaceConfig:
    """Everything a marketer sets on a surface."""

    size: int = 20
    weights: dict[str, float] = field(default_factory=lambda: {"relevance": 1.0})
    in_stock_only: bool = True
    exclude_purchased: bool = False
    exclude_categories: tuple[str, ...] = ()
    exclude_items: tuple[str, ...] = ()
    max_share_per_category: float = 1.0
    max_share_per_brand: float = 1.0
    min_share_outside_top_categories: float = 0.0
    exploration_share: float = 0.0
    under_exposed_below: int = 100
    new_item_days: float = 30.0
    source_quotas: dict[str, int] = field(default_factory=dict)
    curated_items: tuple[str, ...] = ()
    cold_start: tuple[ColdStartRule, ...] = ()

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> SurfaceConfig:
        if not isinstance(data, Mapping):
            raise SurfaceConfigError("config: expected an object")
        known = set(cls.__dataclass_fields__)
        unknown = sorted(set(data) - known)
        if unknown:
            raise SurfaceConfigError(f"{unknown[0]}: unknown setting (known: {', '.join(sorted(known))})")
        values: dict[str, Any] = dict(data)
        try:
            for name in ("exclude_categories", "exclude_items", "curated_items"):
                if name in values:
                    values[name] = tuple(str(v) for v in values[name])
            if "weights" in values:
                values["weights"] = {str(k): float(v) for k, v in dict(values["weights"]).items()}
            if "source_quotas" in values:
                values["source_quotas"] = {str(k): int(v) for k, v in dict(values["source_quotas"]).items()}
            if "cold_start" in values:
                values["cold_start"] = tuple(
                    ColdStartRule(
                        when={str(k): str(v) for k, v in dict(rule.get("when", {})).items()},
                        items=tuple(str(i) for i in rule.get("items", ())),
                        segment=str(rule.get("segment", "")),
                        reason=str(rule.get("reason", "")),
                    )
                    for rule in values["cold_start"]
                )
            config = cls(**values)
        except (TypeError, ValueError, AttributeError) as exc:
            raise SurfaceConfigError(f"config: {exc}") from None
        config.validate()
        return config

    def validate(self) -> None:
        if not 1 <= self.size <= 100:
            raise SurfaceConfigError("size: must be between 1 and 100")
        unknown = sorted(set(self.weights) - set(RankingWeights.__dataclass_fields__))
        if unknown:
            raise SurfaceConfigError(f"weights: unknown weight {unknown[0]!r}")
        bad_sources = sorted(set(self.source_quotas) - set(SOURCES))
        if bad_sources:
            raise SurfaceConfigError(f"source_quotas: unknown source {bad_sources[0]!r} (known: {', '.join(SOURCES)})")
        if any(q < 0 for q in self.source_quotas.values()):
            raise SurfaceConfigError("source_quotas: quotas must be non-negative")
        for rule in self.cold_start:
            bad = sorted(set(rule.when) - set(CONTEXT_KEYS))
            if bad:
                raise SurfaceConfigError(
                    f"cold_start: unknown context key {bad[0]!r} (known: {', '.join(CONTEXT_KEYS)})"
                )
        try:
            self.rerank_config()
        except ValueError as exc:
            raise SurfaceConfigError(str(exc)) from None

    def rerank_config(self) -> RerankConfig:
        return RerankConfig(
            weights=RankingWeights(**self.weights),
            filters=CandidateFilters(
                in_stock_only=self.in_stock_only,
                exclude_purchased=self.exclude_purchased,
                exclude_categories=frozenset(self.exclude_categories),
                exclude_items=frozenset(self.exclude_items),
            ),
            diversity=DiversityQuota(
                max_share_per_category=self.max_share_per_category,
                max_share_per_brand=self.max_share_per_brand,
                min_share_outside_top_categories=self.min_share_outside_top_categories,
            ),
            exploration=Exploration(share=self.exploration_share, under_exposed_below=self.under_exposed_below),
            size=self.size,
        )

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        for name in ("exclude_categories", "exclude_items", "curated_items"):
            data[name] = list(data[name])
        data["cold_start"] = [{**rule, "items": list(rule["items"])} for rule in data["cold_start"]]
        return data


# --- versioning --------------------------------------------------------------------------------


@transaction.atomic
def create_surface(
    key: str,
    name: str,
    config: Mapping[str, Any] | SurfaceConfig,
    *,
    kind: str = "grid",
    item_kinds: list[str] | None = None,
    by: str = "",
    note: str = "Created",
) -> Surface:
    surface = Surface.objects.create(key=key, name=name, kind=kind, item_kinds=item_kinds or ["product"])
    change_config(surface, config, by=by, note=note)
    surface.refresh_from_db()
    return surface


@transaction.atomic
def change_config(
    surface: Surface, config: Mapping[str, Any] | SurfaceConfig, *, by: str = "", note: str = ""
) -> SurfaceVersion:
    """Validate and store a new version, which serves from now on (every process within seconds)."""
    parsed = config if isinstance(config, SurfaceConfig) else SurfaceConfig.from_dict(config)
    parsed.validate()
    Surface.objects.select_for_update().filter(pk=surface.pk).first()  # one writer per surface
    last = SurfaceVersion.objects.filter(surface=surface).aggregate(n=Max("number"))["n"] or 0
    version = SurfaceVersion.objects.create(
        surface=surface, number=last + 1, config=parsed.to_dict(), created_by=by, note=note
    )
    Surface.objects.filter(pk=surface.pk).update(current_version=version)
    surface.current_version = version
    # This process serves it at once (and again after the commit); others within CHECK_SECONDS.
    _live.drop(surface.key)
    key = surface.key
    transaction.on_commit(lambda: _live.drop(key))
    return version


def rollback(surface: Surface, number: int, *, by: str = "", note: str = "") -> SurfaceVersion:
    """Serve an earlier version's configuration again, as a new version (the trail is kept)."""
    old = SurfaceVersion.objects.get(surface=surface, number=number)
    text = f"Rollback to version {number}" + (f": {note}" if note else "")
    return change_config(surface, old.config, by=by, note=text[:500])


@transaction.atomic
def change_surface(
    surface: Surface,
    *,
    name: str | None = None,
    kind: str | None = None,
    item_kinds: list[str] | None = None,
    config: Mapping[str, Any] | SurfaceConfig | None = None,
    by: str = "",
    note: str = "",
) -> SurfaceVersion | None:
    """Rename or re-kind a surface and, when ``config`` is given, save it as a new version."""
    changed = {k: v for k, v in (("name", name), ("kind", kind), ("item_kinds", item_kinds)) if v is not None}
    if changed:
        Surface.objects.filter(pk=surface.pk).update(**changed)
        for k, v in changed.items():
            setattr(surface, k, v)
    version = change_config(surface, config, by=by, note=note) if config is not None else None
    _live.drop(surface.key)
    return version


def current_config(surface: Surface) -> SurfaceConfig:
    version = surface.current_version
    return SurfaceConfig.from_dict(version.config) if version else SurfaceConfig()


# --- what serving reads ------------------------------------------------------------------------


@dataclass(frozen=True)
class LiveSurface:
    id: int
    key: str
    kind: str
    item_kinds: tuple[str, ...]
    version_number: int | None
    config: SurfaceConfig


class _LiveSurfaces:
    """Surfaces in process memory; versions are immutable, so a version's parsed config never expires."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.surfaces: dict[str, tuple[float, LiveSurface | None]] = {}
        self.versions: dict[int, tuple[int, SurfaceConfig]] = {}
        self.numbers: dict[tuple[int, int], int | None] = {}

    def get(self, key: str) -> LiveSurface | None:
        now = time.monotonic()
        found = self.surfaces.get(key)
        if found is not None and now - found[0] < CHECK_SECONDS:
            return found[1]
        row = Surface.objects.filter(key=key).values_list("id", "kind", "item_kinds", "current_version_id").first()
        live = None
        if row is not None:
            surface_id, kind, item_kinds, version_id = row
            number, config = self.version(version_id) if version_id else (None, SurfaceConfig())
            live = LiveSurface(surface_id, key, kind, tuple(item_kinds or ()), number, config)
        with self.lock:
            self.surfaces[key] = (now, live)
        return live

    def version(self, version_id: int) -> tuple[int, SurfaceConfig]:
        found = self.versions.get(version_id)
        if found is None:
            number, config = SurfaceVersion.objects.values_list("number", "config").get(pk=version_id)
            found = (number, SurfaceConfig.from_dict(config))
            with self.lock:
                self.versions[version_id] = found
        return found

    def version_by_number(self, surface_id: int, number: int) -> SurfaceConfig | None:
        if (surface_id, number) not in self.numbers:
            found = SurfaceVersion.objects.filter(surface_id=surface_id, number=number).values_list("id", flat=True)
            self.numbers[(surface_id, number)] = found.first()
        version_id = self.numbers[(surface_id, number)]
        return None if version_id is None else self.version(version_id)[1]

    def drop(self, key: str) -> None:
        with self.lock:
            self.surfaces.pop(key, None)

    def forget(self) -> None:
        with self.lock:
            self.surfaces.clear()
            self.versions.clear()
            self.numbers.clear()


_live = _LiveSurfaces()


def live_surface(key: str) -> LiveSurface | None:
    return _live.get(key)


def version_config(surface_id: int, number: int) -> SurfaceConfig | None:
    """A given version's configuration (experiments serve versions other than the current one)."""
    return _live.version_by_number(surface_id, number)


def forget_live_surfaces() -> None:
    """Drop this process's copy (tests; after a change that must show at once)."""
    _live.forget()


# --- what the marketer page shows ---------------------------------------------------------------


@dataclass(frozen=True)
class SurfaceSummary:
    key: str
    name: str
    kind: str
    version: int | None
    changed_by: str
    config: SurfaceConfig
    impressions: int
    click_through: float
    conversion: float


def summaries(days: int = 7) -> list[SurfaceSummary]:
    """Every surface with its current configuration and its click-through and conversion over ``days``."""
    from datetime import timedelta

    from django.db.models import Sum
    from django.utils import timezone

    from personalization.models import SurfaceDailyStats

    since = timezone.localdate() - timedelta(days=days)
    totals: dict[int, dict[str, Any]] = {
        row["surface_id"]: dict(row)
        for row in SurfaceDailyStats.objects.filter(day__gte=since)
        .values("surface_id")
        .annotate(impressions=Sum("impressions"), clicks=Sum("clicks"), purchases=Sum("purchases"))
    }
    found = []
    for surface in Surface.objects.select_related("current_version").order_by("key"):
        version = surface.current_version
        total: dict[str, Any] = totals.get(surface.pk, {})
        shown = int(total.get("impressions") or 0)
        found.append(
            SurfaceSummary(
                key=surface.key,
                name=surface.name,
                kind=surface.get_kind_display(),
                version=version.number if version else None,
                changed_by=version.created_by if version else "",
                config=SurfaceConfig.from_dict(version.config) if version else SurfaceConfig(),
                impressions=shown,
                click_through=(total.get("clicks") or 0) / shown if shown else 0.0,
                conversion=(total.get("purchases") or 0) / shown if shown else 0.0,
            )
        )
    return found
