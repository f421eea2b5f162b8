from __future__ import annotations

import asyncio
import itertools
import threading
from collections import Counter
from collections.abc import Callable, Iterator
from email import message_from_bytes
from email import policy as email_policy
from email.message import EmailMessage
from typing import Any

import pytest
from django.contrib.auth.models import Permission, User
from django.utils import timezone

from campaigns import services
from campaigns.models import Account, Campaign, Message
from catalog.models import Item
from profiles import services as profiles
from profiles.models import Person
from tests.processes import free_port

_ids = itertools.count(1)

HTML = (
    "<html><body><p>Hi {{ person.first_name|default('there') }},</p>"
    '{% for p in products %}<p><a href="{{ p.url }}">{{ p.title }}</a></p>{% endfor %}'
    '<p><a href="https://shop.example.com/sale?from=email&amp;x=1">Sale</a></p>'
    '<p><a href="{{ unsubscribe_url }}">Unsubscribe</a></p></body></html>'
)
TEXT = "Hi {{ person.first_name|default('there') }},\n{% for p in products %}- {{ p.title }}: {{ p.url }}\n{% endfor %}"


def person(
    user_id: str,
    *,
    consent: bool | None = True,
    at: Any = None,
    seen_at: Any = None,
    **traits: Any,
) -> Person:
    """A person known by a user id, with traits (email defaults to <user_id>@example.com) and
    email marketing consent as asked (None: never said anything); identified at ``seen_at`` (now)."""
    traits.setdefault("email", f"{user_id}@example.com")
    identify: dict[str, Any] = {
        "type": "identify",
        "userId": user_id,
        "traits": traits,
        "messageId": f"identify-{user_id}-{next(_ids)}",
    }
    if seen_at is not None:
        identify["timestamp"] = seen_at.isoformat()
    profiles.ingest_messages([identify], refresh=False)
    found = profiles.find_person(user_id)
    assert found is not None
    if consent is not None:
        profiles.record_consent(found.pk, "email_marketing", consent, source="signup form", at=at)
    return found


def many_people(prefix: str, n: int, account_id: str) -> None:
    """``n`` people of one account, identified in one batch, each with email marketing consent."""
    result = profiles.ingest_messages(
        [
            {
                "type": "identify",
                "userId": f"{prefix}{i}",
                "traits": {"email": f"{prefix}{i}@example.com", "first_name": f"P{i}", "account_id": account_id},
                "messageId": f"identify-{prefix}{i}",
            }
            for i in range(n)
        ],
        refresh=False,
    )
    assert not result.rejected
    for i in range(n):
        found = profiles.find_person(f"{prefix}{i}")
        assert found is not None
        profiles.record_consent(found.pk, "email_marketing", True, source="signup form")


def track(user_id: str, event: str, at: Any = None, **properties: Any) -> None:
    message: dict[str, Any] = {
        "type": "track",
        "userId": user_id,
        "event": event,
        "properties": properties,
        "messageId": f"event-{next(_ids)}",
    }
    if at is not None:
        message["timestamp"] = at.isoformat()
    result = profiles.ingest_messages([message], refresh=False)
    assert not result.rejected, result.rejected


def user(username: str, *permissions: str, superuser: bool = False) -> User:
    account = User.objects.create_user(username, f"{username}@example.com", "pw-for-tests", is_staff=True)
    if superuser:
        account.is_superuser = True
        account.save()
    for codename in permissions:
        app, code = codename.split(".")
        account.user_permissions.add(Permission.objects.get(content_type__app_label=app, codename=code))
    return User.objects.get(pk=account.pk)  # fresh, without a cached permission set


def campaign_values(**overrides: Any) -> dict[str, Any]:
    values: dict[str, Any] = {
        "name": "Picked for you",
        "audience": {"all": [{"field": "trait.first_name", "op": "exists"}]},  # not the shop's anonymous browsers
        "subject": (
            "{{ person.first_name|default('Hello') }}, picked for you: {{ products[0].title if products else 'news' }}"
        ),
        "preheader": "New this week",
        "html": HTML,
        "text": TEXT,
        "send_time_optimization": False,
        "quiet_start": None,
        "quiet_end": None,
        "cap_per_day": None,
        "cap_per_week": None,
        "item_url": "https://shop.example.com/p/{item_id}",
        "content_limit": 2,
    }
    values.update(overrides)
    return values


def make_campaign(key: str | None = None, owner: Any = None, **overrides: Any) -> Campaign:
    return services.create_campaign(key or f"campaign-{next(_ids)}", campaign_values(**overrides), owner)


def launch_and_prepare(campaign: Campaign, by: Any = None) -> Campaign:
    services.launch(campaign, by)
    services.prepare(campaign.pk)
    campaign.refresh_from_db()
    return campaign


def send_all(now: Any = None) -> dict[str, int]:
    """One sending round, in this process (as the worker would do it)."""
    outcomes: dict[str, int] = {}
    for batch in services.due_message_batches(now or timezone.now()):
        for outcome, n in services.send_batch(batch).items():
            outcomes[outcome] = outcomes.get(outcome, 0) + n
    return outcomes


def states(campaign: Campaign) -> dict[str, str]:
    return {m.to_email: m.state for m in Message.objects.filter(campaign=campaign)}


@pytest.fixture
def shop(db: Any) -> Callable[[], None]:
    """A small catalogue with co-visitation: a1 goes with b1/b2, c1 with d1/d2."""

    def build() -> None:
        for sku in ("a1", "b1", "b2", "c1", "d1", "d2"):
            Item.objects.create(external_id=sku, title=f"Item {sku.upper()}", price="19.90", stock=10)
        for other in ("o1", "o2"):
            for sku in ("a1", "b1", "b2"):
                track(other, "Product Viewed", product_id=sku)
        for other in ("o3", "o4", "o5"):
            for sku in ("c1", "d1", "d2"):
                track(other, "Product Viewed", product_id=sku)

    return build


@pytest.fixture
def csm(db: Any) -> User:
    return user("casey", "campaigns.approve_message")


@pytest.fixture
def marketer(db: Any) -> User:
    return user(
        "mara",
        "campaigns.view_message",
        "campaigns.view_campaign",
        "campaigns.add_campaign",
        "campaigns.change_campaign",
        "personalization.launch_campaign",
        "profiles.view_person",
    )


def account(external_id: str, plan: str = "pro", csm: User | None = None, name: str = "") -> Account:
    found, _ = Account.objects.update_or_create(
        external_id=external_id, defaults={"plan": plan, "csm": csm, "name": name or external_id.title()}
    )
    return found


# --- a real SMTP server on loopback --------------------------------------------------------------------------


class Mailbox:
    """An aiosmtpd handler that keeps what it accepted and can stall once, in the RCPT phase (before
    the message data) or in the DATA phase (after the whole message arrived, before answering 250)."""

    def __init__(self) -> None:
        self.received: list[EmailMessage] = []
        self.stall_at: tuple[str, int] | None = None
        self.stalled = threading.Event()
        self.release = threading.Event()
        self.seen: Counter[str] = Counter()
        self.rcpt_reply = "250 OK"
        self.data_reply = "250 Message accepted for delivery"

    async def _maybe_stall(self, phase: str) -> None:
        self.seen[phase] += 1
        if self.stall_at == (phase, self.seen[phase]):
            self.stalled.set()
            while not self.release.is_set():
                await asyncio.sleep(0.05)

    async def handle_RCPT(self, server: Any, session: Any, envelope: Any, address: str, options: Any) -> str:
        await self._maybe_stall("rcpt")
        if not self.rcpt_reply.startswith("250"):
            return self.rcpt_reply
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        if not self.data_reply.startswith("250"):
            return self.data_reply
        message = message_from_bytes(envelope.content, policy=email_policy.default)
        assert isinstance(message, EmailMessage)
        self.received.append(message)
        await self._maybe_stall("data")
        return self.data_reply

    def by_recipient(self) -> Counter[str]:
        return Counter(str(m["To"]) for m in self.received)


@pytest.fixture
def mailbox() -> Iterator[tuple[Mailbox, int]]:
    from aiosmtpd.controller import Controller

    box = Mailbox()
    port = free_port()
    controller = Controller(box, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield box, port
    finally:
        box.release.set()
        controller.stop()


@pytest.fixture
def smtp(settings: Any, mailbox: tuple[Mailbox, int]) -> Mailbox:
    """Django sends through its SMTP backend to the loopback server."""
    box, port = mailbox
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST = "127.0.0.1"
    settings.EMAIL_PORT = port
    settings.EMAIL_USE_TLS = False
    settings.EMAIL_HOST_USER = ""
    settings.EMAIL_HOST_PASSWORD = ""
    settings.EMAIL_TIMEOUT = 10
    return box


def html_of(sent: Any) -> str:
    """The HTML alternative of a message in Django's outbox."""
    return str(sent.alternatives[0][0])
