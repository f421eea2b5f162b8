"""The expansion case counts an account's events per billing cycle: the 500th API call of a cycle
enters once, the next cycle's 500th enters again, the 499th does not; cycles start on the account's
billing day (calendar months when it has none)."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from django.utils import timezone

from campaigns.models import Account
from journeys import billing_cycle, entering, lifecycle, starters
from journeys.definition import DefinitionError, EventFacts, validate
from journeys.models import Entry
from profiles import services as profiles
from profiles.models import Event
from tests.campaigns.conftest import make_campaign, person
from tests.journeys.conftest import relay

_ids = itertools.count(1)


def test_a_cycle_starts_on_the_accounts_billing_day_or_the_last_day_of_a_shorter_month() -> None:
    at = datetime(2026, 3, 10, 12, tzinfo=UTC)
    assert billing_cycle.cycle_start(at, 15) == datetime(2026, 2, 15, tzinfo=UTC)
    assert billing_cycle.cycle_start(at, 10) == datetime(2026, 3, 10, tzinfo=UTC)
    assert billing_cycle.cycle_start(at, None) == datetime(2026, 3, 1, tzinfo=UTC)  # unknown: calendar month
    assert billing_cycle.cycle_start(datetime(2026, 3, 5, tzinfo=UTC), 31) == datetime(2026, 2, 28, tzinfo=UTC)
    assert billing_cycle.cycle_end(datetime(2026, 2, 28, tzinfo=UTC), 31) == datetime(2026, 3, 31, tzinfo=UTC)
    assert billing_cycle.cycle_start(datetime(2026, 1, 3, tzinfo=UTC), 20) == datetime(2025, 12, 20, tzinfo=UTC)


def test_the_period_is_checked_naming_the_field() -> None:
    trigger = {"type": "event_count", "event": "API Call", "threshold": 500, "per": "account"}
    steps = [{"id": "out", "type": "exit"}]
    assert validate({"trigger": {**trigger, "period": "billing_cycle"}, "steps": steps})["trigger"] == {
        **trigger,
        "where": {},
        "period": "billing_cycle",
    }
    with pytest.raises(DefinitionError) as wrong:
        validate({"trigger": {**trigger, "period": "fortnight"}, "steps": steps})
    assert wrong.value.field == "trigger.period"
    with pytest.raises(DefinitionError) as missing:
        validate({"trigger": trigger, "steps": steps})  # counted over days, without saying how many
    assert missing.value.field == "trigger.period_days"
    assert starters.STARTERS["expansion"]["definition"]["trigger"]["period"] == "billing_cycle"


def _calls(user_ids: list[str], start: datetime, n: int) -> None:
    """``n`` API calls, a millisecond apart from ``start``, shared round-robin by the people."""
    messages: list[dict[str, Any]] = [
        {
            "type": "track",
            "userId": user_ids[i % len(user_ids)],
            "event": "API Call",
            "messageId": f"call-{next(_ids)}",
            "timestamp": (start + timedelta(milliseconds=i)).isoformat(),
        }
        for i in range(n)
    ]
    result = profiles.ingest_messages(messages, refresh=False)
    assert not result.rejected and result.accepted == n


@pytest.mark.django_db
def test_the_500th_call_of_an_accounts_billing_cycle_enters_once_per_cycle() -> None:
    make_campaign("note", content_limit=0, audience={"all": []})
    Account.objects.create(external_id="acme", name="Acme", billing_day=15)
    definition = starters.starter("expansion")["definition"]
    definition["steps"] = [{"id": "send", "type": "send_email", "campaign": "note"}]
    journey = lifecycle.launch(lifecycle.create_journey("expansion", "Expansion", definition))
    person("ann", account_id="acme")
    person("bob", account_id="acme")
    person("cy", account_id="globex")  # another account's calls count for it, not for acme
    now = timezone.now()
    current = billing_cycle.cycle_start(now, 15)
    last = billing_cycle.cycle_start(current - timedelta(microseconds=1), 15)

    _calls(["ann", "bob"], last + timedelta(hours=1), 499)
    _calls(["cy"], last + timedelta(hours=2), 600)
    relay()
    assert not Entry.objects.filter(journey=journey, context__account__id="acme").exists()  # 499: nobody
    _calls(["bob"], last + timedelta(hours=3), 1)  # the cycle's 500th
    _calls(["ann", "bob"], last + timedelta(hours=4), 20)  # and more of the same cycle
    relay()
    acme = Entry.objects.filter(journey=journey, context__account__id="acme")
    assert acme.count() == 1
    first = acme.get()
    assert first.person.traits["email"] == "bob@example.com"
    assert first.occurrence == f"account:acme:cycle:{last.date().isoformat()}"
    assert first.context["account"]["period_start"] == last.isoformat()

    # The count starts again with the next cycle: 499 calls there enter nobody, the 500th enters again.
    _calls(["ann"], current + timedelta(seconds=1), 499)
    relay()
    assert acme.count() == 1
    _calls(["ann"], current + timedelta(seconds=2), 1)
    relay()
    assert acme.count() == 2
    latest = acme.order_by("entered_at").last()
    assert latest is not None and latest.occurrence == f"account:acme:cycle:{current.date().isoformat()}"
    # Evaluating the cycle's events again (a redelivery) enters nobody: one entry per account and cycle.
    rows = Event.objects.filter(name="API Call", timestamp__gte=current).values_list(
        "person_id", "kind", "name", "item_id", "properties", "timestamp", "message_id", "position"
    )
    again = [EventFacts(p, k, n, i, dict(o or {}), at.timestamp(), m, pos) for p, k, n, i, o, at, m, pos in rows]
    assert len(again) == 500 and entering.on_events(again)["entered"] == 0
    assert acme.count() == 2


@pytest.mark.django_db
def test_without_a_billing_day_the_cycle_is_the_calendar_month() -> None:
    make_campaign("note", content_limit=0, audience={"all": []})
    definition = {
        "trigger": {"type": "event_count", "event": "API Call", "threshold": 3, "period": "billing_cycle"},
        "steps": [{"id": "send", "type": "send_email", "campaign": "note"}],
        "reentry": {"mode": "every_time"},
    }
    journey = lifecycle.launch(lifecycle.create_journey("usage", "Usage", definition))
    person("dee", account_id="initech")  # no Account row: calendar months
    month = billing_cycle.cycle_start(timezone.now(), None)
    _calls(["dee"], month - timedelta(hours=1), 2)  # the end of last month …
    _calls(["dee"], month, 1)  # … and the first moment of this one: 1 of 3
    relay()
    assert not Entry.objects.filter(journey=journey).exists()
    _calls(["dee"], month + timedelta(seconds=1), 2)
    relay()
    assert Entry.objects.get(journey=journey).occurrence == f"cycle:{month.date().isoformat()}"
