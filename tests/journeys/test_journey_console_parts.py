"""The console's pure parts: the words, the builder form ↔ definition, and the counting arithmetic, each
without a database."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from django.http import QueryDict

from journeys import builder, counting, starters, wording
from journeys.definition import DefinitionError, validate

NOW = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)


CART = validate(starters.STARTERS["abandoned-cart"]["definition"])


# --- words ---------------------------------------------------------------------------------------


def test_the_abandoned_cart_reads_as_plain_language():
    said = wording.summary(CART)
    assert said["trigger"] == "When someone adds something to the cart (Product Added)"
    assert said["steps"] == ["Wait 4 hours", "Send the email “cart-reminder”"]
    assert said["exits"] == "Anyone who does “Order Completed” leaves at once."
    assert said["reentry"] == "A person enters again only after leaving. At least 1 day between entries."
    assert said["holdout"].startswith("10 % are held out")


@pytest.mark.parametrize(
    ("trigger", "words"),
    [
        ({"type": "event_count", "event": "API Call", "threshold": 500, "period_days": 30}, "reaches 500 × “API Call”"),
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
