"""An account's billing cycle: when the cycle a moment falls in began, from the day of the month its
cycles start on (``Account.billing_day``; unknown: the calendar month, from the 1st).

A cycle starts at 00:00 UTC on its day; in a month shorter than that day (the 31st in April) it
starts on the month's last day. Plain dates, free of Django, so the entry trigger, the one-person
test run and the tests read cycles the same way.
"""

from __future__ import annotations

import calendar
from datetime import UTC, datetime

CALENDAR_MONTH = 1


def _start_in(year: int, month: int, day: int) -> datetime:
    last = calendar.monthrange(year, month)[1]
    return datetime(year, month, min(day, last), tzinfo=UTC)


def _month_before(year: int, month: int) -> tuple[int, int]:
    return (year - 1, 12) if month == 1 else (year, month - 1)


def _month_after(year: int, month: int) -> tuple[int, int]:
    return (year + 1, 1) if month == 12 else (year, month + 1)


def cycle_day(billing_day: int | None) -> int:
    """The day of the month cycles start on: the account's, or the 1st when it is unknown or not a day."""
    if isinstance(billing_day, int) and not isinstance(billing_day, bool) and 1 <= billing_day <= 31:
        return billing_day
    return CALENDAR_MONTH


def cycle_start(moment: datetime, billing_day: int | None) -> datetime:
    """The start (UTC) of the billing cycle that ``moment`` (an aware time) falls in."""
    day = cycle_day(billing_day)
    at = moment.astimezone(UTC)
    this_month = _start_in(at.year, at.month, day)
    if at >= this_month:
        return this_month
    return _start_in(*_month_before(at.year, at.month), day)


def cycle_end(start: datetime, billing_day: int | None) -> datetime:
    """When the cycle that began at ``start`` ends: the next cycle's start."""
    return _start_in(*_month_after(start.year, start.month), cycle_day(billing_day))
