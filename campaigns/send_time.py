"""Send-time optimisation: each person's best hour of the week, and deferral to an allowed moment.

**Best hour.** The week has 168 hour slots in the person's own timezone (Monday 00:00-00:59 is slot
0, Sunday 23:00-23:59 is slot 167). A person's opens, clicks and other activity are counted per slot
(clicks weigh more than opens, site activity less; signals older than 12 months count half and those
older than 24 months not at all). The counts are smoothed across neighbouring hours (circularly, so
Sunday night neighbours Monday morning) and across the same hours on other days, strongly between
days of the same kind (weekday with weekday, Saturday with Sunday) and weakly across the divide,
because a person who opens at 08:00 on Tuesday probably also reads at 07:00 and on Wednesday at
08:00. The smoothed counts are then shrunk toward a prior: the person's segment's pattern, itself
shrunk toward everyone's pattern. With ``n`` weighted events and a prior strength ``alpha`` the
person's reading pattern is the posterior mean of a Dirichlet model,

    pattern = (smoothed_counts + alpha * segment_pattern) / (n + alpha),

so thin data leans on the segment and rich data speaks for itself. ``alpha`` can be chosen by
empirical Bayes (:func:`choose_prior_strength`): the value under which each recorded event is best
predicted by the person's other events. The best hour to *send* is the one with the most reading in
the day after it, discounted for the time the message waits in the inbox (``inbox_hours``): usually
just before the person's reading peak. A person with no history gets the prior itself: their
segment's pattern, or everyone's pattern when the segment is unknown, and so the population's best
hour.

**Deferral.** :func:`next_allowed_send` moves a desired send time forward until it is outside quiet
hours, inside the send window and under the frequency caps, all evaluated in the person's timezone.
It never drops a message: it always returns a moment, and it refuses (``ValueError``) settings under
which no moment could ever be allowed.

Plain Python + numpy, free of Django: tasks load events and sends, call these functions and store the
result.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from zoneinfo import ZoneInfo

import numpy as np

HOURS_PER_WEEK = 168
HOURS_PER_DAY = 24
_MINUTES_PER_DAY = 24 * 60


# --- hours of the week ---------------------------------------------------------------------------


def as_timezone(tz: tzinfo | str) -> tzinfo:
    return ZoneInfo(tz) if isinstance(tz, str) else tz


def _aware(moment: datetime, name: str = "moment") -> datetime:
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError(f"{name} must be timezone-aware, got naive {moment.isoformat()}")
    return moment


def hour_of_week(moment: datetime, tz: tzinfo | str) -> int:
    """The slot (0 = Monday 00:00 .. 167 = Sunday 23:00) of ``moment`` on the person's local clock."""
    local = _aware(moment).astimezone(as_timezone(tz))
    return local.weekday() * HOURS_PER_DAY + local.hour


@dataclass(frozen=True)
class SignalWeights:
    """How much one event of each kind says about when a person reads."""

    open: float = 1.0
    click: float = 2.0
    activity: float = 0.5


def recency_weight(age: timedelta) -> float:
    """Old signals decay: full weight for a year, half for the second, nothing after two years."""
    if age <= timedelta(days=365):
        return 1.0
    if age <= timedelta(days=730):
        return 0.5
    return 0.0


def engagement_counts(
    tz: tzinfo | str,
    *,
    opens: Iterable[datetime] = (),
    clicks: Iterable[datetime] = (),
    activity: Iterable[datetime] = (),
    as_of: datetime | None = None,
    weights: SignalWeights | None = None,
) -> np.ndarray:
    """Weighted event counts per hour of the week (length 168) in the person's timezone."""
    zone = as_timezone(tz)
    weights = weights or SignalWeights()
    now = _aware(as_of, "as_of") if as_of is not None else datetime.now(UTC)
    counts = np.zeros(HOURS_PER_WEEK)
    for moments, weight in ((opens, weights.open), (clicks, weights.click), (activity, weights.activity)):
        if weight <= 0:
            continue
        for moment in moments:
            decay = recency_weight(now - _aware(moment))
            if decay > 0:
                counts[hour_of_week(moment, zone)] += weight * decay
    return counts


# --- smoothing and shrinkage ---------------------------------------------------------------------


def _is_weekend(day: np.ndarray) -> np.ndarray:
    return day >= 5


@dataclass(frozen=True)
class SendTimeSettings:
    """Smoothing, prior strengths and how long a message waits in the inbox.

    ``hour_bandwidth`` is the standard deviation, in hours, of the Gaussian that spreads an event over
    neighbouring hours (circularly: Sunday 23:00 neighbours Monday 00:00). An event also counts at the
    same hours on other days: with weight ``same_kind_days`` on days of the same kind (a Tuesday event
    on the other weekdays, a Saturday event on Sunday) and ``other_kind_days`` across the weekday and
    weekend divide, because people keep weekday and weekend rhythms.

    ``person_prior_strength`` and ``segment_prior_strength`` are pseudo-event counts: how many events'
    worth of the segment's (or everyone's) pattern a person's (or segment's) own events are blended
    with; :func:`choose_prior_strength` picks the person one from data.

    ``inbox_hours``: a message is not read the minute it is sent; it waits in the inbox and is opened
    at a later reading moment, less likely the deeper it is buried. The best send hour is therefore
    the one with the most reading ahead of it, discounted by ``exp(-hours / inbox_hours)`` over the
    following day, usually a little before the person's reading peak. 0 aims at the peak itself.
    """

    hour_bandwidth: float = 1.5
    same_kind_days: float = 0.9
    other_kind_days: float = 0.3
    person_prior_strength: float = 8.0
    segment_prior_strength: float = 50.0
    inbox_hours: float = 2.0

    def __post_init__(self) -> None:
        if self.hour_bandwidth <= 0:
            raise ValueError("hour_bandwidth must be positive")
        for name in ("same_kind_days", "other_kind_days"):
            if not 0 <= getattr(self, name) <= 1:
                raise ValueError(f"{name} must be within [0, 1]")
        if self.person_prior_strength <= 0 or self.segment_prior_strength <= 0:
            raise ValueError("prior strengths must be positive")
        if self.inbox_hours < 0:
            raise ValueError("inbox_hours must be non-negative")

    def smoothing(self) -> np.ndarray:
        """(168, 168) matrix: row i spreads one event at hour i over the week; rows sum to one, so
        ``counts @ smoothing`` keeps each person's total."""
        source = np.arange(HOURS_PER_WEEK)[:, None]
        target = np.arange(HOURS_PER_WEEK)[None, :]
        # Hours from the source to the target's clock time, in -12..11, and the source moved to that
        # clock time, so that the day comparison below is between whole days.
        hour_offset = ((target - source) % HOURS_PER_WEEK + 12) % HOURS_PER_DAY - 12
        source_day = ((source + hour_offset) % HOURS_PER_WEEK) // HOURS_PER_DAY
        target_day = target // HOURS_PER_DAY
        day_weight = np.where(
            source_day == target_day,
            1.0,
            np.where(_is_weekend(source_day) == _is_weekend(target_day), self.same_kind_days, self.other_kind_days),
        )
        weights = np.exp(-0.5 * (hour_offset / self.hour_bandwidth) ** 2) * day_weight
        return weights / weights.sum(axis=1, keepdims=True)

    def send_value(self) -> np.ndarray:
        """(168, 168) matrix turning a reading pattern into the value of sending at each hour:
        ``(pattern @ send_value)[h]`` sums the reading in the day after h, discounted by burial."""
        if self.inbox_hours == 0:
            return np.eye(HOURS_PER_WEEK)
        reading = np.arange(HOURS_PER_WEEK)[:, None]
        sending = np.arange(HOURS_PER_WEEK)[None, :]
        wait = (reading - sending) % HOURS_PER_WEEK
        return np.where(wait < HOURS_PER_DAY, np.exp(-wait / self.inbox_hours), 0.0)


def _normalised(row: np.ndarray) -> np.ndarray:
    total = row.sum()
    if total <= 0:
        return np.full(HOURS_PER_WEEK, 1.0 / HOURS_PER_WEEK)
    return row / total


@dataclass(frozen=True, eq=False)
class SendTimeModel:
    """Everyone's reading pattern and each segment's, each a probability over the 168 hours."""

    population: np.ndarray
    segments: Mapping[str, np.ndarray] = field(default_factory=dict)
    settings: SendTimeSettings = field(default_factory=SendTimeSettings)

    @property
    def population_best_hour(self) -> int:
        """The best hour for a person about whom nothing is known."""
        return self._best(self.population[None, :])[0]

    def prior(self, segment: str | None) -> np.ndarray:
        """The pattern a person with no history is given: their segment's, else everyone's."""
        if segment is not None and segment in self.segments:
            return self.segments[segment]
        return self.population

    def patterns(self, counts: np.ndarray, segments: Sequence[str | None]) -> np.ndarray:
        """Posterior reading patterns, one row per person, from an (n, 168) matrix of weighted counts."""
        counts = np.atleast_2d(np.asarray(counts, dtype=np.float64))
        if counts.shape != (len(segments), HOURS_PER_WEEK):
            raise ValueError(f"counts must be (len(segments), {HOURS_PER_WEEK}), got {counts.shape}")
        priors = np.stack([self.prior(segment) for segment in segments]) if segments else counts
        alpha = self.settings.person_prior_strength
        smoothed = counts @ self.settings.smoothing()
        return (smoothed + alpha * priors) / (counts.sum(axis=1, keepdims=True) + alpha)

    def pattern(self, counts: np.ndarray, segment: str | None = None) -> np.ndarray:
        return self.patterns(np.asarray(counts)[None, :], [segment])[0]

    def best_hours(self, counts: np.ndarray, segments: Sequence[str | None]) -> np.ndarray:
        """Best send hour (0..167, local) for each row of an (n, 168) count matrix."""
        return np.asarray(self._best(self.patterns(counts, segments)))

    def best_hour(self, counts: np.ndarray, segment: str | None = None) -> int:
        return int(self.best_hours(np.asarray(counts)[None, :], [segment])[0])

    def _best(self, patterns: np.ndarray) -> list[int]:
        return np.argmax(patterns @ self.settings.send_value(), axis=1).tolist()


def fit_send_time_model(
    counts: np.ndarray,
    segments: Sequence[str | None],
    settings: SendTimeSettings | None = None,
) -> SendTimeModel:
    """Everyone's and each segment's pattern from people's weighted counts (an (n, 168) matrix)."""
    settings = settings or SendTimeSettings()
    counts = np.asarray(counts, dtype=np.float64)
    if counts.ndim != 2 or counts.shape != (len(segments), HOURS_PER_WEEK):
        raise ValueError(f"counts must be (len(segments), {HOURS_PER_WEEK}), got {counts.shape}")
    smoothing = settings.smoothing()
    # A whisper of uniform mass keeps every hour possible for a tiny population.
    population = _normalised(counts.sum(axis=0) @ smoothing + 1e-6)
    names = sorted({segment for segment in segments if segment is not None})
    by_segment: dict[str, np.ndarray] = {}
    if names:
        index = {name: i for i, name in enumerate(names)}
        rows = [r for r, segment in enumerate(segments) if segment is not None]
        totals = np.zeros((len(names), HOURS_PER_WEEK))
        np.add.at(totals, np.array([index[segments[r]] for r in rows]), counts[rows])  # type: ignore[index]
        beta = settings.segment_prior_strength
        shrunk = (totals @ smoothing + beta * population) / (totals.sum(axis=1, keepdims=True) + beta)
        by_segment = {name: shrunk[index[name]] for name in names}
    return SendTimeModel(population=population, segments=by_segment, settings=settings)


def choose_prior_strength(
    counts: np.ndarray,
    segments: Sequence[str | None],
    settings: SendTimeSettings | None = None,
    grid: Sequence[float] = (1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0),
) -> float:
    """Empirical Bayes: the person prior strength under which held-out events are best predicted.

    Each event is predicted from the same person's other events (leave one out), shrunk toward the
    person's prior with each candidate strength; the strength with the highest total log-likelihood
    wins. Expects whole event counts (unweighted), which the closed form below assumes.
    """
    settings = settings or SendTimeSettings()
    counts = np.asarray(counts, dtype=np.float64)
    model = fit_send_time_model(counts, segments, settings)
    smoothing = settings.smoothing()
    totals = counts.sum(axis=1)
    keep = totals >= 2
    if not keep.any():
        return settings.person_prior_strength
    counts, totals = counts[keep], totals[keep]
    priors = np.stack([model.prior(segment) for segment, kept in zip(segments, keep, strict=True) if kept])
    # Leaving out one event at hour h removes its own share, smoothing[h, h], from hour h.
    held_out = np.maximum(counts @ smoothing - np.diag(smoothing)[None, :], 0.0)
    best, best_score = float(grid[0]), -np.inf
    for alpha in grid:
        predicted = (held_out + alpha * priors) / (totals[:, None] - 1 + alpha)
        score = float(np.sum(counts * np.log(np.maximum(predicted, 1e-300))))
        if score > best_score:
            best, best_score = float(alpha), score
    return best


# --- deferral ------------------------------------------------------------------------------------


def _minute(moment: time) -> int:
    return moment.hour * 60 + moment.minute


def _within_minutes(start: int, end: int, minute: np.ndarray) -> np.ndarray:
    """[start, end) in minutes of the day, wrapping past midnight when end < start; start == end is
    the whole day."""
    if start == end:
        return np.ones(minute.shape, dtype=bool)
    if start < end:
        return (minute >= start) & (minute < end)
    return (minute >= start) | (minute < end)


def _within(start: time, end: time, local: time) -> bool:
    """The same test for one clock time."""
    s, e, m = _minute(start), _minute(end), _minute(local)
    if s == e:
        return True
    if s < e:
        return s <= m < e
    return m >= s or m < e


@dataclass(frozen=True)
class QuietHours:
    """Local hours in which nothing is sent, e.g. 21:00-08:00 (wrapping past midnight)."""

    start: time = time(21, 0)
    end: time = time(8, 0)

    def __post_init__(self) -> None:
        if self.start == self.end:
            raise ValueError("quiet hours need a start different from their end; leave them out for none")

    def contains(self, local: datetime) -> bool:
        return _within(self.start, self.end, local.time())


@dataclass(frozen=True)
class SendWindow:
    """Local days and hours in which sending is allowed, e.g. weekdays 09:00-18:00.

    ``weekdays`` uses Monday = 0; the hours are [start, end), wrapping past midnight when end < start
    (the part after midnight belongs to the day it falls on); start == end means the whole day.
    """

    start: time = time(0, 0)
    end: time = time(0, 0)
    weekdays: frozenset[int] = frozenset(range(7))

    def __post_init__(self) -> None:
        if not self.weekdays or not self.weekdays <= frozenset(range(7)):
            raise ValueError(f"weekdays must be a non-empty subset of 0..6, got {sorted(self.weekdays)}")

    def contains(self, local: datetime) -> bool:
        return local.weekday() in self.weekdays and _within(self.start, self.end, local.time())

    def openings(self) -> tuple[time, ...]:
        """Clock times at which the window opens on an allowed day."""
        if self.start == self.end:
            return (time(0, 0),)
        if self.start < self.end:
            return (self.start,)
        return (time(0, 0), self.start)


@dataclass(frozen=True)
class FrequencyCap:
    """At most ``per_day`` messages per local calendar day and ``per_week`` per local ISO week
    (Monday to Sunday); None means no cap."""

    per_day: int | None = None
    per_week: int | None = None

    def __post_init__(self) -> None:
        for name in ("per_day", "per_week"):
            value = getattr(self, name)
            if value is not None and value < 1:
                raise ValueError(f"{name} must be at least 1 (or None for no cap), got {value}")


@dataclass(frozen=True)
class SendLog:
    """Messages already sent or scheduled to a person, counted per local day and ISO week."""

    per_day: Mapping[date, int]
    per_week: Mapping[tuple[int, int], int]

    @classmethod
    def from_sends(cls, sent_at: Iterable[datetime], tz: tzinfo | str) -> SendLog:
        zone = as_timezone(tz)
        days = Counter(_aware(moment, "sent_at").astimezone(zone).date() for moment in sent_at)
        weeks: Counter[tuple[int, int]] = Counter()
        for day, count in days.items():
            weeks[_iso_week(day)] += count
        return cls(per_day=dict(days), per_week=dict(weeks))

    def with_send(self, moment: datetime, tz: tzinfo | str) -> SendLog:
        """The log after one more message at ``moment`` (for scheduling several in a row)."""
        day = _aware(moment).astimezone(as_timezone(tz)).date()
        per_day = dict(self.per_day)
        per_week = dict(self.per_week)
        per_day[day] = per_day.get(day, 0) + 1
        per_week[_iso_week(day)] = per_week.get(_iso_week(day), 0) + 1
        return SendLog(per_day=per_day, per_week=per_week)


def _iso_week(day: date) -> tuple[int, int]:
    year, week, _ = day.isocalendar()
    return (year, week)


def _local_moment(day: date, clock: time, zone: tzinfo) -> datetime:
    """The instant (in UTC) at which the local clock shows ``clock`` on ``day``.

    A clock time skipped by a daylight-saving jump maps to the instant just after the jump.
    """
    return datetime.combine(day, clock, tzinfo=zone).astimezone(UTC)


def _next_local(after: datetime, clocks: Iterable[time], zone: tzinfo, days: Iterable[int] = range(8)) -> datetime:
    """The earliest instant strictly after ``after`` at which the local clock shows one of ``clocks``
    on a day whose weekday is wanted (all days unless ``days`` narrows it)."""
    local_day = after.astimezone(zone).date()
    wanted = set(days)
    best: datetime | None = None
    for offset in range(-1, 9):
        day = local_day + timedelta(days=offset)
        if day.weekday() not in wanted:
            continue
        for clock in clocks:
            moment = _local_moment(day, clock, zone)
            if moment > after and (best is None or moment < best):
                best = moment
        if best is not None and offset >= 1:
            break
    if best is None:
        raise ValueError("no such local time in the coming week")
    return best


def _check_some_moment_allowed(window: SendWindow | None, quiet: QuietHours | None) -> None:
    """Refuse settings under which no minute of the week could ever be sent in."""
    minutes = np.arange(_MINUTES_PER_DAY)
    window = window or SendWindow()
    allowed = _within_minutes(_minute(window.start), _minute(window.end), minutes)
    if quiet is not None:
        allowed &= ~_within_minutes(_minute(quiet.start), _minute(quiet.end), minutes)
    if not allowed.any():
        raise ValueError("the send window lies entirely within quiet hours: no moment is ever allowed")


def next_allowed_send(
    desired: datetime,
    tz: tzinfo | str,
    *,
    quiet_hours: QuietHours | None = None,
    window: SendWindow | None = None,
    cap: FrequencyCap | None = None,
    sent: SendLog | None = None,
) -> datetime:
    """The first moment at or after ``desired`` (returned in UTC) at which the message may go out.

    Quiet hours and the window are read on the person's local clock; caps count the person's
    messages per local day and ISO week in ``sent``. The message is deferred, never dropped.
    """
    zone = as_timezone(tz)
    moment = _aware(desired, "desired").astimezone(UTC)
    _check_some_moment_allowed(window, quiet_hours)
    cap = cap or FrequencyCap()
    sent = sent or SendLog(per_day={}, per_week={})
    # Every step moves strictly forward to a boundary (end of quiet hours, window opening, next day or
    # next week) and caps only count existing sends, so a free slot is reached in a bounded number of
    # steps; the bound is a guard against a bug, not a way to drop a message.
    for _ in range(10_000):
        local = moment.astimezone(zone)
        if quiet_hours is not None and quiet_hours.contains(local):
            moment = _next_local(moment, [quiet_hours.end], zone)
            continue
        if window is not None and not window.contains(local):
            moment = _next_local(moment, window.openings(), zone, window.weekdays)
            continue
        today = local.date()
        if cap.per_day is not None and sent.per_day.get(today, 0) >= cap.per_day:
            moment = _next_local(moment, [time(0, 0)], zone)
            continue
        if cap.per_week is not None and sent.per_week.get(_iso_week(today), 0) >= cap.per_week:
            moment = _next_local(moment, [time(0, 0)], zone, days=[0])
            continue
        return moment
    raise RuntimeError(f"no allowed send time found after {desired.isoformat()}")


def next_occurrence(hour: int, after: datetime, tz: tzinfo | str) -> datetime:
    """The first start of local slot ``hour`` (0..167) at or after ``after``, in UTC."""
    if not 0 <= hour < HOURS_PER_WEEK:
        raise ValueError(f"hour of week must be within 0..167, got {hour}")
    zone = as_timezone(tz)
    start = _aware(after, "after").astimezone(UTC)
    weekday, clock = divmod(hour, HOURS_PER_DAY)
    return _next_local(start - timedelta(microseconds=1), [time(clock, 0)], zone, days=[weekday])


def schedule_send(
    best_hour: int,
    after: datetime,
    tz: tzinfo | str,
    *,
    quiet_hours: QuietHours | None = None,
    window: SendWindow | None = None,
    cap: FrequencyCap | None = None,
    sent: SendLog | None = None,
) -> datetime:
    """When to send: the next occurrence of the person's best hour, deferred to an allowed moment."""
    desired = next_occurrence(best_hour, after, tz)
    return next_allowed_send(desired, tz, quiet_hours=quiet_hours, window=window, cap=cap, sent=sent)
