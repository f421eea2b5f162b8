"""The campaigns app's part of the audit log (``personalization/audit.py``): campaign changes, split into
settings and templates, and every approval, rejection and edit in the approval queue. Registered in
``CampaignsConfig.ready``: the audit lives in the project wiring, which does not import this app.
"""

from __future__ import annotations

from collections.abc import Iterable

from django.db.models import Q

from campaigns.models import ApprovalAction, CampaignChange
from personalization import audit

# A change of these fields is a change of the message people get: the template.
TEMPLATE_FIELDS = frozenset({"subject", "preheader", "html", "text", "blocks", "variants", "variant_rules"})
ACTIONS = {
    "create": "created",
    "update": "changed",
    "rollback": "rolled back",
    "launch": "launched",
    "pause": "paused",
    "resume": "resumed",
    "delete": "deleted",
}


def _kind(change: CampaignChange) -> str:
    after = (change.detail or {}).get("after")
    if change.action in ("update", "rollback") and isinstance(after, dict) and after:
        return "templates" if set(after) <= TEMPLATE_FIELDS else "campaigns"
    return "campaigns"


def campaign_changes(query: audit.AuditQuery) -> Iterable[audit.Change]:
    if not (query.wants("campaigns") or query.wants("templates")):
        return []
    rows = query.window(CampaignChange.objects.select_related("campaign", "changed_by"), "changed_at")
    if query.who:
        rows = rows.filter(Q(changed_by__username__iexact=query.who) | Q(actor__iexact=query.who))
    out: list[audit.Change] = []
    # The split into settings and templates is made here, so read on until enough of the wanted kind.
    for c in rows.order_by("-changed_at", "-id").iterator(chunk_size=200):
        if len(out) >= query.limit:
            break
        kind = _kind(c)
        if not query.wants(kind):
            continue
        detail = dict(c.detail or {})
        before = detail.pop("before", {})
        after = detail.pop("after", None)
        out.append(
            audit.Change(
                kind=kind,
                at=c.changed_at,
                who=c.actor or (c.changed_by.get_username() if c.changed_by else ""),
                action=ACTIONS.get(c.action, c.action),
                target=c.campaign.name or c.campaign.key,
                url=f"/campaigns/{c.campaign.key}/",
                url_needs="campaigns.view_campaign",
                before=before if isinstance(before, dict) else {},
                after=after if isinstance(after, dict) else detail,
                order=c.pk,
            )
        )
    return out


def approval_actions(query: audit.AuditQuery) -> Iterable[audit.Change]:
    if not query.wants("approvals"):
        return []
    rows = query.window(ApprovalAction.objects.select_related("message__campaign"), "at")
    if query.who:
        rows = rows.filter(Q(actor__username__iexact=query.who) | Q(actor_name__iexact=query.who))
    return [
        audit.Change(
            kind="approvals",
            at=a.at,
            who=a.actor_name,
            action=a.get_action_display().lower(),
            target=f"Message {a.message_id} of {a.message.campaign.name or a.message.campaign.key}",
            url=f"/approvals/{a.message_id}/",
            url_needs="campaigns.view_message",
            before=a.before or {},
            after=a.after or {},
            note=a.note,
            order=a.pk,
        )
        for a in rows.order_by("-at", "-id")[: query.limit]
    ]


def register() -> None:
    audit.register("campaigns", campaign_changes)
    audit.register("approvals", approval_actions)
