"""The console's journey builder form: its fields ↔ a journey definition, and the definition's
errors (``steps[2].hours``) ↔ the form field they name (``step-2-wait_amount``).

Fields: ``key``, ``name``; ``trigger_type``, ``trigger_event``, ``trigger_where`` (``a=1, b=x``),
``trigger_threshold``, ``trigger_period`` (``days``, ``billing_cycle``), ``trigger_period_days``,
``trigger_interest`` (repeated), ``trigger_within_days``,
``trigger_every``, ``trigger_weekday``, ``trigger_local_time``; per step ``n`` (0, 1, … in order):
``step-n-id``, ``step-n-type``, ``step-n-wait_mode`` (``duration``, ``until_local_time``,
``until_event``), ``step-n-wait_amount``, ``step-n-wait_unit``, ``step-n-until_local_time``,
``step-n-until_event``, ``step-n-timeout_hours``, ``step-n-cond`` (``did_event``, ``did_not_event``,
``trait``, ``consent``), ``step-n-cond_value``, ``step-n-equals``, ``step-n-then``, ``step-n-else``,
``step-n-campaign``; per exit condition ``exit-n-event``, ``exit-n-where``; ``reentry_mode``,
``cooldown_hours``, ``holdout_percent``.

``op`` changes the list without saving: ``add:<type>``, ``remove:n``, ``up:n``, ``down:n``,
``add_exit``, ``remove_exit:n``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from journeys import wording
from journeys.definition import MAX_STEPS, STEP_TYPES

UNITS = ("minutes", "hours", "days", "seconds")
WAIT_MODES = ("duration", "until_local_time", "until_event")
CONDITIONS = ("did_event", "did_not_event", "trait", "consent", "segment")
# The keys of a step or trigger the form has fields for; any other key a definition has is carried
# through unchanged (``step-n-extra``, ``trigger_extra``, as JSON), so saving never drops a setting.
STEP_KEYS = {
    "id",
    "type",
    "seconds",
    "minutes",
    "hours",
    "days",
    "until_local_time",
    "until_event",
    "timeout_hours",
    "timeout_seconds",
    "if",
    "then",
    "else",
    "campaign",
    "window_hours",
    "from",
    "instead_of",
    "picks",
    "surface",
    "item",
    "note",
}
TRIGGER_KEYS = {
    "type",
    "event",
    "where",
    "threshold",
    "period",
    "period_days",
    "per",
    "segment",
    "interest",
    "within_days",
    "min_drop_percent",
    "every",
    "weekday",
    "local_time",
}
STEP_LABELS = {
    "wait": "Wait",
    "branch": "Branch",
    "require_approval": "Require approval",
    "send_email": "Send an email",
    "update_surface": "Update a surface",
    "exit": "Exit",
}
MAX_EXITS = 10
BLANK: dict[str, Any] = {  # a new journey without a starter
    "trigger": {"type": "event", "event": ""},
    "steps": [{"id": "wait", "type": "wait", "hours": 1}],
    "exit_on": [],
    "reentry": {"mode": "after_exit", "cooldown_hours": 0},
    "holdout_share": 0.0,
}


class FormData(Protocol):
    def get(self, key: str, default: Any = None) -> Any: ...

    def getlist(self, key: str) -> list[Any]: ...


@dataclass
class BuilderForm:
    """What the builder shows: values by field, the steps and exit conditions as rows, errors by field."""

    values: dict[str, Any]
    steps: list[dict[str, Any]]
    exits: list[dict[str, Any]]
    errors: dict[str, str] = field(default_factory=dict)

    def step_rows(self) -> list[dict[str, Any]]:
        """Each step with its position, its words and its errors (for the template)."""
        definition = to_definition(self)
        names = wording.step_names(definition["steps"])
        rows = []
        for n, (row, step) in enumerate(zip(self.steps, definition["steps"], strict=True)):
            prefix = f"step-{n}-"
            rows.append(
                {
                    **row,
                    "n": n,
                    "number": n + 1,
                    "label": STEP_LABELS.get(row.get("type", ""), "Step"),
                    "summary": wording.step(step, names),
                    "errors": {k.removeprefix(prefix): v for k, v in self.errors.items() if k.startswith(prefix)},
                    "error": self.errors.get(f"step-{n}", ""),
                    "last": n == len(self.steps) - 1,
                }
            )
        return rows

    def exit_rows(self) -> list[dict[str, Any]]:
        return [
            {**row, "n": n, "errors": {k: v for k, v in self.errors.items() if k.startswith(f"exit-{n}-")}}
            for n, row in enumerate(self.exits)
        ]

    @property
    def step_ids(self) -> list[str]:
        return [str(s.get("id", "")) for s in self.steps]


# --- small readers -------------------------------------------------------------------------------


def _scalar(text: str) -> Any:
    """A form's text as a number or true/false when it reads as one, else the text."""
    text = text.strip()
    try:
        value = json.loads(text)
    except ValueError:
        return text
    return value if isinstance(value, (int, float, bool)) and not isinstance(value, dict) else text


def _number(text: Any) -> Any:
    """A number, or the text as given (the definition then says which field wants a number)."""
    text = str(text or "").strip()
    if not text:
        return None
    try:
        number = float(text)
    except ValueError:
        return text
    return int(number) if number.is_integer() else number


def parse_where(text: str) -> Any:
    """``currency=EUR, qty=2`` → {"currency": "EUR", "qty": 2}; a part without ``=`` stays text,
    so the definition refuses it with the field's name."""
    text = (text or "").strip()
    if not text:
        return {}
    found: dict[str, Any] = {}
    for part in text.split(","):
        if "=" not in part:
            return text
        name, value = part.split("=", 1)
        found[name.strip()] = _scalar(value)
    return found


def where_text(where: Any) -> str:
    if not isinstance(where, dict):
        return str(where or "")
    return ", ".join(f"{k}={json.dumps(v) if isinstance(v, bool) else v}" for k, v in where.items())


def _fmt(value: Any) -> str:
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return "" if value is None else str(value)


# --- definition → form ---------------------------------------------------------------------------


def _wait_row(step: dict[str, Any]) -> dict[str, Any]:
    row = {"wait_mode": "duration", "wait_amount": "", "wait_unit": "hours"}
    if "until_local_time" in step:
        row.update(wait_mode="until_local_time", until_local_time=step["until_local_time"])
    elif "until_event" in step:
        hours = step.get("timeout_hours")
        if hours is None and isinstance(step.get("timeout_seconds"), (int, float)):
            hours = step["timeout_seconds"] / 3600
        row.update(wait_mode="until_event", until_event=step["until_event"], timeout_hours=_fmt(hours))
    else:
        given = [u for u in ("days", "hours", "minutes", "seconds") if u in step]
        if given:
            row.update(wait_amount=_fmt(step[given[0]]), wait_unit=given[0])
        elif isinstance(step.get("seconds"), (int, float)):
            seconds = float(step["seconds"])
            for size, unit in ((86400, "days"), (3600, "hours"), (60, "minutes")):
                if seconds >= size and seconds % size == 0:
                    row.update(wait_amount=_fmt(seconds / size), wait_unit=unit)
                    break
            else:
                row.update(wait_amount=_fmt(seconds), wait_unit="seconds")
    return row


def _step_row(step: dict[str, Any]) -> dict[str, Any]:
    row: dict[str, Any] = {"id": step.get("id", ""), "type": step.get("type", "")}
    kind = row["type"]
    if kind == "wait":
        row.update(_wait_row(step))
    elif kind == "branch":
        found = step.get("if")
        condition: dict[str, Any] = found if isinstance(found, dict) else {}
        cond = next((c for c in CONDITIONS if c in condition), "did_event")
        row.update(
            cond=cond,
            cond_value=_fmt(condition.get(cond)),
            equals=_fmt(condition.get("equals")),
            then=step.get("then", ""),
            **{"else": step.get("else", "")},
        )
    elif kind == "send_email":
        row.update(
            campaign=step.get("campaign", ""),
            window_hours=_fmt(step.get("window_hours")),
            from_csm="on" if step.get("from") == "csm" else "",
            instead_of=", ".join(str(k) for k in step.get("instead_of") or []),
            picks=_fmt(step.get("picks")),
        )
    elif kind == "update_surface":
        row.update(
            surface=step.get("surface", ""),
            item=step.get("item", ""),
            note=step.get("note", ""),
            campaign=step.get("campaign", ""),
        )
    row["extra"] = _extra(step, STEP_KEYS)
    return row


def _extra(value: dict[str, Any], known: set[str]) -> str:
    rest = {k: v for k, v in value.items() if k not in known}
    return json.dumps(rest, ensure_ascii=False, sort_keys=True) if rest else ""


def _read_extra(text: Any) -> dict[str, Any]:
    try:
        found = json.loads(str(text or "") or "{}")
    except ValueError:
        return {}
    return found if isinstance(found, dict) else {}


def from_definition(definition: dict[str, Any], key: str = "", name: str = "") -> BuilderForm:
    trigger = definition.get("trigger") or {}
    reentry = definition.get("reentry") or {}
    holdout = definition.get("holdout_share") or 0
    values = {
        "key": key,
        "name": name,
        "trigger_type": trigger.get("type", "event"),
        "trigger_event": trigger.get("event", ""),
        "trigger_where": where_text(trigger.get("where")),
        "trigger_threshold": _fmt(trigger.get("threshold")),
        "trigger_period": trigger.get("period", "days"),
        "trigger_period_days": _fmt(trigger.get("period_days")),
        "trigger_interest": list(trigger.get("interest") or ["view", "add_to_cart"]),
        "trigger_within_days": _fmt(trigger.get("within_days", 30)),
        "trigger_every": trigger.get("every", "weekly"),
        "trigger_weekday": _fmt(trigger.get("weekday", 0)),
        "trigger_local_time": trigger.get("local_time", "09:00"),
        "trigger_per": trigger.get("per", "person"),
        "trigger_segment": trigger.get("segment", ""),
        "trigger_min_drop_percent": _fmt(trigger.get("min_drop_percent", 5)),
        "trigger_extra": _extra(trigger, TRIGGER_KEYS),
        "reentry_mode": reentry.get("mode", "after_exit"),
        "cooldown_hours": _fmt(reentry.get("cooldown_hours", 0)),
        "holdout_percent": _fmt(round(holdout * 100, 4)) if isinstance(holdout, (int, float)) else str(holdout),
    }
    steps = [_step_row(s) for s in definition.get("steps") or [] if isinstance(s, dict)]
    exits = [
        {"event": c.get("event", ""), "where": where_text(c.get("where"))}
        for c in definition.get("exit_on") or []
        if isinstance(c, dict)
    ]
    return BuilderForm(values, steps, exits)


# --- form → definition ---------------------------------------------------------------------------


def _text(data: FormData, name: str) -> str:
    return str(data.get(name, "") or "").strip()


def read_form(data: FormData) -> BuilderForm:
    """The form as posted (nothing validated yet), with ``op`` applied."""
    values: dict[str, Any] = {
        name: _text(data, name)
        for name in (
            "key",
            "name",
            "trigger_type",
            "trigger_event",
            "trigger_where",
            "trigger_threshold",
            "trigger_period",
            "trigger_period_days",
            "trigger_within_days",
            "trigger_every",
            "trigger_weekday",
            "trigger_local_time",
            "trigger_per",
            "trigger_segment",
            "trigger_min_drop_percent",
            "trigger_extra",
            "reentry_mode",
            "cooldown_hours",
            "holdout_percent",
        )
    }
    values["trigger_interest"] = [str(v) for v in data.getlist("trigger_interest")]
    step_fields = (
        "id",
        "type",
        "wait_mode",
        "wait_amount",
        "wait_unit",
        "until_local_time",
        "until_event",
        "timeout_hours",
        "cond",
        "cond_value",
        "equals",
        "then",
        "else",
        "campaign",
        "window_hours",
        "from_csm",
        "instead_of",
        "picks",
        "surface",
        "item",
        "note",
        "extra",
    )
    steps = []
    for n in range(MAX_STEPS + 1):
        if data.get(f"step-{n}-type") is None:
            break
        steps.append({f: _text(data, f"step-{n}-{f}") for f in step_fields})
    exits = []
    for n in range(MAX_EXITS + 1):
        if data.get(f"exit-{n}-event") is None:
            break
        exits.append({"event": _text(data, f"exit-{n}-event"), "where": _text(data, f"exit-{n}-where")})
    form = BuilderForm(values, steps, exits)
    apply_op(form, _text(data, "op"))
    return form


def _new_id(kind: str, taken: list[str]) -> str:
    base = {"send_email": "send", "require_approval": "approve"}.get(kind, kind)
    n = 1
    while f"{base}-{n}" in taken or (n == 1 and base in taken):
        n += 1
    return base if base not in taken else f"{base}-{n}"


def apply_op(form: BuilderForm, op: str) -> None:
    """Add, remove or move a step or an exit condition (the form is shown again, nothing saved)."""
    action, _, arg = op.partition(":")
    steps = form.steps
    index = int(arg) if arg.isdigit() else -1
    if action == "add" and arg in STEP_TYPES and len(steps) < MAX_STEPS:
        row: dict[str, Any] = {"id": _new_id(arg, form.step_ids), "type": arg}
        if arg == "wait":
            row.update(wait_mode="duration", wait_amount="1", wait_unit="hours")
        if arg == "branch":
            row.update(cond="did_event", cond_value="", then="", **{"else": ""})
        steps.append(row)
    elif action == "remove" and 0 <= index < len(steps):
        del steps[index]
    elif action == "up" and 0 < index < len(steps):
        steps[index - 1], steps[index] = steps[index], steps[index - 1]
    elif action == "down" and 0 <= index < len(steps) - 1:
        steps[index + 1], steps[index] = steps[index], steps[index + 1]
    elif action == "add_exit" and len(form.exits) < MAX_EXITS:
        form.exits.append({"event": "", "where": ""})
    elif action == "remove_exit" and 0 <= index < len(form.exits):
        del form.exits[index]


def _step_definition(row: Mapping[str, Any]) -> dict[str, Any]:
    step: dict[str, Any] = {**_read_extra(row.get("extra")), "id": row.get("id", ""), "type": row.get("type", "")}
    kind = step["type"]
    if kind == "wait":
        mode = row.get("wait_mode") or "duration"
        if mode == "until_local_time":
            step["until_local_time"] = row.get("until_local_time", "")
        elif mode == "until_event":
            step["until_event"] = row.get("until_event", "")
            step["timeout_hours"] = _number(row.get("timeout_hours"))
        else:
            unit = row.get("wait_unit") if row.get("wait_unit") in UNITS else "hours"
            step[str(unit)] = _number(row.get("wait_amount"))
    elif kind == "branch":
        cond = row.get("cond") if row.get("cond") in CONDITIONS else "did_event"
        condition: dict[str, Any] = {str(cond): row.get("cond_value", "")}
        if cond == "trait":
            condition["equals"] = _scalar(str(row.get("equals", "")))
        step["if"] = condition
        step["then"] = row.get("then", "")
        step["else"] = row.get("else", "")
    elif kind == "send_email":
        step["campaign"] = row.get("campaign", "")
        if row.get("window_hours"):
            step["window_hours"] = _number(row["window_hours"])
        if row.get("from_csm"):
            step["from"] = "csm"
        if row.get("instead_of"):
            step["instead_of"] = [k.strip() for k in str(row["instead_of"]).split(",") if k.strip()]
        if row.get("picks"):
            step["picks"] = _number(row["picks"])
    elif kind == "update_surface":
        step["surface"] = row.get("surface", "")
        if step["surface"] == "onboarding-checklist":
            step["item"] = row.get("item", "")
            step["note"] = row.get("note", "")
        else:
            step["campaign"] = row.get("campaign", "")
    return step


def to_definition(form: BuilderForm) -> dict[str, Any]:
    """The definition the form describes, to be validated by ``journeys.definition``."""
    v = form.values
    kind = v.get("trigger_type") or "event"
    trigger: dict[str, Any] = {**_read_extra(v.get("trigger_extra")), "type": kind}
    if kind in ("event", "event_count"):
        trigger["event"] = v.get("trigger_event", "")
        trigger["where"] = parse_where(v.get("trigger_where", ""))
    if kind == "event_count":
        trigger["threshold"] = _number(v.get("trigger_threshold"))
        if v.get("trigger_period") == "billing_cycle":
            trigger["period"] = "billing_cycle"
        else:
            trigger["period_days"] = _number(v.get("trigger_period_days"))
        if v.get("trigger_per") == "account":
            trigger["per"] = "account"
    if kind == "audience":
        trigger["segment"] = v.get("trigger_segment", "")
    if kind in ("back_in_stock", "price_drop"):
        trigger["interest"] = list(v.get("trigger_interest") or [])
        trigger["within_days"] = _number(v.get("trigger_within_days"))
    if kind == "price_drop":
        trigger["min_drop_percent"] = _number(v.get("trigger_min_drop_percent"))
    if kind == "schedule":
        trigger["every"] = v.get("trigger_every", "")
        trigger["local_time"] = v.get("trigger_local_time", "")
        if trigger["every"] == "weekly":
            trigger["weekday"] = _number(v.get("trigger_weekday"))
    percent = _number(v.get("holdout_percent")) or 0
    holdout = percent / 100 if isinstance(percent, (int, float)) else percent
    return {
        "trigger": trigger,
        "steps": [_step_definition(row) for row in form.steps],
        "exit_on": [{"event": e.get("event", ""), "where": parse_where(e.get("where", ""))} for e in form.exits],
        "reentry": {
            "mode": v.get("reentry_mode") or "after_exit",
            "cooldown_hours": _number(v.get("cooldown_hours")) or 0,
        },
        "holdout_share": holdout,
    }


# --- errors → fields -----------------------------------------------------------------------------

_STEP_FIELD = re.compile(r"^steps\[(\d+)\](?:\.(.+))?$")
_EXIT_FIELD = re.compile(r"^exit_on\[(\d+)\](?:\.(.+))?$")
_STEP_PARTS = {
    "id": "id",
    "type": "type",
    "seconds": "wait_amount",
    "minutes": "wait_amount",
    "hours": "wait_amount",
    "days": "wait_amount",
    "until_local_time": "until_local_time",
    "until_event": "until_event",
    "timeout_hours": "timeout_hours",
    "if": "cond",
    "if.did_event": "cond_value",
    "if.did_not_event": "cond_value",
    "if.trait": "cond_value",
    "if.consent": "cond_value",
    "if.segment": "cond_value",
    "window_hours": "window_hours",
    "from": "from_csm",
    "instead_of": "instead_of",
    "picks": "picks",
    "surface": "surface",
    "item": "item",
    "note": "note",
    "if.equals": "equals",
    "then": "then",
    "else": "else",
    "campaign": "campaign",
}


def field_for(path: str) -> str:
    """The form field a definition error names: ``definition.steps[2].hours`` → ``step-2-wait_amount``."""
    path = path.removeprefix("definition.")
    if path in ("key", "name", "steps", "exit_on", "definition", "status"):
        return {"exit_on": "exits", "definition": "general"}.get(path, path)
    if path.startswith("trigger"):
        part = path.removeprefix("trigger").lstrip(".").split(".")[0]
        return f"trigger_{part}" if part else "trigger_type"
    if path.startswith("reentry"):
        return "cooldown_hours" if path.endswith("cooldown_hours") else "reentry_mode"
    if path == "holdout_share":
        return "holdout_percent"
    step = _STEP_FIELD.match(path)
    if step:
        n, part = step.group(1), re.sub(r"\[\d+\]$", "", step.group(2) or "")
        return f"step-{n}-{_STEP_PARTS[part]}" if part in _STEP_PARTS else f"step-{n}"
    found = _EXIT_FIELD.match(path)
    if found:
        part = (found.group(2) or "event").split(".")[0]
        return f"exit-{found.group(1)}-{'where' if part == 'where' else 'event'}"
    return "general"


def error_text(path: str, detail: str) -> str:
    """The error in the form's own terms (the holdout is asked in percent)."""
    if path.removeprefix("definition.") == "holdout_share":
        return "Give a share from 0 to 50 %."
    return detail
