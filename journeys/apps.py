from __future__ import annotations

from django.apps import AppConfig


class JourneysConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "journeys"
    verbose_name = "Journeys"

    def ready(self) -> None:
        # Journeys follow the events ingestion commits and the catalogue's restocks, through the
        # profiles outbox; the lower apps know only that somebody follows, never who.
        from journeys import following

        following.connect()
