from __future__ import annotations

from typing import Any

from rest_framework import serializers

from campaigns.lifecycle import SETTINGS
from campaigns.models import ApprovalPolicy, Campaign, Channel, Message

RULE_HELP = (
    'Rules: {"all": [...]}, {"any": [...]}, {"not": {...}} or a condition {"field", "op", "value"}; '
    "fields trait.<name>, affinity.category.<path>, affinity.brand.<name>, price_band, event.<kind> (also how "
    'often: at_least / fewer_than {"times", "days"}), last_seen, consent.<purpose>, segment, account.plan|name|id '
    "(approval rules: trait.<name>, account.plan|name|id). See docs/campaigns.md."
)


class CampaignSerializer(serializers.ModelSerializer):
    """A campaign's settings; templates are Jinja2, compiled in the sandbox when saved."""

    key = serializers.SlugField(max_length=100, help_text="Stable id, used in URLs, events and experiments.")
    channel = serializers.ChoiceField(choices=Channel.choices, required=False, default=Channel.EMAIL)
    status = serializers.CharField(read_only=True, help_text="draft, preparing, running, paused or finished.")
    owner = serializers.SerializerMethodField(help_text="The user who created it.")
    audience = serializers.JSONField(required=False, help_text=RULE_HELP)
    approval_policy = serializers.ChoiceField(choices=ApprovalPolicy.choices, required=False)
    approval_rule = serializers.JSONField(required=False, help_text=RULE_HELP)
    blocks = serializers.JSONField(required=False, help_text='Named snippets: {"footer": "..."}.')
    variants = serializers.JSONField(
        required=False, help_text='{"name": {"subject": ..., "html": ...}}; fields a variant leaves out inherit.'
    )
    variant_rules = serializers.JSONField(
        required=False, help_text='[{"variant": "vip", "segments": ["vip"], "interests": []}, {"variant": "default"}]'
    )
    window_weekdays = serializers.ListField(
        child=serializers.IntegerField(min_value=0, max_value=6), required=False, help_text="Monday = 0."
    )
    message_counts = serializers.SerializerMethodField(help_text="Messages per state.")

    class Meta:
        model = Campaign
        # The settings a marketer edits are the lifecycle's list, so the two cannot drift apart.
        fields = [
            "key",
            "status",
            "owner",
            *SETTINGS,
            "holdout_experiment",
            "send_time_experiment",
            "audience_size",
            "message_counts",
            "created_at",
            "updated_at",
            "launched_at",
            "prepared_at",
        ]
        read_only_fields = [
            "holdout_experiment",
            "send_time_experiment",
            "audience_size",
            "created_at",
            "updated_at",
            "launched_at",
            "prepared_at",
        ]

    def get_owner(self, campaign: Campaign) -> str | None:
        return campaign.owner.get_username() if campaign.owner else None

    def get_message_counts(self, campaign: Campaign) -> dict[str, int]:
        counts = getattr(campaign, "state_counts", None)
        return dict(counts) if counts is not None else {}


class CampaignUpdateSerializer(CampaignSerializer):
    key = serializers.SlugField(read_only=True)


class AudienceSerializer(serializers.Serializer):
    audience = serializers.JSONField(help_text=RULE_HELP)


class AudienceCountSerializer(serializers.Serializer):
    count = serializers.IntegerField(help_text="People the rules select right now.")


class PreviewQuerySerializer(serializers.Serializer):
    person = serializers.CharField(help_text="User id, anonymous id or email of the person to preview for.")


class RecommendedItemSerializer(serializers.Serializer):
    id = serializers.CharField()
    title = serializers.CharField()
    url = serializers.CharField()


class PreviewSerializer(serializers.Serializer):
    person = serializers.CharField()
    outcome = serializers.CharField(help_text="scheduled, pending_approval, suppressed or failed.")
    reason = serializers.CharField(help_text="Why it would not be sent (empty when it would).")
    variant = serializers.CharField()
    send_time_source = serializers.CharField(help_text="optimized, cold_start or fixed.")
    scheduled_for = serializers.DateTimeField(allow_null=True)
    needs_approval = serializers.BooleanField()
    from_email = serializers.CharField()
    to = serializers.CharField()
    subject = serializers.CharField()
    preheader = serializers.CharField()
    headers = serializers.DictField(child=serializers.CharField())
    html = serializers.CharField(help_text="Exactly as it would be sent, tracking included.")
    text = serializers.CharField()
    recommendation_id = serializers.CharField()
    item_ids = serializers.ListField(child=serializers.CharField())


class ApprovalActionSerializer(serializers.Serializer):
    action = serializers.CharField(help_text="approve, reject or edit.")
    actor = serializers.CharField(source="actor_name")
    at = serializers.DateTimeField()
    note = serializers.CharField()
    before = serializers.JSONField()
    after = serializers.JSONField()


class MessageSerializer(serializers.ModelSerializer):
    campaign = serializers.CharField(source="campaign.key", read_only=True)
    account = serializers.SerializerMethodField(help_text="The account's external id.")
    state = serializers.CharField(
        read_only=True,
        help_text="draft, pending_approval, approved, scheduled, sending, "
        "sent, opened, clicked, rejected, suppressed or failed.",
    )
    reason = serializers.CharField(read_only=True, help_text="Why it was suppressed or failed.")

    class Meta:
        model = Message
        fields = [
            "id",
            "campaign",
            "person",
            "account",
            "channel",
            "state",
            "reason",
            "to_email",
            "variant",
            "subject",
            "preheader",
            "recommendation_id",
            "item_ids",
            "needs_approval",
            "approval_rule_matched",
            "scheduled_for",
            "send_time_source",
            "sent_at",
            "opened_at",
            "clicked_at",
            "unsubscribed_at",
            "attempts",
            "decided_at",
        ]
        read_only_fields = fields

    def get_account(self, message: Message) -> str | None:
        return message.account.external_id if message.account else None


class MessageDetailSerializer(MessageSerializer):
    html = serializers.SerializerMethodField(help_text="Exactly as sent (or as it will be sent): tracking included.")
    text = serializers.SerializerMethodField()
    headers = serializers.SerializerMethodField()
    approval_actions = ApprovalActionSerializer(many=True, read_only=True)

    class Meta(MessageSerializer.Meta):
        fields = [*MessageSerializer.Meta.fields, "html", "text", "headers", "detail", "approval_actions"]
        read_only_fields = fields

    def _outgoing(self, message: Message) -> Any:
        from campaigns.composition import outgoing

        cached = getattr(message, "_outgoing", None)
        if cached is None:
            cached = outgoing(message)
            message._outgoing = cached  # type: ignore[attr-defined]
        return cached

    def get_html(self, message: Message) -> str:
        return str(self._outgoing(message).html)

    def get_text(self, message: Message) -> str:
        return str(self._outgoing(message).text)

    def get_headers(self, message: Message) -> dict[str, str]:
        return dict(self._outgoing(message).headers)


class MessageEditSerializer(serializers.Serializer):
    subject = serializers.CharField(required=False, max_length=255)
    preheader = serializers.CharField(required=False, allow_blank=True, max_length=255)
    html = serializers.CharField(required=False, allow_blank=True, trim_whitespace=False)
    text = serializers.CharField(required=False, allow_blank=True, trim_whitespace=False)
    note = serializers.CharField(required=False, allow_blank=True, default="", max_length=500)


class DecisionSerializer(serializers.Serializer):
    ids = serializers.ListField(child=serializers.IntegerField(min_value=1), min_length=1, max_length=1000)
    action = serializers.ChoiceField(choices=["approve", "reject"])
    note = serializers.CharField(required=False, allow_blank=True, default="", max_length=500)


class NoteSerializer(serializers.Serializer):
    note = serializers.CharField(required=False, allow_blank=True, default="", max_length=500)


class DecisionResultSerializer(serializers.Serializer):
    done = serializers.ListField(child=serializers.IntegerField(), help_text="Messages this request decided.")
    skipped = serializers.ListField(
        child=serializers.IntegerField(), help_text="Messages no longer waiting for approval (decided meanwhile)."
    )


class OnboardingQuerySerializer(serializers.Serializer):
    limit = serializers.IntegerField(required=False, default=5, min_value=1, max_value=50)


class NextActionSerializer(serializers.Serializer):
    item_id = serializers.CharField()
    title = serializers.CharField()
    kind = serializers.CharField(help_text="feature or content.")
    score = serializers.FloatField(help_text="Smoothed activation rate among people like this person.")
    activation_rate = serializers.FloatField(help_text="Raw activation rate among the peers (or everyone).")
    peers_activated = serializers.IntegerField()
    reason = serializers.CharField()


class InProductMessageSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    campaign = serializers.CharField()
    subject = serializers.CharField()
    text = serializers.CharField()
    html = serializers.CharField()


class OnboardingSerializer(serializers.Serializer):
    person = serializers.CharField()
    recommendation_id = serializers.CharField()
    personalized = serializers.BooleanField(help_text="False: no consent or no segment; everyone's ranking.")
    peer_trait = serializers.CharField(allow_null=True)
    peer_value = serializers.CharField(allow_null=True)
    peers = serializers.IntegerField(help_text="People sharing the segment.")
    population = serializers.IntegerField()
    items = NextActionSerializer(many=True)
    degraded = serializers.BooleanField(help_text="True when the engine's candidates were a fallback.")
    degraded_reason = serializers.CharField(help_text='Why, e.g. "model files of version 3 missing"; empty if not.')
    messages = InProductMessageSerializer(many=True, help_text="Onboarding campaign messages for this person.")


def settings_from(validated: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in validated.items() if k != "key"}
