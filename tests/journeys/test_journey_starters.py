"""The starter journeys the console offers as templates: each one a valid definition."""

from __future__ import annotations

import pytest

from journeys import definition as spec
from journeys.starters import STARTERS, starter, starters


@pytest.mark.parametrize("key", sorted(STARTERS))
def test_every_starter_is_a_valid_definition(key: str) -> None:
    found = starter(key)
    assert found["name"] and found["description"]
    assert spec.validate(found["definition"])["steps"]


def test_starters_are_copies() -> None:
    first = starters()
    first["abandoned-cart"]["definition"]["steps"].clear()
    assert STARTERS["abandoned-cart"]["definition"]["steps"]


def test_an_unknown_starter_is_named() -> None:
    with pytest.raises(KeyError, match="no-such"):
        starter("no-such")
