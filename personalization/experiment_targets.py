"""What experiments on surfaces may name, checked against this app's rows (registered in apps.ready).

``{"surface_version": n}`` must be a version of the surface the experiment targets, and
``{"model_version": n}`` a trained model that can serve (ready, active or retired), or the
experiment would start and quietly serve something else.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from experiments import services as experiments
from personalization.models import ModelVersion, Surface, SurfaceVersion, VersionStatus

SERVABLE = (VersionStatus.READY, VersionStatus.ACTIVE, VersionStatus.RETIRED)


def check_surface_payload(target_key: str, payload: Mapping[str, Any]) -> None:
    if "surface_version" in payload:
        number = payload["surface_version"]
        surface = Surface.objects.filter(key=target_key).first()
        if surface is None:
            raise experiments.PayloadError(
                "surface_version", f"There is no surface {target_key!r} whose version this could be."
            )
        numbers = sorted(SurfaceVersion.objects.filter(surface=surface).values_list("number", flat=True))
        if number not in numbers:
            have = f"{numbers[0]}–{numbers[-1]}" if numbers else "none"
            raise experiments.PayloadError(
                "surface_version", f"Surface {target_key!r} has no version {number} (it has {have})."
            )
    check_model_payload(target_key, payload)


def check_model_payload(target_key: str, payload: Mapping[str, Any]) -> None:
    if "model_version" in payload:
        number = experiments.model_version_number(payload["model_version"])
        if number is None or not ModelVersion.objects.filter(pk=number, status__in=SERVABLE).exists():
            raise experiments.PayloadError(
                "model_version",
                f"There is no trained model version {payload['model_version']!r} that can serve "
                "(ready, active or retired).",
            )


def register() -> None:
    experiments.register_target("surface", check=check_surface_payload)
    experiments.register_target("global", check=check_model_payload)
