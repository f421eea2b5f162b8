"""The console's surface editor form: its fields ↔ a surface configuration, validated by the API's
serializer so the page and the API refuse the same things, each error beside its field.

Form fields: ``size``; ``w_<weight>``; ``in_stock_only``, ``exclude_purchased`` (checkboxes);
``exclude_categories``, ``exclude_items``, ``curated_items`` (repeated); the shares in percent;
``under_exposed_below``, ``new_item_days``; ``q_<source>`` (blank: the engine's default); cold-start rows
``cs<n>_<country|device|referrer|interest|role|segment|reason>`` and repeated ``cs<n>_items``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from personalization.engine.candidates import SOURCES
from personalization.surface_compare import WEIGHT_NAMES
from personalization.surfaces import CONTEXT_KEYS

PERCENT_FIELDS = (
    "max_share_per_category",
    "max_share_per_brand",
    "min_share_outside_top_categories",
    "exploration_share",
)
RULE_TEXT = (*CONTEXT_KEYS, "segment", "reason")
MAX_RULES = 20


class FormData(Protocol):
    def get(self, key: str, default: Any = None) -> Any: ...

    def getlist(self, key: str) -> list[Any]: ...


@dataclass
class EditorForm:
    """What the page shows in the editor: values by field name, errors by field name."""

    values: dict[str, Any]
    rules: list[dict[str, Any]]
    errors: dict[str, str] = field(default_factory=dict)

    @property
    def weights(self) -> list[dict[str, Any]]:
        return [
            {"name": w, "field": f"w_{w}", "value": self.values[f"w_{w}"], "error": self.errors.get(f"w_{w}", "")}
            for w in WEIGHT_NAMES
        ]

    @property
    def quotas(self) -> list[dict[str, Any]]:
        return [
            {"source": s, "field": f"q_{s}", "value": self.values[f"q_{s}"], "error": self.errors.get(f"q_{s}", "")}
            for s in SOURCES
        ]


def _fmt(value: float) -> str:
    return f"{value:g}"


def form_for(config: Mapping[str, Any]) -> EditorForm:
    """The editor filled with a stored configuration."""
    weights = config.get("weights") or {"relevance": 1.0}
    values: dict[str, Any] = {
        "size": str(config.get("size", 20)),
        "in_stock_only": bool(config.get("in_stock_only", True)),
        "exclude_purchased": bool(config.get("exclude_purchased", False)),
        "exclude_categories": list(config.get("exclude_categories") or []),
        "exclude_items": list(config.get("exclude_items") or []),
        "curated_items": list(config.get("curated_items") or []),
        "under_exposed_below": str(config.get("under_exposed_below", 100)),
        "new_item_days": _fmt(float(config.get("new_item_days", 30.0))),
    }
    for w in WEIGHT_NAMES:
        values[f"w_{w}"] = _fmt(float(weights.get(w, 0.0)))
    defaults = {"max_share_per_category": 1.0, "max_share_per_brand": 1.0}
    for name in PERCENT_FIELDS:
        values[name] = _fmt(round(float(config.get(name, defaults.get(name, 0.0))) * 100, 4))
    quotas = config.get("source_quotas") or {}
    for s in SOURCES:
        values[f"q_{s}"] = str(quotas[s]) if s in quotas else ""
    rules = []
    for rule in config.get("cold_start") or []:
        row = {k: (rule.get("when") or {}).get(k, "") for k in CONTEXT_KEYS}
        row.update(segment=rule.get("segment", ""), reason=rule.get("reason", ""), items=list(rule.get("items") or []))
        rules.append(row)
    return EditorForm(values, rules)


def read_form(data: FormData) -> tuple[EditorForm, dict[str, Any]]:
    """The posted editor as it was typed (to show again) and as a configuration (to validate)."""
    errors: dict[str, str] = {}
    values: dict[str, Any] = {
        "size": (data.get("size") or "").strip(),
        "in_stock_only": data.get("in_stock_only") == "on",
        "exclude_purchased": data.get("exclude_purchased") == "on",
        "exclude_categories": [v for v in data.getlist("exclude_categories") if v],
        "exclude_items": _unique(data.getlist("exclude_items")),
        "curated_items": _unique(data.getlist("curated_items")),
        "under_exposed_below": (data.get("under_exposed_below") or "").strip(),
        "new_item_days": (data.get("new_item_days") or "").strip(),
    }
    for w in WEIGHT_NAMES:
        values[f"w_{w}"] = (data.get(f"w_{w}") or "").strip()
    for name in PERCENT_FIELDS:
        values[name] = (data.get(name) or "").strip()
    for s in SOURCES:
        values[f"q_{s}"] = (data.get(f"q_{s}") or "").strip()

    config: dict[str, Any] = {
        "in_stock_only": values["in_stock_only"],
        "exclude_purchased": values["exclude_purchased"],
        "exclude_categories": values["exclude_categories"],
        "exclude_items": values["exclude_items"],
        "curated_items": values["curated_items"],
    }
    config["size"] = _integer(values["size"], "size", errors)
    config["under_exposed_below"] = _integer(values["under_exposed_below"], "under_exposed_below", errors)
    config["new_item_days"] = _decimal(values["new_item_days"], "new_item_days", errors)
    config["weights"] = {w: _decimal(values[f"w_{w}"] or "0", f"w_{w}", errors) for w in WEIGHT_NAMES}
    for name in PERCENT_FIELDS:
        percent = _decimal(values[name], name, errors)
        if isinstance(percent, float) and not 0.0 <= percent <= 100.0:
            errors[name] = "Between 0 and 100 %."
        config[name] = round(percent / 100.0, 6) if isinstance(percent, float) else percent
    config["source_quotas"] = {
        s: _integer(values[f"q_{s}"], f"q_{s}", errors) for s in SOURCES if values[f"q_{s}"] != ""
    }

    rules: list[dict[str, Any]] = []
    config["cold_start"] = []
    count = min(_count(data.get("cs_count")), MAX_RULES)
    for n in range(count):
        row = {k: (data.get(f"cs{n}_{k}") or "").strip() for k in RULE_TEXT}
        row["items"] = _unique(data.getlist(f"cs{n}_items"))
        if not any(row[k] for k in RULE_TEXT) and not row["items"]:
            continue  # an empty row: nothing to keep
        position = len(rules)
        rules.append(row)
        rule: dict[str, Any] = {"when": {k: row[k] for k in CONTEXT_KEYS if row[k]}, "items": row["items"]}
        rule.update(segment=row["segment"], reason=row["reason"])
        if not rule["when"]:
            errors[f"cs{position}_when"] = "Say when the rule applies (a country, device, referrer, interest or role)."
        config["cold_start"].append(rule)
    return EditorForm(values, rules, errors), config


def field_for(path: str) -> str:
    """The form field an error on a configuration path belongs to (``weights.margin`` → ``w_margin``)."""
    parts = path.split(".")
    head = parts[0]
    if head == "weights":
        return f"w_{parts[1]}" if len(parts) > 1 and parts[1] in WEIGHT_NAMES else "weights"
    if head == "source_quotas":
        return f"q_{parts[1]}" if len(parts) > 1 else "source_quotas"
    if head == "cold_start" and len(parts) > 2 and parts[1].isdigit():
        n, rest = parts[1], parts[2]
        if rest == "when":
            return f"cs{n}_{parts[3]}" if len(parts) > 3 and parts[3] in CONTEXT_KEYS else f"cs{n}_when"
        return f"cs{n}_{rest}"
    return head


def flatten_errors(detail: Any, path: tuple[str, ...] = ()) -> dict[str, str]:
    """DRF's nested error detail as {dotted path: first message}."""
    found: dict[str, str] = {}
    if isinstance(detail, dict):
        for key, value in detail.items():
            found.update(flatten_errors(value, (*path, str(key))))
    elif isinstance(detail, list):
        if detail and all(isinstance(v, str) for v in detail):
            found[".".join(path)] = str(detail[0])
        else:
            for n, value in enumerate(detail):
                if value:
                    found.update(flatten_errors(value, (*path, str(n))))
    elif detail:
        found[".".join(path)] = str(detail)
    return found


def _unique(values: list[str]) -> list[str]:
    seen: list[str] = []
    for v in values:
        v = v.strip()
        if v and v not in seen:
            seen.append(v)
    return seen


def _count(raw: Any) -> int:
    try:
        return max(0, int(raw))
    except (TypeError, ValueError):
        return 0


def _integer(raw: str, name: str, errors: dict[str, str]) -> Any:
    if raw == "":
        errors[name] = "Required."
        return raw
    try:
        return int(raw)
    except ValueError:
        errors[name] = "A whole number."
        return raw


def _decimal(raw: str, name: str, errors: dict[str, str]) -> Any:
    if raw == "":
        errors[name] = "Required."
        return raw
    try:
        value = float(raw.replace(",", "."))
    except ValueError:
        value = math.nan
    if not math.isfinite(value):
        errors[name] = "A number."
        return raw
    return value
