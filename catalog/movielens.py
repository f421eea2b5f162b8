"""Convert MovieLens 100K (``u.data``, ``u.item``, ``u.genre``, ``u.user``) into the interchange format.

Following ``shared/data/ml-100k/README.md``: every rating is one ``rating`` event at its Unix
timestamp, whatever its value (the value is kept in an extra ``rating`` column, which the loader
ignores); items get their title, their genres as the category and their release date; people get
an age band, gender and occupation. The GroupLens files are Latin-1. Plain Python, free of Django.
"""

from __future__ import annotations

import csv
import os
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from catalog.interchange import EVENT_COLUMNS

ENCODING = "latin-1"
GENRE_FLAGS_FROM = 5  # u.item: id | title | release | video release | URL | 19 genre flags
# The age bands MovieLens 1M uses; 100K has exact ages, which is more than a segment needs.
AGE_BANDS = ((18, "under 18"), (25, "18-24"), (35, "25-34"), (45, "35-44"), (50, "45-49"), (56, "50-55"))


@dataclass
class MovieLensReport:
    ratings: int = 0
    people: int = 0
    items: int = 0
    dropped: Counter[str] = field(default_factory=Counter)


def age_band(age: str) -> str:
    try:
        years = int(age)
    except ValueError:
        return ""
    for upper, band in AGE_BANDS:
        if years < upper:
            return band
    return "56+"


def release_date(value: str) -> str:
    """``01-Jan-1995`` → ``1995-01-01``; empty when the file gives none or an unreadable one."""
    try:
        return datetime.strptime(value.strip(), "%d-%b-%Y").date().isoformat()
    except ValueError:
        return ""


def _lines(path: Path, separator: str) -> list[list[str]]:
    with open(path, encoding=ENCODING, newline="") as handle:
        return [line.rstrip("\r\n").split(separator) for line in handle if line.strip()]


def convert(src: str | os.PathLike[str], out_dir: str | os.PathLike[str]) -> MovieLensReport:
    folder, out = Path(src), Path(out_dir)
    for name in ("u.data", "u.item"):
        if not (folder / name).exists():
            raise FileNotFoundError(f"{folder / name} does not exist")
    out.mkdir(parents=True, exist_ok=True)
    report = MovieLensReport()
    genres = [row[0] for row in _lines(folder / "u.genre", "|")] if (folder / "u.genre").exists() else []

    people: set[str] = set()
    with open(out / "events.csv", "w", newline="", encoding="utf-8") as sink:
        writer = csv.writer(sink)
        writer.writerow((*EVENT_COLUMNS, "rating"))
        for row in _lines(folder / "u.data", "\t"):
            if len(row) < 4 or not row[0].strip() or not row[1].strip() or not row[3].strip().isdigit():
                report.dropped["unreadable line"] += 1
                continue
            user, item, rating, stamp = (value.strip() for value in row[:4])
            writer.writerow((user, item, "rating", stamp, "", "", "", rating))
            people.add(user)
            report.ratings += 1

    with open(out / "items.csv", "w", newline="", encoding="utf-8") as sink:
        writer = csv.writer(sink)
        writer.writerow(("item_id", "title", "description", "category", "brand", "price", "published_at"))
        for row in _lines(folder / "u.item", "|"):
            if len(row) < 2 or not row[0].strip():
                report.dropped["unreadable item"] += 1
                continue
            flags = row[GENRE_FLAGS_FROM:]
            names = [genres[i] for i, flag in enumerate(flags) if flag.strip() == "1" and i < len(genres)]
            title = "" if row[1].strip() == "unknown" else row[1].strip()
            released = release_date(row[2]) if len(row) > 2 else ""
            writer.writerow((row[0].strip(), title, "", ", ".join(names), "", "", released))
            report.items += 1

    if (folder / "u.user").exists():
        with open(out / "users.csv", "w", newline="", encoding="utf-8") as sink:
            writer = csv.writer(sink)
            writer.writerow(("user_id", "age_band", "gender", "occupation"))
            for row in _lines(folder / "u.user", "|"):
                if len(row) >= 4:
                    writer.writerow((row[0].strip(), age_band(row[1]), row[2].strip(), row[3].strip()))
    report.people = len(people)
    return report
