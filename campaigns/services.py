"""The public face of the campaigns app: what its API, pages, tasks and admin call.

Campaigns (each change validated and audited)::

    create_campaign(key, values, user) / update_campaign / rollback / delete_campaign
    launch(campaign, user) -> prepares messages in a task; pause / resume
    audience_count(rule) -> int; preview(campaign, person_id) -> Preview

Messages::

    prepare(campaign_id)                    the worker: audience → holdouts → render → suppress → queue/schedule
    stalled_preparations() / claim_preparation(id)  resuming a preparation whose worker died, one run at a time
    due_message_batches() / send_batch(ids) the periodic sender (exactly once, see ``delivery``)
    decide(user, ids, "approve"|"reject") / edit(user, id, changes) / visible_messages(user)
    count_matching(user, QueueFilters) / decide_matching(user, filters, action, confirmed=, up_to=)
    record_open(token) / record_click(token) / unsubscribe(token)

Onboarding::

    next_best_actions(person_id, limit) -> OnboardingAnswer
"""

from __future__ import annotations

from datetime import datetime

from django.db.models import Exists, OuterRef
from django.utils import timezone

from campaigns import delivery
from campaigns.approvals import (
    AGES,
    ApprovalDenied,
    CountChanged,
    Decision,
    FilterError,
    Matching,
    QueueFilters,
    count_matching,
    decide,
    decide_matching,
    edit,
    matching_decidable,
    may_decide,
    visible_messages,
)
from campaigns.composition import Outgoing, outgoing
from campaigns.delivery import recover_expired_claims, schedule_approved, send_batch
from campaigns.feedback import Click, record_click, record_open, unsubscribe
from campaigns.feedback import shown_in_product as in_product_messages
from campaigns.lifecycle import (
    CampaignError,
    audience_count,
    create_campaign,
    delete_campaign,
    launch,
    pause,
    resume,
    rollback,
    update_campaign,
    validate,
)
from campaigns.models import Campaign, CampaignStatus, Message, MessageState
from campaigns.onboarding import NextAction, OnboardingAnswer, next_best_actions
from campaigns.preparation import Preview, claim_preparation, prepare, preview, stalled_preparations

__all__ = [
    "AGES",
    "ApprovalDenied",
    "CampaignError",
    "Click",
    "CountChanged",
    "Decision",
    "FilterError",
    "Matching",
    "NextAction",
    "OnboardingAnswer",
    "Outgoing",
    "Preview",
    "QueueFilters",
    "audience_count",
    "claim_preparation",
    "count_matching",
    "create_campaign",
    "decide",
    "decide_matching",
    "delete_campaign",
    "due_message_batches",
    "edit",
    "finish_campaigns",
    "in_product_messages",
    "launch",
    "matching_decidable",
    "may_decide",
    "next_best_actions",
    "outgoing",
    "pause",
    "prepare",
    "preview",
    "record_click",
    "record_open",
    "recover_expired_claims",
    "resume",
    "rollback",
    "schedule_approved",
    "send_batch",
    "stalled_preparations",
    "unsubscribe",
    "update_campaign",
    "validate",
    "visible_messages",
]

OPEN_STATES = (
    MessageState.DRAFT,
    MessageState.PENDING_APPROVAL,
    MessageState.APPROVED,
    MessageState.SCHEDULED,
    MessageState.SENDING,
)


def due_message_batches(now: datetime | None = None) -> list[list[int]]:
    """One sending round: recover dead workers' claims, schedule approved messages, log holdout
    exposures, finish campaigns with nothing left, and return the due messages in batches."""
    now = now or timezone.now()
    recover_expired_claims(now)
    schedule_approved(now)
    delivery.log_holdout_exposures(now)
    finish_campaigns()
    return delivery.due_batches(now)


def finish_campaigns() -> int:
    """Running campaigns whose every message is decided, sent, suppressed or failed are finished."""
    open_messages = Message.objects.filter(campaign_id=OuterRef("pk"), state__in=OPEN_STATES)
    done = Campaign.objects.filter(status=CampaignStatus.RUNNING).exclude(Exists(open_messages))
    return done.update(status=CampaignStatus.FINISHED, updated_at=timezone.now())
