"""Rules over people: who is in a campaign's audience, and which messages need approval.

A rule is JSON a marketer writes in the browser or the API::

    {"all": [
        {"field": "trait.plan", "op": "in", "value": ["pro", "enterprise"]},
        {"field": "affinity.category.Women", "op": "gte", "value": 0.3},
        {"field": "event.purchase", "op": "within_days", "value": 30},
        {"any": [{"field": "last_seen", "op": "within_days", "value": 14},
                 {"not": {"field": "trait.country", "op": "eq", "value": "Spain"}}]}
    ]}

Groups are ``all``, ``any`` and ``not``; an empty ``all`` matches everyone. Fields:

- ``trait.<name>`` (``plan``, ``country`` and ``email`` are shorthands): eq, ne, in, not_in, exists,
  not_exists, contains, gt, gte, lt, lte;
- ``affinity.category.<path>`` / ``affinity.brand.<name>``: the profile's decayed affinity (0..1): gt, gte,
  lt, lte;
- ``price_band``: eq, ne, in, not_in (budget, mid, premium);
- ``event.<kind>`` (view, add_to_cart, purchase, search, email_open, email_click, feature_activated,
  signup, page, unsubscribe): within_days, not_within_days (a number of days), ever, never, and how
  often: at_least / fewer_than with ``{"times": 3, "days": 30}`` (``days`` left out: ever);
- ``last_seen``: within_days, not_within_days;
- ``consent.<purpose>`` (personalization, email_marketing, analytics): granted, not_granted (no
  answer counts as not granted);
- ``segment``: eq, ne, in, not_in: the segment trait (``CAMPAIGN_SEGMENT_TRAIT``, plan by default)
  (any case) or one of the values of the ``segments`` trait (exactly);
- ``account.<plan|name|id>``: eq, ne, in, not_in, exists, not_exists: in an audience, the account
  the person's ``account_id`` / ``company_id`` / ``company`` trait names (plan and name as the
  accounts list holds them); in an approval rule, the message's account.

This module is free of Django: :func:`parse_rule` validates (errors name the path, e.g.
``audience.all.2.op``) and :func:`matches` evaluates a rule against flat facts, which is how
approval rules are applied; ``campaigns/people.py`` compiles audience rules to database queries.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

EVENT_KINDS = frozenset(
    {
        "view",
        "add_to_cart",
        "purchase",
        "search",
        "email_open",
        "email_click",
        "feature_activated",
        "signup",
        "page",
        "unsubscribe",
    }
)
CONSENT_PURPOSES = frozenset({"personalization", "email_marketing", "analytics"})
TRAIT_SHORTHANDS = {"plan": "trait.plan", "country": "trait.country", "email": "trait.email"}
ACCOUNT_FIELDS = frozenset({"plan", "name", "id"})

VALUE_OPS = frozenset({"eq", "ne", "in", "not_in", "exists", "not_exists", "contains", "gt", "gte", "lt", "lte"})
NUMBER_OPS = frozenset({"gt", "gte", "lt", "lte"})
CHOICE_OPS = frozenset({"eq", "ne", "in", "not_in"})
PRESENCE_OPS = frozenset({"eq", "ne", "in", "not_in", "exists", "not_exists"})
TIME_OPS = frozenset({"within_days", "not_within_days"})
COUNT_OPS = frozenset({"at_least", "fewer_than"})
EVENT_OPS = TIME_OPS | {"ever", "never"}
CONSENT_OPS = frozenset({"granted", "not_granted"})
MAX_DEPTH = 6
MAX_CONDITIONS = 50


class RuleError(ValueError):
    """A rule that cannot be used; ``attr`` is the dotted path of the offending part."""

    def __init__(self, attr: str, detail: str) -> None:
        super().__init__(f"{attr}: {detail}")
        self.attr, self.detail = attr, detail


@dataclass(frozen=True)
class Condition:
    field: str  # normalised: trait.x, affinity.category.x, affinity.brand.x, price_band, event.k, last_seen,
    # consent.p, segment, account.x
    op: str
    value: Any = None

    @property
    def namespace(self) -> str:
        return self.field.split(".", 1)[0]

    @property
    def name(self) -> str:
        """What follows the namespace: the trait, category, brand, event kind or account field."""
        if self.field.startswith("affinity."):
            return self.field.split(".", 2)[2]
        return self.field.split(".", 1)[1] if "." in self.field else ""


@dataclass(frozen=True)
class Group:
    kind: str  # all, any, not
    parts: tuple[Rule, ...]


Rule = Condition | Group


def _normalise_field(raw: Any, attr: str) -> str:
    if not isinstance(raw, str) or not raw.strip():
        raise RuleError(attr, "Name a field, e.g. 'trait.plan'.")
    name = TRAIT_SHORTHANDS.get(raw.strip(), raw.strip())
    if "__" in name or len(name) > 300:
        raise RuleError(attr, "A field name has no double underscores and at most 300 characters.")
    if name in ("price_band", "last_seen", "segment"):
        return name
    head, _, rest = name.partition(".")
    if head == "trait" and rest:
        return name
    if head == "affinity":
        kind, _, key = rest.partition(".")
        if kind in ("category", "brand") and key:
            return name
        raise RuleError(attr, "Use affinity.category.<category> or affinity.brand.<brand>.")
    if head == "event" and rest:
        if rest not in EVENT_KINDS:
            raise RuleError(attr, f"Unknown event kind {rest!r}; use one of {', '.join(sorted(EVENT_KINDS))}.")
        return name
    if head == "consent" and rest:
        if rest not in CONSENT_PURPOSES:
            purposes = ", ".join(sorted(CONSENT_PURPOSES))
            raise RuleError(attr, f"Unknown consent purpose {rest!r}; use one of {purposes}.")
        return name
    if head == "account" and rest:
        if rest not in ACCOUNT_FIELDS:
            raise RuleError(attr, f"Account fields are {', '.join(sorted(ACCOUNT_FIELDS))}.")
        return name
    raise RuleError(
        attr,
        f"Unknown field {raw!r}; use trait.<name>, affinity.category.<path>, event.<kind>, last_seen, price_band, "
        "consent.<purpose>, segment or account.<plan|name|id>.",
    )


def _allowed_ops(field: str) -> frozenset[str]:
    if field.startswith("trait."):
        return VALUE_OPS
    if field.startswith("affinity."):
        return NUMBER_OPS
    if field in ("price_band", "segment"):
        return CHOICE_OPS
    if field.startswith("event."):
        return EVENT_OPS | COUNT_OPS
    if field.startswith("consent."):
        return CONSENT_OPS
    if field == "last_seen":
        return TIME_OPS
    return PRESENCE_OPS  # account.*


def _check_value(op: str, value: Any, attr: str) -> Any:
    if op in ("exists", "not_exists", "ever", "never", "granted", "not_granted"):
        return None
    if op in COUNT_OPS:
        if not isinstance(value, Mapping) or set(value) - {"times", "days"}:
            raise RuleError(attr, 'Give {"times": n} and optionally "days".')
        times, days = value.get("times"), value.get("days")
        if isinstance(times, bool) or not isinstance(times, int) or not 1 <= times <= 10000:
            raise RuleError(f"{attr}.times", "Give a whole number of times between 1 and 10000.")
        if days is not None and (isinstance(days, bool) or not isinstance(days, int) or not 1 <= days <= 3650):
            raise RuleError(f"{attr}.days", "Give a whole number of days between 1 and 3650, or leave it out.")
        return {"times": times, "days": days} if days is not None else {"times": times}
    if op in ("in", "not_in"):
        if not isinstance(value, list) or not value or len(value) > 1000:
            raise RuleError(attr, "Give a list of 1 to 1000 values.")
        for item in value:
            if not isinstance(item, str | int | float | bool):
                raise RuleError(attr, "List values must be strings, numbers or booleans.")
        return list(value)
    if op in NUMBER_OPS:
        if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
            raise RuleError(attr, "Give a number.")
        return value
    if op in TIME_OPS:
        if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 3650:
            raise RuleError(attr, "Give a whole number of days between 1 and 3650.")
        return value
    if op == "contains":
        if not isinstance(value, str) or not value:
            raise RuleError(attr, "Give the text to look for.")
        return value
    if not isinstance(value, str | int | float | bool):
        raise RuleError(attr, "Give a string, number or boolean.")
    return value


def parse_rule(data: Any, attr: str = "rule") -> Rule:
    """Validate rule JSON; raises :class:`RuleError` naming the path of the first problem."""
    counter = [0]
    return _parse(data, attr, 0, counter)


def _parse(data: Any, attr: str, depth: int, counter: list[int]) -> Rule:
    if depth > MAX_DEPTH:
        raise RuleError(attr, f"Rules nest at most {MAX_DEPTH} levels deep.")
    if not isinstance(data, Mapping):
        raise RuleError(attr, 'A rule is an object: {"all": [...]}, {"any": [...]}, {"not": {...}} or a condition.')
    if not data:
        raise RuleError(attr, 'An empty rule; use {"all": []} for everyone, or write a condition.')
    groups = [key for key in ("all", "any", "not") if key in data]
    if groups:
        if len(data) != 1:
            raise RuleError(attr, "A group has exactly one key: all, any or not.")
        kind = groups[0]
        if kind == "not":
            return Group("not", (_parse(data["not"], f"{attr}.not", depth + 1, counter),))
        parts = data[kind]
        if not isinstance(parts, list):
            raise RuleError(f"{attr}.{kind}", "Give a list of rules.")
        if kind == "any" and not parts:
            raise RuleError(f"{attr}.any", "An empty 'any' matches nobody; leave it out.")
        return Group(
            kind,
            tuple(_parse(p, f"{attr}.{kind}.{i}", depth + 1, counter) for i, p in enumerate(parts)),
        )
    unknown = set(data) - {"field", "op", "value"}
    if unknown:
        raise RuleError(f"{attr}.{sorted(unknown)[0]}", "Unknown key; a condition has field, op and value.")
    counter[0] += 1
    if counter[0] > MAX_CONDITIONS:
        raise RuleError(attr, f"At most {MAX_CONDITIONS} conditions.")
    field = _normalise_field(data.get("field"), f"{attr}.field")
    op = data.get("op")
    allowed = _allowed_ops(field)
    if op not in allowed:
        raise RuleError(f"{attr}.op", f"For {field} use one of {', '.join(sorted(allowed))}.")
    return Condition(field, op, _check_value(op, data.get("value"), f"{attr}.value"))


def conditions(rule: Rule) -> list[Condition]:
    if isinstance(rule, Condition):
        return [rule]
    return [c for part in rule.parts for c in conditions(part)]


def is_everyone(rule: Rule) -> bool:
    return isinstance(rule, Group) and rule.kind == "all" and not rule.parts


# --- evaluation against facts -------------------------------------------------------------------------


def _compare(op: str, actual: Any, expected: Any) -> bool:
    if op == "exists":
        return actual not in (None, "")
    if op == "not_exists":
        return actual in (None, "")
    if op == "eq":
        return _same(actual, expected)
    if op == "ne":
        return not _same(actual, expected)
    if op == "in":
        return any(_same(actual, option) for option in expected)
    if op == "not_in":
        return not any(_same(actual, option) for option in expected)
    if op == "contains":
        return isinstance(actual, str) and expected.lower() in actual.lower()
    if op in NUMBER_OPS:
        number = _number(actual)
        if number is None:
            return False
        return {"gt": number > expected, "gte": number >= expected, "lt": number < expected, "lte": number <= expected}[
            op
        ]
    raise RuleError("op", f"{op} cannot be evaluated on facts")


def _same(actual: Any, expected: Any) -> bool:
    if isinstance(actual, str) and isinstance(expected, str):
        return actual.strip().lower() == expected.strip().lower()
    return bool(actual == expected)


def _number(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return None
    return None


def matches(rule: Rule, facts: Mapping[str, Any]) -> bool:
    """Evaluate a rule against flat facts: ``{"trait.plan": "pro", "account.plan": "enterprise",
    "affinity.category.Women": 0.4, "price_band": "mid", "event.purchase.days_ago": 3,
    "last_seen.days_ago": 1, "event.purchase.times.30": 2, "event.purchase.times.ever": 5,
    "consent.email_marketing": True, "segment": ["pro"]}`` (a missing ``days_ago`` means never, a
    missing count zero, a missing consent not granted)."""
    if isinstance(rule, Group):
        if rule.kind == "all":
            return all(matches(part, facts) for part in rule.parts)
        if rule.kind == "any":
            return any(matches(part, facts) for part in rule.parts)
        return not matches(rule.parts[0], facts)
    if rule.op in COUNT_OPS:
        days = rule.value.get("days")
        times = _number(facts.get(f"{rule.field}.times.{days if days is not None else 'ever'}")) or 0
        return times >= rule.value["times"] if rule.op == "at_least" else times < rule.value["times"]
    if rule.op in CONSENT_OPS:
        granted = facts.get(rule.field) is True
        return granted if rule.op == "granted" else not granted
    if rule.field == "segment":
        held = facts.get("segment") or []
        held = [held] if isinstance(held, str) else list(held)
        options = rule.value if rule.op in ("in", "not_in") else [rule.value]
        found = any(_same(h, o) for h in held for o in options)
        return found if rule.op in ("eq", "in") else not found
    if rule.op in EVENT_OPS:
        days_ago = _number(facts.get(f"{rule.field}.days_ago"))
        if rule.op == "ever":
            return days_ago is not None
        if rule.op == "never":
            return days_ago is None
        within = days_ago is not None and days_ago <= rule.value
        return within if rule.op == "within_days" else not within
    return _compare(rule.op, facts.get(rule.field), rule.value)


def describe(rule: Rule) -> str:
    """A short human reading of a rule, for the approval queue ("account.plan = enterprise")."""
    if isinstance(rule, Group):
        if rule.kind == "not":
            return f"not ({describe(rule.parts[0])})"
        if not rule.parts:
            return "everyone"
        joiner = " and " if rule.kind == "all" else " or "
        return joiner.join(
            describe(part) if isinstance(part, Condition) else f"({describe(part)})" for part in rule.parts
        )
    symbols = {"eq": "=", "ne": "≠", "gt": ">", "gte": "≥", "lt": "<", "lte": "≤"}
    if rule.op in symbols:
        return f"{rule.field} {symbols[rule.op]} {rule.value}"
    if rule.op in ("in", "not_in"):
        return f"{rule.field} {'in' if rule.op == 'in' else 'not in'} {', '.join(map(str, rule.value))}"
    if rule.op in ("within_days", "not_within_days"):
        return f"{rule.field} {'within' if rule.op == 'within_days' else 'not within'} {rule.value} days"
    if rule.op == "contains":
        return f"{rule.field} contains {rule.value!r}"
    if rule.op in COUNT_OPS:
        days = rule.value.get("days")
        since = f" in {days} days" if days is not None else ""
        return f"{rule.field} {rule.op.replace('_', ' ')} {rule.value['times']} times{since}"
    return f"{rule.field} {rule.op.replace('_', ' ')}"
