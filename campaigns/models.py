"""Campaigns, the messages they render (one per recipient), accounts with their CSM, and the audit trails.

A message moves through a state machine, each step a conditional update (see ``campaigns/transitions.py``):

    draft → pending_approval → approved → scheduled → sending → sent → opened → clicked
                             ↘ rejected                      ↘ failed
    draft / scheduled / sending → suppressed (no consent, unsubscribed, capped, quiet hours, holdout…)
"""

from __future__ import annotations

from datetime import time

from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models


class Account(models.Model):
    """A customer company; people belong to one through their ``account_id`` (or ``company``) trait."""

    external_id = models.CharField(max_length=200, unique=True, help_text="The account id people carry in traits.")
    name = models.CharField(max_length=200, blank=True)
    plan = models.CharField(max_length=64, blank=True, db_index=True)
    billing_day = models.PositiveSmallIntegerField(
        null=True,
        blank=True,
        validators=[MinValueValidator(1), MaxValueValidator(31)],
        help_text="Day of the month the account's billing cycle starts (a shorter month: its last day). "
        "Empty: the calendar month. Journeys count events per billing cycle from it.",
    )
    csm = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="csm_accounts",
        help_text="The customer-success manager who approves this account's messages.",
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name", "external_id"]
        permissions = [("view_account_people", "Can view the people of the accounts they manage")]

    def __str__(self) -> str:
        return self.name or self.external_id


class Channel(models.TextChoices):
    EMAIL = "email", "Email"
    ONBOARDING = "onboarding", "Onboarding (in product)"


class CampaignStatus(models.TextChoices):
    DRAFT = "draft", "Draft"
    PREPARING = "preparing", "Preparing messages"
    RUNNING = "running", "Running"
    PAUSED = "paused", "Paused"
    FINISHED = "finished", "Finished"


class ApprovalPolicy(models.TextChoices):
    NONE = "none", "No approval"
    ALL = "all", "Every message"
    RULE = "rule", "Messages matching a rule"


def _every_day() -> list[int]:
    return list(range(7))


def _everyone() -> dict:
    return {"all": []}


class Campaign(models.Model):
    key = models.SlugField(max_length=100, unique=True, help_text="Stable id used in URLs, events and experiments.")
    name = models.CharField(max_length=200)
    description = models.TextField(blank=True)
    channel = models.CharField(max_length=16, choices=Channel.choices, default=Channel.EMAIL)
    status = models.CharField(max_length=16, choices=CampaignStatus.choices, default=CampaignStatus.DRAFT)
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="campaigns"
    )

    audience = models.JSONField(default=_everyone, blank=True, help_text="Rules over traits and behaviour.")

    subject = models.TextField(blank=True, help_text="Jinja2; one line.")
    preheader = models.TextField(blank=True, help_text="Jinja2; one line.")
    html = models.TextField(blank=True, help_text="Jinja2, autoescaped.")
    text = models.TextField(blank=True, help_text="Jinja2, plain text.")
    blocks = models.JSONField(default=dict, blank=True, help_text="Named snippets fields may include or extend.")
    variants = models.JSONField(
        default=dict,
        blank=True,
        help_text='Template variants: {"name": {"subject": …, "html": …}}; missing fields inherit.',
    )
    variant_rules = models.JSONField(
        default=list,
        blank=True,
        help_text='Ordered rules [{"variant", "segments", "interests"}]; the last one is the default.',
    )
    experiment_key = models.CharField(
        max_length=100,
        blank=True,
        help_text='An experiment whose variants choose {"template_variant": …} and/or {"subject": …}.',
    )

    content_surface = models.CharField(max_length=100, default="email-product-block")
    content_kind = models.CharField(max_length=16, default="product", help_text="product, content or feature.")
    content_limit = models.PositiveSmallIntegerField(
        default=4, validators=[MinValueValidator(0), MaxValueValidator(20)]
    )
    item_url = models.CharField(
        max_length=500, blank=True, help_text="Link to an item; {item_id} is replaced. Empty: the ITEM_URL setting."
    )
    from_email = models.CharField(max_length=254, blank=True, help_text="Empty: DEFAULT_FROM_EMAIL.")
    reply_to = models.CharField(max_length=254, blank=True)

    send_at = models.DateTimeField(null=True, blank=True, help_text="The fixed send time; empty: at launch.")
    send_until = models.DateTimeField(
        null=True, blank=True, help_text="Messages that cannot go out before this are suppressed."
    )
    window_start = models.TimeField(null=True, blank=True, help_text="Local time the daily send window opens.")
    window_end = models.TimeField(null=True, blank=True, help_text="Local time it closes.")
    window_weekdays = models.JSONField(default=_every_day, blank=True, help_text="Allowed local weekdays, Monday = 0.")
    send_time_optimization = models.BooleanField(default=True)
    send_time_holdout_share = models.FloatField(
        default=0.0,
        validators=[MinValueValidator(0), MaxValueValidator(0.5)],
        help_text="Share of recipients sent at the fixed time to measure send-time optimization.",
    )
    holdout_share = models.FloatField(
        default=0.0,
        validators=[MinValueValidator(0), MaxValueValidator(0.5)],
        help_text="Share of the audience that receives nothing, to measure the campaign's effect.",
    )
    cap_per_day = models.PositiveSmallIntegerField(null=True, blank=True, default=1)
    cap_per_week = models.PositiveSmallIntegerField(null=True, blank=True, default=3)
    quiet_start = models.TimeField(null=True, blank=True, default=time(21, 0))
    quiet_end = models.TimeField(null=True, blank=True, default=time(8, 0))

    approval_policy = models.CharField(max_length=8, choices=ApprovalPolicy.choices, default=ApprovalPolicy.NONE)
    approval_rule = models.JSONField(default=dict, blank=True, help_text="Which messages need approval (policy rule).")

    holdout_experiment = models.CharField(max_length=100, blank=True, editable=False)
    send_time_experiment = models.CharField(max_length=100, blank=True, editable=False)

    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    launched_at = models.DateTimeField(null=True, blank=True)
    launched_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    prepared_at = models.DateTimeField(null=True, blank=True)
    audience_size = models.PositiveIntegerField(null=True, blank=True)
    # The preparation's claim: which run holds it and when it last showed progress. A run whose
    # heartbeat went stale (its worker died) is resumed by campaigns.tasks.resume_stalled_preparations.
    preparation_claim = models.CharField(max_length=32, blank=True, default="", editable=False)
    preparation_heartbeat_at = models.DateTimeField(
        null=True,
        blank=True,
        editable=False,
        help_text="When the worker preparing the campaign last showed progress.",
    )

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return self.name or self.key


class CampaignChange(models.Model):
    """Who changed a campaign, when, and the before and after of what changed."""

    campaign = models.ForeignKey(Campaign, on_delete=models.CASCADE, related_name="changes")
    action = models.CharField(max_length=32)
    changed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    actor = models.CharField(max_length=200, blank=True, help_text="The user or API key, as a name.")
    changed_at = models.DateTimeField(db_index=True)
    detail = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["-changed_at", "-id"]

    def __str__(self) -> str:
        return f"{self.campaign.key}: {self.action} at {self.changed_at:%Y-%m-%d %H:%M}"


class MessageState(models.TextChoices):
    DRAFT = "draft", "Draft"
    PENDING_APPROVAL = "pending_approval", "Pending approval"
    APPROVED = "approved", "Approved"
    SCHEDULED = "scheduled", "Scheduled"
    SENDING = "sending", "Sending"
    SENT = "sent", "Sent"
    OPENED = "opened", "Opened"
    CLICKED = "clicked", "Clicked"
    REJECTED = "rejected", "Rejected"
    SUPPRESSED = "suppressed", "Suppressed"
    FAILED = "failed", "Failed"


class Reason(models.TextChoices):
    """Why a message was suppressed or failed."""

    NO_CONSENT = "no_consent", "No email marketing consent"
    UNSUBSCRIBED = "unsubscribed", "Unsubscribed"
    CAPPED = "capped", "Frequency cap"
    QUIET_HOURS = "quiet_hours", "Quiet hours"
    OUTSIDE_WINDOW = "outside_window", "Outside the send window"
    NO_ADDRESS = "no_address", "No email address"
    HOLDOUT = "holdout", "Campaign holdout"
    CAMPAIGN_ENDED = "campaign_ended", "Campaign ended or was deleted"
    RENDER_ERROR = "render_error", "The template failed for this person"
    REFUSED = "refused", "Refused by the mail server"
    UNCONFIRMED = "unconfirmed", "Handed to the mail server, acceptance not confirmed"
    ATTEMPTS = "attempts", "Too many failed attempts"
    REPLACED = "replaced", "Replaced by a journey's more focused message"


class Message(models.Model):
    campaign = models.ForeignKey(Campaign, on_delete=models.CASCADE, related_name="messages")
    person = models.ForeignKey("profiles.Person", on_delete=models.CASCADE, related_name="campaign_messages")
    account = models.ForeignKey(Account, null=True, blank=True, on_delete=models.SET_NULL, related_name="messages")
    channel = models.CharField(max_length=16, choices=Channel.choices, default=Channel.EMAIL)
    state = models.CharField(max_length=20, choices=MessageState.choices, default=MessageState.DRAFT)
    reason = models.CharField(max_length=20, choices=Reason.choices, blank=True)
    detail = models.TextField(blank=True, help_text="The error, for failed messages.")

    to_email = models.CharField(max_length=254, blank=True)
    variant = models.CharField(max_length=100, blank=True)
    assignments = models.JSONField(default=dict, blank=True, help_text="Experiment key → variant key.")
    send_time_source = models.CharField(max_length=16, blank=True, help_text="optimized, fixed or cold_start.")

    subject = models.CharField(max_length=255, blank=True)
    preheader = models.CharField(max_length=255, blank=True)
    html = models.TextField(blank=True, help_text="As rendered, before tracking is added at sending.")
    text = models.TextField(blank=True)
    recommendation_id = models.CharField(max_length=64, blank=True)
    item_ids = models.JSONField(default=list, blank=True)
    links = models.JSONField(default=list, blank=True, help_text="[url, item id] per tracked link, in order.")

    needs_approval = models.BooleanField(default=False)
    approval_rule_matched = models.CharField(max_length=200, blank=True)
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    decided_at = models.DateTimeField(null=True, blank=True)

    scheduled_for = models.DateTimeField(null=True, blank=True)
    enqueued_at = models.DateTimeField(null=True, blank=True)
    attempts = models.PositiveSmallIntegerField(default=0)
    claim_token = models.CharField(max_length=32, blank=True)
    claimed_at = models.DateTimeField(null=True, blank=True)
    handed_at = models.DateTimeField(
        null=True, blank=True, help_text="Set just before the mail server is told the message is complete."
    )
    sent_at = models.DateTimeField(null=True, blank=True)
    opened_at = models.DateTimeField(null=True, blank=True)
    clicked_at = models.DateTimeField(null=True, blank=True)
    unsubscribed_at = models.DateTimeField(null=True, blank=True)
    exposure_logged_at = models.DateTimeField(null=True, blank=True)
    message_id_header = models.CharField(max_length=255, blank=True, help_text="The Message-ID header sent.")
    origin = models.CharField(
        max_length=100,
        blank=True,
        default="",
        help_text="Empty for a campaign's own message; journey:<entry>:<step> for one a journey step sent.",
    )

    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            # A campaign sends once per person; a journey step, whose template is a campaign, once per entry.
            models.UniqueConstraint(
                fields=["campaign", "person"], condition=models.Q(origin=""), name="message_once_per_person"
            ),
            models.UniqueConstraint(fields=["origin"], condition=~models.Q(origin=""), name="message_once_per_origin"),
        ]
        indexes = [
            models.Index(fields=["state", "scheduled_for"]),
            models.Index(fields=["person", "channel"]),
            models.Index(fields=["account", "state"]),
            models.Index(fields=["campaign", "state"]),
        ]
        permissions = [
            ("approve_message", "Can approve, edit and reject messages of their accounts"),
            ("approve_any_account", "Can approve messages of every account"),
        ]

    def __str__(self) -> str:
        return f"{self.campaign.key} → {self.to_email or self.person_id} ({self.state})"


class ApprovalAction(models.Model):
    """One decision or edit in the approval queue: who, when, what, and for edits the before and after."""

    class Action(models.TextChoices):
        APPROVE = "approve", "Approved"
        REJECT = "reject", "Rejected"
        EDIT = "edit", "Edited"

    message = models.ForeignKey(Message, on_delete=models.CASCADE, related_name="approval_actions")
    action = models.CharField(max_length=16, choices=Action.choices)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    actor_name = models.CharField(max_length=200, blank=True)
    at = models.DateTimeField(db_index=True)
    note = models.CharField(max_length=500, blank=True)
    before = models.JSONField(default=dict, blank=True)
    after = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["-at", "-id"]

    def __str__(self) -> str:
        return f"{self.actor_name} {self.action} message {self.message_id} at {self.at:%Y-%m-%d %H:%M}"
