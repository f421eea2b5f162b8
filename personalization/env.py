"""Typed readers for settings from the environment. Each fails loudly on a value it cannot use."""

from __future__ import annotations

import os

from django.core.exceptions import ImproperlyConfigured


def envbool(name: str, default: str) -> bool:
    value = os.getenv(name, default=default)
    if value not in ("", "True", "False", "true", "false", "1", "0"):
        raise ImproperlyConfigured(f"Unexpected value {name}={value}, use 'True' or 'False'")
    return value in ("True", "true", "1")


def envint(name: str, default: str) -> int:
    value = os.getenv(name, default=default)
    try:
        return int(value)
    except ValueError:
        raise ImproperlyConfigured(f"Unexpected value {name}={value}, expected an integer") from None


def envfloat(name: str, default: str) -> float:
    value = os.getenv(name, default=default)
    try:
        return float(value)
    except ValueError:
        raise ImproperlyConfigured(f"Unexpected value {name}={value}, expected a number") from None


def envstr(name: str, default: str | None = None) -> str | None:
    value = os.getenv(name)
    return default if value in (None, "") else value


def envlist(name: str, default: str = "") -> list[str]:
    value = os.getenv(name, default=default)
    return [part.strip() for part in value.split(",") if part.strip()]
