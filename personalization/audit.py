"""The audit log: every change that alters what people see, with who, when, the before and the after.

Most changes already leave a record where they happen, and the log reads those instead of copying
them: surface versions, campaign changes (settings and templates), approval actions, experiment
changes, erasure receipts, API keys as issued, and the admin's own log. What recorded nothing (a
model version activated or rolled back, a key revoked or its identity secret rotated) writes an
:class:`~personalization.models.AuditEntry` through :func:`record`, where the change is made.

Each kind of change is a *feed*: a function from an :class:`AuditQuery` to the newest matching
changes. The feeds of this app and the apps above it are here; ``campaigns`` (below) registers its
own at start-up (``campaigns/audit_feeds.py``), as it registers its experiment targets.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from heapq import merge
from itertools import islice
from typing import Any

from django.contrib.admin.models import LogEntry
from django.contrib.auth.models import AbstractBaseUser
from django.db.models import Q, QuerySet
from django.urls import NoReverseMatch, reverse
from django.utils import timezone

from personalization.models import ApiKey, AuditEntry, ModelVersion, SurfaceVersion


@dataclass(frozen=True)
class Change:
    kind: str  # a key of KINDS
    at: datetime
    who: str
    action: str  # in words: "new version 4", "approved", "launched"
    target: str  # the object, as people name it
    url: str = ""  # the object's page
    url_needs: str = ""  # the permission that page needs ("" for none beyond signing in)
    before: Mapping[str, Any] = field(default_factory=dict)
    after: Mapping[str, Any] = field(default_factory=dict)
    note: str = ""
    rollback: tuple[str, int] | None = None  # (surface key, version number) this change can be rolled back to
    order: int = 0  # ties at the same instant: the larger id first


@dataclass(frozen=True)
class AuditQuery:
    kinds: frozenset[str] = frozenset()  # empty: every kind
    who: str = ""  # a user name or key name, exactly (case-insensitive)
    since: datetime | None = None
    until: datetime | None = None
    limit: int = 50

    def wants(self, kind: str) -> bool:
        return not self.kinds or kind in self.kinds

    def window(self, rows: QuerySet[Any], at: str) -> QuerySet[Any]:
        if self.since is not None:
            rows = rows.filter(**{f"{at}__gte": self.since})
        if self.until is not None:
            rows = rows.filter(**{f"{at}__lt": self.until})
        return rows


Feed = Callable[[AuditQuery], Iterable[Change]]

# kind → what the page calls it; the order is the filter's.
KINDS: dict[str, str] = {
    "surfaces": "Surfaces",
    "campaigns": "Campaigns",
    "templates": "Templates",
    "experiments": "Experiments",
    "approvals": "Approvals",
    "models": "Model activations",
    "keys": "API keys",
    "erasures": "Erasures",
    "admin": "Admin edits",
}
FEEDS: dict[str, Feed] = {}


def register(name: str, feed: Feed) -> None:
    """Add a feed (once per name: a second registration replaces the first, as on a reload)."""
    FEEDS[name] = feed


def changes(query: AuditQuery, offset: int = 0) -> list[Change]:
    """The newest changes matching the query, newest first, from every feed."""
    wanted = offset + query.limit
    each = AuditQuery(query.kinds, query.who, query.since, query.until, wanted)
    streams = [sorted(feed(each), key=_newest_first)[:wanted] for feed in FEEDS.values()]
    merged = [c for c in merge(*streams, key=_newest_first) if query.wants(c.kind)]
    return list(islice(merged, offset, wanted))


def _newest_first(change: Change) -> tuple[float, int]:
    return (-change.at.timestamp(), -change.order)


def record(
    kind: str,
    action: str,
    target: str,
    *,
    by: Any = None,
    target_id: Any = "",
    before: Mapping[str, Any] | None = None,
    after: Mapping[str, Any] | None = None,
    note: str = "",
) -> AuditEntry:
    """Write down a change that no other table records; ``by`` is a user, or a name (a job, a key)."""
    actor: Any = by if isinstance(by, AbstractBaseUser) else None
    name = by.get_username() if actor is not None else ("" if by is None else str(by))
    return AuditEntry.objects.create(
        kind=kind,
        action=action,
        target=target[:200],
        target_id=str(target_id)[:64],
        actor=actor,
        actor_name=name[:200],
        at=timezone.now(),
        before=dict(before or {}),
        after=dict(after or {}),
        note=note[:500],
    )


# --- showing a before and an after -------------------------------------------------------------------------


def _flat(value: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(value, Mapping):
        out: dict[str, Any] = {}
        for key, inner in value.items():
            out.update(_flat(inner, f"{prefix}.{key}" if prefix else str(key)))
        return out if out or not prefix else {prefix: {}}
    return {prefix or "value": value}


def _shown(value: Any, limit: int = 160) -> str:
    if value is None:
        return "–"
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, default=str)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def differences(before: Mapping[str, Any], after: Mapping[str, Any]) -> list[tuple[str, str, str]]:
    """(field, before, after) for each field that differs, nested settings as dotted names."""
    old, new = _flat(before), _flat(after)
    rows = []
    for name in dict.fromkeys([*old, *new]):
        if name in old and name in new and old[name] == new[name]:
            continue
        if old.get(name) in (None, "") and new.get(name) in (None, ""):
            continue  # empty before and after (a launch without a holdout): nothing to show
        rows.append((name, _shown(old[name]) if name in old else "", _shown(new[name]) if name in new else ""))
    return rows


def _url(name: str, *args: Any, fallback: str = "") -> str:
    try:
        return reverse(name, args=args)
    except NoReverseMatch:
        return fallback


def _by_user(query: AuditQuery, user_field: str, name_field: str | None = None) -> Q:
    if not query.who:
        return Q()
    matched = Q(**{f"{user_field}__username__iexact": query.who})
    if name_field:
        matched |= Q(**{f"{name_field}__iexact": query.who})
    return matched


# --- the feeds of this app and the apps above it ------------------------------------------------------------


def surface_versions(query: AuditQuery) -> Iterable[Change]:
    if not query.wants("surfaces"):
        return []
    rows = query.window(SurfaceVersion.objects.select_related("surface"), "created_at")
    if query.who:
        rows = rows.filter(created_by__iexact=query.who)
    versions = list(rows.order_by("-created_at", "-id")[: query.limit])
    wanted = Q(pk__in=[])
    for v in versions:
        if v.number > 1:
            wanted |= Q(surface_id=v.surface_id, number=v.number - 1)
    previous = {(p.surface_id, p.number): p.config for p in SurfaceVersion.objects.filter(wanted)}
    out = []
    for v in versions:
        surface = v.surface
        url = _url("surface", surface.key, fallback="/surfaces/")
        current = surface.current_version_id == v.pk
        out.append(
            Change(
                kind="surfaces",
                at=v.created_at,
                who=v.created_by,
                action="created" if v.number == 1 else f"new version {v.number}",
                target=f"{surface.name} (version {v.number})",
                url=url,
                url_needs="personalization.view_surface",
                before=previous.get((v.surface_id, v.number - 1), {}),
                after=v.config,
                note=v.note,
                rollback=None if current else (surface.key, v.number),
                order=v.pk,
            )
        )
    return out


def audit_entries(query: AuditQuery) -> Iterable[Change]:
    kinds = [k for k in ("models", "keys") if query.wants(k)]
    if not kinds:
        return []
    rows = query.window(AuditEntry.objects.filter(kind__in=kinds), "at").filter(_by_user(query, "actor", "actor_name"))
    out = []
    for e in rows.order_by("-at", "-id")[: query.limit]:
        if e.kind == "models":
            url, needs = _url("admin:personalization_modelversion_change", e.target_id), "admin"
        else:
            url, needs = _url("admin:personalization_apikey_change", e.target_id), "admin"
        out.append(
            Change(e.kind, e.at, e.actor_name, e.action, e.target, url, needs, e.before, e.after, e.note, None, e.pk)
        )
    return out


def keys_issued(query: AuditQuery) -> Iterable[Change]:
    if not query.wants("keys"):
        return []
    rows = query.window(ApiKey.objects.select_related("created_by"), "created_at").filter(_by_user(query, "created_by"))
    return [
        Change(
            kind="keys",
            at=k.created_at,
            who=k.created_by.get_username() if k.created_by else "",
            action="issued",
            target=f"{k.name} ({k.prefix}…)",
            url=_url("admin:personalization_apikey_change", k.pk),
            url_needs="admin",
            after={"name": k.name, "scope": k.scope, "prefix": k.prefix},
            order=k.pk,
        )
        for k in rows.order_by("-created_at", "-id")[: query.limit]
    ]


def experiment_changes(query: AuditQuery) -> Iterable[Change]:
    # Read from the experiments app's table: an audit reads every app's trail (as training reads events).
    from experiments.models import ExperimentChange

    if not query.wants("experiments"):
        return []
    rows = query.window(ExperimentChange.objects.select_related("experiment", "changed_by"), "changed_at")
    rows = rows.filter(_by_user(query, "changed_by"))
    out = []
    for c in rows.order_by("-changed_at", "-id")[: query.limit]:
        detail = dict(c.detail or {})
        before = detail.pop("before", {}) if isinstance(detail.get("before"), dict) else {}
        after = detail.pop("after", None)
        who = c.changed_by.get_username() if c.changed_by else str(detail.pop("actor", "") or "scheduled job")
        out.append(
            Change(
                kind="experiments",
                at=c.changed_at,
                who=who,
                action=c.get_action_display().lower(),
                target=c.experiment.name or c.experiment.key,
                url=_url("experiments:results", c.experiment.key, fallback=f"/experiments/{c.experiment.key}/"),
                url_needs="experiments.view_experiment",
                before=before,
                after=after if isinstance(after, dict) else detail,
                note=c.note,
                order=c.pk,
            )
        )
    return out


def model_versions_before_the_log(query: AuditQuery) -> Iterable[Change]:
    """Activations made before the log existed still show, from the version's own activated_at/by."""
    if not query.wants("models"):
        return []
    logged = AuditEntry.objects.filter(kind="models").values_list("target_id", flat=True)
    rows = query.window(ModelVersion.objects.filter(activated_at__isnull=False), "activated_at").exclude(
        pk__in=[int(i) for i in logged if i.isdigit()]
    )
    if query.who:
        rows = rows.filter(activated_by__iexact=query.who)
    return [
        Change(
            kind="models",
            at=v.activated_at,
            who=v.activated_by,
            action="activated",
            target=f"Model v{v.pk}",
            url=_url("admin:personalization_modelversion_change", v.pk),
            url_needs="admin",
            after={"active version": v.pk, "status now": v.status},
            order=v.pk,
        )
        for v in rows.order_by("-activated_at", "-id")[: query.limit]
        if v.activated_at is not None
    ]


def erasures(query: AuditQuery) -> Iterable[Change]:
    from profiles.models import ErasureReceipt

    if not query.wants("erasures"):
        return []
    rows = query.window(ErasureReceipt.objects.all(), "requested_at")
    if query.who:
        rows = rows.filter(requested_by__iexact=query.who)
    return [
        Change(
            kind="erasures",
            at=r.requested_at,
            who=r.requested_by,
            action="erased a person",
            target=f"Receipt {r.pk}",
            after={"people": r.people, "rows removed": sum(v for v in r.counts.values() if isinstance(v, int))},
        )
        for r in rows.order_by("-requested_at")[: query.limit]
    ]


# The admin's log: edits made in the admin; its users and groups (who may log in) and API keys (above) aside.
ADMIN_LOG_SKIPS = (("auth", None), ("personalization", "apikey"), ("sessions", None))


def admin_log(query: AuditQuery) -> Iterable[Change]:
    if not query.wants("admin"):
        return []
    rows = query.window(LogEntry.objects.select_related("user", "content_type"), "action_time")
    for app_label, model in ADMIN_LOG_SKIPS:
        rows = rows.exclude(content_type__app_label=app_label, **({"content_type__model": model} if model else {}))
    rows = rows.filter(_by_user(query, "user"))
    out = []
    for e in rows.order_by("-action_time", "-id")[: query.limit]:
        verb = {1: "added", 2: "changed", 3: "deleted"}.get(e.action_flag, "edited")
        model_name = e.content_type.name if e.content_type else "object"
        out.append(
            Change(
                kind="admin",
                at=e.action_time,
                who=e.user.get_username(),
                action=f"{verb} {model_name}",
                target=e.object_repr,
                url=(e.get_admin_url() or "") if e.action_flag != 3 else "",
                url_needs="admin",
                after={"change": e.get_change_message()} if e.get_change_message() else {},
                order=e.pk,
            )
        )
    return out


register("surfaces", surface_versions)
register("audit-entries", audit_entries)
register("keys-issued", keys_issued)
register("experiments", experiment_changes)
register("model-versions", model_versions_before_the_log)
register("erasures", erasures)
register("admin", admin_log)
