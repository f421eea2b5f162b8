"""The campaign builder pages: create and edit a campaign without JSON, count its audience while
editing, preview it as a person, send a test, confirm the launch and follow the preparation.

What the builder saves goes through ``services.create_campaign`` / ``update_campaign``, the same
validation and audit trail as the API; the conversions live in ``campaigns/builder.py``.
"""

from __future__ import annotations

import json
import re
from datetime import datetime
from datetime import time as time_of_day
from typing import Any, cast

from django.contrib import messages
from django.core.cache import cache
from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect, JsonResponse
from django.shortcuts import get_object_or_404, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from campaigns import builder, people, services
from campaigns.builder import BuilderError
from campaigns.composition import email_of
from campaigns.delivery import email_backend
from campaigns.lifecycle import CampaignError, content_surface_note
from campaigns.models import ApprovalPolicy, Campaign, CampaignChange, CampaignStatus, Channel, Message, MessageState
from campaigns.rules import EVENT_KINDS, RuleError, describe, parse_rule
from personalization.access import requires
from personalization.api.permissions import LAUNCH
from profiles import services as profiles

_OPEN_PIXEL = re.compile(r'<img src="[^"]*/t/o/[^"]*"[^>]*>')
EDIT = "campaigns.change_campaign"
ADD = "campaigns.add_campaign"
DEFAULT_SURFACE = "email-product-block"
LABELS = {
    "key": "Key",
    "name": "Name",
    "channel": "Channel",
    "audience": "Audience",
    "audience_json": "Audience (JSON)",
    "match": "Audience",
    "subject": "Subject",
    "preheader": "Preheader",
    "html": "HTML (code view)",
    "text": "Plain text (code view)",
    "blocks": "Content",
    "from_email": "From",
    "reply_to": "Reply to",
    "item_url": "Item link",
    "send_at": "Send at",
    "send_until": "Stop sending at",
    "send_time_holdout_share": "Send-time check group",
    "holdout_share": "Holdout",
    "cap_per_day": "Cap per day",
    "cap_per_week": "Cap per week",
    "quiet_start": "Quiet hours from",
    "quiet_end": "Quiet hours until",
    "approval_policy": "Approval",
    "approval_rule": "Approval rule",
    "content_surface": "Product surface",
    "content_limit": "Products",
    "person": "Preview as",
    "test_to": "Test address",
}


def _label(field: str) -> str:
    if field.startswith("a-"):
        return f"Audience condition {int(field.split('-')[1]) + 1} ({field.rsplit('-', 1)[1]})"
    if field.startswith("b-"):
        return f"Content block {int(field.split('-')[1]) + 1} ({field.rsplit('-', 1)[1]})"
    return LABELS.get(field, field.replace("_", " ").capitalize())


# --- reading the form -----------------------------------------------------------------------------------


def _flat(request: HttpRequest) -> dict[str, str]:
    return {key: request.POST.get(key, "") for key in request.POST}


def _when(text: str, field: str) -> datetime | None:
    if not text.strip():
        return None
    try:
        naive = datetime.fromisoformat(text.strip())
    except ValueError:
        raise BuilderError(field, "Give a date and time, e.g. 2026-12-01 09:00.") from None
    return naive if timezone.is_aware(naive) else timezone.make_aware(naive, timezone.get_current_timezone())


def _clock(text: str, field: str) -> time_of_day | None:
    if not text.strip():
        return None
    try:
        return time_of_day.fromisoformat(text.strip())
    except ValueError:
        raise BuilderError(field, "Give a time of day, e.g. 21:00.") from None


def _cap(text: str, field: str) -> int | None:
    if not text.strip():
        return None
    if not text.strip().isdigit() or not 1 <= int(text) <= 100:
        raise BuilderError(field, "A whole number from 1 to 100, or empty for no cap.")
    return int(text)


def _percent(text: str, field: str) -> float:
    if not text.strip():
        return 0.0
    try:
        value = float(text)
    except ValueError:
        raise BuilderError(field, "Give a percentage from 0 to 50.") from None
    if not 0 <= value <= 50:
        raise BuilderError(field, "Give a percentage from 0 to 50.")
    return round(value / 100, 4)


def _content(form: dict[str, str]) -> tuple[dict[str, Any], list[builder.Block] | None]:
    """The template fields and the product block's surface, from the blocks or the code view."""
    if form.get("content_mode") == "code":
        limit = form.get("content_limit", "").strip() or "0"
        if not limit.isdigit() or int(limit) > 20:
            raise BuilderError("content_limit", "Between 0 and 20 products.")
        values = {"html": form.get("html", ""), "text": form.get("text", ""), "content_limit": int(limit)}
        if int(limit):
            values["content_surface"] = form.get("content_surface", "").strip() or DEFAULT_SURFACE
        return values, None
    blocks = builder.blocks_of(form)
    content = builder.render_blocks(blocks)
    values = {"html": content.html, "text": content.text, "content_limit": content.limit, "content_kind": "product"}
    if content.surface:
        values["content_surface"] = content.surface
    return values, blocks


def _audience(form: dict[str, str]) -> Any:
    """The rows' rule; a rule the rows cannot show stays JSON (``audience_json``) until rows replace it."""
    written = form.get("audience_json", "").strip()
    if not written or any(key.startswith("a-") for key in form):
        return builder.audience_rule(form)
    try:
        rule = json.loads(written)
        parse_rule(rule, "audience")
    except ValueError as error:
        detail = error.detail if isinstance(error, RuleError) else f"Not valid JSON: {error}."
        raise BuilderError("audience_json", detail) from None
    return rule


def campaign_values(form: dict[str, str]) -> tuple[dict[str, Any], list[builder.Block] | None]:
    """Every setting the builder's form sets, as ``create_campaign`` takes them."""
    channel = form.get("channel", Channel.EMAIL)
    if channel not in Channel.values:
        raise BuilderError("channel", f"Choose one of {', '.join(Channel.values)}.")
    policy = form.get("approval_policy", ApprovalPolicy.NONE)
    if policy not in ApprovalPolicy.values:
        raise BuilderError("approval_policy", f"Choose one of {', '.join(ApprovalPolicy.values)}.")
    approval_rule: Any = {}
    if policy == ApprovalPolicy.RULE:
        try:
            approval_rule = json.loads(form.get("approval_rule", "") or "{}")
        except ValueError as error:
            raise BuilderError("approval_rule", f"Not valid JSON: {error}.") from None
    sender = form.get("from_email", "").strip()
    if sender:
        try:
            validate_email(sender.rsplit("<", 1)[-1].rstrip(">").strip())
        except ValidationError:
            raise BuilderError("from_email", "Not an email address.") from None
    content, blocks = _content(form)
    values: dict[str, Any] = {
        "name": form.get("name", "").strip(),
        "description": form.get("description", "").strip(),
        "channel": channel,
        "audience": _audience(form),
        "subject": form.get("subject", "").strip(),
        "preheader": form.get("preheader", "").strip(),
        "from_email": sender,
        "item_url": form.get("item_url", "").strip(),
        "send_at": _when(form.get("send_at", ""), "send_at"),
        "send_until": _when(form.get("send_until", ""), "send_until"),
        "send_time_optimization": form.get("send_time_optimization") == "on",
        "send_time_holdout_share": _percent(form.get("send_time_holdout_share", ""), "send_time_holdout_share"),
        "holdout_share": _percent(form.get("holdout_share", ""), "holdout_share"),
        "cap_per_day": _cap(form.get("cap_per_day", ""), "cap_per_day"),
        "cap_per_week": _cap(form.get("cap_per_week", ""), "cap_per_week"),
        "quiet_start": _clock(form.get("quiet_start", ""), "quiet_start"),
        "quiet_end": _clock(form.get("quiet_end", ""), "quiet_end"),
        "approval_policy": policy,
        "approval_rule": approval_rule,
        **content,
    }
    return values, blocks


def _form_of(campaign: Campaign) -> dict[str, str]:
    """The form fields showing a saved campaign."""
    local = timezone.get_current_timezone()

    def when(value: datetime | None) -> str:
        return value.astimezone(local).strftime("%Y-%m-%dT%H:%M") if value else ""

    form = {
        "key": campaign.key,
        "name": campaign.name,
        "description": campaign.description,
        "channel": campaign.channel,
        "subject": campaign.subject,
        "preheader": campaign.preheader,
        "from_email": campaign.from_email,
        "item_url": campaign.item_url,
        "send_at": when(campaign.send_at),
        "send_until": when(campaign.send_until),
        "send_time_optimization": "on" if campaign.send_time_optimization else "",
        "send_time_holdout_share": f"{campaign.send_time_holdout_share * 100:g}",
        "holdout_share": f"{campaign.holdout_share * 100:g}",
        "cap_per_day": "" if campaign.cap_per_day is None else str(campaign.cap_per_day),
        "cap_per_week": "" if campaign.cap_per_week is None else str(campaign.cap_per_week),
        "quiet_start": campaign.quiet_start.strftime("%H:%M") if campaign.quiet_start else "",
        "quiet_end": campaign.quiet_end.strftime("%H:%M") if campaign.quiet_end else "",
        "approval_policy": campaign.approval_policy,
        "approval_rule": json.dumps(campaign.approval_rule) if campaign.approval_rule else "",
        "html": campaign.html,
        "text": campaign.text,
        "content_surface": campaign.content_surface,
        "content_limit": str(campaign.content_limit),
    }
    rows = builder.rows_from_rule(campaign.audience)
    if rows is not None:
        form.update(builder.row_form(*rows))
    else:
        form["audience_json"] = json.dumps(campaign.audience, indent=2)
    blocks = builder.blocks_from_html(campaign.html)
    if blocks is None:
        form["content_mode"] = "code"
    else:
        form["content_mode"] = "blocks"
        form.update(builder.block_form(blocks))
    return form


def _starter_form() -> dict[str, str]:
    """A new campaign: a greeting, a few lines, the product block from the email surface, a button."""
    surface = _default_surface()
    blocks = [
        builder.Block("heading", text="{{ person.first_name|default('Hello') }}, picked for you"),
        builder.Block("text", text="A few things we think you will like, chosen from what you looked at lately."),
        builder.Block("products", text="Your picks", surface=surface, limit=4),
    ]
    form = {
        "channel": Channel.EMAIL,
        "match": "all",
        "subject": "{{ person.first_name|default('Hello') }}, picked for you",
        "preheader": "New this week",
        "send_time_optimization": "on",
        "cap_per_day": "1",
        "cap_per_week": "3",
        "quiet_start": "21:00",
        "quiet_end": "08:00",
        "holdout_share": "10",
        "send_time_holdout_share": "0",
        "approval_policy": ApprovalPolicy.NONE,
        "content_mode": "blocks",
        "content_surface": surface,
        "content_limit": "4",
    }
    form.update(builder.block_form(blocks))
    return form


def _surfaces() -> list[tuple[str, str]]:
    from personalization.models import Surface

    return list(Surface.objects.order_by("key").values_list("key", "name"))


def _default_surface() -> str:
    keys = [key for key, _ in _surfaces()]
    if DEFAULT_SURFACE in keys or not keys:
        return DEFAULT_SURFACE
    return keys[0]


# --- the page ---------------------------------------------------------------------------------------------


def _indexed(form: dict[str, str], prefix: str, parts: tuple[str, ...], errors: dict[str, str]) -> list[dict[str, Any]]:
    """Rows or blocks of the form, each with its number and the error of one of its fields."""
    indexes = sorted({int(k.split("-")[1]) for k in form if k.startswith(prefix) and k.split("-")[1].isdigit()})
    found = []
    for n in indexes:
        item: dict[str, Any] = {part: form.get(f"{prefix}{n}-{part}", "") for part in parts}
        item["n"] = n
        item["error"] = next((d for f, d in errors.items() if f.startswith(f"{prefix}{n}-")), "")
        found.append(item)
    return found


def _page(
    request: HttpRequest,
    campaign: Campaign | None,
    form: dict[str, str],
    errors: dict[str, str] | None = None,
    preview: dict[str, Any] | None = None,
) -> HttpResponse:
    errors = errors or {}
    rows = _indexed(form, "a-", ("kind", "name", "op", "value", "times", "days"), errors)
    blocks = _indexed(form, "b-", ("type", "text", "label", "url", "surface", "limit", "src", "alt"), errors)
    count, reading = None, ""
    try:
        rule = _audience(form)
        count, reading = services.audience_count(rule), describe(parse_rule(rule, "audience"))
    except (BuilderError, CampaignError):
        pass
    surfaces = _surfaces()
    surface = next((b["surface"] for b in blocks if b["type"] == "products"), "") or form.get("content_surface", "")
    context = {
        "campaign": campaign,
        "form": form,
        "rows": rows,
        "blocks": blocks,
        "errors": errors,
        "error_list": [(_label(f), d, f) for f, d in errors.items()],
        "row_templates": [{"kind": k, "n": "__N__"} for k in builder.ROW_KINDS],
        "block_templates": [{"type": t, "n": "__N__", "surface": _default_surface()} for t in builder.BLOCK_TYPES],
        "count": count,
        "reading": reading,
        "preview": preview,
        "surfaces": surfaces,
        "surface_known": surface in {key for key, _ in surfaces},
        "surface": surface,
        "row_kinds": builder.ROW_KINDS,
        "trait_ops": builder.TRAIT_OPS,
        "event_kinds": sorted(EVENT_KINDS),
        "event_verbs": builder.EVENT_VERBS,
        "last_seen_ops": builder.LAST_SEEN_OPS,
        "consent_ops": builder.CONSENT_OPS,
        "purposes": ["email_marketing", "personalization", "analytics"],
        "list_ops": builder.LIST_OPS,
        "account_ops": builder.ACCOUNT_OPS,
        "account_fields": builder.ACCOUNT_FIELDS,
        "block_types": builder.BLOCK_TYPES,
        "channels": Channel.choices,
        "policies": ApprovalPolicy.choices,
        "count_url": reverse("campaigns:builder-count"),
        "preview_url": reverse("campaigns:builder-preview"),
    }
    return render(request, "campaigns/builder.html", context)


def _preview(campaign: Campaign, person_key: str) -> tuple[dict[str, Any], Message]:
    """What ``person_key`` would receive from the (possibly unsaved) campaign; raises BuilderError."""
    if not person_key:
        raise BuilderError("person", "Give a user id, anonymous id or email to preview as.")
    person = profiles.find_person(person_key)
    if person is None:
        raise BuilderError("person", f"No person is known by {person_key!r}.")
    try:
        result = services.preview(campaign, person.pk)
    except services.CampaignError as error:
        raise BuilderError(error.attr or "person", error.detail) from None
    message = result.message
    if message.state != MessageState.DRAFT:
        return {"person": person_key, "suppressed": result.suppressed_because}, message
    parts = services.outgoing(message, campaign)
    data: dict[str, Any] = {
        "person": person_key,
        "to": parts.to,
        "subject": parts.subject,
        "preheader": message.preheader,
        "html": _OPEN_PIXEL.sub("", parts.html),  # looking at a preview is not an open
        "text": parts.text,
        "suppressed": "",
        "products": len(message.item_ids),
    }
    return data, message


def _unsaved(values: dict[str, Any], campaign: Campaign | None, key: str) -> Campaign:
    draft = Campaign(key=campaign.key if campaign else (key or "new-campaign"), **values)
    draft.pk = campaign.pk if campaign else 0  # tracking links of a preview need a number
    services.validate(draft)
    return draft


def _test_send(request: HttpRequest, draft: Campaign, saved: Campaign | None, address: str) -> str:
    try:
        validate_email(address)
    except ValidationError:
        raise BuilderError("test_to", "Give the address to send the test to.") from None
    data, message = _preview(draft, request.POST.get("person", "").strip())
    if data.get("suppressed"):
        raise BuilderError("person", f"This person would get nothing: {data['suppressed']}. Preview someone else.")
    message.to_email = address
    message.subject = f"[Test] {message.subject}"
    backend = email_backend()
    sent = backend.send_messages([email_of(message, draft)])
    if not sent:
        raise BuilderError("test_to", "The mail server did not accept the test.")
    if saved is not None:
        CampaignChange.objects.create(
            campaign=saved,
            action="test_send",
            changed_by=cast(Any, request.user),
            actor=request.user.get_username(),
            changed_at=timezone.now(),
            detail={"to": address, "as": data["person"]},
        )
    return f"Test sent to {address} as {data['person']}'s message."


def _builder(request: HttpRequest, campaign: Campaign | None) -> HttpResponse:
    if request.method == "GET":
        form = _form_of(campaign) if campaign else _starter_form()
        return _page(request, campaign, form)
    form = _flat(request)
    action = form.get("action", "save")
    try:
        values, _ = campaign_values(form)
        if action in ("preview", "test_send"):
            draft = _unsaved(values, campaign, form.get("key", ""))
            if action == "preview":
                data, _ = _preview(draft, form.get("person", "").strip())
                return _page(request, campaign, form, preview=data)
            messages.success(request, _test_send(request, draft, campaign, form.get("test_to", "").strip()))
            return _page(request, campaign, form)
        if campaign is None:
            saved = services.create_campaign(form.get("key", "").strip(), values, request.user)
            messages.success(request, f"Created {saved.name}. Launch it when it is ready.")
        else:
            saved = services.update_campaign(campaign, values, request.user)
            messages.success(request, "Saved.")
    except BuilderError as error:
        return _page(request, campaign, form, {error.field: error.detail})
    except CampaignError as error:
        return _page(request, campaign, form, {error.attr or "name": error.detail})
    return HttpResponseRedirect(reverse("campaigns:detail", args=[saved.key]))


@require_http_methods(["GET", "POST"])
@requires(ADD)
def new_campaign(request: HttpRequest) -> HttpResponse:
    return _builder(request, None)


@require_http_methods(["GET", "POST"])
@requires(EDIT)
def edit_campaign(request: HttpRequest, key: str) -> HttpResponse:
    campaign = get_object_or_404(Campaign, key=key)
    if campaign.status != CampaignStatus.DRAFT:
        messages.error(request, "A launched campaign cannot change; copy it into a new campaign.")
        return HttpResponseRedirect(reverse("campaigns:detail", args=[campaign.key]))
    return _builder(request, campaign)


# --- live answers while editing (JSON) --------------------------------------------------------------------


def _error(error: BuilderError | CampaignError) -> JsonResponse:
    field = error.field if isinstance(error, BuilderError) else (error.attr or "")
    return JsonResponse({"error": {"field": field, "label": _label(field), "detail": error.detail}})


@require_POST
@requires("campaigns.view_campaign")
def audience_count(request: HttpRequest) -> JsonResponse:
    """How many people the rows select right now, and how many of them lack email consent."""
    try:
        rule = _audience(_flat(request))
        parsed = parse_rule(rule, "audience")
    except BuilderError as error:
        return _error(error)
    audience = people.audience(parsed)
    count = audience.count()
    no_consent = people.without_email_consent(audience).count() if count else 0
    return JsonResponse({"count": count, "no_consent": no_consent, "rule": rule, "reading": describe(parsed)})


@require_POST
@requires(LAUNCH)
def preview(request: HttpRequest) -> JsonResponse:
    """The message the form's campaign would send the chosen person: subject, preheader, HTML, text."""
    form = _flat(request)
    key = form.get("campaign", "")
    campaign = Campaign.objects.filter(key=key).first() if key else None
    try:
        values, _ = campaign_values(form)
    except (BuilderError, CampaignError) as error:
        return _error(error)
    code = {"html": values["html"], "text": values["text"]}
    try:
        data, _ = _preview(_unsaved(values, campaign, form.get("key", "")), form.get("person", "").strip())
    except (BuilderError, CampaignError) as error:
        answer = _error(error)
        return JsonResponse({**json.loads(answer.content), "code": code})
    return JsonResponse({**data, "code": code})


# --- launching ---------------------------------------------------------------------------------------------


@require_GET
@requires(LAUNCH)
def confirm_launch(request: HttpRequest, key: str) -> HttpResponse:
    """Before launching: who it reaches, who consent leaves out, the holdout, the product surface."""
    campaign = get_object_or_404(Campaign, key=key)
    if campaign.status != CampaignStatus.DRAFT:
        messages.error(request, f"Only a draft can be launched; this campaign is {campaign.get_status_display()}.")
        return HttpResponseRedirect(reverse("campaigns:detail", args=[campaign.key]))
    audience = people.audience(parse_rule(campaign.audience, "audience"))
    size = audience.count()
    no_consent = people.without_email_consent(audience).count() if campaign.channel == Channel.EMAIL else 0
    # The holdout is drawn from everyone selected, before consent is looked at.
    holdout = round(size * campaign.holdout_share)
    context = {
        "campaign": campaign,
        "size": size,
        "no_consent": no_consent,
        "holdout": holdout,
        "holdout_percent": f"{campaign.holdout_share * 100:g}",
        "sending": round((size - no_consent) * (1 - campaign.holdout_share)),
        "reading": describe(parse_rule(campaign.audience, "audience")),
        "surface_note": content_surface_note(campaign),
    }
    return render(request, "campaigns/launch_confirm.html", context)


@require_GET
@requires("campaigns.view_campaign")
def progress(request: HttpRequest, key: str) -> JsonResponse:
    """How far the preparation is: messages made so far against the audience."""
    campaign = get_object_or_404(Campaign, key=key)
    made = Message.objects.filter(campaign=campaign, origin="").count()
    if campaign.status == CampaignStatus.PREPARING:
        # Counted once a minute, not at every poll: a big audience's count is a query of its own.
        total = cache.get_or_set(
            f"campaign-progress-total:{campaign.pk}",
            lambda: people.audience(parse_rule(campaign.audience, "audience")).count(),
            60,
        )
    else:
        total = campaign.audience_size if campaign.audience_size is not None else made
    done = campaign.status not in (CampaignStatus.DRAFT, CampaignStatus.PREPARING)
    share = 1.0 if done else (min(made / total, 0.99) if total else 0.0)
    return JsonResponse(
        {
            "status": campaign.status,
            "label": campaign.get_status_display(),
            "made": made,
            "total": total,
            "done": done,
            "share": round(share, 4),
        }
    )
