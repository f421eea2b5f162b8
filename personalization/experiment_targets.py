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


VERSIONS_OFFERED = 20


def _model_payloads() -> list[tuple[dict[str, Any], str]]:
    return [
        ({"model_version": pk}, f"Model v{pk} ({VersionStatus(status).label.lower()})")
        for pk, status in ModelVersion.objects.filter(status__in=SERVABLE)
        .order_by("-id")
        .values_list("pk", "status")[:VERSIONS_OFFERED]
    ]


def surface_choices() -> list[experiments.TargetChoice]:
    """Each surface with its latest versions (and the servable models) a variant may serve."""
    models = _model_payloads()
    found = []
    for surface in Surface.objects.select_related("current_version").order_by("key"):
        live = surface.current_version.number if surface.current_version else None
        versions = [
            (
                {"surface_version": number},
                f"Version {number}{' (live)' if number == live else ''}" + (f": {note[:60]}" if note else ""),
            )
            for number, note in SurfaceVersion.objects.filter(surface=surface)
            .order_by("-number")
            .values_list("number", "note")[:VERSIONS_OFFERED]
        ]
        found.append(experiments.TargetChoice(surface.key, surface.name, versions + models))
    return found


def global_choices() -> list[experiments.TargetChoice]:
    return [experiments.TargetChoice("", "Every surface", _model_payloads())]


def register() -> None:
    experiments.register_target("surface", check=check_surface_payload, choices=surface_choices)
    experiments.register_target("global", check=check_model_payload, choices=global_choices)
