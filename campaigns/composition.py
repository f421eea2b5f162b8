"""A message as it goes out: headers, the HTML with the preheader, tracked links and the open pixel,
and the plain text. The approval queue's preview and the sender call the same function, so what a
CSM approves is exactly what is sent.
"""

from __future__ import annotations

import html as html_lib
import re
from collections.abc import Callable
from dataclasses import dataclass, field

from django.conf import settings
from django.core.mail import EmailMultiAlternatives

from campaigns import conf, tracking
from campaigns.models import Campaign, Message
from campaigns.rendering import tracked

_BODY_OPEN = re.compile(r"<body\b[^>]*>", re.IGNORECASE)

# Asked in turn for a message's sender ("Name <address>"); the first answer that is not None wins over
# the campaign's From. Journeys register here: a journey email may go from the account's CSM.
_senders: list[Callable[[Message], str | None]] = []


def follow_senders(sender: Callable[[Message], str | None]) -> None:
    if sender not in _senders:
        _senders.append(sender)


def _sender_of(message: Message) -> str | None:
    for sender in _senders:
        found = sender(message)
        if found is not None:
            return found
    return None


@dataclass(frozen=True)
class Outgoing:
    from_email: str
    to: str
    subject: str
    html: str
    text: str
    headers: dict[str, str] = field(default_factory=dict)


def message_id_header(campaign_id: int, person_id: int, origin: str = "") -> str:
    """Stable across retries: a receiver that de-duplicates by Message-ID sees one message."""
    if origin:  # a journey step's message: one per entry and step
        return f"<{origin.replace(':', '.')}.{campaign_id}.{person_id}@{conf.mail_domain()}>"
    return f"<campaign.{campaign_id}.{person_id}@{conf.mail_domain()}>"


def _with_preheader(html: str, preheader: str) -> str:
    if not html or not preheader:
        return html
    hidden = (
        '<div style="display:none;max-height:0;overflow:hidden;mso-hide:all" aria-hidden="true">'
        f"{html_lib.escape(preheader)}</div>"
    )
    match = _BODY_OPEN.search(html)
    if match:
        return html[: match.end()] + hidden + html[match.end() :]
    return hidden + html


def outgoing(message: Message, campaign: Campaign | None = None) -> Outgoing:
    campaign = campaign or message.campaign
    html, text = tracked(campaign.pk, message.person_id, message.html, message.text, message.links)
    unsubscribe = tracking.unsubscribe_url(campaign.pk, message.person_id)
    targets = [f"<{unsubscribe}>"]
    if conf.unsubscribe_mailto():
        targets.append(f"<mailto:{conf.unsubscribe_mailto()}?subject=unsubscribe>")
    headers = {
        "Message-ID": message_id_header(campaign.pk, message.person_id, message.origin),
        "List-Unsubscribe": ", ".join(targets),
        "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
        "X-Campaign": campaign.key,
    }
    if campaign.reply_to:
        headers["Reply-To"] = campaign.reply_to
    return Outgoing(
        from_email=_sender_of(message) or campaign.from_email or str(settings.DEFAULT_FROM_EMAIL),
        to=message.to_email,
        subject=message.subject,
        html=_with_preheader(html, message.preheader),
        text=text,
        headers=headers,
    )


def email_of(message: Message, campaign: Campaign | None = None) -> EmailMultiAlternatives:
    parts = outgoing(message, campaign)
    headers = {k: v for k, v in parts.headers.items() if k != "Reply-To"}
    email = EmailMultiAlternatives(
        subject=parts.subject,
        body=parts.text or " ",
        from_email=parts.from_email,
        to=[parts.to],
        headers=headers,
        reply_to=[parts.headers["Reply-To"]] if "Reply-To" in parts.headers else None,
    )
    if parts.html:
        email.attach_alternative(parts.html, "text/html")
    return email
