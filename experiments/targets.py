"""What an experiment's variants refer to, checked by the app that owns it.

A variant's payload names things other apps own: ``{"surface_version": 3}`` a version of the surface
the experiment targets, ``{"model_version": 12}`` a trained model, ``{"template_variant": "b"}`` a
template variant of the campaign it targets. Experiments sit below those apps (they may not import
them), so each registers, when it loads, a check of the payloads aimed at its targets and a count of
the people a target can reach. Nothing unchecked is saved: a payload pointing at a version that
does not exist used to start and silently serve version 1.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

PayloadCheck = Callable[[str, Mapping[str, Any]], None]
"""(target key, payload) -> None; raises :class:`PayloadError` for what the payload gets wrong."""
AudienceCount = Callable[[str], int | None]
"""target key -> how many people it can reach (None: cannot tell)."""

# The payload keys serving and campaigns read, and the type each must have.
PAYLOAD_TYPES: dict[str, tuple[type, ...]] = {
    "holdout": (bool,),
    "surface_version": (int,),
    "model_version": (int, str),
    "template_variant": (str,),
    "subject": (str,),
    "send_time": (str,),
}


@dataclass(frozen=True)
class TargetChoice:
    """One thing an experiment may target, with what its variants may change (for the page that creates
    experiments): ``payloads`` are (payload, label) pairs, e.g. ``({"surface_version": 3}, "Version 3")``."""

    key: str
    name: str
    payloads: list[tuple[dict[str, Any], str]] = field(default_factory=list)


TargetChoices = Callable[[], list[TargetChoice]]
"""() -> the targets of a kind that exist now, each with the payloads its variants may choose."""

_checks: dict[str, list[PayloadCheck]] = {}
_audiences: dict[str, AudienceCount] = {}
_choices: dict[str, TargetChoices] = {}


class PayloadError(ValueError):
    """``field`` is the payload key at fault."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field, self.message = field, message


def register_target(
    target_kind: str,
    *,
    check: PayloadCheck | None = None,
    audience: AudienceCount | None = None,
    choices: TargetChoices | None = None,
) -> None:
    """Called from an app's ``ready()``; registering the same function twice has no effect."""
    if check is not None and check not in _checks.setdefault(target_kind, []):
        _checks[target_kind].append(check)
    if audience is not None:
        _audiences[target_kind] = audience
    if choices is not None:
        _choices[target_kind] = choices


def target_choices(target_kind: str) -> list[TargetChoice]:
    """The targets of ``target_kind`` the registered app offers (none registered: none)."""
    chooser = _choices.get(target_kind)
    return chooser() if chooser is not None else []


def check_payload(target_kind: str, target_key: str, payload: Any) -> None:
    """Raise :class:`PayloadError` for a payload that is not an object, has a value of the wrong type,
    or names something its target does not have."""
    if not isinstance(payload, Mapping):
        raise PayloadError("payload", "The payload must be an object.")
    for name, value in payload.items():
        types = PAYLOAD_TYPES.get(name)
        if types is not None and (not isinstance(value, types) or (bool not in types and isinstance(value, bool))):
            raise PayloadError(name, f"{name} must be {' or '.join(t.__name__ for t in types)}.")
    for check in _checks.get(target_kind, []):
        check(target_key, payload)


def model_version_number(value: Any) -> int | None:
    """``12``, ``"12"`` or ``"v12"`` -> 12; anything else None (as serving reads it)."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.lstrip("v").isdigit():
        return int(value.lstrip("v"))
    return None


def eligible_audience(target_kind: str, target_key: str) -> int | None:
    """How many people the experiment's target can reach: the registered count for its kind (a
    campaign's audience), else every known person (a surface or global experiment may reach anyone)."""
    counter = _audiences.get(target_kind)
    if counter is not None:
        return counter(target_key)
    from profiles.models import Person

    return Person.objects.filter(merged_into__isnull=True).count()
