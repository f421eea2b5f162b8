from __future__ import annotations

import hashlib
import secrets

from django.conf import settings
from django.db import models


class KeyScope(models.TextChoices):
    INGEST = "ingest", "Ingest (write events only)"
    SECRET = "secret", "Secret (full API access)"


KEY_PREFIXES = {KeyScope.INGEST: "ik_", KeyScope.SECRET: "sk_"}


def hash_key(raw: str) -> str:
    return hashlib.sha256(raw.encode()).hexdigest()


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


class VersionStatus(models.TextChoices):
    TRAINING = "training", "Training"
    READY = "ready", "Ready (not active)"
    ACTIVE = "active", "Active"
    RETIRED = "retired", "Retired"
    REJECTED = "rejected", "Rejected by the gate"
    FAILED = "failed", "Failed"


class ModelVersion(models.Model):
    """One trained engine: its artifact folder, its hold-out metrics, and whether it serves."""

    status = models.CharField(max_length=16, choices=VersionStatus.choices, default=VersionStatus.TRAINING)
    artifact_dir = models.CharField(max_length=500, blank=True, help_text="Relative to MODEL_STORAGE_DIR.")
    metrics = models.JSONField(default=dict, blank=True, help_text="Hold-out scores of this and the active version.")
    training = models.JSONField(default=dict, blank=True, help_text="Data sizes, timings, settings.")
    progress = models.PositiveSmallIntegerField(default=0, help_text="Percent done while training.")
    stage = models.CharField(max_length=200, blank=True)
    error = models.TextField(blank=True)
    requested_by = models.CharField(max_length=200, blank=True)
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
