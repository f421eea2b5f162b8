"""Where a person's data lives: the map that export and erasure both walk.

* Tables a person owns rows of are found from the model graph: every model with a foreign key to
  ``Person`` (and, recursively, every model whose foreign key cascades from one of those, such as a
  message's approval actions). A table added later with such a key is exported and erased without a
  change here.
* Fields that hold a person's id without a foreign key are listed in ``PERSON_ID_FIELDS``.
* Text and JSON fields of rows that belong to nobody in particular (audit trails, other people's
  events) may still mention a person's email or ids: ``MENTION_FIELDS`` lists those erasure redacts.
* ``NOT_PERSON_DATA`` lists, with the reason, the fields that look like they could hold a person's
  data and do not.

``unclassified_fields`` names every field that is in none of these; a test keeps it empty, so a new
field named like a person key, a new JSON field or a foreign key to ``Person`` that would not go with
the person cannot be added without deciding what erasure does with it.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from django.apps import apps
from django.db import models
from django.db.models import ForeignObjectRel, Q

# Referenced by name: these tables live in apps below profiles, which profiles does not import.
PERSON_ID_FIELDS: tuple[str, ...] = (
    "personalization.Impression.person_id",  # what each answer showed to whom
    "profiles.PersonMerge.source_person_id",  # the merged-away side of a merge
)

MENTION_FIELDS: tuple[str, ...] = (
    "profiles.Event.properties",  # another person's event may name them (a referral, an invitation)
    "profiles.Event.context",
    "campaigns.CampaignChange.detail",  # test sends, audience rules quoted in the audit trail
    "campaigns.Campaign.audience",  # a rule may name an email
    "campaigns.Campaign.approval_rule",
    "journeys.JourneyVersion.definition",  # a trigger filter or a trait branch may name an email
    "journeys.Segment.rule",  # a saved segment's rule may name an email, as a campaign's audience
    "experiments.ExperimentChange.detail",
    "admin.LogEntry.object_repr",  # the admin log: entries about their rows go whole (see erasure)
    "admin.LogEntry.change_message",
)

NOT_PERSON_DATA: dict[str, str] = {
    "auth.User.email": "staff accounts of the console, not the people the engine profiles",
    "profiles.ErasureReceipt.counts": "row counts per table, no personal data",
    "profiles.OutboxEntry.payload": (
        "person ids of follow-up work waiting seconds for the broker; for an erased id it finds nobody"
        " (a refresh skips a missing person, a drop of a gone one does nothing) and is deleted when done"
    ),
    "catalog.Item.attributes": "catalogue attributes",
    "personalization.ModelVersion.metrics": "hold-out scores",
    "personalization.ModelVersion.training": "data sizes, timings and settings of a training run",
    "personalization.Surface.item_kinds": "item kinds",
    "personalization.SurfaceVersion.config": "ranking configuration: weights, item ids, quotas",
    "personalization.AuditEntry.before": "model versions and API keys as they were (ids, names, prefixes)",
    "personalization.AuditEntry.after": "model versions and API keys as they became",
    "personalization.Impression.item_ids": "rows go with the person (PERSON_ID_FIELDS)",
    "personalization.Impression.explored": "positions of an answer's exploration slots; rows go with the person",
    "personalization.LoopChange.detail": "retraining schedule times and drift-rule thresholds",
    "personalization.ModelHealthSnapshot.online": "answers, clicks and conversions counted per surface and arm",
    "personalization.ModelHealthSnapshot.data": "event, item and people counts of a day",
    "personalization.ModelHealthSnapshot.offline": "NDCG@20 figures of the active version",
    "personalization.ModelHealthSnapshot.latency": "counts and seconds from events to the next answers",
    "personalization.ModelHealthSnapshot.drift": "the drift rule's verdict, thresholds and action",
    "experiments.Layer.slices": "bucket allocation",
    "experiments.Experiment.secondary_metrics": "metric names",
    "experiments.Experiment.guardrail_metrics": "metric names",
    "experiments.Experiment.allocation": "bucket allocation",
    "experiments.Experiment.allocation_history": "shares per variant",
    "experiments.Variant.payload": "what a variant changes (surface versions, template variants)",
    "experiments.ResultSnapshot.data": "aggregates per variant",
    "campaigns.Campaign.blocks": "template snippets written by marketers",
    "campaigns.Campaign.variants": "template variants written by marketers",
    "campaigns.Campaign.variant_rules": "segment and interest rules",
    "campaigns.Campaign.window_weekdays": "weekday numbers",
    "campaigns.Campaign.from_email": "the sender's address",
    "campaigns.Campaign.experiment_key": "an experiment key",
    "campaigns.Campaign.holdout_experiment": "an experiment key",
    "campaigns.Campaign.send_time_experiment": "an experiment key",
    "django_celery_beat.PeriodicTask.headers": "task headers of schedules",
    "journeys.JourneyVersion.watched": "event names",
}

# Names that suggest a field holds a person's id, anonymous id or email.
PERSON_KEY_NAME = re.compile(r"(user_?id|anonymous|email|person|recipient|customer|visitor|contact|phone|^to_)", re.I)
_TEXT_FIELDS = (models.CharField, models.TextField)
_ID_FIELDS = (models.IntegerField, models.BigIntegerField, models.PositiveIntegerField)


@dataclass(frozen=True)
class PersonTable:
    """A table with rows that belong to people: each of ``paths`` leads from a row to a person's id."""

    model: type[models.Model]
    paths: tuple[str, ...]

    @property
    def label(self) -> str:
        return self.model._meta.label

    def rows_of(self, person_ids: Iterable[int]) -> models.QuerySet:
        ids = list(person_ids)
        query = Q()
        for path in self.paths:
            query |= Q(**{f"{path}__in": ids})
        return self.model._default_manager.filter(query)


def _person_model() -> type[models.Model]:
    return apps.get_model("profiles", "Person")


def field_label(model: type[models.Model], name: str) -> str:
    return f"{model._meta.label}.{name}"


def resolve_field(label: str) -> tuple[type[models.Model], str]:
    app_label, model_name, field_name = label.split(".")
    return apps.get_model(app_label, model_name), field_name


def person_tables() -> list[PersonTable]:
    """Person itself, then every table that cascades from it through foreign keys, nearest first."""
    person = _person_model()
    tables = [PersonTable(person, ("pk",))]
    seen = {person}
    frontier: list[tuple[type[models.Model], str]] = [(person, "")]
    while frontier:
        parent, parent_path = frontier.pop(0)
        relations = [f for f in parent._meta.get_fields(include_hidden=True) if isinstance(f, ForeignObjectRel)]
        for relation in relations:
            child = relation.related_model
            if child in seen or relation.on_delete is not models.CASCADE:
                continue
            if not (relation.one_to_many or relation.one_to_one):
                continue
            path = relation.field.name + (f"__{parent_path}" if parent_path else "")
            seen.add(child)
            tables.append(PersonTable(child, (path,)))
            frontier.append((child, path))
    return tables


def person_id_tables() -> list[PersonTable]:
    """The tables of ``PERSON_ID_FIELDS``, rows matched on that field."""
    return [PersonTable(model, (name,)) for model, name in map(resolve_field, PERSON_ID_FIELDS)]


def all_person_tables() -> list[PersonTable]:
    """Every table with rows of a person, once each, by foreign key and by listed id field."""
    merged: dict[type[models.Model], tuple[str, ...]] = {}
    for table in person_tables() + person_id_tables():
        merged[table.model] = merged.get(table.model, ()) + table.paths
    return [PersonTable(model, paths) for model, paths in merged.items()]


def _foreign_keys_to_person(model: type[models.Model]) -> list[models.ForeignKey]:
    person = _person_model()
    return [f for f in model._meta.get_fields() if isinstance(f, models.ForeignKey) and f.related_model is person]


def unclassified_fields(all_models: Iterable[type[models.Model]] | None = None) -> list[str]:
    """Fields that may hold a person's data and that neither erasure nor the allowlist accounts for."""
    person = _person_model()
    owned = {t.model for t in person_tables()}
    listed = set(PERSON_ID_FIELDS) | set(MENTION_FIELDS) | set(NOT_PERSON_DATA)
    missing: list[str] = []
    for model in apps.get_models() if all_models is None else all_models:
        for fk in _foreign_keys_to_person(model):
            label = field_label(model, fk.name)
            if fk.remote_field.on_delete is not models.CASCADE and model is not person and label not in listed:
                missing.append(label)  # rows that would stay behind, or block, when the person goes
        for field in model._meta.concrete_fields:
            label = field_label(model, field.name)
            if label in listed or field.is_relation:
                continue
            named_like_key = bool(PERSON_KEY_NAME.search(field.name))
            if isinstance(field, models.JSONField):
                if model not in owned:
                    missing.append(label)
            elif named_like_key and isinstance(field, _TEXT_FIELDS + _ID_FIELDS) and model not in owned:
                missing.append(label)
    return missing


def people_of(person_id: int) -> list[int]:
    """The person and everyone merged into them, directly or through someone merged in between."""
    person = _person_model()
    found = [person_id]
    frontier = [person_id]
    while frontier:
        absorbed = list(
            person._default_manager.filter(merged_into_id__in=frontier)
            .exclude(pk__in=found)
            .values_list("pk", flat=True)
        )
        found += absorbed
        frontier = absorbed
    return found
