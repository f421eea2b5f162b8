"""Creating, changing, launching and pausing journeys: each change validated and versioned."""

from __future__ import annotations

from typing import Any

from django.db import transaction
from django.utils import timezone

from campaigns.models import Campaign, Channel
from campaigns.rules import RuleError, parse_rule
from journeys import definition as spec
from journeys.models import Journey, JourneyStatus, JourneyVersion, Segment
from profiles.models import Purpose


class JourneyError(ValueError):
    def __init__(self, field: str, detail: str) -> None:
        super().__init__(f"{field}: {detail}")
        self.field = field
        self.detail = detail


def _checked(definition: Any) -> dict[str, Any]:
    try:
        checked = spec.validate(definition)
    except spec.DefinitionError as error:
        raise JourneyError(
            f"definition.{error.field}" if error.field != "definition" else "definition", error.detail
        ) from error
    for index, step in enumerate(checked["steps"]):
        purpose = step.get("if", {}).get("consent")
        if purpose is not None and purpose not in Purpose.values:
            raise JourneyError(f"definition.steps[{index}].if.consent", f"Choose one of {', '.join(Purpose.values)}.")
    known = dict(Campaign.objects.filter(key__in=spec.campaigns_used(checked)).values_list("key", "channel"))
    for index, step in enumerate(checked["steps"]):
        if step.get("campaign") and step["campaign"] not in known:
            raise JourneyError(f"definition.steps[{index}].campaign", f"No campaign has the key {step['campaign']!r}.")
        if step["type"] == "update_surface" and step.get("campaign") and known[step["campaign"]] != Channel.ONBOARDING:
            raise JourneyError(
                f"definition.steps[{index}].campaign", "Give an in-product (onboarding channel) campaign for a surface."
            )
    segments = set(Segment.objects.filter(key__in=spec.segments_used(checked)).values_list("key", flat=True))
    if checked["trigger"].get("segment") and checked["trigger"]["segment"] not in segments:
        raise JourneyError("definition.trigger.segment", f"No segment has the key {checked['trigger']['segment']!r}.")
    for index, step in enumerate(checked["steps"]):
        wanted = step.get("if", {}).get("segment")
        if wanted is not None and wanted not in segments:
            raise JourneyError(f"definition.steps[{index}].if.segment", f"No segment has the key {wanted!r}.")
    return checked


def save_segment(key: str, name: str, rule: Any) -> Segment:
    """Create or change a saved segment; the rule is a campaign audience rule, checked here."""
    if not isinstance(key, str) or not key or len(key) > 100 or not all(c.isalnum() or c in "-_" for c in key):
        raise JourneyError("key", "Give a key of letters, digits, - and _ (at most 100).")
    if not isinstance(name, str) or not name.strip() or len(name) > 200:
        raise JourneyError("name", "Give a name of 1 to 200 characters.")
    try:
        parse_rule(rule, "rule")
    except RuleError as error:
        raise JourneyError(error.attr, error.detail) from error
    segment, _ = Segment.objects.update_or_create(key=key, defaults={"name": name.strip(), "rule": rule})
    return segment


def _add_version(journey: Journey, definition: dict[str, Any], actor: str, note: str) -> JourneyVersion:
    last = journey.versions.order_by("-number").values_list("number", flat=True).first() or 0
    version = JourneyVersion.objects.create(
        journey=journey,
        number=last + 1,
        definition=definition,
        watched=spec.watched_events(definition),
        created_by=actor[:200],
        note=note[:500],
    )
    journey.current_version = version
    journey.save(update_fields=["current_version", "updated_at"])
    return version


@transaction.atomic
def create_journey(key: str, name: str, definition: Any, actor: str = "", owner: Any = None) -> Journey:
    if not isinstance(key, str) or not key or len(key) > 100 or not all(c.isalnum() or c in "-_" for c in key):
        raise JourneyError("key", "Give a key of letters, digits, - and _ (at most 100).")
    if Journey.objects.filter(key=key).exists():
        raise JourneyError("key", f"A journey with the key {key!r} exists.")
    if not isinstance(name, str) or not name.strip() or len(name) > 200:
        raise JourneyError("name", "Give a name of 1 to 200 characters.")
    checked = _checked(definition)
    journey = Journey.objects.create(key=key, name=name.strip(), owner=owner)
    _add_version(journey, checked, actor, "created")
    return journey


@transaction.atomic
def change_journey(journey: Journey, *, name: str | None = None, definition: Any = None, actor: str = "") -> Journey:
    """A new version when the definition changes; people already in the journey keep theirs."""
    journey = Journey.objects.select_for_update().get(pk=journey.pk)
    if journey.status == JourneyStatus.ARCHIVED:
        raise JourneyError("status", "An archived journey cannot be changed.")
    if name is not None:
        if not isinstance(name, str) or not name.strip() or len(name) > 200:
            raise JourneyError("name", "Give a name of 1 to 200 characters.")
        journey.name = name.strip()
        journey.save(update_fields=["name", "updated_at"])
    if definition is not None:
        _add_version(journey, _checked(definition), actor, "changed")
    return journey


def _move(journey: Journey, allowed: tuple[str, ...], to: str, **fields: Any) -> Journey:
    moved = Journey.objects.filter(pk=journey.pk, status__in=allowed).update(
        status=to, updated_at=timezone.now(), **fields
    )
    if moved != 1:
        raise JourneyError("status", f"A {journey.status} journey cannot become {to}.")
    journey.refresh_from_db()
    return journey


def launch(journey: Journey) -> Journey:
    """Live: its trigger enters people and due steps advance."""
    _checked(journey.current_version.definition if journey.current_version else None)
    return _move(journey, (JourneyStatus.DRAFT, JourneyStatus.PAUSED), JourneyStatus.LIVE, launched_at=timezone.now())


def pause(journey: Journey) -> Journey:
    """Nobody enters and no step runs; entries wait where they are until the journey is live again."""
    return _move(journey, (JourneyStatus.LIVE,), JourneyStatus.PAUSED)


def archive(journey: Journey) -> Journey:
    return _move(journey, (JourneyStatus.DRAFT, JourneyStatus.LIVE, JourneyStatus.PAUSED), JourneyStatus.ARCHIVED)
