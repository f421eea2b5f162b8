"""Creating, changing and launching campaigns; every change is validated and recorded.

Templates are compiled in the sandbox when a campaign is saved (through the API, the services or
the admin), so a template that reaches for Python internals, has a syntax error or names an
unknown variable is refused with the field and line before any message exists. Once launched, a
campaign's messages are rendered from what was saved, so only its name, description and end can
change; everything else is frozen. Each change is a ``CampaignChange`` row with the before and
after, and a change to a draft can be rolled back.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Mapping
from datetime import date, datetime, time
from typing import Any

from django import db
from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db import transaction
from django.db.models import Field
from django.utils import timezone

from campaigns import conf, people, scheduling
from campaigns.models import ApprovalPolicy, Campaign, CampaignChange, CampaignStatus, Channel
from campaigns.preparation import compiled_campaign
from campaigns.rendering import refuse_costly
from campaigns.rules import RuleError, conditions, is_everyone, parse_rule
from campaigns.templating import TemplateError
from experiments import services as experiments

_SLUG = re.compile(r"^[-a-zA-Z0-9_]+$")
SETTINGS = (
    "name",
    "description",
    "channel",
    "audience",
    "subject",
    "preheader",
    "html",
    "text",
    "blocks",
    "variants",
    "variant_rules",
    "experiment_key",
    "content_surface",
    "content_kind",
    "content_limit",
    "item_url",
    "from_email",
    "reply_to",
    "send_at",
    "send_until",
    "window_start",
    "window_end",
    "window_weekdays",
    "send_time_optimization",
    "send_time_holdout_share",
    "holdout_share",
    "cap_per_day",
    "cap_per_week",
    "quiet_start",
    "quiet_end",
    "approval_policy",
    "approval_rule",
)
CHANGEABLE_AFTER_LAUNCH = frozenset({"name", "description", "send_until"})
CONTENT_KINDS = ("product", "content", "feature")
# Paths of their own: /api/v1/campaigns/audience-count, /campaigns/new/ and /campaigns/builder/….
RESERVED_KEYS = frozenset({"audience-count", "new", "builder"})


class CampaignError(ValueError):
    """A campaign that cannot be saved or a change that cannot be made; ``attr`` names the field."""

    def __init__(self, detail: str, attr: str | None = None, code: str = "invalid") -> None:
        super().__init__(detail)
        self.detail, self.attr, self.code = detail, attr, code


def _plain(value: Any) -> Any:
    if isinstance(value, datetime | date | time):
        return value.isoformat()
    if isinstance(value, AbstractBaseUser):
        return value.get_username()
    return value


def _actor(user: Any) -> tuple[Any, str]:
    if isinstance(user, AbstractBaseUser):
        return user, user.get_username()
    return None, "" if user is None else str(user)


def _audit(campaign: Campaign, action: str, user: Any, detail: Mapping[str, Any]) -> CampaignChange:
    actor, name = _actor(user)
    return CampaignChange.objects.create(
        campaign=campaign,
        action=action,
        changed_by=actor,
        actor=name,
        changed_at=timezone.now(),
        detail={
            k: _plain(v) if not isinstance(v, dict) else {a: _plain(b) for a, b in v.items()} for k, v in detail.items()
        },
    )


# --- validation -------------------------------------------------------------------------------------------


def _check_rules(campaign: Campaign) -> None:
    try:
        parse_rule(campaign.audience, "audience")
        if campaign.approval_policy == ApprovalPolicy.RULE:
            rule = parse_rule(campaign.approval_rule, "approval_rule")
            if is_everyone(rule):
                raise RuleError("approval_rule", "An empty rule matches every message; choose the policy 'all'.")
            for condition in conditions(rule):
                if condition.namespace not in ("trait", "account"):
                    raise RuleError(
                        "approval_rule", f"Approval rules use trait.* and account.* fields, not {condition.field}."
                    )
    except RuleError as error:
        raise CampaignError(error.detail, error.attr) from None


def _check_templates(campaign: Campaign) -> None:
    if campaign.channel == Channel.EMAIL and not campaign.subject.strip():
        raise CampaignError("An email needs a subject.", "subject", "required")
    if campaign.channel == Channel.EMAIL and not (campaign.html.strip() or campaign.text.strip()):
        raise CampaignError("An email needs an HTML or a text body.", "html", "required")
    try:
        # A trial render for a sample person refuses, at save, what would run over budget for anyone.
        refuse_costly(compiled_campaign(campaign))
    except TemplateError as error:
        attr = (
            error.field
            if error.field in ("subject", "preheader", "html", "text")
            else ("variant_rules" if error.field == "variant" else "blocks")
        )
        if error.message.startswith("variant "):
            attr = "variants"
        raise CampaignError(str(error), attr, "template") from None


def _check_timing(campaign: Campaign) -> None:
    for start, end in (("quiet_start", "quiet_end"), ("window_start", "window_end")):
        if (getattr(campaign, start) is None) != (getattr(campaign, end) is None):
            raise CampaignError(f"Set both {start} and {end}, or neither.", start)
    weekdays = campaign.window_weekdays
    if (
        not isinstance(weekdays, list)
        or not weekdays
        or any(isinstance(d, bool) or not isinstance(d, int) or not 0 <= d <= 6 for d in weekdays)
    ):
        raise CampaignError("Give the allowed weekdays as numbers 0 (Monday) to 6.", "window_weekdays")
    if campaign.send_at and campaign.send_until and campaign.send_until <= campaign.send_at:
        raise CampaignError("The campaign must end after it starts.", "send_until")
    for name in ("cap_per_day", "cap_per_week"):
        value = getattr(campaign, name)
        if value is not None and value < 1:
            raise CampaignError("At least 1, or empty for no cap.", name)
    for name in ("holdout_share", "send_time_holdout_share"):
        if not 0 <= float(getattr(campaign, name)) <= 0.5:
            raise CampaignError("A share between 0 and 0.5.", name)
    try:
        scheduling.policy_of(campaign)
    except ValueError as error:
        raise CampaignError(str(error), "window_start") from None


def _check_content(campaign: Campaign) -> None:
    if campaign.content_kind not in CONTENT_KINDS:
        raise CampaignError(f"Choose one of {', '.join(CONTENT_KINDS)}.", "content_kind")
    if not 0 <= campaign.content_limit <= 20:
        raise CampaignError("Between 0 and 20 items.", "content_limit")
    if campaign.item_url and (
        not campaign.item_url.startswith(("https://", "http://")) or "{item_id}" not in campaign.item_url
    ):
        raise CampaignError("An http(s) URL with {item_id} in it.", "item_url")
    for name in ("from_email", "reply_to"):
        value = getattr(campaign, name)
        if value:
            address = value.rsplit("<", 1)[-1].rstrip(">").strip()
            try:
                validate_email(address)
            except ValidationError:
                raise CampaignError("Not an email address.", name) from None
    if campaign.experiment_key and not _SLUG.match(campaign.experiment_key):
        raise CampaignError("An experiment key: letters, digits, '-' and '_'.", "experiment_key")


def validate(campaign: Campaign) -> None:
    """Everything a campaign must satisfy before it is saved; raises :class:`CampaignError`."""
    if not campaign.key or not _SLUG.match(campaign.key) or len(campaign.key) > 100:
        raise CampaignError("Use up to 100 letters, digits, '-' and '_'.", "key")
    if campaign.key in RESERVED_KEYS:
        raise CampaignError(f"{campaign.key!r} is reserved; choose another key.", "key")
    if not campaign.name.strip():
        raise CampaignError("Give the campaign a name.", "name", "required")
    if campaign.channel not in Channel.values:
        raise CampaignError(f"Choose one of {', '.join(Channel.values)}.", "channel")
    if campaign.approval_policy not in ApprovalPolicy.values:
        raise CampaignError(f"Choose one of {', '.join(ApprovalPolicy.values)}.", "approval_policy")
    _check_rules(campaign)
    _check_templates(campaign)
    _check_timing(campaign)
    _check_content(campaign)


# --- changes ----------------------------------------------------------------------------------------------


@transaction.atomic
def create_campaign(key: str, values: Mapping[str, Any], user: Any = None) -> Campaign:
    unknown = set(values) - set(SETTINGS)
    if unknown:
        raise CampaignError(f"Unknown setting {sorted(unknown)[0]!r}.", sorted(unknown)[0])
    if Campaign.objects.filter(key=key).exists():
        raise CampaignError("A campaign with this key exists.", "key", "unique")
    actor, _ = _actor(user)
    campaign = Campaign(key=key, owner=actor, **values)
    validate(campaign)
    campaign.save()
    _audit(campaign, "create", user, {"after": {k: getattr(campaign, k) for k in values}})
    return campaign


@transaction.atomic
def update_campaign(
    campaign: Campaign, changes: Mapping[str, Any], user: Any = None, action: str = "update"
) -> Campaign:
    campaign = Campaign.objects.select_for_update().get(pk=campaign.pk)
    unknown = set(changes) - set(SETTINGS)
    if unknown:
        raise CampaignError(f"Unknown setting {sorted(unknown)[0]!r}.", sorted(unknown)[0])
    if campaign.status != CampaignStatus.DRAFT:
        frozen = sorted(set(changes) - CHANGEABLE_AFTER_LAUNCH)
        if frozen:
            raise CampaignError(
                f"{frozen[0]} cannot change once the campaign is launched; copy it into a new campaign.",
                frozen[0],
                "frozen",
            )
    before = {k: getattr(campaign, k) for k in changes if getattr(campaign, k) != changes[k]}
    for name, value in changes.items():
        setattr(campaign, name, value)
    validate(campaign)
    if not before:
        return campaign
    campaign.save()
    _audit(campaign, action, user, {"before": before, "after": {k: getattr(campaign, k) for k in before}})
    return campaign


def rollback(campaign: Campaign, change: CampaignChange, user: Any = None) -> Campaign:
    """Undo one recorded change of a draft: its 'before' values are saved again (and recorded)."""
    if change.campaign_id != campaign.pk or change.action not in ("update", "rollback"):
        raise CampaignError("Only a change of this campaign's settings can be rolled back.", "change")
    before = dict(change.detail.get("before") or {})
    restored: dict[str, Any] = {}
    for name, value in before.items():
        field = Campaign._meta.get_field(name)
        if value is None or isinstance(value, dict | list) or not isinstance(field, Field):
            restored[name] = value
        else:
            restored[name] = field.to_python(value)
    return update_campaign(campaign, restored, user, action="rollback")


def _ensure_experiment(key: str, name: str, campaign: Campaign, variants: list[Any], metric: str, user: Any) -> str:
    try:
        experiment = experiments.create_experiment(
            key,
            name,
            variants,
            user=user,
            target_kind="campaign",
            target_key=campaign.key,
            primary_metric=metric,
            description=f"Created by campaign {campaign.key}.",
        )
    except experiments.ExperimentError as error:
        if error.code == "unique":
            return key  # launched before (and paused, or re-prepared): keep measuring in the same experiment
        raise CampaignError(error.detail, "holdout_share") from None
    experiments.start(experiment, user)
    return key


def launch(campaign: Campaign, user: Any = None, *, prepare_now: bool = False) -> Campaign:
    """Start preparing messages; holdouts become running experiments first, so assignment is stable.

    The preparation is queued for a worker once the launch commits; on the embedded default (tasks
    in-process) it runs in a background thread, so the launching request returns at once and the
    campaign shows ``preparing`` until it is done. ``prepare_now`` prepares in this process before
    returning instead (the demo seeding, scripts)."""
    campaign = _launch(campaign, user, queue=not prepare_now)
    if prepare_now:
        from campaigns.tasks import prepare_campaign

        prepare_campaign.apply(args=[campaign.pk])
        campaign.refresh_from_db()
    return campaign


@transaction.atomic
def _launch(campaign: Campaign, user: Any, queue: bool) -> Campaign:
    campaign = Campaign.objects.select_for_update().get(pk=campaign.pk)
    if campaign.status != CampaignStatus.DRAFT:
        raise CampaignError(f"Only a draft can be launched; this campaign is {campaign.status}.", "status", "conflict")
    validate(campaign)
    spec = experiments.VariantSpec
    if campaign.holdout_share > 0 and not campaign.holdout_experiment:
        campaign.holdout_experiment = _ensure_experiment(
            f"campaign-{campaign.key}-holdout"[:100],
            f"{campaign.name}: campaign holdout",
            campaign,
            [
                spec("holdout", "Receives nothing", campaign.holdout_share, {"holdout": True}, True),
                spec("campaign", "Receives the campaign", 1 - campaign.holdout_share, {}),
            ],
            "conversion",
            user,
        )
    if campaign.send_time_optimization and campaign.send_time_holdout_share > 0 and not campaign.send_time_experiment:
        campaign.send_time_experiment = _ensure_experiment(
            f"campaign-{campaign.key}-send-time"[:100],
            f"{campaign.name}: send-time optimization",
            campaign,
            [
                spec(
                    "fixed",
                    "Sent at the campaign's fixed time",
                    campaign.send_time_holdout_share,
                    {"send_time": "fixed"},
                    True,
                ),
                spec(
                    "optimized",
                    "Sent at each person's best hour",
                    1 - campaign.send_time_holdout_share,
                    {"send_time": "optimized"},
                ),
            ],
            "email_open_rate",
            user,
        )
    actor, _ = _actor(user)
    now = timezone.now()
    campaign.status, campaign.launched_at, campaign.launched_by = CampaignStatus.PREPARING, now, actor
    campaign.save(
        update_fields=[
            "status",
            "launched_at",
            "launched_by",
            "holdout_experiment",
            "send_time_experiment",
            "updated_at",
        ]
    )
    _audit(
        campaign,
        "launch",
        user,
        {
            "holdout_experiment": campaign.holdout_experiment,
            "send_time_experiment": campaign.send_time_experiment,
            "content_surface": content_surface_note(campaign),
        },
    )
    campaign_id = campaign.pk
    if queue:
        transaction.on_commit(lambda: _enqueue_preparation(campaign_id))
    return campaign


def content_surface_note(campaign: Campaign) -> str:
    """Which surface ranks the campaign's product block, said plainly (also when it does not exist)."""
    if campaign.content_limit <= 0:
        return "No product block (content_limit is 0)."
    from personalization.models import Surface

    if Surface.objects.filter(key=campaign.content_surface).exists():
        return f"Products from the surface {campaign.content_surface!r}."
    return (
        f"There is no surface {campaign.content_surface!r}: products come from the engine's default ranking, "
        "and no surface's weights apply. Create the surface or choose another in content_surface."
    )


_background: list[threading.Thread] = []


def _enqueue_preparation(campaign_id: int) -> None:
    from campaigns.tasks import prepare_campaign

    if settings.CELERY_TASK_ALWAYS_EAGER and conf.prepare_in_background():
        thread = threading.Thread(
            target=_prepare_in_background, args=(campaign_id,), name=f"prepare-campaign-{campaign_id}", daemon=True
        )
        _background[:] = [t for t in _background if t.is_alive()]
        _background.append(thread)
        thread.start()
    else:
        prepare_campaign.delay(campaign_id)


def _prepare_in_background(campaign_id: int) -> None:
    from campaigns.tasks import prepare_campaign

    try:
        prepare_campaign.apply(args=[campaign_id])
    finally:
        db.connection.close()


def wait_for_background_preparations(timeout: float | None = None) -> None:
    """Wait for preparations running in background threads (embedded default) to end."""
    while _background:
        _background.pop().join(timeout)


def _transition(campaign: Campaign, sources: list[str], target: str, user: Any, action: str) -> Campaign:
    if (
        Campaign.objects.filter(pk=campaign.pk, status__in=sources).update(status=target, updated_at=timezone.now())
        != 1
    ):
        current = Campaign.objects.filter(pk=campaign.pk).values_list("status", flat=True).first()
        raise CampaignError(f"Cannot {action} a campaign that is {current}.", "status", "conflict")
    campaign.refresh_from_db()
    _audit(campaign, action, user, {"status": target})
    return campaign


def pause(campaign: Campaign, user: Any = None) -> Campaign:
    """Nothing more is sent until it resumes; messages keep their place."""
    return _transition(campaign, [CampaignStatus.RUNNING], CampaignStatus.PAUSED, user, "pause")


def resume(campaign: Campaign, user: Any = None) -> Campaign:
    return _transition(campaign, [CampaignStatus.PAUSED], CampaignStatus.RUNNING, user, "resume")


@transaction.atomic
def delete_campaign(campaign: Campaign, user: Any = None) -> None:
    if campaign.status != CampaignStatus.DRAFT:
        raise CampaignError("Only a draft can be deleted; pause a launched campaign instead.", "status", "conflict")
    campaign.delete()


def audience_count(rule: Any) -> int:
    """How many people a rule selects right now; raises :class:`CampaignError` for a bad rule."""
    try:
        parsed = parse_rule(rule, "audience")
    except RuleError as error:
        raise CampaignError(error.detail, error.attr) from None
    return people.audience_count(parsed)
