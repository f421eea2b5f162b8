"""A journey's send step: one campaign message, built and checked by the campaign's own path.

``campaigns.preparation.build_messages`` renders the campaign's template for the person with the
entry's context as ``journey`` and decides, exactly as for a campaign: no address, consent and
unsubscribe, caps and quiet hours (a later send time: deferred, never dropped) and approval. The
message is saved with ``origin = journey:<entry>:<step>`` (unique), in the transaction that records
the step, and sent by the campaign sender (``campaigns.delivery``), which checks consent, caps and
quiet hours once more at the moment of sending.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from campaigns.models import Campaign, Message, MessageState
from campaigns.preparation import Preparation, build_messages, preparation_for
from journeys import template_context
from journeys.models import Entry


class Preparations:
    """Each template campaign prepared once per advancing batch (its send-time model is fitted once)."""

    def __init__(self, now: datetime) -> None:
        self.now = now
        self._found: dict[str, tuple[Campaign, Preparation] | None] = {}

    def get(self, key: str) -> tuple[Campaign, Preparation] | None:
        if key not in self._found:
            campaign = Campaign.objects.filter(key=key).first()
            self._found[key] = None if campaign is None else (campaign, preparation_for(campaign, self.now))
        return self._found[key]


def origin_of(entry: Entry, step_id: str) -> str:
    return f"journey:{entry.pk}:{step_id}"


def send(entry: Entry, step: dict[str, Any], preparations: Preparations, needs_approval: bool) -> Message | None:
    found = preparations.get(step["campaign"])
    if found is None:
        return None
    campaign, prep = found
    context = template_context.for_entry(entry, campaign)
    built = build_messages(prep, [entry.person_id], journey={entry.person_id: context})
    if not built:  # the person is gone
        return None
    message = built[0]
    message.origin = origin_of(entry, step["id"])
    if message.state == MessageState.DRAFT:
        message.needs_approval = message.needs_approval or needs_approval
        if needs_approval and not message.approval_rule_matched:
            message.approval_rule_matched = f"journey {entry.journey.key}: approval step"
        message.state = MessageState.PENDING_APPROVAL if message.needs_approval else MessageState.SCHEDULED
    Message.objects.bulk_create([message], ignore_conflicts=True)
    return Message.objects.filter(origin=message.origin).first()
