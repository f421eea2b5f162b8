"""``key=value`` overrides of ``EngineConfig`` fields, parsed to each field's declared type.

Used by ``manage.py evaluate --set`` and ``bench/quality.py``; an unknown key or a value that does
not parse is a ``ValueError`` naming the key. Free of Django.
"""

from __future__ import annotations

import json
import types
import typing
from dataclasses import fields, replace
from typing import Any

from personalization.engine.config import EngineConfig

TRUE, FALSE = ("true", "yes", "1", "on"), ("false", "no", "0", "off")


def _parse(key: str, text: str, kind: Any) -> Any:
    origin = typing.get_origin(kind)
    if origin in (typing.Union, types.UnionType):
        options = [a for a in typing.get_args(kind) if a is not type(None)]
        if type(None) in typing.get_args(kind) and text.strip().lower() in ("none", "null", ""):
            return None
        errors = []
        for option in options:
            try:
                return _parse(key, text, option)
            except ValueError as exc:
                errors.append(str(exc))
        raise ValueError(errors[0] if errors else f"{key}: cannot parse {text!r}")
    if origin is typing.Literal:
        allowed = typing.get_args(kind)
        for value in allowed:
            if str(value) == text:
                return value
        raise ValueError(f"{key} must be one of {', '.join(map(str, allowed))}, got {text!r}")
    if kind is bool:
        lowered = text.strip().lower()
        if lowered in TRUE or lowered in FALSE:
            return lowered in TRUE
        raise ValueError(f"{key} must be true or false, got {text!r}")
    if kind is int:
        try:
            return int(text)
        except ValueError:
            raise ValueError(f"{key} must be a whole number, got {text!r}") from None
    if kind is float:
        try:
            return float(text)
        except ValueError:
            raise ValueError(f"{key} must be a number, got {text!r}") from None
    if kind is str:
        return text
    try:
        value = json.loads(text)
    except json.JSONDecodeError:
        raise ValueError(f"{key} must be JSON ({kind}), got {text!r}") from None
    expected = origin or kind
    if isinstance(expected, type) and not isinstance(value, expected):
        raise ValueError(f"{key} must be JSON of type {expected.__name__}, got {text!r}")
    return value


def apply_overrides(config: EngineConfig, pairs: list[str]) -> EngineConfig:
    """``config`` with each ``key=value`` of ``pairs`` applied; ``quotas.history=100`` changes one
    entry of a dict field."""
    hints = typing.get_type_hints(EngineConfig)
    known = {f.name for f in fields(EngineConfig)}
    changes: dict[str, Any] = {}
    for pair in pairs:
        key, equals, text = pair.partition("=")
        key = key.strip()
        if not equals or not key:
            raise ValueError(f"expected key=value, got {pair!r}")
        name, dot, entry = key.partition(".")
        if name not in known:
            raise ValueError(f"unknown engine setting {name!r}; known: {', '.join(sorted(known))}")
        if dot:
            current = changes.get(name, getattr(config, name))
            if not isinstance(current, dict):
                raise ValueError(f"{name} is not a mapping, so {key!r} means nothing")
            value_types = typing.get_args(hints[name])
            updated = dict(current)
            updated[entry] = _parse(key, text, value_types[1] if len(value_types) == 2 else Any)
            changes[name] = updated
        else:
            changes[name] = _parse(name, text, hints[name])
    return replace(config, **changes)
