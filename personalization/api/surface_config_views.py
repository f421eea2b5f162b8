"""The surface configuration API: list, create, read and change surfaces; every configuration change is
a new version with its author and note; versions can be listed and an old one served again."""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import status
from rest_framework.exceptions import NotFound, ValidationError
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from personalization.api.surface_config_serializers import (
    RollbackSerializer,
    SurfaceCreateSerializer,
    SurfaceSerializer,
    SurfaceUpdateSerializer,
    SurfaceVersionSerializer,
    checked_config,
    merged_config,
)
from personalization.models import ApiKey, Surface, SurfaceVersion
from personalization.surfaces import change_surface, create_surface, current_config, rollback

NOT_FOUND = OpenApiResponse(description="No surface with this key.")
INVALID = OpenApiResponse(description="Invalid; `attr` names the field, e.g. `config.weights.margin`.")


def author(request: Request) -> str:
    """Who saved a version: the signed-in person, or the API key by name."""
    if isinstance(request.auth, ApiKey):
        return f"API key {request.auth.name}"[:200]
    return request.user.get_username() if request.user and request.user.is_authenticated else ""


def surface_body(surface: Surface) -> dict[str, Any]:
    version = surface.current_version
    return {
        "key": surface.key,
        "name": surface.name,
        "kind": surface.kind,
        "item_kinds": list(surface.item_kinds or []),
        "version": version.number if version else None,
        "changed_by": version.created_by if version else "",
        "changed_at": version.created_at if version else None,
        "note": version.note if version else "",
        "config": current_config(surface).to_dict(),
    }


def version_body(version: SurfaceVersion, current_id: int | None) -> dict[str, Any]:
    return {
        "number": version.number,
        "config": version.config,
        "created_by": version.created_by,
        "created_at": version.created_at,
        "note": version.note,
        "current": version.pk == current_id,
    }


def _surface(key: str) -> Surface:
    surface = Surface.objects.select_related("current_version").filter(key=key).first()
    if surface is None:
        raise NotFound(f"No surface {key!r}.")
    return surface


class SurfacesView(APIView):
    @extend_schema(tags=["surface configuration"], summary="List surfaces", responses=SurfaceSerializer(many=True))
    def get(self, request: Request) -> Response:
        surfaces = Surface.objects.select_related("current_version").order_by("key")
        return Response(SurfaceSerializer([surface_body(s) for s in surfaces], many=True).data)

    @extend_schema(
        tags=["surface configuration"],
        summary="Create a surface (its configuration is version 1)",
        request=SurfaceCreateSerializer,
        responses={201: SurfaceSerializer, 400: INVALID},
    )
    def post(self, request: Request) -> Response:
        body = SurfaceCreateSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        data = body.validated_data
        config = checked_config(dict(data.get("config") or {}))
        surface = create_surface(
            data["key"],
            data["name"],
            config,
            kind=data["kind"],
            item_kinds=list(data["item_kinds"]),
            by=author(request),
            note=data.get("note") or "Created",
        )
        return Response(SurfaceSerializer(surface_body(_surface(surface.key))).data, status=status.HTTP_201_CREATED)


class SurfaceView(APIView):
    @extend_schema(
        tags=["surface configuration"],
        summary="Read a surface and its live configuration",
        responses={200: SurfaceSerializer, 404: NOT_FOUND},
    )
    def get(self, request: Request, key: str) -> Response:
        return Response(SurfaceSerializer(surface_body(_surface(key))).data)

    @extend_schema(
        tags=["surface configuration"],
        summary="Change a surface; a configuration change is saved as a new version",
        description="`config` holds only the settings that change (`weights` and `source_quotas` are merged "
        "key by key); the result is validated whole and serves within seconds. `note` is kept with the version.",
        request=SurfaceUpdateSerializer,
        responses={200: SurfaceSerializer, 400: INVALID, 404: NOT_FOUND},
    )
    def patch(self, request: Request, key: str) -> Response:
        surface = _surface(key)
        body = SurfaceUpdateSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        data = body.validated_data
        config = None
        if "config" in data:
            config = checked_config(merged_config(current_config(surface).to_dict(), dict(data["config"])))
        change_surface(
            surface,
            name=data.get("name"),
            kind=data.get("kind"),
            item_kinds=list(data["item_kinds"]) if "item_kinds" in data else None,
            config=config,
            by=author(request),
            note=data.get("note") or "",
        )
        return Response(SurfaceSerializer(surface_body(_surface(key))).data)


class SurfaceVersionsView(APIView):
    @extend_schema(
        tags=["surface configuration"],
        summary="Every version of a surface, newest first",
        responses={200: SurfaceVersionSerializer(many=True), 404: NOT_FOUND},
    )
    def get(self, request: Request, key: str) -> Response:
        surface = _surface(key)
        versions = surface.versions.order_by("-number")
        rows = [version_body(v, surface.current_version_id) for v in versions]
        return Response(SurfaceVersionSerializer(rows, many=True).data)


class SurfaceRollbackView(APIView):
    @extend_schema(
        tags=["surface configuration"],
        summary="Serve an earlier version again (saved as a new version)",
        request=RollbackSerializer,
        responses={200: SurfaceSerializer, 400: INVALID, 404: NOT_FOUND},
    )
    def post(self, request: Request, key: str) -> Response:
        surface = _surface(key)
        body = RollbackSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        number = body.validated_data["version"]
        if not surface.versions.filter(number=number).exists():
            raise ValidationError({"version": [f"Surface {key!r} has no version {number}."]})
        rollback(surface, number, by=author(request), note=body.validated_data.get("note") or "")
        return Response(SurfaceSerializer(surface_body(_surface(key))).data)
