"""A journey's send steps: one campaign message, built and checked by the campaign's own path.

``campaigns.preparation.build_messages`` renders the campaign's template for the person with the
entry's context as ``journey`` and decides, exactly as for a campaign: no address, consent and
unsubscribe, caps and quiet hours (a later send time: deferred, never dropped) and approval. The
message is saved with ``origin = journey:<entry>:<step>`` (unique), in the transaction that records
the step, and sent by the campaign sender (``campaigns.delivery``), which checks consent, caps and
quiet hours once more at the moment of sending.

A step with ``window_hours`` lets the send go at the person's best hour (the campaigns' send-time
model, fitted once per advancing batch) within that many hours; when quiet hours or caps leave no
moment in the window the message goes at the first moment they allow after it (deferred, not
dropped). A step with ``picks`` puts that many items recommended for the person and never shown to
them in an earlier message in ``journey.picks`` (and in the message's items, so they count as shown);
with none, nothing is sent (:data:`NOTHING_NEW`). An ``update_surface`` step with a campaign makes
that in-product campaign's message for the person, shown by ``GET /api/v1/onboarding/<person>``.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta
from email.utils import formataddr
from typing import Any

from campaigns import scheduling
from campaigns.models import Account, Campaign, Message, MessageState, Reason
from campaigns.preparation import Preparation, build_messages, preparation_for
from campaigns.send_time import SendTimeModel
from journeys import template_context
from journeys.models import Entry

NOTHING_NEW = "skipped: nothing new qualifies"
_HELD_IN_WINDOW = (Reason.CAPPED, Reason.OUTSIDE_WINDOW, Reason.QUIET_HOURS)


class Preparations:
    """Each template campaign prepared once per advancing batch (its send-time model is fitted once)."""

    def __init__(self, now: datetime, model: SendTimeModel | None = None) -> None:
        """``model``: the send-time model for steps with a window (fitted on first need otherwise)."""
        self.now = now
        self._found: dict[str, tuple[Campaign, Preparation] | None] = {}
        self._windowed: dict[tuple[str, float], Preparation] = {}
        self._model = model
        self._fitted = model is not None

    def get(self, key: str) -> tuple[Campaign, Preparation] | None:
        if key not in self._found:
            campaign = Campaign.objects.filter(key=key).first()
            self._found[key] = None if campaign is None else (campaign, preparation_for(campaign, self.now))
        return self._found[key]

    def windowed(self, key: str, prep: Preparation, hours: float) -> Preparation:
        """The campaign's preparation, choosing the best hour within ``hours`` from now."""
        if (key, hours) not in self._windowed:
            if not self._fitted:
                self._model, self._fitted = scheduling.fit_model(self.now), True
            until = self.now + timedelta(hours=hours)
            if prep.policy.send_until is not None:
                until = min(until, prep.policy.send_until)
            policy = replace(prep.policy, send_until=until)
            self._windowed[(key, hours)] = replace(prep, policy=policy, model=self._model or prep.model)
        return self._windowed[(key, hours)]


def origin_of(entry: Entry, step_id: str) -> str:
    return f"journey:{entry.pk}:{step_id}"


def send(entry: Entry, step: dict[str, Any], preparations: Preparations, needs_approval: bool) -> Message | str | None:
    """The step's message (saved, or the one an earlier run saved); ``None`` when the campaign or the
    person is gone; :data:`NOTHING_NEW` when the step wants picks and none qualifies."""
    origin = origin_of(entry, step["id"])
    found = preparations.get(step["campaign"])
    if found is None:
        return None
    campaign, prep = found
    context = template_context.for_entry(entry, campaign)
    if step.get("picks"):
        context["picks"] = template_context.picks(entry.person_id, campaign, step["picks"])
        if not context["picks"]:
            return NOTHING_NEW
    chosen = preparations.windowed(campaign.key, prep, step["window_hours"]) if step.get("window_hours") else prep
    built = build_messages(chosen, [entry.person_id], journey={entry.person_id: context})
    if built and chosen is not prep and built[0].reason in _HELD_IN_WINDOW:
        built = build_messages(prep, [entry.person_id], journey={entry.person_id: context})  # defer, never drop
    if not built:  # the person is gone
        return None
    message = built[0]
    message.origin = origin
    if step.get("picks") and message.state == MessageState.DRAFT:
        message.item_ids = [item["id"] for item in context["picks"]]
    if message.state == MessageState.DRAFT:
        message.needs_approval = message.needs_approval or needs_approval
        if needs_approval and not message.approval_rule_matched:
            message.approval_rule_matched = f"journey {entry.journey.key}: approval step"
        message.state = MessageState.PENDING_APPROVAL if message.needs_approval else MessageState.SCHEDULED
    Message.objects.bulk_create([message], ignore_conflicts=True)
    saved = Message.objects.filter(origin=message.origin).first()
    if (
        saved is not None
        and step.get("instead_of")
        and saved.state
        in (
            MessageState.SCHEDULED,
            MessageState.PENDING_APPROVAL,
        )
    ):
        replace_messages(entry.person_id, step["instead_of"], saved.pk)
    return saved


UNSENT = (MessageState.DRAFT, MessageState.PENDING_APPROVAL, MessageState.APPROVED, MessageState.SCHEDULED)


def replace_messages(person_id: int, campaign_keys: list[str], by: int) -> int:
    """The person's unsent messages of these campaigns are not sent: a journey's message replaces them.
    A conditional update from the unsent states, so a message the sender already claimed goes out."""
    return (
        Message.objects.filter(person_id=person_id, campaign__key__in=campaign_keys, state__in=UNSENT)
        .exclude(pk=by)
        .update(state=MessageState.SUPPRESSED, reason=Reason.REPLACED, detail=f"replaced by message {by}")
    )


def csm_sender(message: Message) -> str | None:
    """A journey email whose step says ``"from": "csm"`` goes from the account's CSM (the campaign's
    From otherwise, and when the account has no CSM with an address)."""
    if not message.origin.startswith("journey:") or message.account_id is None:
        return None
    _, entry_id, step_id = message.origin.split(":", 2)
    entry = Entry.objects.select_related("version").filter(pk=int(entry_id)).first()
    if entry is None:
        return None
    step = next((s for s in entry.version.definition["steps"] if s["id"] == step_id), None)
    if step is None or step.get("from") != "csm":
        return None
    account = Account.objects.select_related("csm").filter(pk=message.account_id).first()
    csm = account.csm if account is not None else None
    if csm is None or not csm.email:
        return None
    return formataddr((csm.get_full_name() or csm.username, csm.email))
