"""Convert the UCI Online Retail CSV into the interchange format.

Cleaning follows the protocol in ``shared/data/online-retail/README.md``: keep rows with a
CustomerID, an invoice that is not a cancellation ("C…"), Quantity > 0, UnitPrice > 0 and a
StockCode with at least one digit (drops POST, DOT, M, BANK CHARGES…). Each kept row becomes one
``purchase`` event. Plain Python, free of Django.
"""

from __future__ import annotations

import csv
import gzip
import io
import os
import statistics
from collections import Counter, defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from catalog.interchange import EVENT_COLUMNS


@dataclass
class ConversionReport:
    rows_read: int = 0
    events: int = 0
    customers: int = 0
    items: int = 0
    dropped: Counter[str] | None = None


def _open_text(path: Path) -> IO[str]:
    if path.suffix == ".gz":
        return io.TextIOWrapper(gzip.open(path, "rb"), encoding="utf-8", newline="")
    return open(path, encoding="utf-8", newline="")


def drop_reason(row: dict[str, str]) -> str | None:
    """Why the protocol drops this row, or None when it is kept."""
    if not (row.get("CustomerID") or "").strip():
        return "no CustomerID"
    if (row.get("InvoiceNo") or "").startswith("C"):
        return "cancellation"
    try:
        if float(row["Quantity"]) <= 0:
            return "quantity <= 0"
        if float(row["UnitPrice"]) <= 0:
            return "price <= 0"
    except (KeyError, ValueError):
        return "unreadable number"
    if not any(ch.isdigit() for ch in row.get("StockCode") or ""):
        return "non-product stock code"
    return None


def _customer_id(raw: str) -> str:
    raw = raw.strip()
    return raw[:-2] if raw.endswith(".0") else raw


def convert(src: str | os.PathLike[str], out_dir: str | os.PathLike[str]) -> ConversionReport:
    src_path, out = Path(src), Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    report = ConversionReport(dropped=Counter())
    titles: dict[str, Counter[str]] = defaultdict(Counter)
    prices: dict[str, list[float]] = defaultdict(list)
    countries: dict[str, Counter[str]] = defaultdict(Counter)

    with _open_text(src_path) as source, open(out / "events.csv", "w", newline="", encoding="utf-8") as sink:
        writer = csv.writer(sink)
        writer.writerow(EVENT_COLUMNS)
        for row in csv.DictReader(source):
            report.rows_read += 1
            reason = drop_reason(row)
            if reason:
                assert report.dropped is not None
                report.dropped[reason] += 1
                continue
            customer, code = _customer_id(row["CustomerID"]), row["StockCode"].strip()
            writer.writerow(
                (
                    customer,
                    code,
                    "purchase",
                    row["InvoiceDate"].strip(),
                    int(float(row["Quantity"])),
                    row["UnitPrice"].strip(),
                    row["InvoiceNo"].strip(),
                )
            )
            report.events += 1
            titles[code][(row.get("Description") or "").strip()] += 1
            prices[code].append(float(row["UnitPrice"]))
            countries[customer][(row.get("Country") or "").strip()] += 1

    with open(out / "items.csv", "w", newline="", encoding="utf-8") as sink:
        writer = csv.writer(sink)
        writer.writerow(("item_id", "title", "description", "category", "brand", "price"))
        for code in sorted(titles):
            title = titles[code].most_common(1)[0][0]
            writer.writerow((code, title.title(), title, "", "", f"{statistics.median(prices[code]):.2f}"))

    with open(out / "users.csv", "w", newline="", encoding="utf-8") as sink:
        writer = csv.writer(sink)
        writer.writerow(("user_id", "country"))
        for customer in sorted(countries):
            writer.writerow((customer, countries[customer].most_common(1)[0][0]))

    report.customers, report.items = len(countries), len(titles)
    return report
