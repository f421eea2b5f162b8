"""A journey's definition is validated before it is stored; each error names the field."""

from __future__ import annotations

from typing import Any

import pytest

from journeys import lifecycle as services
from journeys.definition import DefinitionError, validate
from journeys.models import Journey
from tests.campaigns.conftest import make_campaign

GOOD: dict[str, Any] = {
    "trigger": {"type": "event", "event": "Product Added", "where": {"currency": "EUR"}},
    "steps": [
        {"id": "wait", "type": "wait", "hours": 4},
        {"id": "b", "type": "branch", "if": {"did_not_event": "Order Completed"}, "then": "send", "else": "out"},
        {"id": "send", "type": "send_email", "campaign": "cart-reminder"},
        {"id": "out", "type": "exit"},
    ],
    "exit_on": [{"event": "Order Completed"}],
    "holdout_share": 0.1,
}


def test_a_good_definition_is_normalized() -> None:
    checked = validate(GOOD)
    assert checked["steps"][0] == {"id": "wait", "type": "wait", "seconds": 4 * 3600}
    assert checked["reentry"] == {"mode": "after_exit", "cooldown_hours": 0}
    assert checked["holdout_share"] == 0.1


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"trigger": {"type": "telepathy"}}, "trigger.type"),
        ({"trigger": {"type": "event"}}, "trigger.event"),
        (
            {"trigger": {"type": "event_count", "event": "API Call", "threshold": 0, "period_days": 30}},
            "trigger.threshold",
        ),
        ({"trigger": {"type": "schedule", "every": "weekly", "local_time": "25:00"}}, "trigger.local_time"),
        ({"trigger": {"type": "back_in_stock", "interest": ["purchase"]}}, "trigger.interest"),
        ({"steps": []}, "steps"),
        ({"steps": [{"type": "wait"}]}, "steps[0]"),
        ({"steps": [{"type": "wait", "hours": -1}]}, "steps[0].hours"),
        ({"steps": [{"type": "wait", "until_event": "x", "timeout_hours": None}]}, "steps[0].timeout_hours"),
        ({"steps": [{"id": "a", "type": "exit"}, {"id": "a", "type": "exit"}]}, "steps[1].id"),
        (
            {
                "steps": [
                    {"id": "a", "type": "exit"},
                    {"id": "b", "type": "branch", "if": {"trait": "plan", "equals": "x"}, "then": "a", "else": "a"},
                ]
            },
            "steps[1].then",
        ),
        ({"steps": [{"id": "b", "type": "branch", "if": {}, "then": "x", "else": "y"}]}, "steps[0].if"),
        ({"steps": [{"id": "Bad Id", "type": "exit"}]}, "steps[0].id"),
        ({"exit_on": [{"event": ""}]}, "exit_on[0].event"),
        ({"reentry": {"mode": "sometimes"}}, "reentry.mode"),
        ({"holdout_share": 0.9}, "holdout_share"),
    ],
)
def test_a_wrong_field_is_named(change: dict[str, Any], field: str) -> None:
    with pytest.raises(DefinitionError) as error:
        validate({**GOOD, **change})
    assert error.value.field == field


@pytest.mark.django_db
def test_a_send_step_must_name_an_existing_campaign_and_nothing_is_stored() -> None:
    with pytest.raises(services.JourneyError) as error:
        services.create_journey("cart", "Cart", GOOD)
    assert error.value.field == "definition.steps[2].campaign"
    assert not Journey.objects.exists()


@pytest.mark.django_db
def test_changes_add_versions_and_launch_pause_move_the_status() -> None:
    make_campaign("cart-reminder", content_limit=0)
    journey = services.create_journey("cart", "Cart", GOOD)
    assert journey.current_version is not None
    assert journey.current_version.number == 1 and journey.status == "draft"
    changed = {**GOOD, "holdout_share": 0.0}
    journey = services.change_journey(journey, definition=changed)
    assert journey.current_version is not None
    assert journey.current_version.number == 2
    assert journey.current_version.watched == ["order completed", "product added"]
    assert services.launch(journey).status == "live"
    with pytest.raises(services.JourneyError) as error:
        services.launch(journey)
    assert error.value.field == "status"
    assert services.pause(journey).status == "paused"
    with pytest.raises(services.JourneyError) as wrong:
        services.change_journey(journey, definition={**GOOD, "trigger": {"type": "event"}})
    assert wrong.value.field == "definition.trigger.event"
    assert journey.versions.count() == 2
