"""Browser pages (campaigns, the approval queue) and the public tracking endpoints."""

from __future__ import annotations

import base64
from typing import Any

from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.db import transaction
from django.db.models import Count
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404, render
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme, urlencode
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from campaigns import conf, funnel, services, tracking
from campaigns.lifecycle import content_surface_note
from campaigns.models import Account, ApprovalAction, Campaign, CampaignChange, Message, MessageState
from campaigns.results import CONVERSION_DAYS, results
from campaigns.rules import RuleError, describe, parse_rule
from personalization.access import requires
from personalization.api.permissions import LAUNCH, SEES_MESSAGES
from profiles import services as profiles

STATE_TONES = {
    "pending_approval": "warn",
    "approved": "good",
    "scheduled": "",
    "sent": "good",
    "opened": "good",
    "clicked": "good",
    "rejected": "bad",
    "suppressed": "",
    "failed": "bad",
}
DELIVERED = (MessageState.SENT, MessageState.OPENED, MessageState.CLICKED)
CAMPAIGN_TONES = {"draft": "", "preparing": "warn", "running": "good", "paused": "warn", "finished": ""}


# --- campaigns ---------------------------------------------------------------------------------------------


def _state_counts(campaigns: list[Campaign]) -> dict[int, dict[str, int]]:
    counts: dict[int, dict[str, int]] = {}
    rows = (
        Message.objects.filter(campaign__in=campaigns)
        .values_list("campaign_id", "state")
        .annotate(n=Count("id"))
        .order_by()
    )
    for campaign_id, state, n in rows:
        counts.setdefault(campaign_id, {})[state] = n
    return counts


@require_GET
@requires("campaigns.view_campaign")
def campaign_list(request: HttpRequest) -> HttpResponse:
    campaigns = list(Campaign.objects.select_related("owner").order_by("-created_at", "-id")[:200])
    counts = _state_counts(campaigns)
    rows = [
        {
            "campaign": c,
            "tone": CAMPAIGN_TONES.get(c.status, ""),
            "counts": counts.get(c.pk, {}),
            "pending": counts.get(c.pk, {}).get(MessageState.PENDING_APPROVAL, 0),
            "sent": sum(counts.get(c.pk, {}).get(s, 0) for s in DELIVERED),
        }
        for c in campaigns
    ]
    return render(request, "campaigns/campaign_list.html", {"rows": rows})


def _reading(rule: Any, attr: str) -> str:
    try:
        return describe(parse_rule(rule, attr))
    except RuleError as error:
        return f"(invalid: {error})"


@require_GET
@requires("campaigns.view_campaign")
def campaign_detail(request: HttpRequest, key: str) -> HttpResponse:
    campaign = get_object_or_404(Campaign.objects.select_related("owner", "launched_by"), key=key)
    counts = _state_counts([campaign]).get(campaign.pk, {})
    preview = None
    preview_error = ""
    person_key = request.GET.get("person", "").strip() if request.user.has_perm("profiles.view_person") else ""
    if person_key:
        person = profiles.find_person(person_key)
        if person is None:
            preview_error = f"No person is known by {person_key!r}."
        else:
            try:
                result = services.preview(campaign, person.pk)
            except services.CampaignError as error:
                preview_error = error.detail
            else:
                parts = services.outgoing(result.message) if result.message.state == MessageState.DRAFT else None
                preview = {"result": result, "parts": parts}
    try:
        audience = services.audience_count(campaign.audience)
    except services.CampaignError as error:
        audience, preview_error = None, error.detail
    rules = {"audience": _reading(campaign.audience, "audience")}
    if campaign.approval_policy == "rule":
        rules["approval"] = _reading(campaign.approval_rule, "approval_rule")
    context = {
        "campaign": campaign,
        "tone": CAMPAIGN_TONES.get(campaign.status, ""),
        "audience": audience,
        "counts": [
            (state.label, counts.get(state.value, 0), STATE_TONES.get(state.value, "")) for state in MessageState
        ],
        "changes": CampaignChange.objects.filter(campaign=campaign).select_related("changed_by")[:50],
        "person_key": person_key,
        "preview": preview,
        "preview_error": preview_error,
        "can_launch": request.user.has_perm(LAUNCH),
        "rules": rules,
        "surface_note": content_surface_note(campaign),
    }
    if campaign.status == "preparing":
        made = Message.objects.filter(campaign=campaign, origin="").count()
        total = max(audience or 0, made)
        context["progress"] = {"made": made, "total": total, "percent": round(100 * made / total) if total else 0}
    elif campaign.launched_at is not None:
        found = results(campaign)
        context.update(
            results=found,
            funnel=funnel.funnel_rows(found.counts),
            chart=found.chart,
            interval=funnel.interval_text(found.effect),
            treated_rate=funnel.share(found.treated.converted, found.treated.people),
            holdout_rate=funnel.share(found.holdout.converted, found.holdout.people),
            conversion_days=CONVERSION_DAYS,
        )
    return render(request, "campaigns/campaign_detail.html", context)


@require_POST
@requires(LAUNCH)
def campaign_action(request: HttpRequest, key: str, action: str) -> HttpResponse:
    campaign = get_object_or_404(Campaign, key=key)
    acts = {"launch": services.launch, "pause": services.pause, "resume": services.resume}
    if action not in acts:
        raise Http404("Unknown action")
    try:
        acts[action](campaign, request.user)
        messages.success(
            request,
            {"launch": "Launched: messages are being prepared.", "pause": "Paused.", "resume": "Resumed."}[action],
        )
    except services.CampaignError as error:
        messages.error(request, error.detail)
    return HttpResponseRedirect(reverse("campaigns:detail", args=[campaign.key]))


# --- the approval queue --------------------------------------------------------------------------------------


def _back_to_queue(request: HttpRequest) -> HttpResponseRedirect:
    target = request.POST.get("next") or reverse("campaigns:queue")
    if not url_has_allowed_host_and_scheme(target, allowed_hosts={request.get_host()}):
        target = reverse("campaigns:queue")
    return HttpResponseRedirect(target)


def _plural(n: int, word: str = "message") -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


@require_http_methods(["GET", "POST"])
@requires(SEES_MESSAGES)
def approval_queue(request: HttpRequest) -> HttpResponse:
    if request.method == "POST":
        if request.POST.get("scope") == "matching":
            return _decide_matching(request)
        return _decide(request, [int(pk) for pk in request.POST.getlist("ids") if pk.isdigit()])
    filter_error = None
    try:
        filters = services.QueueFilters.read(request.GET)
    except services.FilterError as error:
        filter_error = error
        filters = services.QueueFilters()
    visible = services.visible_messages(request.user)
    queue = filters.apply(visible)
    page = Paginator(queue.order_by("scheduled_for", "id"), 50).get_page(request.GET.get("page"))
    rows = [
        {"message": m, "tone": STATE_TONES.get(m.state, ""), "may_decide": services.may_decide(request.user, m)}
        for m in page.object_list
    ]
    campaign_ids = visible.values_list("campaign_id", flat=True).distinct()
    account_ids = visible.exclude(account=None).values_list("account_id", flat=True).distinct()
    query = request.GET.copy()
    query.pop("page", None)
    context = {
        "rows": rows,
        "page": page,
        "filters": filters.as_params(),
        "filter_error": filter_error,
        "campaigns": Campaign.objects.filter(pk__in=campaign_ids).order_by("name"),
        "accounts": Account.objects.filter(pk__in=account_ids).order_by("name"),
        "states": MessageState.choices,
        "ages": [(key, label) for key, (label, _) in services.AGES.items()],
        "any_decidable": any(
            m.state == MessageState.PENDING_APPROVAL and services.may_decide(request.user, m) for m in page
        ),
        "matching": services.count_matching(request.user, filters),
        "query": query.urlencode(),
    }
    return render(request, "campaigns/approval_queue.html", context)


def _described(filters: services.QueueFilters) -> list[str]:
    """The filters in words, for the confirmation."""
    words = []
    if filters.campaign:
        campaign = Campaign.objects.filter(key=filters.campaign).first()
        words.append(f"campaign {campaign.name if campaign else filters.campaign}")
    if filters.account:
        account = Account.objects.filter(external_id=filters.account).first()
        words.append(f"account {account if account else filters.account}")
    if filters.age:
        words.append(services.AGES[filters.age][0].lower())
    return words


def _queue_url(filters: services.QueueFilters) -> str:
    params = {k: v for k, v in filters.as_params().items() if v or k == "state"}
    return reverse("campaigns:queue") + "?" + urlencode(params)


def _decide_matching(request: HttpRequest) -> HttpResponse:
    """Approve or reject all that match the filters: first a confirmation with the count, then the decision."""
    if not request.user.has_perm("campaigns.approve_message"):
        raise PermissionDenied("You may not approve or reject messages.")
    action = request.POST.get("action", "")
    if action not in ("approve", "reject"):
        messages.error(request, "Choose approve or reject.")
        return HttpResponseRedirect(reverse("campaigns:queue"))
    try:
        filters = services.QueueFilters.read(request.POST)
    except services.FilterError as error:
        messages.error(request, f"The {error.attr} filter is not valid: {error.detail}.")
        return HttpResponseRedirect(reverse("campaigns:queue"))
    note = request.POST.get("note", "")
    confirmed, up_to = request.POST.get("confirmed", ""), request.POST.get("up_to", "")
    if confirmed.isdigit() and up_to.isdigit() and int(confirmed) > conf.bulk_decision_inline():
        return _decide_matching_later(request, filters, action, int(confirmed), int(up_to), note)
    if confirmed.isdigit() and up_to.isdigit():
        try:
            result = services.decide_matching(
                request.user, filters, action, confirmed=int(confirmed), up_to=int(up_to), note=note
            )
        except services.ApprovalDenied as error:
            raise PermissionDenied(str(error)) from None
        except services.CountChanged as changed:
            messages.warning(
                request,
                f"{_plural(changed.found)} match these filters now, more than the {changed.confirmed} you "
                "confirmed; nothing was changed. Check the count and confirm again.",
            )
        else:
            verb = "Approved" if action == "approve" else "Rejected"
            messages.success(request, f"{verb} {_plural(len(result.done))} matching the filters.")
            if result.skipped:
                messages.warning(request, f"{len(result.skipped)} had already been decided by someone else.")
            return HttpResponseRedirect(_queue_url(filters))
    matching = services.count_matching(request.user, filters)
    if matching.count == 0:
        messages.info(request, "No message waiting for your decision matches these filters.")
        return HttpResponseRedirect(_queue_url(filters))
    context = {
        "action": action,
        "verb": "Approve" if action == "approve" else "Reject",
        "matching": matching,
        "filters": filters.as_params(),
        "described": _described(filters),
        "note": note,
        "back": _queue_url(filters),
    }
    return render(request, "campaigns/approval_confirm.html", context)


def _decide_matching_later(
    request: HttpRequest, filters: services.QueueFilters, action: str, confirmed: int, up_to: int, note: str
) -> HttpResponse:
    """Many messages: checked now (more than confirmed changes nothing), decided by a worker."""
    from campaigns.tasks import decide_matching_messages

    found = services.matching_decidable(request.user, filters).filter(pk__lte=up_to).count()
    if found > confirmed:
        messages.warning(
            request,
            f"{_plural(found)} match these filters now, more than the {confirmed} you confirmed; nothing was "
            "changed. Check the count and confirm again.",
        )
        return HttpResponseRedirect(_queue_url(filters))
    args = (request.user.pk, filters.as_params(), action, confirmed, up_to, note)
    transaction.on_commit(lambda: decide_matching_messages.delay(*args))
    verb = "Approving" if action == "approve" else "Rejecting"
    messages.success(
        request,
        f"{verb} {_plural(found)} matching the filters in the background; they leave the queue as they are "
        "decided (a few thousand a minute). Each is recorded in its audit trail.",
    )
    return HttpResponseRedirect(_queue_url(filters))


def _decide(request: HttpRequest, ids: list[int]) -> HttpResponse:
    action = request.POST.get("action", "")
    if action not in ("approve", "reject"):
        messages.error(request, "Choose approve or reject.")
        return _back_to_queue(request)
    if not ids:
        messages.error(request, "Select at least one message.")
        return _back_to_queue(request)
    try:
        result = services.decide(request.user, ids, action, request.POST.get("note", ""))
    except services.ApprovalDenied as error:
        raise PermissionDenied(str(error)) from None
    verb = "Approved" if action == "approve" else "Rejected"
    if result.done:
        messages.success(request, f"{verb} {len(result.done)} message{'s' if len(result.done) != 1 else ''}.")
    if result.skipped:
        messages.warning(request, f"{len(result.skipped)} had already been decided by someone else.")
    return _back_to_queue(request)


@require_http_methods(["GET", "POST"])
@requires(SEES_MESSAGES)
def message_detail(request: HttpRequest, pk: int) -> HttpResponse:
    message = get_object_or_404(services.visible_messages(request.user), pk=pk)
    may_decide = services.may_decide(request.user, message)
    if request.method == "POST":
        if request.POST.get("action") in ("approve", "reject"):
            return _decide(request, [message.pk])
        if request.POST.get("action") == "edit":
            changes = {
                name: request.POST[name] for name in ("subject", "preheader", "html", "text") if name in request.POST
            }
            try:
                services.edit(request.user, message.pk, changes, request.POST.get("note", ""))
            except services.ApprovalDenied as error:
                raise PermissionDenied(str(error)) from None
            except ValueError as error:
                messages.error(request, str(error))
            else:
                messages.success(request, "Saved. The preview shows the message as it will now be sent.")
            return HttpResponseRedirect(reverse("campaigns:message", args=[message.pk]))
        raise Http404("Unknown action")
    parts = services.outgoing(message)
    context = {
        "message": message,
        "tone": STATE_TONES.get(message.state, ""),
        "parts": parts,
        "may_decide": may_decide,
        "editable": may_decide and message.state == MessageState.PENDING_APPROVAL,
        "actions": ApprovalAction.objects.filter(message=message).select_related("actor"),
        "back": reverse("campaigns:queue"),
    }
    return render(request, "campaigns/message_detail.html", context)


# --- tracking (public: the signed token is the authorization) ---------------------------------------------

PIXEL = base64.b64decode("R0lGODlhAQABAIAAAAAAAP///yH5BAEAAAAALAAAAAABAAEAAAIBRAA7")


@never_cache
@require_GET
def open_pixel(request: HttpRequest, token: str) -> HttpResponse:
    services.record_open(token)
    # Always the pixel, also for a bad token: a broken image in an inbox helps nobody.
    return HttpResponse(PIXEL, content_type="image/gif")


@never_cache
@require_GET
def click(request: HttpRequest, token: str) -> HttpResponse:
    followed = services.record_click(token)
    if followed is None:
        raise Http404("This link is not valid.")
    return HttpResponseRedirect(followed.url)


@never_cache
@csrf_exempt  # RFC 8058: mail providers POST without cookies or a form token; the signed token authorizes
@require_http_methods(["GET", "POST"])
def unsubscribe(request: HttpRequest, token: str) -> HttpResponse:
    if request.method == "GET":
        if tracking.read("unsubscribe", token) is None:
            raise Http404("This link is not valid.")
        return render(request, "campaigns/unsubscribe.html", {"done": False, "token": token})
    message = services.unsubscribe(token)
    if message is None:
        raise Http404("This link is not valid.")
    one_click = request.POST.get("List-Unsubscribe") == "One-Click"
    if one_click:
        return HttpResponse("Unsubscribed.", content_type="text/plain")
    context: dict[str, Any] = {"done": True, "token": token}
    return render(request, "campaigns/unsubscribe.html", context)
