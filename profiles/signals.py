"""Changes saved through the ORM one row at a time (the admin, consent records, traits) drop the
hot profile copies they make stale; a merge's bulk moves are covered by the saves of both people
it ends with. Ingestion appends to copies itself (``profiles.ingestion``)."""

from __future__ import annotations

from typing import Any

from django.db.models.signals import post_delete, post_save, pre_save
from django.dispatch import receiver

from profiles import hot_profile
from profiles.models import Consent, Identity, Person


@receiver(post_save, sender=Person, dispatch_uid="hot_profile_person_saved")
def _person_saved(sender: type[Person], instance: Person, **kwargs: Any) -> None:
    hot_profile.drop_on_commit([instance.pk], what="gone" if instance.merged_into_id else "profile")


@receiver(post_delete, sender=Person, dispatch_uid="hot_profile_person_deleted")
def _person_deleted(sender: type[Person], instance: Person, **kwargs: Any) -> None:
    hot_profile.drop_on_commit([instance.pk], what="gone")


@receiver(post_save, sender=Consent, dispatch_uid="hot_profile_consent_saved")
@receiver(post_delete, sender=Consent, dispatch_uid="hot_profile_consent_deleted")
def _consent_changed(sender: type[Consent], instance: Consent, **kwargs: Any) -> None:
    hot_profile.drop_on_commit([instance.person_id])


@receiver(post_save, sender=Identity, dispatch_uid="hot_profile_identity_saved")
@receiver(post_delete, sender=Identity, dispatch_uid="hot_profile_identity_deleted")
def _identity_changed(sender: type[Identity], instance: Identity, **kwargs: Any) -> None:
    hot_profile.drop_on_commit([instance.person_id], what="aliases")


@receiver(pre_save, sender=Identity, dispatch_uid="hot_profile_identity_moving")
def _identity_moving(sender: type[Identity], instance: Identity, **kwargs: Any) -> None:
    # An identity handed to another person: the keys that led to the old one must go too.
    if instance.pk is not None:
        before = Identity.objects.filter(pk=instance.pk).values_list("person_id", flat=True).first()
        if before is not None and before != instance.person_id:
            hot_profile.drop_on_commit([before], what="aliases")
