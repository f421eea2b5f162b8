"""When messages go out: quiet hours and caps defer (never drop), a message that could only go out
after the campaign ends is suppressed with the reason, and send-time optimization picks each
person's best hour from their own history, the population's for a cold person."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

from django.core import mail
from django.utils import timezone

from campaigns import scheduling
from campaigns.models import Campaign, Message, MessageState, Reason
from campaigns.send_time import hour_of_week
from tests.campaigns.conftest import launch_and_prepare, make_campaign, person, send_all, track

BERLIN = ZoneInfo("Europe/Berlin")


def _at(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=UTC)


def _scheduled(campaign: Campaign) -> datetime | None:
    return Message.objects.get(campaign=campaign).scheduled_for


def test_quiet_hours_defer_to_the_next_morning_in_the_persons_timezone(db):
    person("ann", first_name="Ann", timezone="Europe/Berlin")
    campaign = make_campaign(send_at=_at(2030, 1, 15, 22, 30), quiet_start=time(21), quiet_end=time(8))
    launch_and_prepare(campaign)
    message = Message.objects.get(campaign=campaign)
    assert message.state == MessageState.SCHEDULED
    assert message.scheduled_for == datetime(2030, 1, 16, 8, 0, tzinfo=BERLIN)


def test_a_person_without_a_timezone_is_read_in_utc(db):
    person("bob", first_name="Bob")
    campaign = make_campaign(send_at=_at(2030, 1, 15, 22, 30), quiet_start=time(21), quiet_end=time(8))
    launch_and_prepare(campaign)
    assert _scheduled(campaign) == _at(2030, 1, 16, 8, 0)


def test_frequency_caps_defer_to_the_next_allowed_day_and_week_and_never_drop(db):
    person("ann", first_name="Ann", timezone="Europe/Berlin")
    first = launch_and_prepare(make_campaign("first", send_at=_at(2030, 1, 15, 10), cap_per_day=1))
    second = launch_and_prepare(make_campaign("second", send_at=_at(2030, 1, 15, 12), cap_per_day=1))
    assert _scheduled(first) == _at(2030, 1, 15, 10)
    assert _scheduled(second) == datetime(2030, 1, 16, 0, 0, tzinfo=BERLIN)  # the next local day

    weekly = [
        launch_and_prepare(make_campaign(f"weekly-{n}", send_at=_at(2030, 1, 15, 13), cap_per_week=3)) for n in range(3)
    ]
    # The week of Jan 14 already holds two; the third weekly message goes next Monday, the fourth too
    # (caps count per week, and the week of Jan 21 has room for three).
    assert _scheduled(weekly[0]) == _at(2030, 1, 15, 13)
    assert _scheduled(weekly[1]) == datetime(2030, 1, 21, 0, 0, tzinfo=BERLIN)
    assert _scheduled(weekly[2]) == datetime(2030, 1, 21, 0, 0, tzinfo=BERLIN)
    assert Message.objects.filter(state=MessageState.SCHEDULED).count() == 5


def test_the_global_policy_caps_every_campaign_and_journey_together(db, settings):
    """Campaigns without caps of their own still share the global policy, and a journey's message
    (a message like any other on the channel) takes its place in the day's count."""
    settings.GLOBAL_CAP_PER_DAY, settings.GLOBAL_CAP_PER_WEEK = 2, 0
    person("ann", first_name="Ann", timezone="Europe/Berlin")
    journey = launch_and_prepare(make_campaign("cart-reminder", send_at=_at(2030, 1, 15, 9), cap_per_day=None))
    Message.objects.filter(campaign=journey).update(origin="journey:abandoned-cart:1")
    uncapped = [
        launch_and_prepare(
            make_campaign(f"open-{n}", send_at=_at(2030, 1, 15, 10 + n), cap_per_day=None, cap_per_week=None)
        )
        for n in range(3)
    ]
    assert _scheduled(uncapped[0]) == _at(2030, 1, 15, 10)
    assert _scheduled(uncapped[1]) == datetime(2030, 1, 16, 0, 0, tzinfo=BERLIN)  # the day holds two already
    assert _scheduled(uncapped[2]) == datetime(2030, 1, 16, 0, 0, tzinfo=BERLIN)
    # A campaign's own cap still applies within the policy: the lower of the two wins.
    own = launch_and_prepare(make_campaign("own", send_at=_at(2030, 1, 17, 10), cap_per_day=1))
    assert _scheduled(own) == _at(2030, 1, 17, 10)
    settings.GLOBAL_CAP_PER_DAY = 0  # switched off: only the campaign's caps
    assert scheduling.policy_of(uncapped[0]).cap.per_day is None


def test_what_cannot_go_out_before_the_campaign_ends_is_suppressed_with_the_reason(db):
    person("ann", first_name="Ann", timezone="Europe/Berlin")
    launch_and_prepare(make_campaign("first", send_at=_at(2030, 1, 15, 10)))
    capped = launch_and_prepare(
        make_campaign("capped", send_at=_at(2030, 1, 15, 12), send_until=_at(2030, 1, 15, 20), cap_per_day=1)
    )
    quiet = launch_and_prepare(
        make_campaign(
            "quiet",
            send_at=_at(2030, 1, 15, 22, 30),
            send_until=_at(2030, 1, 16, 5),
            quiet_start=time(21),
            quiet_end=time(8),
        )
    )
    window = launch_and_prepare(
        make_campaign(
            "window",
            send_at=_at(2030, 1, 19, 10),  # a Saturday
            send_until=_at(2030, 1, 20, 20),
            window_start=time(9),
            window_end=time(17),
            window_weekdays=[0, 1, 2, 3, 4],
        )
    )
    for campaign, reason in ((capped, Reason.CAPPED), (quiet, Reason.QUIET_HOURS), (window, Reason.OUTSIDE_WINDOW)):
        message = Message.objects.get(campaign=campaign)
        assert (message.state, message.reason) == (MessageState.SUPPRESSED, reason), campaign.key


def test_a_message_due_in_quiet_hours_at_sending_is_deferred_not_sent(db):
    person("ann", first_name="Ann")
    campaign = launch_and_prepare(make_campaign("now"))
    hour = timezone.now().astimezone(UTC).hour
    Campaign.objects.filter(pk=campaign.pk).update(quiet_start=time((hour - 1) % 24), quiet_end=time((hour + 2) % 24))
    assert send_all() == {"deferred": 1}
    assert mail.outbox == []
    message = Message.objects.get(campaign=campaign)
    assert message.state == MessageState.SCHEDULED
    assert message.scheduled_for is not None and message.scheduled_for.astimezone(UTC).hour == (hour + 2) % 24
    assert message.scheduled_for > timezone.now()


def _tuesday_evenings(user_id: str, weeks: int = 20) -> None:
    now = timezone.now()
    for week in range(1, weeks + 1):
        day = (now - timedelta(weeks=week)).astimezone(BERLIN)
        tuesday = day - timedelta(days=day.weekday() - 1)
        moment = datetime(tuesday.year, tuesday.month, tuesday.day, 19, 10, tzinfo=BERLIN)
        track(user_id, "Email Opened", at=moment)
        if week % 3 == 0:
            track(user_id, "Email Link Clicked", at=moment + timedelta(minutes=3))


def test_send_time_optimization_uses_the_persons_own_history_and_the_population_for_a_cold_person(db):
    ann = person("ann", first_name="Ann", timezone="Europe/Berlin")
    _tuesday_evenings("ann")
    cold = person("cold", first_name="Cole")
    campaign = make_campaign("sto", send_time_optimization=True, send_at=_at(2030, 1, 14, 0))
    launch_and_prepare(campaign)

    ann_message = Message.objects.get(campaign=campaign, person=ann)
    local = ann_message.scheduled_for.astimezone(BERLIN)  # type: ignore[union-attr]
    assert ann_message.send_time_source == "optimized"
    assert local.weekday() == 1 and 16 <= local.hour <= 19, local  # just before her Tuesday-evening reading
    assert local.date() == datetime(2030, 1, 15).date()

    cold_message = Message.objects.get(campaign=campaign, person=cold)
    model = scheduling.fit_model()
    assert model is not None
    assert cold_message.send_time_source == "cold_start"
    assert hour_of_week(cold_message.scheduled_for, "UTC") == model.population_best_hour  # type: ignore[arg-type]


def test_without_optimization_everyone_gets_the_fixed_time(db):
    person("ann", first_name="Ann", timezone="Europe/Berlin")
    _tuesday_evenings("ann")
    campaign = launch_and_prepare(make_campaign("fixed", send_at=_at(2030, 1, 14, 9)))
    message = Message.objects.get(campaign=campaign)
    assert (message.send_time_source, message.scheduled_for) == ("fixed", _at(2030, 1, 14, 9))


def test_before_anyone_has_opened_an_email_optimization_falls_back_to_the_fixed_time(db):
    person("ann", first_name="Ann")
    campaign = launch_and_prepare(make_campaign("first-ever", send_time_optimization=True, send_at=_at(2030, 1, 14, 9)))
    message = Message.objects.get(campaign=campaign)
    assert (message.send_time_source, message.scheduled_for) == ("fixed", _at(2030, 1, 14, 9))
