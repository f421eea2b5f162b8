"""``manage.py evaluate`` on tiny data, including data with no timestamps and no items.csv."""

from __future__ import annotations

import json
from collections.abc import Callable
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command

MODELS = {"engine", "popularity", "history+popularity", "item-knn", "ease", "als"}


def test_evaluate_without_timestamps_or_items_file(shop: Callable[..., Path], tmp_path: Path) -> None:
    folder = shop(timestamps=False, items_file=False, users_file=False)
    out = StringIO()
    call_command(
        "evaluate", str(folder), "--k", "5", "--json", str(tmp_path / "result.json"), stdout=out, stderr=StringIO()
    )
    result = json.loads((tmp_path / "result.json").read_text())
    assert result["k"] == 5
    assert {row["model"] for row in result["rows"]} == MODELS
    for row in result["rows"]:
        assert 0.0 <= row["recall"] <= 1.0 and 0.0 <= row["ndcg"] <= 1.0
        assert row["fit_seconds"] >= 0
    printed = out.getvalue()
    assert "fit_seconds" in printed and "engine training" in printed


def test_evaluate_with_a_given_test_file(shop: Callable[..., Path], tmp_path: Path) -> None:
    folder = shop()
    test_file = tmp_path / "test.csv"
    test_file.write_text("user_id,item_id,event_type\np0,TEARE,purchase\np1,GARBL,purchase\nnobody,TEARE,purchase\n")
    call_command(
        "evaluate",
        str(folder),
        "--test-file",
        str(test_file),
        "--json",
        str(tmp_path / "r.json"),
        stdout=StringIO(),
        stderr=StringIO(),
    )
    rows = json.loads((tmp_path / "r.json").read_text())["rows"]
    assert rows[0]["model"] == "engine"


def test_evaluate_with_a_cutoff_and_a_bad_one(shop: Callable[..., Path]) -> None:
    folder = shop()
    out = StringIO()
    call_command("evaluate", str(folder), "--cutoff", "2024-04-01", stdout=out, stderr=StringIO())
    assert "cutoff 2024-04-01" in out.getvalue()
    with pytest.raises(CommandError, match="2011-11-09"):
        call_command("evaluate", str(folder), "--cutoff", "April", stdout=StringIO(), stderr=StringIO())
