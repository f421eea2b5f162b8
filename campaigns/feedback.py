"""Opens, clicks and unsubscribes coming back through the signed tracking links.

Each becomes a behaviour event through ``profiles.services.ingest_messages`` (``Email Opened``,
``Email Link Clicked``, ``Unsubscribed``) whose properties name the message, the campaign, the
variant and the recommendation (and for a click on a recommended item, the item), so that later
purchases can be attributed; and each moves the message forward (sent → opened → clicked). Event
ids are derived from the message, so an open is recorded once however often the pixel loads, and a
click once per link.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone

from campaigns import people, tracking
from campaigns.consent import PURPOSE, UNSUBSCRIBE_SOURCE
from campaigns.models import Message, MessageState, Reason
from profiles import services as profiles

logger = logging.getLogger(__name__)

DELIVERED = (MessageState.SENT, MessageState.OPENED, MessageState.CLICKED)
NOT_YET_SENT = (MessageState.PENDING_APPROVAL, MessageState.APPROVED, MessageState.SCHEDULED)


def _message(purpose: str, token: str) -> tuple[Message, tracking.TrackedMessage] | None:
    tracked = tracking.read(purpose, token)
    if tracked is None:
        return None
    found = Message.objects.filter(campaign_id=tracked.campaign_id, person_id=tracked.person_id)
    if purpose in ("open", "click"):
        # An open or a click proves that a message whose hand-over was unconfirmed did arrive.
        found.filter(state=MessageState.FAILED, reason=Reason.UNCONFIRMED).update(
            state=MessageState.SENT, reason="", detail="", sent_at=F("handed_at"), updated_at=timezone.now()
        )
    message = found.select_related("campaign").first()
    return (message, tracked) if message is not None else None


def _event(message: Message, name: str, suffix: str, extra: dict[str, Any] | None = None) -> None:
    identity = people.event_identity(message.person_id)
    if identity is None:
        logger.warning("No identity to record %s of message %s on", name, message.pk)
        return
    properties: dict[str, Any] = {
        "message_id": message.pk,
        "campaign": message.campaign.key,
        "campaign_id": message.campaign.key,
        "variant": message.variant,
        "recommendation_id": message.recommendation_id,
        **(extra or {}),
    }
    profiles.ingest_messages(
        [
            {
                "type": "track",
                "event": name,
                "messageId": f"campaign-{message.campaign_id}-{message.person_id}-{suffix}",
                "properties": properties,
                "context": {"channel": message.channel},
                **identity,
            }
        ]
    )


def record_open(token: str) -> bool:
    """The open pixel was loaded; True when the token names a message."""
    found = _message("open", token)
    if found is None:
        return False
    message, _ = found
    if message.state not in DELIVERED:
        return True  # a preview or a message not sent yet: nothing happened
    now = timezone.now()
    with transaction.atomic():
        Message.objects.filter(pk=message.pk, state=MessageState.SENT).update(state=MessageState.OPENED, updated_at=now)
        Message.objects.filter(pk=message.pk, opened_at__isnull=True).update(opened_at=now)
        _event(message, "Email Opened", "open")
    return True


@dataclass(frozen=True)
class Click:
    url: str
    item_id: str


def record_click(token: str) -> Click | None:
    """A tracked link was followed: the target (always one of the message's own links) or None."""
    found = _message("click", token)
    if found is None:
        return None
    message, tracked = found
    if tracked.link is None or not 0 <= tracked.link < len(message.links):
        return None
    url, item_id = (str(part) for part in message.links[tracked.link])
    if message.state not in DELIVERED:
        return Click(url, item_id)
    now = timezone.now()
    with transaction.atomic():
        Message.objects.filter(pk=message.pk, state__in=(MessageState.SENT, MessageState.OPENED)).update(
            state=MessageState.CLICKED, updated_at=now
        )
        Message.objects.filter(pk=message.pk, clicked_at__isnull=True).update(clicked_at=now)
        Message.objects.filter(pk=message.pk, opened_at__isnull=True).update(opened_at=now)
        extra: dict[str, Any] = {"url": url, "link": tracked.link}
        if item_id:
            extra["product_id"] = item_id
        _event(message, "Email Link Clicked", f"click-{tracked.link}", extra)
    return Click(url, item_id)


def unsubscribe(token: str) -> Message | None:
    """One-click (or confirmed) unsubscribe: withdraws ``email_marketing`` consent, records the event,
    and suppresses the person's other marketing email not sent yet."""
    found = _message("unsubscribe", token)
    if found is None:
        return None
    message, _ = found
    person = people.live_person(message.person_id)
    if person is None:
        return message
    now = timezone.now()
    with transaction.atomic():
        profiles.record_consent(
            person.pk, PURPOSE, False, source=UNSUBSCRIBE_SOURCE, recorded_by=f"campaign:{message.campaign.key}"
        )
        Message.objects.filter(pk=message.pk, unsubscribed_at__isnull=True).update(unsubscribed_at=now)
        Message.objects.filter(
            Q(person_id=message.person_id) | Q(person_id=person.pk), channel=message.channel, state__in=NOT_YET_SENT
        ).update(state=MessageState.SUPPRESSED, reason=Reason.UNSUBSCRIBED, updated_at=now)
        _event(message, "Unsubscribed", "unsubscribe")
    return message


def shown_in_product(person_id: int, limit: int = 10) -> list[Message]:
    """A person's onboarding messages, newest first; serving them counts as opening them."""
    messages = list(
        Message.objects.select_related("campaign")
        .filter(person_id=person_id, channel="onboarding", state__in=DELIVERED)
        .order_by("-sent_at", "-id")[:limit]
    )
    now = timezone.now()
    for message in messages:
        if message.state == MessageState.SENT:
            Message.objects.filter(pk=message.pk, state=MessageState.SENT).update(
                state=MessageState.OPENED, opened_at=now, updated_at=now
            )
    return messages
