"""Number formats of the model page: rates as percentages, changes with their sign."""

from __future__ import annotations

from typing import Any

from django import template

register = template.Library()


@register.filter
def percent(value: Any) -> str:
    if not isinstance(value, int | float):
        return "–"
    return f"{value:.1%}" if abs(value) < 0.1 else f"{value:.0%}"


@register.filter
def signed_percent(value: Any) -> str:
    if not isinstance(value, int | float):
        return "–"
    return f"{value:+.1%}" if abs(value) < 0.1 else f"{value:+.0%}"
