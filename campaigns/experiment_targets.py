"""What experiments on campaigns may name, checked against this app's rows (registered in apps.ready).

``{"template_variant": "b"}`` must be a template variant of the campaign the experiment targets
(or ``default``), and ``{"subject": "…"}`` a subject line that compiles; the audience a campaign
experiment can reach is the campaign's audience.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from campaigns.models import Campaign
from campaigns.rendering import DEFAULT_VARIANT, KNOWN_NAMES
from campaigns.rules import RuleError, parse_rule
from campaigns.templating import TemplateError, validate
from experiments import services as experiments


def check_campaign_payload(target_key: str, payload: Mapping[str, Any]) -> None:
    if "template_variant" in payload:
        campaign = Campaign.objects.filter(key=target_key).first()
        if campaign is None:
            raise experiments.PayloadError("template_variant", f"There is no campaign {target_key!r}.")
        names = sorted({DEFAULT_VARIANT, *(campaign.variants or {})})
        if payload["template_variant"] not in names:
            raise experiments.PayloadError(
                "template_variant",
                f"Campaign {target_key!r} has no template variant {payload['template_variant']!r} "
                f"(it has {', '.join(names)}).",
            )
    if "subject" in payload:
        try:
            validate({"subject": payload["subject"]}, known_names=KNOWN_NAMES)
        except TemplateError as error:
            raise experiments.PayloadError("subject", error.message) from None


def campaign_audience(target_key: str) -> int | None:
    from campaigns.people import audience_count

    campaign = Campaign.objects.filter(key=target_key).first()
    if campaign is None:
        return None
    try:
        return audience_count(parse_rule(campaign.audience, "audience"))
    except RuleError:
        return None


def campaign_choices() -> list[experiments.TargetChoice]:
    """Campaigns not yet launched or still sending, each with its template variants."""
    found = []
    open_campaigns = Campaign.objects.exclude(status="finished").order_by("-created_at", "-id")
    for key, name, variants in open_campaigns.values_list("key", "name", "variants")[:100]:
        names = sorted({DEFAULT_VARIANT, *(variants or {})})
        found.append(
            experiments.TargetChoice(key, name, [({"template_variant": n}, f"Template variant {n}") for n in names])
        )
    return found


def register() -> None:
    experiments.register_target(
        "campaign", check=check_campaign_payload, audience=campaign_audience, choices=campaign_choices
    )
