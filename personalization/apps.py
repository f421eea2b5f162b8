from __future__ import annotations

from django.apps import AppConfig


class PersonalizationConfig(AppConfig):
    name = "personalization"
    verbose_name = "Personalization"

    def ready(self) -> None:
        # Bind shared tasks to our app in every process that loads Django (web, worker, shell).
        from personalization.celery import app

        app.set_default()

        from personalization import experiment_targets

        experiment_targets.register()
