"""Convert Last.fm 2K (``user_artists.dat``) into the interchange format.

Following ``shared/data/lastfm-2k/README.md``: one ``play`` event per (person, artist) pair, the
play count as its quantity (a strength; the test is binary) and no timestamp. The timestamp
column is written empty on purpose, so that ``load_interchange`` reports ``has_timestamps`` False
rather than anyone reading time into the row order. This copy has no artist names, so no
``items.csv`` is written. Plain Python, free of Django.
"""

from __future__ import annotations

import csv
import os
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from catalog.interchange import EVENT_COLUMNS

SOURCE_FILE = "user_artists.dat"


@dataclass
class LastfmReport:
    pairs: int = 0
    people: int = 0
    artists: int = 0
    dropped: Counter[str] = field(default_factory=Counter)


def convert(src: str | os.PathLike[str], out_dir: str | os.PathLike[str]) -> LastfmReport:
    source = Path(src)
    if source.is_dir():
        source = source / SOURCE_FILE
    if not source.exists():
        raise FileNotFoundError(f"{source} does not exist")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    report = LastfmReport()
    people: set[str] = set()
    artists: set[str] = set()
    seen: set[tuple[str, str]] = set()
    with (
        open(source, encoding="utf-8", newline="") as handle,
        open(out / "events.csv", "w", newline="", encoding="utf-8") as sink,
    ):
        writer = csv.writer(sink)
        writer.writerow(EVENT_COLUMNS)
        for number, line in enumerate(handle):
            row = line.rstrip("\r\n").split("\t")
            if number == 0 and row[0].strip() == "userID":
                continue
            if not line.strip():
                continue
            if len(row) < 3 or not row[0].strip() or not row[1].strip():
                report.dropped["unreadable line"] += 1
                continue
            user, artist, plays = (value.strip() for value in row[:3])
            try:
                count = int(float(plays))
            except ValueError:
                report.dropped["unreadable play count"] += 1
                continue
            if count <= 0:
                report.dropped["play count <= 0"] += 1
                continue
            if (user, artist) in seen:
                report.dropped["repeated (person, artist) pair"] += 1
                continue
            seen.add((user, artist))
            writer.writerow((user, artist, "play", "", count, "", ""))
            people.add(user)
            artists.add(artist)
            report.pairs += 1
    report.people, report.artists = len(people), len(artists)
    return report
