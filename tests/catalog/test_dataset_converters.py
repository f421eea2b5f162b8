"""``convert_movielens`` and ``convert_lastfm`` on small files written in the originals' layouts."""

from __future__ import annotations

from io import StringIO
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command

from personalization.engine.dataset import load_interchange

GENRES = "unknown|0\nAction|1\nComedy|2\nDrama|3\n\n"


def _movielens(folder: Path) -> Path:
    folder.mkdir()
    (folder / "u.data").write_text("1\t10\t5\t881250949\n2\t10\t1\t881250000\n1\t20\t3\t881250950\nbroken line\n")
    (folder / "u.item").write_bytes(
        "10|Mis\xe9rables, Les (1995)|01-Jan-1995||http://x|0|1|0|1\n"
        "20|GoldenEye (1995)|||http://y|0|1|1|0\n"
        "30|unknown||||1|0|0|0\n".encode("latin-1")
    )
    (folder / "u.genre").write_text(GENRES)
    (folder / "u.user").write_text("1|24|M|technician|85711\n2|17|F|student|94043\n")
    return folder


def test_convert_movielens_writes_every_rating_with_its_time_and_the_items_and_people(tmp_path: Path) -> None:
    out = StringIO()
    call_command("convert_movielens", str(_movielens(tmp_path / "ml")), str(tmp_path / "out"), stdout=out)
    assert "3 rating events, 2 people, 3 items" in out.getvalue()
    assert "1 dropped: unreadable line" in out.getvalue()
    events = (tmp_path / "out" / "events.csv").read_text().splitlines()
    assert events[0] == "user_id,item_id,event_type,timestamp,quantity,price,order_id,rating"
    assert events[1:] == ["1,10,rating,881250949,,,,5", "2,10,rating,881250000,,,,1", "1,20,rating,881250950,,,,3"]
    items = (tmp_path / "out" / "items.csv").read_text(encoding="utf-8").splitlines()
    assert items[1] == '10,"Misérables, Les (1995)",,"Action, Drama",,,1995-01-01'
    assert items[2] == '20,GoldenEye (1995),,"Action, Comedy",,,'
    assert items[3] == "30,,,unknown,,,"
    users = (tmp_path / "out" / "users.csv").read_text().splitlines()
    assert users == ["user_id,age_band,gender,occupation", "1,18-24,M,technician", "2,under 18,F,student"]

    dataset = load_interchange(tmp_path / "out")
    assert dataset.has_timestamps
    assert dataset.event_types == ["rating"] and len(dataset.events) == 3
    assert "Misérables" in dataset.catalogue.texts[dataset.catalogue.index["10"]]


def test_convert_movielens_names_a_missing_file(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    with pytest.raises(CommandError, match=r"u\.data does not exist"):
        call_command("convert_movielens", str(tmp_path / "empty"), str(tmp_path / "out"), stdout=StringIO())


def test_convert_lastfm_writes_one_play_per_pair_and_no_time(tmp_path: Path) -> None:
    source = tmp_path / "lastfm"
    source.mkdir()
    (source / "user_artists.dat").write_text(
        "userID\tartistID\tweight\n2\t51\t13883\n2\t52\t11690\n3\t51\t7\n3\t51\t9\n4\t60\t0\n4\tx\n"
    )
    out = StringIO()
    call_command("convert_lastfm", str(source), str(tmp_path / "out"), stdout=out)
    text = out.getvalue()
    assert "3 play events (no timestamps), 2 people, 2 artists" in text
    assert "1 dropped: repeated (person, artist) pair" in text
    assert "1 dropped: play count <= 0" in text and "1 dropped: unreadable line" in text
    events = (tmp_path / "out" / "events.csv").read_text().splitlines()
    assert events[1:] == ["2,51,play,,13883,,", "2,52,play,,11690,,", "3,51,play,,7,,"]
    assert not (tmp_path / "out" / "items.csv").exists()

    dataset = load_interchange(tmp_path / "out")
    assert dataset.has_timestamps is False
    assert dataset.events.quantity.tolist() == [13883.0, 11690.0, 7.0]
