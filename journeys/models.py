"""Journeys: an entry trigger, steps, exit conditions, re-entry rules and a holdout, versioned like
surfaces; the people in them (entries) and every step each entry ran.

An entry moves ``active → done | exited`` (or is ``held_out`` from the start). While active, ``step``
is the id of the next step to run and ``due_at`` when: a wait is nothing but a later ``due_at``.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models


class JourneyStatus(models.TextChoices):
    DRAFT = "draft", "Draft"
    LIVE = "live", "Live"
    PAUSED = "paused", "Paused"
    ARCHIVED = "archived", "Archived"


class Journey(models.Model):
    key = models.SlugField(max_length=100, unique=True, help_text="Stable id used in the API and in messages.")
    name = models.CharField(max_length=200)
    status = models.CharField(max_length=16, choices=JourneyStatus.choices, default=JourneyStatus.DRAFT)
    current_version = models.ForeignKey(
        "JourneyVersion", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="journeys"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    launched_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["key"]
        permissions = [("launch_journey", "Can launch and pause journeys")]

    def __str__(self) -> str:
        return self.name or self.key


class JourneyVersion(models.Model):
    """One definition of a journey. Never edited: a change adds a version; entries keep theirs."""

    journey = models.ForeignKey(Journey, on_delete=models.CASCADE, related_name="versions")
    number = models.PositiveIntegerField()
    definition = models.JSONField(help_text="Trigger, steps, exit conditions, re-entry, holdout (journeys.definition).")
    watched = models.JSONField(
        default=list, blank=True, help_text="Event names and kinds this version reacts to (trigger, exits, waits)."
    )
    created_by = models.CharField(max_length=200, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    note = models.CharField(max_length=500, blank=True)

    class Meta:
        ordering = ["journey", "-number"]
        constraints = [models.UniqueConstraint(fields=["journey", "number"], name="journeyversion_unique_number")]

    def __str__(self) -> str:
        return f"{self.journey.key} v{self.number}"


class EntryState(models.TextChoices):
    ACTIVE = "active", "In the journey"
    DONE = "done", "Finished"
    EXITED = "exited", "Exited"
    HELD_OUT = "held_out", "Held out"


class Entry(models.Model):
    """A person in a journey for one occurrence of its trigger (an event, an item back in stock, a day)."""

    journey = models.ForeignKey(Journey, on_delete=models.CASCADE, related_name="entries")
    version = models.ForeignKey(JourneyVersion, on_delete=models.PROTECT, related_name="entries")
    person = models.ForeignKey("profiles.Person", on_delete=models.CASCADE, related_name="journey_entries")
    occurrence = models.CharField(max_length=200, help_text="The trigger occurrence: event id, item, day, period.")
    state = models.CharField(max_length=16, choices=EntryState.choices, default=EntryState.ACTIVE)
    step = models.CharField(max_length=64, blank=True, help_text="The next step to run (empty: none left).")
    due_at = models.DateTimeField(null=True, blank=True)
    waiting_for = models.CharField(max_length=200, blank=True, help_text="An event that ends the current wait early.")
    context = models.JSONField(default=dict, blank=True, help_text="What the trigger brought: the event, the item.")
    exit_reason = models.CharField(max_length=200, blank=True)
    entered_at = models.DateTimeField()
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name_plural = "entries"
        ordering = ["-entered_at", "-id"]
        constraints = [
            models.UniqueConstraint(fields=["journey", "person", "occurrence"], name="entry_once_per_occurrence")
        ]
        indexes = [
            models.Index(fields=["state", "due_at"], name="entry_due"),
            models.Index(fields=["person", "journey", "state"], name="entry_person"),
        ]

    def __str__(self) -> str:
        return f"{self.journey.key}: person {self.person_id} ({self.state})"


class StepRun(models.Model):
    """A step an entry ran: written in the transaction that ran it, unique per (entry, step)."""

    entry = models.ForeignKey(Entry, on_delete=models.CASCADE, related_name="runs")
    step = models.CharField(max_length=64)
    kind = models.CharField(max_length=24)
    outcome = models.CharField(max_length=200, blank=True, help_text="waited, then/else, message state, exited…")
    message_id = models.BigIntegerField(null=True, blank=True, help_text="The campaign message a send step created.")
    ran_at = models.DateTimeField()

    class Meta:
        ordering = ["ran_at", "id"]
        constraints = [models.UniqueConstraint(fields=["entry", "step"], name="steprun_once_per_entry")]

    def __str__(self) -> str:
        return f"entry {self.entry_id} {self.step}: {self.outcome}"


class Segment(models.Model):
    """A saved audience: a rule over traits and behaviour (the campaigns' audience rules), by key.
    Journeys enter people when they come into it, and branch on whether they are in it."""

    key = models.SlugField(max_length=100, unique=True, help_text="Stable id used in journey definitions.")
    name = models.CharField(max_length=200)
    rule = models.JSONField(help_text='An audience rule, as a campaign\'s: {"all": [{"field": …, "op": …}]}.')
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["key"]

    def __str__(self) -> str:
        return self.name or self.key


class SegmentMember(models.Model):
    """Who was in a segment at its last check, and since when: someone new is someone who entered."""

    segment = models.ForeignKey(Segment, on_delete=models.CASCADE, related_name="members")
    person = models.ForeignKey("profiles.Person", on_delete=models.CASCADE, related_name="+")
    since = models.DateTimeField()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["segment", "person"], name="segmentmember_once")]

    def __str__(self) -> str:
        return f"{self.segment_id}: person {self.person_id}"


class SurfacePin(models.Model):
    """A step a journey put on a person's onboarding checklist: shown first, with the journey's note."""

    person = models.ForeignKey("profiles.Person", on_delete=models.CASCADE, related_name="surface_pins")
    surface = models.CharField(max_length=64)
    item_id = models.CharField(max_length=200)
    note = models.CharField(max_length=300, blank=True)
    entry = models.ForeignKey(Entry, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    pinned_at = models.DateTimeField()

    class Meta:
        ordering = ["-pinned_at", "-id"]
        constraints = [models.UniqueConstraint(fields=["person", "surface", "item_id"], name="surfacepin_once")]

    def __str__(self) -> str:
        return f"{self.surface}: {self.item_id} for person {self.person_id}"
