"""Preparing a campaign: select the audience, split off holdouts, score and render one message per
recipient, suppress who may not receive it, and queue each message for approval or schedule it.

Runs in chunks of people in id order. Messages are unique per (campaign, person) and people who
already have one are skipped, so an interrupted preparation picks up where it stopped and a repeat
creates nothing twice. The same :func:`build_messages` renders the preview of one person, without
saving anything, so a preview is exactly what that person would be sent.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from campaigns import conf, onboarding, people, scheduling
from campaigns.account_people import account_key
from campaigns.consent import email_refusal
from campaigns.models import (
    Account,
    ApprovalPolicy,
    Campaign,
    CampaignStatus,
    Channel,
    Message,
    MessageState,
    Reason,
)
from campaigns.rendering import (
    CompiledCampaign,
    ContentBlock,
    Recipient,
    compile_campaign,
    render_for,
)
from campaigns.rules import Rule, describe, matches, parse_rule
from campaigns.send_time import SendTimeModel
from campaigns.templating import TemplateError
from catalog import services as catalog
from experiments import services as experiments
from personalization import services as engine
from profiles import services as profiles

logger = logging.getLogger(__name__)


def compiled_campaign(campaign: Campaign) -> CompiledCampaign:
    return compile_campaign(
        campaign.pk,
        campaign.key,
        campaign.name,
        {"subject": campaign.subject, "preheader": campaign.preheader, "html": campaign.html, "text": campaign.text},
        blocks=campaign.blocks or {},
        variants=campaign.variants or {},
        variant_rules=campaign.variant_rules or [],
    )


@dataclass
class Preparation:
    """What every chunk of a campaign's preparation shares."""

    campaign: Campaign
    compiled: CompiledCampaign
    policy: scheduling.SendPolicy
    model: SendTimeModel | None
    approval_rule: Rule | None
    uses_next_actions: bool
    uses_interests: bool
    now: datetime


def preparation_for(campaign: Campaign, now: datetime | None = None, model: SendTimeModel | None = None) -> Preparation:
    now = now or timezone.now()
    compiled = compiled_campaign(campaign)
    sources = [campaign.subject, campaign.preheader, campaign.html, campaign.text, *(campaign.blocks or {}).values()]
    for overrides in (campaign.variants or {}).values():
        sources.extend(str(v) for v in overrides.values())
    rule = None
    if campaign.approval_policy == ApprovalPolicy.RULE:
        rule = parse_rule(campaign.approval_rule, "approval_rule")
    if model is None and campaign.send_time_optimization:
        model = scheduling.fit_model(now)  # None until somebody has opened or clicked an email
    return Preparation(
        campaign=campaign,
        compiled=compiled,
        policy=scheduling.policy_of(campaign, now),
        model=model if campaign.send_time_optimization else None,
        approval_rule=rule,
        uses_next_actions=any("next_actions" in source for source in sources),
        uses_interests=any(r.get("interests") for r in campaign.variant_rules or [] if isinstance(r, Mapping)),
        now=now,
    )


# --- accounts ---------------------------------------------------------------------------------------------


def accounts_for(traits: Mapping[int, Mapping[str, Any]], create: bool = True) -> dict[int, Account]:
    """Each person's account (from their traits), created on first sight with name and plan."""
    keys = {pid: key for pid, t in traits.items() if (key := account_key(t)) is not None}
    if not keys:
        return {}
    found = {a.external_id: a for a in Account.objects.filter(external_id__in=set(keys.values()))}
    missing: dict[str, Account] = {}
    for pid, key in keys.items():
        if key not in found and key not in missing:
            t = traits[pid]
            missing[key] = Account(
                external_id=key,
                name=str(t.get("company") or t.get("account_name") or key)[:200],
                plan=str(t.get("account_plan") or t.get("plan") or "")[:64],
            )
    if missing and create:
        Account.objects.bulk_create(list(missing.values()), ignore_conflicts=True)
        found.update({a.external_id: a for a in Account.objects.filter(external_id__in=list(missing))})
    elif missing:
        found.update(missing)
    return {pid: found[key] for pid, key in keys.items() if key in found}


def approval_facts(traits: Mapping[str, Any], account: Account | None) -> dict[str, Any]:
    facts: dict[str, Any] = {f"trait.{k}": v for k, v in traits.items()}
    if account is not None:
        facts.update({"account.plan": account.plan, "account.name": account.name, "account.id": account.external_id})
    return facts


# --- one chunk of recipients -----------------------------------------------------------------------------


def _assignments(campaign: Campaign, person_id: int) -> tuple[dict[str, str], bool, bool, dict[str, Any]]:
    """(active experiment variants, held out?, fixed send time?, template payload)."""
    active: dict[str, str] = {}
    held_out = fixed_time = False
    payload: dict[str, Any] = {}
    if campaign.holdout_experiment:
        answer = experiments.assign(campaign.holdout_experiment, person_id)
        if answer is not None and answer.active:
            active[answer.experiment] = answer.variant
            held_out = answer.is_holdout
    if campaign.send_time_experiment and campaign.send_time_optimization:
        answer = experiments.assign(campaign.send_time_experiment, person_id)
        if answer is not None and answer.active:
            active[answer.experiment] = answer.variant
            fixed_time = answer.payload.get("send_time") == "fixed"
    if campaign.experiment_key:
        answer = experiments.assign(campaign.experiment_key, person_id)
        if answer is not None:
            # A stopped or concluded experiment still decides: everyone gets control or the winner.
            payload = dict(answer.payload)
            if answer.active:
                active[answer.experiment] = answer.variant
    return active, held_out, fixed_time, payload


def _item_url(campaign: Campaign, item_id: str) -> str:
    pattern = campaign.item_url or conf.item_url_pattern()
    return pattern.replace("{item_id}", item_id)


item_url = _item_url  # public: journeys link the items of their templates the same way


def _content(campaign: Campaign, person_id: int) -> tuple[str, list[Any]]:
    if campaign.content_limit <= 0:
        return "", []
    answer = engine.recommend(
        person_id,
        surface=campaign.content_surface,
        limit=campaign.content_limit,
        kind=campaign.content_kind or None,
        context={"channel": campaign.channel, "campaign": campaign.key},
    )
    return answer.recommendation_id, list(answer.items)


def _interests(person_id: int) -> frozenset[str]:
    profile = profiles.get_profile(person_id)
    return frozenset(name for name, weight in profile.category_affinity.items() if weight >= 0.3)


def build_messages(
    prep: Preparation,
    person_ids: list[int],
    create_accounts: bool = True,
    journey: Mapping[int, Mapping[str, Any]] | None = None,
) -> list[Message]:
    """Unsaved messages for these people, rendered (or suppressed, with the reason). ``journey`` is,
    per person, what a journey step adds to the template (``journey.cart``, ``journey.item``)."""
    campaign, now = prep.campaign, prep.now
    traits = people.traits_of(person_ids)
    accounts = accounts_for(traits, create=create_accounts)
    histories = people.engagement(person_ids, now) if prep.model is not None else {}
    planned = scheduling.planned_sends(person_ids, campaign.channel)
    segment_trait = conf.segment_trait()
    messages: list[Message] = []
    to_render: list[tuple[Message, Recipient, dict[str, Any]]] = []
    for person_id in person_ids:
        if person_id not in traits:
            continue
        person_traits = traits[person_id]
        account = accounts.get(person_id)
        email = str(person_traits.get("email") or "").strip()
        active, held_out, fixed_time, payload = _assignments(campaign, person_id)
        message = Message(
            campaign=campaign,
            person_id=person_id,
            account=account,
            channel=campaign.channel,
            to_email=email[:254],
            assignments=active,
        )
        messages.append(message)
        zone = people.zone_of(person_traits, conf.default_timezone())
        segment = person_traits.get(segment_trait)
        segment = str(segment) if segment not in (None, "") else None
        slot = scheduling.plan(
            prep.policy,
            zone,
            now=now,
            model=None if fixed_time else prep.model,
            history=histories.get(person_id),
            segment=segment,
            sent=planned.get(person_id, []),
        )
        message.send_time_source = slot.source
        message.scheduled_for = slot.when
        if held_out:
            # Nothing is sent; the exposure is logged when the others' messages go out.
            message.state, message.reason = MessageState.SUPPRESSED, Reason.HOLDOUT
            message.scheduled_for = slot.when or prep.policy.send_at
            continue
        if campaign.channel == Channel.EMAIL:
            if not email or "@" not in email:
                message.state, message.reason = MessageState.SUPPRESSED, Reason.NO_ADDRESS
                continue
            refusal = email_refusal(person_id)
            if refusal is not None:
                message.state, message.reason = MessageState.SUPPRESSED, refusal
                continue
        if slot.when is None:
            message.state, message.reason = MessageState.SUPPRESSED, slot.reason
            continue
        segments = {segment} if segment else set()
        extra = person_traits.get("segments")
        if isinstance(extra, list):
            segments |= {str(s) for s in extra}
        recipient = Recipient(
            person_id=person_id,
            email=email,
            traits=person_traits,
            account={"id": account.external_id, "name": account.name, "plan": account.plan} if account else None,
            segments=frozenset(segments),
            interests=_interests(person_id) if prep.uses_interests else frozenset(),
        )
        to_render.append((message, recipient, payload))

    contents = {m.person_id: _content(campaign, m.person_id) for m, _, _ in to_render}
    facts = catalog.item_facts(item.item_id for _, items in contents.values() for item in items)
    for message, recipient, payload in to_render:
        recommendation_id, items = contents[message.person_id]
        block = ContentBlock(
            recommendation_id,
            [
                {
                    "id": item.item_id,
                    "title": item.title,
                    "url": _item_url(campaign, item.item_id),
                    "price": facts[item.item_id].price if item.item_id in facts else None,
                    "category": facts[item.item_id].category if item.item_id in facts else "",
                    "brand": facts[item.item_id].brand if item.item_id in facts else "",
                    "score": item.score,
                    "reason": item.reason,
                    "source": item.source,
                }
                for item in items
            ],
        )
        next_actions: list[dict[str, Any]] = []
        if prep.uses_next_actions:
            answer = onboarding.next_best_actions(message.person_id)
            next_actions = [
                {
                    "id": a.item_id,
                    "title": a.title,
                    "kind": a.kind,
                    "reason": a.reason,
                    "url": _item_url(campaign, a.item_id),
                }
                for a in answer.items
            ]
        wanted = payload.get("template_variant")
        variant = prep.compiled.choose_variant(recipient, str(wanted) if wanted else None)
        subject = payload.get("subject") if isinstance(payload.get("subject"), str) else None
        try:
            rendered = render_for(
                prep.compiled,
                recipient,
                block,
                variant=variant,
                subject=subject,
                next_actions=next_actions,
                journey=(journey or {}).get(message.person_id),
            )
        except TemplateError as error:
            message.state, message.reason, message.detail = MessageState.FAILED, Reason.RENDER_ERROR, str(error)
            message.variant = variant
            continue
        message.variant = rendered.variant
        message.subject, message.preheader = rendered.subject, rendered.preheader
        message.html, message.text, message.links = rendered.html, rendered.text, rendered.links
        message.recommendation_id = block.recommendation_id
        message.item_ids = [item["id"] for item in block.items]
        message.state = MessageState.DRAFT
        _decide_approval(prep, message, recipient)
    return messages


def _decide_approval(prep: Preparation, message: Message, recipient: Recipient) -> None:
    policy = prep.campaign.approval_policy
    if policy == ApprovalPolicy.ALL:
        message.needs_approval, message.approval_rule_matched = True, "every message"
    elif policy == ApprovalPolicy.RULE and prep.approval_rule is not None:
        facts = approval_facts(recipient.traits, message.account)
        if matches(prep.approval_rule, facts):
            message.needs_approval = True
            message.approval_rule_matched = describe(prep.approval_rule)[:200]


# --- the whole campaign ----------------------------------------------------------------------------------


@dataclass
class PrepareResult:
    created: int = 0
    chunks: int = 0
    claimed: bool = True  # False: another run holds the preparation and is alive


def claim_preparation(campaign_id: int, now: datetime | None = None) -> str | None:
    """Claim a campaign's preparation for this run: a conditional update that only one run can win,
    and only while nobody else's heartbeat is fresh. Returns the claim, or None."""
    now = now or timezone.now()
    stale_before = now - timedelta(seconds=conf.preparation_stale_seconds())
    claim = uuid.uuid4().hex
    won = (
        Campaign.objects.filter(pk=campaign_id, status=CampaignStatus.PREPARING)
        .filter(Q(preparation_heartbeat_at__isnull=True) | Q(preparation_heartbeat_at__lt=stale_before))
        .update(preparation_claim=claim, preparation_heartbeat_at=now)
    )
    return claim if won == 1 else None


def _heartbeat(campaign_id: int, claim: str) -> bool:
    """Still ours? Refreshes the heartbeat; False when another run took the preparation over."""
    return (
        Campaign.objects.filter(pk=campaign_id, status=CampaignStatus.PREPARING, preparation_claim=claim).update(
            preparation_heartbeat_at=timezone.now()
        )
        == 1
    )


def prepare(campaign_id: int, now: datetime | None = None) -> PrepareResult:
    """Create the messages of a campaign being prepared, then let it run.

    Safe to run again and to resume: people who already have a message are skipped, and a run holds
    the preparation by a claim with a heartbeat refreshed at every chunk (in the chunk's transaction),
    so two runs never write at once and a run that lost its claim stops at its next chunk.
    """
    result = PrepareResult()
    campaign = Campaign.objects.filter(pk=campaign_id).first()
    if campaign is None or campaign.status != CampaignStatus.PREPARING:
        return result
    claim = claim_preparation(campaign_id)
    if claim is None:
        logger.info("Campaign %s is being prepared by a live worker; not starting another run", campaign.key)
        result.claimed = False
        return result
    prep = preparation_for(campaign, now)
    audience = parse_rule(campaign.audience, "audience")
    chunk = conf.preparation_chunk()
    for ids in people.audience_ids(audience, exclude_campaign_id=campaign.pk, chunk=chunk):
        if not _heartbeat(campaign_id, claim):
            result.claimed = False
            return result
        messages = build_messages(prep, ids)
        with transaction.atomic():
            if not _heartbeat(campaign_id, claim):  # locks the campaign's row until this chunk commits
                result.claimed = False
                return result
            Message.objects.bulk_create(messages, ignore_conflicts=True, batch_size=chunk)
            drafts = Message.objects.filter(campaign=campaign, person_id__in=ids, state=MessageState.DRAFT)
            drafts.filter(needs_approval=True).update(state=MessageState.PENDING_APPROVAL, updated_at=timezone.now())
            drafts.filter(needs_approval=False).update(state=MessageState.SCHEDULED, updated_at=timezone.now())
        result.created += len(messages)
        result.chunks += 1
    Campaign.objects.filter(pk=campaign.pk, status=CampaignStatus.PREPARING, preparation_claim=claim).update(
        status=CampaignStatus.RUNNING,
        prepared_at=timezone.now(),
        audience_size=Message.objects.filter(campaign=campaign).count(),
        preparation_heartbeat_at=None,
        updated_at=timezone.now(),
    )
    logger.info("Prepared campaign %s: %s messages in %s chunks", campaign.key, result.created, result.chunks)
    return result


def stalled_preparations(now: datetime | None = None) -> list[int]:
    """Campaigns being prepared whose run went silent (its worker died), or that no run ever claimed
    (the queued task was lost) since launch, longer ago than the stale time."""
    now = now or timezone.now()
    stale_before = now - timedelta(seconds=conf.preparation_stale_seconds())
    silent = Q(preparation_heartbeat_at__lt=stale_before) | Q(
        preparation_heartbeat_at__isnull=True, launched_at__lt=stale_before
    )
    return list(
        Campaign.objects.filter(status=CampaignStatus.PREPARING)
        .filter(silent)
        .order_by("pk")
        .values_list("pk", flat=True)
    )


@dataclass(frozen=True)
class Preview:
    message: Message
    suppressed_because: str


def preview(campaign: Campaign, person_id: int, now: datetime | None = None) -> Preview:
    """What this person would receive if the campaign were prepared now (nothing is saved)."""
    prep = preparation_for(campaign, now)
    messages = build_messages(prep, [person_id], create_accounts=False)
    if not messages:
        raise LookupError(f"no person {person_id}")
    message = messages[0]
    reason = message.get_reason_display() if message.state in (MessageState.SUPPRESSED, MessageState.FAILED) else ""
    if message.state == MessageState.FAILED:
        reason = message.detail
    return Preview(message, reason)
