from __future__ import annotations

import uuid

from django.db import models


class Person(models.Model):
    """Someone we know through one or more identities. Merged people point at the survivor."""

    traits = models.JSONField(default=dict, blank=True, help_text="Traits from identify calls: email, name, plan…")
    merged_into = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.SET_NULL, related_name="absorbed", db_index=True
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name_plural = "people"

    def __str__(self) -> str:
        label = self.traits.get("email") or self.traits.get("name") if isinstance(self.traits, dict) else None
        return f"Person {self.pk}" + (f" ({label})" if label else "")


class IdentityKind(models.TextChoices):
    ANONYMOUS_ID = "anonymous_id", "Anonymous id"
    USER_ID = "user_id", "User id"
    EMAIL = "email", "Email"


class Identity(models.Model):
    person = models.ForeignKey(Person, on_delete=models.CASCADE, related_name="identities")
    kind = models.CharField(max_length=16, choices=IdentityKind.choices)
    value = models.CharField(max_length=255)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name_plural = "identities"
        constraints = [models.UniqueConstraint(fields=["kind", "value"], name="identity_unique_kind_value")]
        # On PostgreSQL, migration 0007 adds ``identity_kind_value_prefix`` on (kind, value COLLATE "C"),
        # which the console's people search reads by prefix in order (profiles.people_search).

    def __str__(self) -> str:
        return f"{self.kind}={self.value}"


class PersonMerge(models.Model):
    """A record that one person's history was folded into another's (identify, or a shared identity)."""

    source_person_id = models.BigIntegerField(db_index=True)
    target = models.ForeignKey(Person, on_delete=models.CASCADE, related_name="merges")
    identities = models.JSONField(default=list, help_text="The identities the source brought along.")
    events_moved = models.PositiveIntegerField(default=0)
    reason = models.CharField(max_length=200, blank=True)
    merged_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-merged_at"]

    def __str__(self) -> str:
        return f"{self.source_person_id} → {self.target_id}"


class EventKind(models.TextChoices):
    VIEW = "view", "Viewed"
    ADD_TO_CART = "add_to_cart", "Added to cart"
    PURCHASE = "purchase", "Purchased"
    SEARCH = "search", "Searched"
    EMAIL_OPEN = "email_open", "Email opened"
    EMAIL_CLICK = "email_click", "Email clicked"
    UNSUBSCRIBE = "unsubscribe", "Unsubscribed"
    FEATURE_ACTIVATED = "feature_activated", "Feature activated"
    SIGNUP = "signup", "Signed up"
    PAGE = "page", "Page"
    IDENTIFY = "identify", "Identify"
    OTHER = "other", "Other"


class Event(models.Model):
    """One behaviour event; an order with several products is stored as one row per product.

    A replayed message is recognised and not stored twice: its id is kept in ``EventMessage``. On
    PostgreSQL the table is partitioned by month on ``timestamp`` (``profiles.partitions``), so its
    primary key is ``(id, timestamp)`` and its unique key carries ``timestamp`` too.
    """

    message_id = models.CharField(max_length=200)
    position = models.PositiveSmallIntegerField(default=0)
    # No index of its own: (person, timestamp) below serves lookups by person.
    person = models.ForeignKey(Person, on_delete=models.CASCADE, related_name="events", db_index=False)
    kind = models.CharField(max_length=24, choices=EventKind.choices)
    name = models.CharField(max_length=200, blank=True, help_text="The event name as sent.")
    item_id = models.CharField(max_length=200, blank=True, help_text="External id of the item involved, if any.")
    quantity = models.IntegerField(null=True, blank=True)
    price = models.DecimalField(max_digits=12, decimal_places=2, null=True, blank=True)
    order_id = models.CharField(max_length=200, blank=True)
    properties = models.JSONField(default=dict, blank=True)
    context = models.JSONField(default=dict, blank=True)
    timestamp = models.DateTimeField(help_text="When it happened (clock skew corrected with sentAt).")
    received_at = models.DateTimeField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["message_id", "position", "timestamp"], name="event_unique_message")
        ]
        indexes = [
            # Covering: serving reads a person's latest events from the index alone (profiles.recent).
            models.Index(
                fields=["person", "timestamp"], include=["item_id", "kind", "quantity"], name="event_person_recent"
            ),
            models.Index(fields=["item_id", "timestamp"]),
            models.Index(fields=["kind", "timestamp"]),
        ]

    def __str__(self) -> str:
        return f"{self.kind} {self.item_id} by {self.person_id}"


class EventMessage(models.Model):
    """The id of every stored message, once: what keeps a replay from being stored again.

    The event table's own unique key must carry the partition key (``timestamp``), and a replay may
    come with another timestamp (clock skew is corrected from ``sentAt``); this table is not
    partitioned, so its key holds whatever the timestamp. Ingestion inserts here first, in the
    batch's transaction, and stores the events of the messages whose insert went through. Retention
    deletes the ids of messages older than its cutoff.
    """

    message_id = models.CharField(max_length=200, unique=True)
    timestamp = models.DateTimeField(help_text="When the message's first event happened (retention ages it).")

    def __str__(self) -> str:
        return self.message_id


class Purpose(models.TextChoices):
    PERSONALIZATION = "personalization", "Personalization"
    EMAIL_MARKETING = "email_marketing", "Email marketing"
    ANALYTICS = "analytics", "Analytics"


class Consent(models.Model):
    """The current answer of one person for one purpose. History lives in ``ConsentChange``."""

    person = models.ForeignKey(Person, on_delete=models.CASCADE, related_name="consents")
    purpose = models.CharField(max_length=32, choices=Purpose.choices)
    granted = models.BooleanField()
    source = models.CharField(max_length=200, blank=True, help_text="Where it was given: banner, form, import…")
    updated_at = models.DateTimeField()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["person", "purpose"], name="consent_unique_purpose")]

    def __str__(self) -> str:
        return f"{self.person_id} {self.purpose}={'yes' if self.granted else 'no'}"


class ConsentChange(models.Model):
    person = models.ForeignKey(Person, on_delete=models.CASCADE, related_name="consent_history")
    purpose = models.CharField(max_length=32, choices=Purpose.choices)
    granted = models.BooleanField()
    source = models.CharField(max_length=200, blank=True)
    recorded_at = models.DateTimeField(db_index=True)
    recorded_by = models.CharField(max_length=200, blank=True, help_text="The API key or user that recorded it.")

    class Meta:
        ordering = ["-recorded_at", "-id"]

    def __str__(self) -> str:
        return f"{self.person_id} {self.purpose}={'yes' if self.granted else 'no'} at {self.recorded_at:%Y-%m-%d}"


class Profile(models.Model):
    """What the events say about a person, recomputed from the event log (see ``profiles/affinity.py``)."""

    person = models.OneToOneField(Person, on_delete=models.CASCADE, primary_key=True, related_name="profile")
    event_counts = models.JSONField(default=dict)
    last_seen_at = models.DateTimeField(null=True, blank=True)
    category_affinity = models.JSONField(default=dict)
    brand_affinity = models.JSONField(default=dict)
    price_band = models.CharField(max_length=16, blank=True)
    typical_price = models.DecimalField(max_digits=12, decimal_places=2, null=True, blank=True)
    computed_at = models.DateTimeField()

    def __str__(self) -> str:
        return f"Profile of {self.person_id}"


class ErasureReceipt(models.Model):
    """That a person was erased, without who they were: who asked, when, how many rows went from
    which table, and (in ``ErasedKey``) a salted hash of each key they were known by."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    requested_by = models.CharField(max_length=200, help_text="The user, API key or operator who asked.")
    requested_at = models.DateTimeField(db_index=True)
    people = models.PositiveIntegerField(default=0, help_text="The person and everyone merged into them.")
    counts = models.JSONField(default=dict, help_text="Rows removed per table (app_label.Model) and redacted fields.")

    class Meta:
        ordering = ["-requested_at"]
        permissions = [
            ("export_person", "Can export everything held about a person"),
            ("erase_person", "Can erase a person and everyone merged into them"),
        ]

    def __str__(self) -> str:
        return f"Erasure {self.pk} by {self.requested_by} at {self.requested_at:%Y-%m-%d %H:%M}"


class ErasedKey(models.Model):
    """A salted hash of one erased key (kind and value), so that ingestion can refuse a replay."""

    receipt = models.ForeignKey(ErasureReceipt, on_delete=models.CASCADE, related_name="keys")
    key_hash = models.CharField(max_length=64, db_index=True)

    def __str__(self) -> str:
        return self.key_hash


class OutboxEntry(models.Model):
    """Work that must follow a commit (a profile refresh, a hot profile change), written in the same
    transaction as the change that needs it, so that it is neither lost nor done before the change
    is visible. Done at once after the commit when the broker and Redis answer, else by the relay
    (``profiles.outbox``); a done entry is deleted."""

    action = models.CharField(max_length=32)
    payload = models.JSONField()
    created_at = models.DateTimeField()
    attempts = models.PositiveIntegerField(default=0, help_text="Relay attempts that failed.")
    last_error = models.CharField(max_length=500, blank=True)

    class Meta:
        verbose_name_plural = "outbox entries"

    def __str__(self) -> str:
        return f"{self.action} #{self.pk}"
