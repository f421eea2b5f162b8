"""How many people are where in a journey: per step of its current version, how many reached it
(entered), are held there (waiting), went on past it (moved on) and left there (exited, with why).

An entry is *at* a step when that is the last step it ran (a wait holds it there until it is due),
or, before it ran any, at the first step. *Moved on* counts those that went past the step, to the
next one or to the end; *finished*, those of them that ended the journey after it.

``flow`` does the arithmetic on plain numbers. ``read`` is the one place the numbers come from: a
few grouped SQL queries (by state, last step and exit reason; by step and branch outcome), each
group with how many of its entries bought within the conversion window and what they spent, so a
journey with 100,000 entries is counted without reading its entries. ``journey_flow`` is its
counts; ``journeys.measuring.step_measures`` adds conversions and the holdout to the same reading.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from django.db import connection
from django.db.models import Count

from journeys.models import Entry, Journey, StepRun
from profiles.models import Event

ACTIVE, DONE, EXITED, HELD_OUT = "active", "done", "exited", "held_out"
CONVERSION_DAYS = 7
CONVERSION_KIND = "purchase"


@dataclass
class StepCount:
    id: str
    type: str
    ran: int = 0  # entries that ran it
    entered: int = 0
    waiting: int = 0
    moved_on: int = 0
    exited: int = 0
    finished: int = 0  # of those that moved on, the ones that ended the journey after this step
    exit_reasons: dict[str, int] = field(default_factory=dict)
    outcomes: dict[str, int] = field(default_factory=dict)  # a branch: then / else


@dataclass
class Flow:
    entries: dict[str, int]  # by state: active, done, exited, held_out
    steps: list[StepCount]

    @property
    def total(self) -> int:
        return sum(self.entries.values())

    def as_dict(self) -> dict[str, Any]:
        return {
            "entries": dict(self.entries),
            "total": self.total,
            "steps": [
                {
                    "id": s.id,
                    "type": s.type,
                    "entered": s.entered,
                    "waiting": s.waiting,
                    "moved_on": s.moved_on,
                    "exited": s.exited,
                    "finished": s.finished,
                    "exit_reasons": dict(s.exit_reasons),
                    "outcomes": dict(s.outcomes),
                }
                for s in self.steps
            ],
        }


def flow(
    steps: list[dict[str, Any]],
    ran: dict[str, int],
    positions: list[tuple[str, str, str, int]],
    outcomes: dict[tuple[str, str], int] | None = None,
) -> Flow:
    """``ran``: step id → entries that ran it. ``positions``: (state, last step run or "", exit
    reason, number of entries) for every entry. ``outcomes``: (step id, outcome) → entries."""
    counts = [StepCount(str(s["id"]), str(s["type"])) for s in steps]
    by_id = {c.id: c for c in counts}
    first = counts[0] if counts else None
    entries = {ACTIVE: 0, DONE: 0, EXITED: 0, HELD_OUT: 0}
    for step_id, n in ran.items():
        if step_id in by_id:
            by_id[step_id].ran += n
            by_id[step_id].entered += n
    for state, last, reason, n in positions:
        entries[state] = entries.get(state, 0) + n
        if state == HELD_OUT:
            continue
        at = by_id.get(last) if last else first
        if at is None:
            continue  # a step of an older version, or a journey without steps
        if state == DONE:
            at.finished += n
            continue
        if not last:  # not yet run: it reached the first step without a step run
            at.entered += n
        if state == ACTIVE:
            at.waiting += n
        elif state == EXITED:
            at.exited += n
            why = reason or "exited"
            at.exit_reasons[why] = at.exit_reasons.get(why, 0) + n
    for count in counts:
        count.moved_on = max(count.entered - count.waiting - count.exited, 0)
    for (step_id, outcome), n in (outcomes or {}).items():
        if step_id in by_id and by_id[step_id].type == "branch":
            by_id[step_id].outcomes[outcome] = by_id[step_id].outcomes.get(outcome, 0) + n
    return Flow(entries, counts)


@dataclass
class Money:
    """A group of entries: how many, how many bought within the window, what they spent (and the
    sum of squares of each entry's spend, for the spread)."""

    n: int = 0
    converted: int = 0
    revenue: float = 0.0
    revenue_squares: float = 0.0

    def add(self, other: Money) -> None:
        self.n += other.n
        self.converted += other.converted
        self.revenue += other.revenue
        self.revenue_squares += other.revenue_squares


@dataclass
class Reading:
    """What ``read`` found: the flow, and per step and per state the entries' purchases."""

    flow: Flow
    steps: dict[str, Money]  # entries that reached the step
    treated: Money  # every entry not held out
    held_out: Money


# Per entry (one row each, in SQL only): its state, exit reason, last step run, and purchases in the
# window. Then two groupings of it: by where the entries are, and by the steps they ran.
READING_SQL = """
WITH e AS (
    SELECT id, person_id, state, exit_reason, entered_at FROM {entry} WHERE journey_id = %(journey)s
), bought AS (
    SELECT e.id, CAST(SUM(COALESCE(ev.price, 0) * COALESCE(ev.quantity, 1)) AS DOUBLE PRECISION) AS revenue
    FROM e JOIN {event} ev ON ev.person_id = e.person_id AND ev.kind = %(kind)s
        AND ev.timestamp >= e.entered_at AND ev.timestamp < {window_end}
    GROUP BY e.id
), o AS (
    SELECT e.id, e.state, e.exit_reason, b.id IS NOT NULL AS converted, COALESCE(b.revenue, 0) AS revenue
    FROM e LEFT JOIN bought b ON b.id = e.id
), last AS (
    {last_step}
)
SELECT 'at', o.state, COALESCE(last.step, ''), CASE WHEN o.state = 'exited' THEN o.exit_reason ELSE '' END,
    COUNT(*), COUNT(*) FILTER (WHERE o.converted), SUM(o.revenue), SUM(o.revenue * o.revenue)
FROM o LEFT JOIN last ON last.entry_id = o.id
GROUP BY 2, 3, 4
UNION ALL
SELECT 'ran', r.kind, r.step, CASE WHEN r.kind = 'branch' THEN r.outcome ELSE '' END,
    COUNT(*), COUNT(*) FILTER (WHERE o.converted), SUM(o.revenue), SUM(o.revenue * o.revenue)
FROM {run} r JOIN o ON o.id = r.entry_id
GROUP BY 2, 3, 4
"""


# What PostgreSQL and the embedded SQLite (``make demo``) say differently: the end of the conversion
# window, and each entry's last step run (DISTINCT ON, or the first row of a window).
DIALECTS = {
    "postgresql": {
        "window_end": "e.entered_at + %(days)s * INTERVAL '1 day'",
        "last_step": (
            "SELECT DISTINCT ON (r.entry_id) r.entry_id, r.step FROM {run} r JOIN e ON e.id = r.entry_id\n"
            "    ORDER BY r.entry_id, r.ran_at DESC, r.id DESC"
        ),
    },
    "sqlite": {
        "window_end": "strftime('%%Y-%%m-%%d %%H:%%M:%%f', e.entered_at, '+' || %(days)s || ' days')",
        "last_step": (
            "SELECT entry_id, step FROM (SELECT r.entry_id, r.step, ROW_NUMBER() OVER (PARTITION BY r.entry_id "
            "ORDER BY r.ran_at DESC, r.id DESC) AS n FROM {run} r JOIN e ON e.id = r.entry_id) ranked WHERE n = 1"
        ),
    },
}


def reading_sql() -> str:
    tables = {"entry": Entry._meta.db_table, "run": StepRun._meta.db_table, "event": Event._meta.db_table}
    dialect = DIALECTS["sqlite" if connection.vendor == "sqlite" else "postgresql"]
    parts = {name: text.format(**tables) for name, text in dialect.items()}
    return READING_SQL.format(**tables, **parts)


def read(journey: Journey) -> Reading:
    """The counts of one journey's current version and its entries' purchases, in one SQL query."""
    steps = journey.current_version.definition["steps"] if journey.current_version else []
    sql = reading_sql()
    with connection.cursor() as cursor:
        cursor.execute(sql, {"journey": journey.pk, "kind": CONVERSION_KIND, "days": CONVERSION_DAYS})
        rows = cursor.fetchall()
    ran: dict[str, int] = {}
    outcomes: dict[tuple[str, str], int] = {}
    positions: list[tuple[str, str, str, int]] = []
    reached: dict[str, Money] = {}
    treated, held = Money(), Money()
    first = str(steps[0]["id"]) if steps else ""
    for source, state_or_kind, step, detail, n, converted, revenue, squares in rows:
        money = Money(int(n), int(converted), float(revenue or 0), float(squares or 0))
        if source == "ran":
            ran[step] = ran.get(step, 0) + money.n
            reached.setdefault(step, Money()).add(money)
            if state_or_kind == "branch":
                outcomes[(step, detail)] = outcomes.get((step, detail), 0) + money.n
            continue
        positions.append((state_or_kind, step, detail, money.n))
        if state_or_kind == HELD_OUT:
            held.add(money)
            continue
        treated.add(money)
        if not step and first:  # at the first step without having run it
            reached.setdefault(first, Money()).add(money)
    return Reading(flow(steps, ran, positions, outcomes), reached, treated, held)


def journey_flow(journey: Journey) -> Flow:
    """The counts of one journey's current version, from its entries and step runs."""
    return read(journey).flow


def totals(journeys: list[Journey]) -> dict[int, dict[str, int]]:
    """Entries by state for each journey of a list, in one query."""
    found: dict[int, dict[str, int]] = {j.pk: {ACTIVE: 0, DONE: 0, EXITED: 0, HELD_OUT: 0} for j in journeys}
    rows = (
        Entry.objects.filter(journey__in=journeys).values_list("journey_id", "state").annotate(n=Count("pk")).order_by()
    )
    for journey_id, state, n in rows:
        found[journey_id][state] = n
    return found
