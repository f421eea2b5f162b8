from __future__ import annotations

from django.apps import AppConfig


class ProfilesConfig(AppConfig):
    name = "profiles"
    verbose_name = "People and events"

    def ready(self) -> None:
        from profiles import signals  # noqa: F401  (connects the hot profile's receivers)
