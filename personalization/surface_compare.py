"""What a marketer reads before and after changing a surface: a draft's answer against the live one
(items in and out, moved up or down, category mix) and a version's configuration against the one
before it, in words. Plain Python, free of Django."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class ShownItem:
    item_id: str
    title: str
    category: str
    reason: str


@dataclass(frozen=True)
class ComparedItem:
    position: int  # 1-based
    item: ShownItem
    change: str  # "new" | "out" | "up" | "down" | "same"
    moved: int = 0  # places moved (draft side)

    @property
    def label(self) -> str:
        if self.change == "new":
            return "in"
        if self.change == "out":
            return "out"
        if self.change == "up":
            return f"▲ {self.moved}"
        if self.change == "down":
            return f"▼ {self.moved}"
        return ""


@dataclass(frozen=True)
class CategoryShare:
    category: str
    live: int
    draft: int

    @property
    def delta(self) -> int:
        return self.draft - self.live


@dataclass(frozen=True)
class ListComparison:
    live: list[ComparedItem]
    draft: list[ComparedItem]
    categories: list[CategoryShare]

    @property
    def added(self) -> int:
        return sum(1 for c in self.draft if c.change == "new")

    @property
    def removed(self) -> int:
        return sum(1 for c in self.live if c.change == "out")

    @property
    def moved(self) -> int:
        return sum(1 for c in self.draft if c.change in ("up", "down"))

    @property
    def unchanged(self) -> bool:
        return not (self.added or self.removed or self.moved)


def compare_lists(live: Sequence[ShownItem], draft: Sequence[ShownItem]) -> ListComparison:
    live_at = {item.item_id: n for n, item in enumerate(live)}
    draft_at = {item.item_id: n for n, item in enumerate(draft)}
    draft_rows = []
    for n, item in enumerate(draft):
        before = live_at.get(item.item_id)
        if before is None:
            draft_rows.append(ComparedItem(n + 1, item, "new"))
        elif before > n:
            draft_rows.append(ComparedItem(n + 1, item, "up", before - n))
        elif before < n:
            draft_rows.append(ComparedItem(n + 1, item, "down", n - before))
        else:
            draft_rows.append(ComparedItem(n + 1, item, "same"))
    live_rows = [
        ComparedItem(n + 1, item, "same" if item.item_id in draft_at else "out") for n, item in enumerate(live)
    ]
    live_mix = Counter(item.category or "(none)" for item in live)
    draft_mix = Counter(item.category or "(none)" for item in draft)
    categories = sorted(
        (CategoryShare(c, live_mix[c], draft_mix[c]) for c in set(live_mix) | set(draft_mix)),
        key=lambda s: (-max(s.live, s.draft), s.category),
    )
    return ListComparison(live_rows, draft_rows, categories)


# --- configuration, in words --------------------------------------------------------------------

SHARES = {
    "max_share_per_category": "Most of the list from one category",
    "max_share_per_brand": "Most of the list from one brand",
    "min_share_outside_top_categories": "Least from outside the person's top categories",
    "exploration_share": "Exploration",
}
PLAIN = {
    "size": "Items per answer",
    "under_exposed_below": "Under-exposed below (impressions)",
    "new_item_days": "New for (days)",
}
SWITCHES = {"in_stock_only": "In stock only", "exclude_purchased": "Hide what the person bought"}
WEIGHT_NAMES = ("relevance", "margin", "freshness", "stock", "popularity")
DEFAULTS: dict[str, Any] = {
    "size": 20,
    "weights": {"relevance": 1.0},
    "in_stock_only": True,
    "exclude_purchased": False,
    "exclude_categories": [],
    "exclude_items": [],
    "max_share_per_category": 1.0,
    "max_share_per_brand": 1.0,
    "min_share_outside_top_categories": 0.0,
    "exploration_share": 0.0,
    "under_exposed_below": 100,
    "new_item_days": 30.0,
    "source_quotas": {},
    "curated_items": [],
    "cold_start": [],
}


def _number(value: Any) -> str:
    return f"{float(value):g}"


def _percent(value: Any) -> str:
    return f"{float(value) * 100:g} %"


def _names(ids: Sequence[str], titles: Mapping[str, str]) -> str:
    return ", ".join(titles.get(i) or i for i in ids)


def _set_change(label: str, old: Sequence[str], new: Sequence[str], titles: Mapping[str, str]) -> list[str]:
    added = [i for i in new if i not in old]
    removed = [i for i in old if i not in new]
    parts = []
    if added:
        parts.append(f"added {_names(added, titles)}")
    if removed:
        parts.append(f"removed {_names(removed, titles)}")
    if not parts and list(old) != list(new):
        parts.append("new order: " + _names(new, titles))
    return [f"{label}: {'; '.join(parts)}"] if parts else []


def describe_rule(rule: Mapping[str, Any], titles: Mapping[str, str]) -> str:
    when = ", ".join(f"{k} {v}" for k, v in (rule.get("when") or {}).items()) or "any visitor"
    shows = []
    if rule.get("items"):
        shows.append(_names(rule["items"], titles))
    if rule.get("segment"):
        shows.append(f"popular in {rule['segment']}")
    text = f"when {when}: " + ("; ".join(shows) or "the engine's newcomer list")
    return text + (f" (“{rule['reason']}”)" if rule.get("reason") else "")


def config_changes(old: Mapping[str, Any], new: Mapping[str, Any], titles: Mapping[str, str]) -> list[str]:
    """What changed from ``old`` to ``new``, one line a setting, in the console's words."""
    before, after = {**DEFAULTS, **old}, {**DEFAULTS, **new}
    lines: list[str] = []
    for name, label in PLAIN.items():
        if before[name] != after[name]:
            lines.append(f"{label}: {_number(before[name])} → {_number(after[name])}")
    for weight in WEIGHT_NAMES:
        was = float(before["weights"].get(weight, 1.0 if weight == "relevance" else 0.0))
        now = float(after["weights"].get(weight, 1.0 if weight == "relevance" else 0.0))
        if was != now:
            lines.append(f"Weight on {weight}: {_number(was)} → {_number(now)}")
    for name, label in SWITCHES.items():
        if bool(before[name]) != bool(after[name]):
            lines.append(f"{label}: {'on' if before[name] else 'off'} → {'on' if after[name] else 'off'}")
    for name, label in SHARES.items():
        if float(before[name]) != float(after[name]):
            lines.append(f"{label}: {_percent(before[name])} → {_percent(after[name])}")
    lines += _set_change("Excluded categories", before["exclude_categories"], after["exclude_categories"], {})
    lines += _set_change("Excluded items", before["exclude_items"], after["exclude_items"], titles)
    for source in sorted(set(before["source_quotas"]) | set(after["source_quotas"])):
        was, now = before["source_quotas"].get(source), after["source_quotas"].get(source)
        if was != now:
            lines.append(
                f"Candidates from {source}: {'engine default' if was is None else was} → "
                f"{'engine default' if now is None else now}"
            )
    lines += _set_change("Curated default", before["curated_items"], after["curated_items"], titles)
    old_rules = [describe_rule(r, titles) for r in before["cold_start"]]
    new_rules = [describe_rule(r, titles) for r in after["cold_start"]]
    lines += [f"Cold-start rule added: {r}" for r in new_rules if r not in old_rules]
    lines += [f"Cold-start rule removed: {r}" for r in old_rules if r not in new_rules]
    if not lines and before != after:
        lines.append("Same settings, written differently")
    return lines


def referenced_items(config: Mapping[str, Any]) -> set[str]:
    """Item ids a configuration names (for looking up their titles)."""
    found = set(config.get("curated_items") or ()) | set(config.get("exclude_items") or ())
    for rule in config.get("cold_start") or ():
        found |= set(rule.get("items") or ())
    return found
