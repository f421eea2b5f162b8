from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from campaigns.send_time import (
    HOURS_PER_WEEK,
    FrequencyCap,
    QuietHours,
    SendLog,
    SendTimeSettings,
    SendWindow,
    choose_prior_strength,
    engagement_counts,
    fit_send_time_model,
    hour_of_week,
    next_allowed_send,
    next_occurrence,
    schedule_send,
)

BERLIN = ZoneInfo("Europe/Berlin")
NEW_YORK = ZoneInfo("America/New_York")
TOKYO = ZoneInfo("Asia/Tokyo")
AS_OF = datetime(2026, 6, 1, tzinfo=UTC)
AT_THE_PEAK = SendTimeSettings(inbox_hours=0)


def slot(weekday: int, hour: int) -> int:
    return weekday * 24 + hour


def opens_at(weekday: int, hour: int, count: int, tz: ZoneInfo = BERLIN, weeks: int = 20) -> list[datetime]:
    """``count`` opens at a local weekday and hour, spread over past weeks, returned in UTC."""
    monday = datetime(2026, 5, 25, tzinfo=tz)  # a Monday
    return [
        (monday - timedelta(weeks=1 + i % weeks) + timedelta(days=weekday, hours=hour, minutes=7 * i % 60)).astimezone(
            UTC
        )
        for i in range(count)
    ]


def counts_at(weekday: int, hour: int, count: int) -> np.ndarray:
    return engagement_counts(BERLIN, opens=opens_at(weekday, hour, count), as_of=AS_OF)


def crowd(weekday: int, hour: int, people: int = 50, each: int = 10) -> np.ndarray:
    return np.stack([counts_at(weekday, hour, each) for _ in range(people)])


# --- the best hour -------------------------------------------------------------------------------------------


def test_hour_of_week_is_read_on_the_persons_clock():
    moment = datetime(2026, 3, 2, 0, 30, tzinfo=UTC)  # Monday 00:30 UTC
    assert hour_of_week(moment, "Asia/Tokyo") == slot(0, 9)
    assert hour_of_week(moment, NEW_YORK) == slot(6, 19)  # still Sunday evening in New York
    with pytest.raises(ValueError):
        hour_of_week(datetime(2026, 3, 2, 0, 30), TOKYO)


def test_counts_weigh_clicks_over_opens_and_decay_old_signals():
    tuesday_ten = datetime(2026, 5, 26, 10, 15, tzinfo=BERLIN)
    counts = engagement_counts(
        BERLIN,
        opens=[tuesday_ten - timedelta(weeks=1), tuesday_ten - timedelta(weeks=60), tuesday_ten - timedelta(weeks=110)],
        clicks=[tuesday_ten - timedelta(weeks=2)],
        activity=[tuesday_ten - timedelta(weeks=3)],
        as_of=AS_OF,
    )
    # open 1 + old open 0.5 + very old open 0 + click 2 + activity 0.5
    assert counts[slot(1, 10)] == pytest.approx(4.0)
    assert counts.sum() == pytest.approx(4.0)


def test_a_person_with_strong_history_gets_their_hour():
    # Everyone else reads on Tuesday at 10:00; this person reads on Thursday at 19:00, often.
    others = crowd(1, 10)
    person = counts_at(3, 19, 25)
    counts = np.vstack([others, person])
    model = fit_send_time_model(counts, ["office"] * len(counts), AT_THE_PEAK)

    assert model.best_hour(person, "office") == slot(3, 19)
    assert model.population_best_hour == slot(1, 10)


def test_the_send_hour_leads_the_reading_peak_when_messages_wait_in_the_inbox():
    person = counts_at(3, 19, 25)
    model = fit_send_time_model(np.vstack([crowd(1, 10), person]), [None] * 51, SendTimeSettings(inbox_hours=2.0))
    assert slot(3, 17) <= model.best_hour(person) <= slot(3, 19)


def test_a_cold_person_gets_the_population_hour():
    counts = np.vstack([crowd(1, 10, people=40), crowd(4, 20, people=10)])
    model = fit_send_time_model(counts, [None] * len(counts), AT_THE_PEAK)

    assert model.population_best_hour == slot(1, 10)
    assert model.best_hour(np.zeros(HOURS_PER_WEEK)) == slot(1, 10)
    assert model.best_hour(np.zeros(HOURS_PER_WEEK), "a segment nobody is in") == slot(1, 10)


def test_a_cold_person_in_a_known_segment_gets_the_segment_hour():
    counts = np.vstack([crowd(1, 10, people=40), crowd(4, 20, people=10)])
    segments = ["office"] * 40 + ["evening"] * 10
    model = fit_send_time_model(counts, segments, AT_THE_PEAK)

    assert model.best_hour(np.zeros(HOURS_PER_WEEK), "evening") == slot(4, 20)


def test_thin_data_shrinks_toward_the_segment_and_rich_data_wins():
    # The person's segment reads on Friday evenings; the person opened on Saturday at 06:00.
    segment = crowd(4, 20, people=40)
    model = fit_send_time_model(segment, ["evening"] * 40, AT_THE_PEAK)

    hours = [model.best_hour(counts_at(5, 6, n), "evening") for n in (1, 2, 40)]

    assert hours[0] == slot(4, 20)
    assert hours[-1] == slot(5, 6)
    # Thin data moves the pattern toward the person, though not yet the choice.
    pattern = model.pattern(counts_at(5, 6, 1), "evening")
    assert pattern[slot(5, 6)] > model.prior("evening")[slot(5, 6)]


def test_a_thin_segment_leans_on_everyone():
    counts = np.vstack([crowd(1, 10, people=60), counts_at(6, 22, 1)])
    model = fit_send_time_model(counts, [None] * 60 + ["tiny"], AT_THE_PEAK)
    assert model.best_hour(np.zeros(HOURS_PER_WEEK), "tiny") == slot(1, 10)


def test_smoothing_keeps_totals_and_wraps_around_the_week():
    smoothing = SendTimeSettings().smoothing()
    assert np.allclose(smoothing.sum(axis=1), 1.0)
    sunday_late, monday_early = slot(6, 23), slot(0, 0)
    assert smoothing[sunday_late, monday_early] == pytest.approx(smoothing[sunday_late, slot(6, 22)])
    # Same hour: more on another weekday than across the weekend divide.
    tuesday = slot(1, 9)
    assert smoothing[tuesday, slot(3, 9)] > smoothing[tuesday, slot(5, 9)]


def test_empirical_bayes_trusts_consistent_people_and_doubts_noisy_ones():
    rng = np.random.default_rng(0)
    consistent = np.zeros((200, HOURS_PER_WEEK))
    noisy = np.zeros((200, HOURS_PER_WEEK))
    for row in range(200):
        own_hour = rng.integers(0, HOURS_PER_WEEK)
        consistent[row, own_hour] = 8
        np.add.at(noisy[row], rng.integers(0, HOURS_PER_WEEK, 8), 1)

    trusted = choose_prior_strength(consistent, [None] * 200)
    doubted = choose_prior_strength(noisy, [None] * 200)
    assert trusted < doubted


def test_batch_and_single_answers_agree():
    counts = np.vstack([crowd(1, 10, people=5), counts_at(3, 19, 6), np.zeros(HOURS_PER_WEEK)])
    segments = ["a"] * 5 + ["b", None]
    model = fit_send_time_model(counts, segments)
    assert model.best_hours(counts, segments).tolist() == [
        model.best_hour(row, segment) for row, segment in zip(counts, segments, strict=True)
    ]


# --- deferral --------------------------------------------------------------------------------------------------


def local(tz: ZoneInfo, year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=tz)


QUIET = QuietHours(start=time(21, 0), end=time(8, 0))


@pytest.mark.parametrize(
    ("desired", "expected"),
    [
        ((2026, 5, 26, 23, 30), (2026, 5, 27, 8, 0)),  # late evening: next morning
        ((2026, 5, 27, 2, 0), (2026, 5, 27, 8, 0)),  # after midnight: same morning
        ((2026, 5, 26, 21, 0), (2026, 5, 27, 8, 0)),  # quiet hours start included
        ((2026, 5, 27, 7, 59), (2026, 5, 27, 8, 0)),
        ((2026, 5, 27, 8, 0), (2026, 5, 27, 8, 0)),  # quiet hours end excluded
        ((2026, 5, 26, 20, 59), (2026, 5, 26, 20, 59)),
    ],
)
def test_quiet_hours_across_midnight(desired, expected):
    sent = next_allowed_send(local(BERLIN, *desired), BERLIN, quiet_hours=QUIET)
    assert sent == local(BERLIN, *expected)
    assert sent.tzinfo == UTC


def test_quiet_hours_are_read_in_each_persons_timezone():
    moment = datetime(2026, 5, 26, 21, 30, tzinfo=UTC)  # 23:30 in Berlin, 17:30 in New York
    assert next_allowed_send(moment, NEW_YORK, quiet_hours=QUIET) == moment
    assert next_allowed_send(moment, BERLIN, quiet_hours=QUIET) == local(BERLIN, 2026, 5, 27, 8, 0)
    assert next_allowed_send(moment, TOKYO, quiet_hours=QUIET) == local(TOKYO, 2026, 5, 27, 8, 0)


def test_quiet_hours_end_at_local_eight_across_a_daylight_saving_change():
    # Berlin moves its clocks forward in the night of 28-29 March 2026.
    sent = next_allowed_send(local(BERLIN, 2026, 3, 28, 22, 0), BERLIN, quiet_hours=QUIET)
    assert sent == datetime(2026, 3, 29, 6, 0, tzinfo=UTC)  # 08:00 CEST


def test_window_defers_to_the_next_opening():
    window = SendWindow(start=time(9, 0), end=time(17, 0), weekdays=frozenset(range(5)))
    friday_evening = local(BERLIN, 2026, 5, 29, 18, 0)
    assert next_allowed_send(friday_evening, BERLIN, window=window) == local(BERLIN, 2026, 6, 1, 9, 0)
    tuesday_noon = local(BERLIN, 2026, 5, 26, 12, 0)
    assert next_allowed_send(tuesday_noon, BERLIN, window=window) == tuesday_noon


def test_daily_cap_defers_to_tomorrow_after_quiet_hours():
    desired = local(BERLIN, 2026, 5, 26, 10, 0)
    sent = SendLog.from_sends([local(BERLIN, 2026, 5, 26, 9, 0)], BERLIN)
    result = next_allowed_send(desired, BERLIN, quiet_hours=QUIET, cap=FrequencyCap(per_day=1), sent=sent)
    assert result == local(BERLIN, 2026, 5, 27, 8, 0)


def test_daily_cap_counts_the_persons_local_day():
    # 23:30 UTC on the 25th is already the 26th in Berlin, so it counts against the 26th there.
    earlier = [datetime(2026, 5, 25, 23, 30, tzinfo=UTC)]
    desired = local(BERLIN, 2026, 5, 26, 10, 0)
    cap = FrequencyCap(per_day=1)
    in_berlin = next_allowed_send(desired, BERLIN, cap=cap, sent=SendLog.from_sends(earlier, BERLIN))
    in_new_york = next_allowed_send(desired, NEW_YORK, cap=cap, sent=SendLog.from_sends(earlier, NEW_YORK))
    assert in_berlin == local(BERLIN, 2026, 5, 27, 0, 0)
    assert in_new_york == desired


def test_weekly_cap_defers_to_next_monday():
    sends = [local(BERLIN, 2026, 5, 25, 10, 0), local(BERLIN, 2026, 5, 27, 10, 0)]  # Monday, Wednesday
    desired = local(BERLIN, 2026, 5, 29, 10, 0)  # Friday
    result = next_allowed_send(
        desired,
        BERLIN,
        quiet_hours=QUIET,
        cap=FrequencyCap(per_day=1, per_week=2),
        sent=SendLog.from_sends(sends, BERLIN),
    )
    assert result == local(BERLIN, 2026, 6, 1, 8, 0)


def test_scheduling_several_messages_in_a_row_spreads_them_over_days():
    log = SendLog.from_sends([], BERLIN)
    cap = FrequencyCap(per_day=1, per_week=3)
    moments = []
    desired = local(BERLIN, 2026, 5, 25, 10, 0)
    for _ in range(5):
        moment = next_allowed_send(desired, BERLIN, quiet_hours=QUIET, cap=cap, sent=log)
        moments.append(moment.astimezone(BERLIN))
        log = log.with_send(moment, BERLIN)
    assert [m.date().isoformat() for m in moments] == [
        "2026-05-25",
        "2026-05-26",
        "2026-05-27",
        "2026-06-01",
        "2026-06-02",
    ]


def test_settings_that_never_allow_a_moment_are_refused():
    window = SendWindow(start=time(22, 0), end=time(23, 0))
    with pytest.raises(ValueError):
        next_allowed_send(local(BERLIN, 2026, 5, 26, 10, 0), BERLIN, quiet_hours=QUIET, window=window)
    with pytest.raises(ValueError):
        FrequencyCap(per_day=0)
    with pytest.raises(ValueError):
        next_allowed_send(datetime(2026, 5, 26, 10, 0), BERLIN)


def test_schedule_send_uses_the_next_occurrence_of_the_best_hour():
    tuesday_ten = slot(1, 10)
    assert next_occurrence(tuesday_ten, local(BERLIN, 2026, 5, 26, 10, 0), BERLIN) == local(BERLIN, 2026, 5, 26, 10, 0)
    assert next_occurrence(tuesday_ten, local(BERLIN, 2026, 5, 26, 10, 30), BERLIN) == local(BERLIN, 2026, 6, 2, 10, 0)
    # Best hour Sunday 22:00 falls in quiet hours: deferred to Monday 08:00, not dropped.
    result = schedule_send(slot(6, 22), local(BERLIN, 2026, 5, 25, 9, 0), BERLIN, quiet_hours=QUIET)
    assert result == local(BERLIN, 2026, 6, 1, 8, 0)


clock_times = st.builds(time, st.integers(0, 23), st.sampled_from([0, 15, 30, 45]))


@settings(max_examples=150, deadline=None)
@given(
    desired_minutes=st.integers(0, 60 * 24 * 60),
    tz=st.sampled_from([BERLIN, NEW_YORK, TOKYO, ZoneInfo("Australia/Lord_Howe")]),
    quiet=st.one_of(
        st.none(),
        st.tuples(clock_times, clock_times).filter(lambda pair: pair[0] != pair[1]).map(lambda pair: QuietHours(*pair)),
    ),
    window=st.one_of(
        st.none(),
        st.builds(SendWindow, clock_times, clock_times, st.frozensets(st.integers(0, 6), min_size=1)),
    ),
    per_day=st.one_of(st.none(), st.integers(1, 2)),
    per_week=st.one_of(st.none(), st.integers(1, 4)),
    sends=st.lists(st.integers(-7 * 24 * 60, 21 * 24 * 60), max_size=12),
)
def test_deferral_never_drops_and_lands_on_the_first_allowed_minute(
    desired_minutes, tz, quiet, window, per_day, per_week, sends
):
    start = datetime(2026, 1, 1, tzinfo=UTC)
    desired = start + timedelta(minutes=desired_minutes, seconds=17)
    cap = FrequencyCap(per_day=per_day, per_week=per_week)
    log = SendLog.from_sends([start + timedelta(minutes=m) for m in sends], tz)

    def allowed(moment: datetime) -> bool:
        clock = moment.astimezone(tz)
        day = clock.date()
        return (
            (quiet is None or not quiet.contains(clock))
            and (window is None or window.contains(clock))
            and (per_day is None or log.per_day.get(day, 0) < per_day)
            and (per_week is None or log.per_week.get(day.isocalendar()[:2], 0) < per_week)
        )

    try:
        result = next_allowed_send(desired, tz, quiet_hours=quiet, window=window, cap=cap, sent=log)
    except ValueError:
        # Only refused when no clock time is both inside the window and outside quiet hours.
        assert quiet is not None
        assert not any(
            (window is None or window.contains(datetime(2026, 1, 5 + d, m // 60, m % 60)))
            and not quiet.contains(datetime(2026, 1, 5, m // 60, m % 60))
            for d in range(7)
            for m in range(0, 1440, 15)
        )
        return

    assert result >= desired
    assert allowed(result)
    # Nothing earlier was allowed: check every quarter-hour boundary in between (all boundaries are on them).
    moment = desired
    if not allowed(moment):
        probe = (desired + timedelta(minutes=15)).replace(second=0, microsecond=0)
        probe -= timedelta(minutes=probe.minute % 15)
        while probe < result:
            assert not allowed(probe), f"{probe} was allowed before {result}"
            probe += timedelta(minutes=15)
