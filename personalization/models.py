from __future__ import annotations

import hashlib
import secrets
from datetime import timedelta

from django.conf import settings
from django.db import models
from django.utils import timezone


class KeyScope(models.TextChoices):
    INGEST = "ingest", "Ingest (write events only)"
    SECRET = "secret", "Secret (full API access)"


KEY_PREFIXES = {KeyScope.INGEST: "ik_", KeyScope.SECRET: "sk_"}


def hash_key(raw: str) -> str:
    return hashlib.sha256(raw.encode()).hexdigest()


def new_identity_secret() -> str:
    return "iv_" + secrets.token_urlsafe(32)


# After a rotation the previous identity-verification secret still verifies for this long, so that
# person tokens signed by backends not yet redeployed keep working.
IDENTITY_SECRET_GRACE = timedelta(hours=24)


class ApiKey(models.Model):
    """A key for machines. Only its hash is stored; the key itself is shown once, at creation."""

    name = models.CharField(max_length=200)
    scope = models.CharField(max_length=16, choices=KeyScope.choices)
    prefix = models.CharField(max_length=16, help_text="The first characters, to recognise the key.")
    key_hash = models.CharField(max_length=64, unique=True, editable=False)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)
    created_at = models.DateTimeField(auto_now_add=True)
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)
    identity_secret = models.CharField(
        max_length=64,
        blank=True,
        default=new_identity_secret,
        help_text="Ingest keys: your backend signs person tokens with it (identity verification). Never in a browser.",
    )
    previous_identity_secret = models.CharField(max_length=64, blank=True, editable=False)
    identity_secret_rotated_at = models.DateTimeField(null=True, blank=True, editable=False)

    class Meta:
        verbose_name = "API key"

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…)"

    @classmethod
    def issue(cls, name: str, scope: str, created_by: object | None = None) -> tuple[ApiKey, str]:
        """Create a key; returns the row and the raw key, which is not stored anywhere."""
        raw = KEY_PREFIXES[KeyScope(scope)] + secrets.token_urlsafe(32)
        key = cls.objects.create(name=name, scope=scope, prefix=raw[:10], key_hash=hash_key(raw), created_by=created_by)
        return key, raw

    def identity_secrets(self) -> list[str]:
        """The secrets a person token may be signed with now: the current one, and the previous one
        during the grace period after a rotation."""
        secrets_now = [self.identity_secret] if self.identity_secret else []
        rotated = self.identity_secret_rotated_at
        if self.previous_identity_secret and rotated and timezone.now() - rotated < IDENTITY_SECRET_GRACE:
            secrets_now.append(self.previous_identity_secret)
        return secrets_now

    def rotate_identity_secret(self) -> str:
        self.previous_identity_secret = self.identity_secret
        self.identity_secret = new_identity_secret()
        self.identity_secret_rotated_at = timezone.now()
        self.save(update_fields=["identity_secret", "previous_identity_secret", "identity_secret_rotated_at"])
        return self.identity_secret


class Access(models.Model):
    """Holds no rows: the permissions of actions that are not a change of one model's rows.

    Django hangs permissions on a model, and these cross the apps (a campaign launch, an erasure), so
    they live here with the roles (``personalization/roles.py``) and are checked by
    ``personalization/api/permissions.py`` and the pages.
    """

    class Meta:
        managed = False
        default_permissions = ()
        permissions = [
            ("launch_campaign", "Can launch, pause and resume campaigns"),
            ("run_experiment", "Can start, stop and re-bucket experiments"),
            ("conclude_experiment", "Can conclude experiments and ship a winner"),
            ("preview_recommendations", "Can see what any person gets on a surface, and why"),
            ("view_audit", "Can read the audit log of changes that alter what people see"),
        ]

    def __str__(self) -> str:
        return "access"


class VersionStatus(models.TextChoices):
    TRAINING = "training", "Training"
    READY = "ready", "Ready (not active)"
    ACTIVE = "active", "Active"
    RETIRED = "retired", "Retired"
    REJECTED = "rejected", "Rejected by the gate"
    FAILED = "failed", "Failed"


class FitTrigger(models.TextChoices):
    MANUAL = "manual", "Asked for by someone"
    SCHEDULE = "schedule", "The retraining schedule"
    DRIFT = "drift", "The drift rule"


class ModelVersion(models.Model):
    """One trained engine: its artifact folder, its hold-out metrics, and whether it serves."""

    status = models.CharField(max_length=16, choices=VersionStatus.choices, default=VersionStatus.TRAINING)
    artifact_dir = models.CharField(max_length=500, blank=True, help_text="Its folder in the model storage.")
    metrics = models.JSONField(default=dict, blank=True, help_text="Hold-out scores of this and the active version.")
    training = models.JSONField(default=dict, blank=True, help_text="Data sizes, timings, settings.")
    progress = models.PositiveSmallIntegerField(default=0, help_text="Percent done while training.")
    stage = models.CharField(max_length=200, blank=True)
    error = models.TextField(blank=True)
    requested_by = models.CharField(max_length=200, blank=True)
    trigger = models.CharField(max_length=16, choices=FitTrigger.choices, default=FitTrigger.MANUAL)
    trigger_reason = models.TextField(blank=True, help_text="Why the drift rule started this fit.")
    created_at = models.DateTimeField(auto_now_add=True)
    trained_at = models.DateTimeField(null=True, blank=True)
    activated_at = models.DateTimeField(null=True, blank=True)
    activated_by = models.CharField(max_length=200, blank=True)

    class Meta:
        ordering = ["-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["status"], condition=models.Q(status="active"), name="modelversion_one_active"
            )
        ]

    def __str__(self) -> str:
        return f"Model v{self.pk} ({self.status})"


class ArtifactChunk(models.Model):
    """A piece of one model artifact file, for ``MODEL_STORAGE=database`` (personalization/model_storage.py):
    every machine that reaches PostgreSQL reads the same files. A file is cut into parts of at most
    ``MODEL_STORAGE_CHUNK_BYTES``; a folder's ``MANIFEST.json`` is written in the same transaction as
    its files, so a folder is either whole or absent."""

    folder = models.CharField(max_length=500, help_text="The version's artifact folder (ModelVersion.artifact_dir).")
    file = models.CharField(max_length=200)
    part = models.PositiveIntegerField()
    data = models.BinaryField()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["folder", "file", "part"], name="artifactchunk_unique_part")]

    def __str__(self) -> str:
        return f"{self.folder}/{self.file} part {self.part}"


class SurfaceKind(models.TextChoices):
    GRID = "grid", "Grid (e.g. homepage)"
    CAROUSEL = "carousel", "Carousel (e.g. product page)"
    EMAIL_BLOCK = "email_block", "Email product block"
    CHECKLIST = "checklist", "Onboarding checklist"


class Surface(models.Model):
    """A place where personalized items appear. Its ranking lives in versioned configuration."""

    key = models.SlugField(
        max_length=100, unique=True, help_text="Used in the API: /api/v1/surfaces/KEY/recommendations."
    )
    name = models.CharField(max_length=200)
    kind = models.CharField(max_length=16, choices=SurfaceKind.choices, default=SurfaceKind.GRID)
    item_kinds = models.JSONField(default=list, blank=True, help_text='Item kinds it may show, e.g. ["product"].')
    current_version = models.ForeignKey(
        "SurfaceVersion", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["key"]

    def __str__(self) -> str:
        return self.key


class SurfaceVersion(models.Model):
    """One configuration of a surface. Never edited: a change or a rollback adds a version."""

    surface = models.ForeignKey(Surface, on_delete=models.CASCADE, related_name="versions")
    number = models.PositiveIntegerField()
    config = models.JSONField(help_text="Weights, filters, quotas, exploration, curated default, cold start.")
    created_by = models.CharField(max_length=200, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    note = models.CharField(max_length=500, blank=True)

    class Meta:
        ordering = ["surface", "-number"]
        constraints = [models.UniqueConstraint(fields=["surface", "number"], name="surfaceversion_unique_number")]

    def __str__(self) -> str:
        return f"{self.surface.key} v{self.number}"


class Impression(models.Model):
    """One answer a surface served: the items shown, under which version, to whom."""

    recommendation_id = models.CharField(max_length=32, unique=True)
    surface = models.ForeignKey(Surface, on_delete=models.CASCADE, related_name="impressions")
    version_number = models.PositiveIntegerField(null=True, blank=True)
    model_version = models.BigIntegerField(null=True, blank=True)
    person_id = models.BigIntegerField(null=True, blank=True, db_index=True)
    item_ids = models.JSONField(default=list)
    strategy = models.CharField(max_length=32, blank=True, help_text="personalized, curated, cold_start, degraded…")
    degraded = models.BooleanField(
        default=False, db_default=False, help_text="Served without the active model, or without part of it."
    )
    experiment = models.CharField(max_length=100, blank=True)
    variant = models.CharField(max_length=100, blank=True)
    explored = models.JSONField(
        default=list,
        db_default=[],
        help_text="Positions (from 0) of the items shown in exploration slots: position bias is estimated from them.",
    )
    served_at = models.DateTimeField(db_index=True)

    class Meta:
        indexes = [models.Index(fields=["surface", "served_at"])]

    def __str__(self) -> str:
        return f"{self.surface_id}:{self.recommendation_id}"


class SurfaceDailyStats(models.Model):
    """Per surface and day: answers served, and the clicks and purchases attributed to them."""

    surface = models.ForeignKey(Surface, on_delete=models.CASCADE, related_name="daily_stats")
    day = models.DateField()
    impressions = models.PositiveIntegerField(default=0)
    items_shown = models.PositiveIntegerField(default=0)
    clicks = models.PositiveIntegerField(default=0)
    purchases = models.PositiveIntegerField(default=0)
    revenue = models.DecimalField(max_digits=14, decimal_places=2, default=0)
    computed_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["surface", "-day"]
        verbose_name_plural = "surface daily stats"
        constraints = [models.UniqueConstraint(fields=["surface", "day"], name="surfacedailystats_unique_day")]

    def __str__(self) -> str:
        return f"{self.surface_id} {self.day}"

    @property
    def click_through(self) -> float:
        return self.clicks / self.impressions if self.impressions else 0.0

    @property
    def conversion(self) -> float:
        return self.purchases / self.impressions if self.impressions else 0.0


class SurfaceItemExposure(models.Model):
    """How often an item was shown and clicked on a surface: the evidence exploration samples from."""

    surface = models.ForeignKey(Surface, on_delete=models.CASCADE, related_name="item_exposures")
    item_id = models.CharField(max_length=200)
    impressions = models.PositiveIntegerField(default=0)
    clicks = models.PositiveIntegerField(default=0)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["surface", "item_id"], name="surfaceitemexposure_unique")]

    def __str__(self) -> str:
        return f"{self.surface_id} {self.item_id}"


class LoopChange(models.Model):
    """Who changed the retraining schedule or the drift rule, when, and to what."""

    at = models.DateTimeField(auto_now_add=True)
    by = models.CharField(max_length=200)
    what = models.CharField(max_length=32, help_text="schedule | drift_rule")
    detail = models.JSONField(default=dict)

    class Meta:
        ordering = ["-at", "-id"]

    def __str__(self) -> str:
        return f"{self.what} by {self.by} at {self.at:%Y-%m-%d %H:%M}"


class ModelHealthSnapshot(models.Model):
    """One day of the watch over the active version (``personalization/watch.py``): online, data and
    offline figures, the feedback-loop latency, and what the drift rule decided."""

    day = models.DateField(unique=True)
    model_version = models.BigIntegerField(null=True, blank=True, help_text="The version active when it was computed.")
    online = models.JSONField(default=dict, help_text="Per surface: answers, click-through and conversion by arm.")
    data = models.JSONField(default=dict, help_text="Event volume, unknown items, new items, people without history.")
    offline = models.JSONField(default=dict, help_text="NDCG@20 on the recent days against the figure at activation.")
    latency = models.JSONField(default=dict, help_text="From an item event to the next answer for that person.")
    drift = models.JSONField(default=dict, help_text="The drift rule's verdict and what it started.")
    computed_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-day"]

    def __str__(self) -> str:
        return f"watch {self.day}"


class DriftRule(models.Model):
    """The thresholds of the drift rule (``personalization/drift.py``); one row, edited on the model page."""

    enabled = models.BooleanField(default=True, help_text="Start a retraining early when the rule fires.")
    unknown_item_share = models.FloatField(
        default=0.30, help_text="Fires above this share of a day's item events on items the model does not know."
    )
    ndcg_drop = models.FloatField(
        default=0.20, help_text="Fires when NDCG@20 on recent days is this much (relative) below its activation figure."
    )
    ctr_drop = models.FloatField(
        default=0.15,
        help_text="Fires when a surface's personalized click-through falls this much (relative) below the days "
        "before and the 95% interval of the change excludes zero.",
    )
    min_answers = models.PositiveIntegerField(
        default=500, help_text="Answers needed on the day and on the days before for the click-through check."
    )
    baseline_days = models.PositiveSmallIntegerField(default=7, help_text="Days the click-through is compared with.")
    cooldown_hours = models.PositiveSmallIntegerField(
        default=24, help_text="No second early retraining within this many hours of the last one."
    )
    updated_by = models.CharField(max_length=200, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return "drift rule"

    @classmethod
    def current(cls) -> DriftRule:
        rule, _ = cls.objects.get_or_create(pk=1)
        return rule


class ConsoleSettings(models.Model):
    """A console user's own settings: the time zone pages show times in (empty: the project's TIME_ZONE)."""

    user = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="console_settings")
    time_zone = models.CharField(max_length=64, blank=True, help_text="An IANA zone, e.g. Europe/Berlin.")
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = "console settings"
        verbose_name_plural = "console settings"

    def __str__(self) -> str:
        return f"{self.user}: {self.time_zone or 'project time zone'}"


class AuditEntry(models.Model):
    """A change that alters what people see and that no table of its own records with who, when and
    the before (a model activation or rollback, a key revoked or its identity secret rotated).

    Surface versions, campaign changes, approval actions, experiment changes, erasure receipts and the
    admin's log already record theirs; the audit page (``personalization/audit.py``) reads them all.
    """

    kind = models.CharField(max_length=32, db_index=True, help_text="models or keys.")
    action = models.CharField(max_length=64)
    target = models.CharField(max_length=200, help_text="What changed, as people name it.")
    target_id = models.CharField(max_length=64, blank=True)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    actor_name = models.CharField(max_length=200, blank=True, help_text="The user, key or job, as a name.")
    at = models.DateTimeField(db_index=True)
    before = models.JSONField(default=dict, blank=True)
    after = models.JSONField(default=dict, blank=True)
    note = models.CharField(max_length=500, blank=True)

    class Meta:
        ordering = ["-at", "-id"]
        verbose_name_plural = "audit entries"

    def __str__(self) -> str:
        return f"{self.actor_name or 'system'} {self.action} {self.target} at {self.at:%Y-%m-%d %H:%M}"
