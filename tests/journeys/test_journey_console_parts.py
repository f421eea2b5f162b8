"""The console's pure parts: the words, the builder form ↔ definition, the counting arithmetic and the
one-person test run, each without a database."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from django.http import QueryDict

from journeys import builder, counting, dry_run, starters, wording
from journeys.definition import DefinitionError, EventFacts, validate

NOW = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)


def event(name: str, at: datetime, kind: str = "custom", item: str = "", n: int = 0, **props: Any) -> EventFacts:
    return EventFacts(1, kind, name, item, props, at.timestamp(), f"m-{name}-{at.timestamp()}-{n}", 0)


CART = validate(starters.STARTERS["abandoned-cart"]["definition"])
SOMEONE = dry_run.Person(traits={"email": "a@example.com"}, consents={"email_marketing": True})


# --- words ---------------------------------------------------------------------------------------


def test_the_abandoned_cart_reads_as_plain_language():
    said = wording.summary(CART)
    assert said["trigger"] == "When someone adds something to the cart (Product Added)"
    assert said["steps"] == ["Wait 4 hours", "Send the email “cart-reminder”"]
    assert said["exits"] == "Anyone who does “Order Completed” leaves at once."
    assert said["reentry"] == "A person enters again only after leaving."
    assert wording.reentry({"mode": "every_time", "cooldown_hours": 24}) == (
        "A person enters every time the trigger fires. At least 1 day between entries."
    )
    assert said["holdout"].startswith("10 % are held out")


@pytest.mark.parametrize(
    ("trigger", "words"),
    [
        ({"type": "event_count", "event": "API Call", "threshold": 500, "period_days": 30}, "reaches 500 × “API Call”"),
        (
            {"type": "event_count", "event": "API Call", "threshold": 500, "period": "billing_cycle", "per": "account"},
            "When an account reaches 500 × “API Call” within its billing cycle (counting starts again each cycle)",
        ),
        ({"type": "back_in_stock", "interest": ["view"], "within_days": 14}, "everyone who viewed it in the last 14"),
        ({"type": "schedule", "every": "weekly", "weekday": 0, "local_time": "08:00"}, "Every Monday at 08:00"),
        ({"type": "event", "event": "Signed Up", "where": {"plan": "pro"}}, "does “Signed Up” with plan = pro"),
    ],
)
def test_every_trigger_has_words(trigger, words):
    assert words in wording.trigger(trigger)


def test_waits_read_in_their_largest_unit():
    assert wording.duration(90 * 60) == "90 minutes"
    assert wording.duration(2 * 86400) == "2 days"
    assert wording.duration(3600) == "1 hour"
    assert wording.step({"type": "wait", "until_event": "Calendar Connected", "timeout_seconds": 72 * 3600}) == (
        "Wait until they do “Calendar Connected”, at most 3 days"
    )


# --- the builder form ----------------------------------------------------------------------------


def _post(form: builder.BuilderForm, **extra: str) -> QueryDict:
    """The form as a browser would post it back."""
    data = QueryDict(mutable=True)
    for name, value in form.values.items():
        if isinstance(value, list):
            data.setlist(name, value)
        else:
            data[name] = value
    for n, row in enumerate(form.steps):
        for name in row:
            data[f"step-{n}-{name}"] = str(row[name])
    for n, row in enumerate(form.exits):
        data[f"exit-{n}-event"], data[f"exit-{n}-where"] = row["event"], row["where"]
    for name, value in extra.items():
        data[name] = value
    return data


@pytest.mark.parametrize("key", sorted(starters.STARTERS))
def test_a_starter_goes_through_the_form_unchanged(key):
    definition = starters.STARTERS[key]["definition"]
    form = builder.from_definition(definition, key, "n")
    again = builder.to_definition(builder.read_form(_post(form)))
    assert validate(again) == validate(definition)


# Settings of the step and trigger kinds that come with the onboarding, expansion and digest journeys.
EXTENDED = {
    "trigger": {
        "type": "event_count",
        "event": "API Call",
        "where": {},
        "threshold": 500,
        "period_days": 30,
        "per": "account",
    },
    "steps": [
        {"id": "prompt", "type": "update_surface", "surface": "in-app", "campaign": "upgrade-prompt"},
        {"id": "pin", "type": "update_surface", "surface": "onboarding-checklist", "item": "connect", "note": "Next"},
        {"id": "b", "type": "branch", "if": {"segment": "power-users"}, "then": "mail", "else": "mail"},
        {
            "id": "mail",
            "type": "send_email",
            "campaign": "expansion-csm",
            "from": "csm",
            "instead_of": ["onboarding-generic"],
            "picks": 3,
            "window_hours": 6,
            "later_option": {"kept": True},
        },
    ],
    "exit_on": [{"event": "Plan Upgraded", "where": {}}],
    "reentry": {"mode": "every_time", "cooldown_hours": 0},
    "holdout_share": 0.0,
}


@pytest.mark.parametrize(
    "trigger",
    [
        {"type": "audience", "segment": "trial-power-users"},
        {"type": "price_drop", "interest": ["view"], "within_days": 14, "min_drop_percent": 5},
        {"type": "schedule", "every": "weekly", "weekday": 0, "local_time": "08:00", "new_setting": 1},
    ],
)
def test_the_form_keeps_every_setting_of_the_newer_kinds(trigger):
    definition = {**EXTENDED, "trigger": trigger}
    for given in (EXTENDED, definition):
        again = builder.to_definition(builder.read_form(_post(builder.from_definition(given))))
        assert again == given


def test_the_form_adds_moves_and_removes_steps():
    form = builder.read_form(_post(builder.from_definition(CART), op="add:send_email"))
    assert [s["id"] for s in form.steps] == ["wait", "send", "send-2"]
    form = builder.read_form(_post(form, op="add:exit"))
    assert [s["id"] for s in form.steps] == ["wait", "send", "send-2", "exit"]
    form = builder.read_form(_post(form, op="up:3"))
    assert [s["id"] for s in form.steps] == ["wait", "send", "exit", "send-2"]
    form = builder.read_form(_post(form, op="remove:0"))
    assert [s["id"] for s in form.steps] == ["send", "exit", "send-2"]
    form = builder.read_form(_post(form, op="add_exit"))
    assert len(form.exits) == 2


def test_a_where_text_becomes_properties_and_back():
    assert builder.parse_where("currency=EUR, qty=2, gift=true") == {"currency": "EUR", "qty": 2, "gift": True}
    assert builder.where_text({"currency": "EUR", "gift": True}) == "currency=EUR, gift=true"
    assert builder.parse_where("no equals sign") == "no equals sign"  # refused by the definition, by name


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"step-0-wait_amount": "soon"}, "step-0-wait_amount"),
        (
            {
                "step-1-type": "branch",
                "step-1-cond_value": "Order Completed",
                "step-1-then": "wait",
                "step-1-else": "wait",
            },
            "step-1-then",
        ),
        ({"trigger_event": ""}, "trigger_event"),
        ({"holdout_percent": "80"}, "holdout_percent"),
        ({"exit-0-event": ""}, "exit-0-event"),
        ({"step-1-id": "Send Now"}, "step-1-id"),
        ({"cooldown_hours": "-1"}, "cooldown_hours"),
    ],
)
def test_a_definition_error_lands_on_the_field_it_names(change, field):
    form = builder.read_form(_post(builder.from_definition(CART), **change))
    with pytest.raises(DefinitionError) as raised:
        validate(builder.to_definition(form))
    assert builder.field_for("definition." + raised.value.field) == field


# --- counting ------------------------------------------------------------------------------------


def test_the_flow_counts_who_is_where():
    steps: list[dict[str, Any]] = [
        {"id": "wait", "type": "wait", "seconds": 14400},
        {"id": "bought", "type": "branch"},
        {"id": "send", "type": "send_email"},
        {"id": "done", "type": "exit"},
    ]
    ran = {"wait": 7, "bought": 4, "send": 3, "done": 1}
    positions = [
        ("active", "", "", 2),  # entered, first step not run yet
        ("active", "wait", "", 2),  # in the wait
        ("exited", "wait", "exit event: Order Completed", 1),  # bought during the wait
        ("exited", "done", "exit step done", 1),
        ("done", "send", "", 3),
        ("held_out", "", "", 1),
    ]
    flow = counting.flow(steps, ran, positions, {("bought", "then"): 1, ("bought", "else"): 3})
    wait, bought, send, done = flow.steps
    assert (wait.entered, wait.waiting, wait.moved_on, wait.exited) == (9, 4, 4, 1)
    assert wait.exit_reasons == {"exit event: Order Completed": 1}
    assert (bought.entered, bought.moved_on, bought.outcomes) == (4, 4, {"then": 1, "else": 3})
    assert (send.entered, send.moved_on) == (3, 3)
    assert (done.entered, done.exited, done.moved_on) == (1, 1, 0)
    assert flow.entries == {"active": 4, "done": 3, "exited": 2, "held_out": 1} and flow.total == 10


# --- the test run --------------------------------------------------------------------------------


def test_someone_who_carted_and_did_not_buy_gets_the_email():
    added = NOW - timedelta(hours=6)
    result = dry_run.trace(CART, [event("Product Added", added, "add_to_cart", "a1")], SOMEONE, NOW)
    assert result.entered and result.entered_at == added
    assert [(s.id, s.expected) for s in result.path] == [("wait", False), ("send", False)]
    assert result.path[0].happens == "waits until Nov 27 10:00 UTC"
    assert result.path[1].happens.startswith("sends the email “cart-reminder”")
    assert result.outcome == "Finishes the journey after the last step."


def test_someone_who_bought_during_the_wait_leaves():
    events = [
        event("Product Added", NOW - timedelta(hours=3), "add_to_cart", "a1"),
        event("Order Completed", NOW - timedelta(hours=1), "purchase", "a1"),
    ]
    result = dry_run.trace(CART, events, SOMEONE, NOW)
    assert [s.id for s in result.path] == ["wait"]
    assert result.outcome.startswith("Leaves: they did “Order Completed”")


def test_a_recent_cart_is_still_waiting_and_the_rest_is_expected():
    result = dry_run.trace(CART, [event("Product Added", NOW - timedelta(hours=1), "add_to_cart")], SOMEONE, NOW)
    assert [s.expected for s in result.path] == [False, True]


def test_no_consent_and_holdout_are_said():
    carted = [event("Product Added", NOW - timedelta(hours=6), "add_to_cart")]
    refused = dry_run.trace(CART, carted, dry_run.Person({"email": "a@example.com"}, {}), NOW)
    assert "no email_marketing consent" in refused.path[-1].happens and refused.path[-1].tone == "bad"
    held = dry_run.trace(CART, carted, dry_run.Person({}, {}, held_out=True), NOW)
    assert held.path == [] and held.outcome.startswith("Held out")


def test_without_a_trigger_the_path_is_shown_as_if_it_fired_now():
    result = dry_run.trace(CART, [], SOMEONE, NOW)
    assert not result.entered and result.entered_at == NOW
    assert "have not done “Product Added”" in result.entry and all(s.expected for s in result.path[1:])


def test_a_wait_for_an_event_and_a_count_trigger():
    definition = validate(
        {
            "trigger": {"type": "event_count", "event": "API Call", "threshold": 3, "period_days": 30},
            "steps": [
                {"id": "w", "type": "wait", "until_event": "Upgraded", "timeout_hours": 48},
                {"id": "b", "type": "branch", "if": {"trait": "plan", "equals": "pro"}, "then": "x", "else": "s"},
                {"id": "s", "type": "send_email", "campaign": "upgrade"},
                {"id": "x", "type": "exit"},
            ],
        }
    )
    start = NOW - timedelta(days=2)
    calls = [event("API Call", start + timedelta(hours=h), n=h) for h in range(4)]
    upgraded = event("Upgraded", start + timedelta(hours=10))
    result = dry_run.trace(definition, [*calls, upgraded], dry_run.Person({"plan": "pro"}, {}), NOW)
    assert result.entered_at == start + timedelta(hours=2)  # the third call
    assert "they did “Upgraded”" in result.path[0].happens
    assert [s.id for s in result.path] == ["w", "b", "x"] and result.outcome == "Leaves at the exit step."


def test_the_newer_kinds_read_in_words_and_in_a_test_run():
    said = wording.summary(EXTENDED)
    assert said["trigger"] == "When an account reaches 500 × “API Call” in a period of 30 days"
    assert said["steps"][:2] == [
        "Show the in-product message “upgrade-prompt”",
        "Put “connect” first on their onboarding checklist",
    ]
    assert said["steps"][2].startswith("If they are in the segment “power-users”")
    assert said["steps"][3] == (
        "Send the email “expansion-csm” with 3 items they have not been shown (skipped when none qualifies), "
        "from the account's CSM, instead of “onboarding-generic”, at their best hour within 6 hours"
    )
    definition = {**EXTENDED, "trigger": {"type": "audience", "segment": "trial-power-users"}}
    inside = dry_run.Person({"email": "a@example.com"}, {"email_marketing": True}, segments=frozenset({"power-users"}))
    result = dry_run.trace(definition, [], inside, NOW)
    assert not result.entered and "segment “trial-power-users”" in result.entry
    assert [s.id for s in result.path] == ["prompt", "pin", "b", "mail"]
    assert result.path[2].happens.startswith("they are in the segment")


def test_a_count_per_billing_cycle_in_the_form_and_in_a_test_run():
    definition = validate(
        {
            "trigger": {"type": "event_count", "event": "API Call", "threshold": 3, "period": "billing_cycle"},
            "steps": [{"id": "s", "type": "send_email", "campaign": "upgrade"}],
        }
    )
    form = builder.from_definition(definition, "usage", "Usage")
    assert form.values["trigger_period"] == "billing_cycle"
    assert validate(builder.to_definition(builder.read_form(_post(form)))) == definition
    # The builder names the field of a wrong period, as it does for every field.
    assert builder.field_for("definition.trigger.period") == "trigger_period"
    # Cycles start on the 10th for this person's account: two calls before it, two after.
    cycle = datetime(2026, 11, 10, tzinfo=UTC)  # the cycle NOW falls in
    calls = [event("API Call", cycle - timedelta(hours=2 - h), n=h) for h in range(2)]
    calls += [event("API Call", cycle + timedelta(minutes=10 + h), n=10 + h) for h in range(2)]
    person = dry_run.Person({"account_id": "acme"}, {}, billing_day=10)
    result = dry_run.trace(definition, calls, person, NOW)
    assert not result.entered and result.entry.startswith("2 of 3 “API Call” in this billing cycle")
    by_month = dry_run.trace(definition, calls, dry_run.Person({}, {}), NOW)  # no billing day: calendar months
    assert by_month.entered and by_month.entered_at == cycle + timedelta(minutes=10)  # November's third call
