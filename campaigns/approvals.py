"""The approval queue: who sees which messages, who may decide, and the decisions with their audit trail.

- A CSM sees the messages of the accounts they manage (``Account.csm``).
- Everyone with ``campaigns.approve_any_account`` or ``campaigns.view_message`` (and superusers)
  sees every message; the view permission alone lets a marketer look, not decide.
- Deciding (approve, reject, edit) needs ``campaigns.approve_message`` *and* the message being one
  of the user's accounts (or ``approve_any_account``). Messages without an account can only be
  decided with ``approve_any_account``.

A decision is all or nothing: if any message in a request may not be decided by the user, nothing
changes. Each change is a conditional update from ``pending_approval``, so two CSMs deciding the
same message at once cannot both win; the loser's message is reported as skipped.

"Approve (or reject) all that match these filters" (:func:`decide_matching`) acts on the pending
messages the user may decide among those the queue's filters select, across every page. It is
confirmed against a count and a high-water mark (the largest message id the count saw): messages that
arrive after the confirmation are never decided by it, and if more match than were confirmed nothing
changes. The messages go through :func:`decide` in chunks, so each one gets the same conditional
update, audit record and scheduling as a single approval.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.db.models import Count, Max, QuerySet
from django.utils import timezone

from campaigns import delivery
from campaigns.models import ApprovalAction, Message, MessageState
from campaigns.rendering import links_of
from campaigns.transitions import move

User = AbstractBaseUser | AnonymousUser
EDITABLE = ("subject", "preheader", "html", "text")
LIMITS = {"subject": 255, "preheader": 255, "html": 500_000, "text": 200_000}


class ApprovalDenied(PermissionDenied):
    pass


def _has(user: Any, permission: str) -> bool:
    return bool(getattr(user, "is_authenticated", False) and user.has_perm(permission))


def sees_every_account(user: Any) -> bool:
    return bool(getattr(user, "is_superuser", False)) or any(
        _has(user, p) for p in ("campaigns.approve_any_account", "campaigns.view_message")
    )


def decides_every_account(user: Any) -> bool:
    return _has(user, "campaigns.approve_message") and (
        bool(getattr(user, "is_superuser", False)) or _has(user, "campaigns.approve_any_account")
    )


def visible_messages(user: Any) -> QuerySet[Message]:
    messages = Message.objects.select_related("campaign", "account", "account__csm")
    if not getattr(user, "is_authenticated", False):
        return messages.none()
    if sees_every_account(user):
        return messages
    return messages.filter(account__csm_id=user.pk)


def may_decide(user: Any, message: Message) -> bool:
    if not _has(user, "campaigns.approve_message"):
        return False
    if decides_every_account(user):
        return True
    return message.account is not None and message.account.csm_id == user.pk


def decidable_messages(user: Any) -> QuerySet[Message]:
    """Every message this user may approve or reject (in whatever state it is now)."""
    messages = Message.objects.all()
    if not _has(user, "campaigns.approve_message"):
        return messages.none()
    if decides_every_account(user):
        return messages
    return messages.filter(account__csm_id=user.pk)


# --- the queue's filters --------------------------------------------------------------------------------------

# How long a message has been waiting (since it was prepared), as the queue offers it.
AGES: dict[str, tuple[str, timedelta]] = {
    "1h": ("Waiting over an hour", timedelta(hours=1)),
    "1d": ("Waiting over a day", timedelta(days=1)),
    "3d": ("Waiting over 3 days", timedelta(days=3)),
    "7d": ("Waiting over a week", timedelta(days=7)),
}


class FilterError(ValueError):
    def __init__(self, attr: str, detail: str) -> None:
        super().__init__(f"{attr}: {detail}")
        self.attr = attr
        self.detail = detail


@dataclass(frozen=True)
class QueueFilters:
    """What the approval queue is narrowed to; empty means any."""

    campaign: str = ""
    account: str = ""
    state: str = MessageState.PENDING_APPROVAL
    age: str = ""

    @classmethod
    def read(cls, params: Mapping[str, Any], *, default_state: str = MessageState.PENDING_APPROVAL) -> QueueFilters:
        """From a query string or form; an unknown state or age is an error naming the field."""
        values = {name: str(params.get(name, "") or "").strip() for name in ("campaign", "account", "age")}
        state = str(params.get("state", default_state) or "").strip()
        if state and state not in MessageState.values:
            raise FilterError("state", f"unknown state {state!r}")
        if values["age"] and values["age"] not in AGES:
            raise FilterError("age", f"unknown age {values['age']!r}; one of {', '.join(AGES)}")
        for name in ("campaign", "account"):
            if len(values[name]) > 200:
                raise FilterError(name, "longer than 200 characters")
        return cls(state=state, **values)

    def apply(self, messages: QuerySet[Message], now: datetime | None = None) -> QuerySet[Message]:
        if self.campaign:
            messages = messages.filter(campaign__key=self.campaign)
        if self.account:
            messages = messages.filter(account__external_id=self.account)
        if self.state:
            messages = messages.filter(state=self.state)
        if self.age:
            messages = messages.filter(created_at__lte=(now or timezone.now()) - AGES[self.age][1])
        return messages

    def as_params(self) -> dict[str, str]:
        return {"campaign": self.campaign, "account": self.account, "state": self.state, "age": self.age}


@dataclass(frozen=True)
class Matching:
    """How many pending messages the user may decide match the filters, and the largest id among them."""

    count: int
    up_to: int


def matching_decidable(user: Any, filters: QueueFilters, now: datetime | None = None) -> QuerySet[Message]:
    """The pending messages the user may decide that the filters select (the state filter aside:
    only pending messages can be decided)."""
    selected = filters.apply(decidable_messages(user), now)
    return selected.filter(state=MessageState.PENDING_APPROVAL)


def count_matching(user: Any, filters: QueueFilters, now: datetime | None = None) -> Matching:
    found = matching_decidable(user, filters, now).aggregate(n=Count("pk"), top=Max("pk"))
    return Matching(count=found["n"] or 0, up_to=found["top"] or 0)


@dataclass
class Decision:
    done: list[int] = field(default_factory=list)
    skipped: list[int] = field(default_factory=list)  # no longer pending (someone else decided first)


def _actor(user: Any) -> tuple[Any, str]:
    if isinstance(user, AbstractBaseUser):
        return user, user.get_username()
    return None, str(user)


def _checked(user: Any, message_ids: Iterable[int]) -> list[Message]:
    ids = sorted({int(pk) for pk in message_ids})
    if not ids:
        raise ValueError("Choose at least one message.")
    messages = list(visible_messages(user).filter(pk__in=ids))
    if len(messages) != len(ids):
        # Not found and not visible read the same, so the queue does not reveal other accounts' messages.
        raise ApprovalDenied("Some of these messages are not in your approval queue.")
    refused = [m.pk for m in messages if not may_decide(user, m)]
    if refused:
        raise ApprovalDenied("You may not approve or reject these messages.")
    return messages


def decide(user: Any, message_ids: Iterable[int], action: str, note: str = "") -> Decision:
    """Approve or reject pending messages (all of them, or none when one is not the user's to decide)."""
    if action not in (ApprovalAction.Action.APPROVE, ApprovalAction.Action.REJECT):
        raise ValueError(f"Unknown action {action!r}; approve or reject.")
    target = MessageState.APPROVED if action == ApprovalAction.Action.APPROVE else MessageState.REJECTED
    actor, name = _actor(user)
    result = Decision()
    with transaction.atomic():
        messages = _checked(user, message_ids)
        now = timezone.now()
        for message in messages:
            if move(message.pk, [MessageState.PENDING_APPROVAL], target, decided_by=actor, decided_at=now):
                ApprovalAction.objects.create(
                    message=message,
                    action=action,
                    actor=actor,
                    actor_name=name,
                    at=now,
                    note=note[:500],
                    before={"state": MessageState.PENDING_APPROVAL},
                    after={"state": target},
                )
                result.done.append(message.pk)
                if target == MessageState.APPROVED:
                    message.state = MessageState.APPROVED
                    delivery.schedule_one(message, now)
            else:
                result.skipped.append(message.pk)
    return result


def _clean(name: str, value: Any) -> str:
    if not isinstance(value, str):
        raise ValueError(f"{name} must be text.")
    if name in ("subject", "preheader"):
        value = " ".join(value.split())  # one line: no header injection through an edit
    if len(value) > LIMITS[name]:
        raise ValueError(f"{name} is longer than {LIMITS[name]} characters.")
    return value


def edit(user: Any, message_id: int, changes: Mapping[str, Any], note: str = "") -> Message:
    """Change a pending message's subject, preheader, HTML or text; the before and after are recorded."""
    unknown = set(changes) - set(EDITABLE)
    if unknown:
        raise ValueError(f"{sorted(unknown)[0]} cannot be edited; edit {', '.join(EDITABLE)}.")
    actor, name = _actor(user)
    with transaction.atomic():
        (message,) = _checked(user, [message_id])
        cleaned = {k: _clean(k, v) for k, v in changes.items()}
        before = {k: getattr(message, k) for k in cleaned if getattr(message, k) != cleaned[k]}
        after = {k: cleaned[k] for k in before}
        if not after:
            return message
        html = after.get("html", message.html)
        text = after.get("text", message.text)
        item_urls = {str(url): str(item) for url, item in message.links}
        updated = Message.objects.filter(pk=message.pk, state=MessageState.PENDING_APPROVAL).update(
            links=links_of(html, text, item_urls), updated_at=timezone.now(), **after
        )
        if updated != 1:
            raise ValueError("This message is no longer waiting for approval.")
        ApprovalAction.objects.create(
            message=message,
            action=ApprovalAction.Action.EDIT,
            actor=actor,
            actor_name=name,
            at=timezone.now(),
            note=note[:500],
            before=before,
            after=after,
        )
        message.refresh_from_db()
    return message


BULK_CHUNK = 200


def decide_matching(
    user: Any,
    filters: QueueFilters,
    action: str,
    *,
    confirmed: int,
    up_to: int,
    note: str = "",
    chunk: int = BULK_CHUNK,
) -> Decision:
    """Approve or reject every pending message the user may decide that the filters select, as
    confirmed: at most ``confirmed`` messages, none with an id above ``up_to`` (those arrived after
    the count was shown). More matching than confirmed changes nothing (the count is shown again).

    Each chunk goes through :func:`decide` in its own transaction: the same visibility check,
    conditional update, audit record and scheduling as one approval; a message someone else decided
    meanwhile is skipped.
    """
    if action not in (ApprovalAction.Action.APPROVE, ApprovalAction.Action.REJECT):
        raise ValueError(f"Unknown action {action!r}; approve or reject.")
    if not _has(user, "campaigns.approve_message"):
        raise ApprovalDenied("You may not approve or reject messages.")
    ids = list(matching_decidable(user, filters).filter(pk__lte=up_to).order_by("pk").values_list("pk", flat=True))
    if len(ids) > confirmed:
        raise CountChanged(len(ids), confirmed)
    result = Decision()
    for start in range(0, len(ids), chunk):
        part = decide(user, ids[start : start + chunk], action, note)
        result.done += part.done
        result.skipped += part.skipped
    return result


class CountChanged(Exception):
    def __init__(self, found: int, confirmed: int) -> None:
        super().__init__(f"{found} messages match now, {confirmed} were confirmed.")
        self.found = found
        self.confirmed = confirmed
