"""The journeys API: thin views over ``journeys.services``; errors in the project's one shape."""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet
from django.shortcuts import get_object_or_404
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import exceptions, generics, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from journeys import services
from journeys.api.serializers import (
    JourneyCreateSerializer,
    JourneyDetailSerializer,
    JourneySerializer,
    JourneyUpdateSerializer,
    SegmentSerializer,
    StepCountsSerializer,
)
from journeys.models import Journey, Segment

NOT_FOUND = OpenApiResponse(description="No journey with this key.")
CONFLICT = OpenApiResponse(description="The journey's status does not allow this.")
INVALID = OpenApiResponse(description="Invalid; `attr` names the field (definition.steps[1].hours).")


class Conflict(exceptions.APIException):
    status_code = status.HTTP_409_CONFLICT
    default_detail = "The journey is not in a state that allows this."
    default_code = "conflict"


def _api_error(error: services.JourneyError) -> exceptions.APIException:
    if error.field == "status":
        return Conflict({error.field: [error.detail]})
    return exceptions.ValidationError({error.field: [error.detail]}, code="invalid")


def _actor(request: Request) -> str:
    return str(getattr(request.user, "username", "") or getattr(request.auth, "name", "") or "api")[:200]


def _journeys() -> QuerySet[Journey]:
    return Journey.objects.select_related("current_version").order_by("key")


class JourneyListView(generics.ListAPIView):
    """Journeys by key; create one (it starts as a draft)."""

    serializer_class = JourneySerializer

    def get_queryset(self) -> QuerySet[Journey]:
        journeys = _journeys()
        wanted = self.request.query_params.get("status")
        return journeys.filter(status=wanted) if wanted else journeys

    @extend_schema(tags=["journeys"], summary="List journeys")
    def get(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return super().get(request, *args, **kwargs)

    @extend_schema(
        tags=["journeys"],
        summary="Create a journey",
        request=JourneyCreateSerializer,
        responses={201: JourneySerializer, 400: INVALID},
    )
    def post(self, request: Request) -> Response:
        given = JourneyCreateSerializer(data=request.data)
        given.is_valid(raise_exception=True)
        data = given.validated_data
        owner = request.user if getattr(request.user, "is_authenticated", False) and request.user.pk else None
        try:
            journey = services.create_journey(data["key"], data["name"], data["definition"], _actor(request), owner)
        except services.JourneyError as error:
            raise _api_error(error) from None
        return Response(JourneySerializer(_journeys().get(pk=journey.pk)).data, status=status.HTTP_201_CREATED)


class JourneyDetailView(APIView):
    @extend_schema(
        tags=["journeys"],
        summary="A journey, with its measures per step and against its holdout",
        responses={200: JourneyDetailSerializer, 404: NOT_FOUND},
    )
    def get(self, request: Request, key: str) -> Response:
        return Response(JourneyDetailSerializer(get_object_or_404(_journeys(), key=key)).data)

    @extend_schema(
        tags=["journeys"],
        summary="Change a journey's name or definition (a new version; entries keep theirs)",
        request=JourneyUpdateSerializer,
        responses={200: JourneySerializer, 400: INVALID, 404: NOT_FOUND, 409: CONFLICT},
    )
    def patch(self, request: Request, key: str) -> Response:
        journey = get_object_or_404(Journey, key=key)
        given = JourneyUpdateSerializer(data=request.data)
        given.is_valid(raise_exception=True)
        data = given.validated_data
        try:
            services.change_journey(
                journey, name=data.get("name"), definition=data.get("definition"), actor=_actor(request)
            )
        except services.JourneyError as error:
            raise _api_error(error) from None
        return Response(JourneySerializer(_journeys().get(pk=journey.pk)).data)


class JourneyActionView(APIView):
    action_name = ""

    @extend_schema(tags=["journeys"], request=None, responses={200: JourneySerializer, 404: NOT_FOUND, 409: CONFLICT})
    def post(self, request: Request, key: str) -> Response:
        journey = get_object_or_404(Journey, key=key)
        act = {"launch": services.launch, "pause": services.pause}[self.action_name]
        try:
            act(journey)
        except services.JourneyError as error:
            raise _api_error(error) from None
        return Response(JourneySerializer(_journeys().get(pk=journey.pk)).data)


class LaunchView(JourneyActionView):
    """Make a draft or paused journey live: its trigger enters people, due steps advance."""

    action_name = "launch"


class PauseView(JourneyActionView):
    """Nobody enters and no step runs; entries wait where they are until it is live again."""

    action_name = "pause"


class StepCountsView(APIView):
    @extend_schema(
        tags=["journeys"],
        summary="Entries per state, and per step how many ran it and how many are held there now",
        responses={200: StepCountsSerializer, 404: NOT_FOUND},
    )
    def get(self, request: Request, key: str) -> Response:
        journey = get_object_or_404(_journeys(), key=key)
        return Response(StepCountsSerializer(services.step_counts(journey)).data)


class SegmentListView(generics.ListAPIView):
    """Saved segments by key: the audiences journeys enter people from and branch on."""

    serializer_class = SegmentSerializer
    queryset = Segment.objects.order_by("key")

    @extend_schema(tags=["journeys"], summary="List saved segments")
    def get(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return super().get(request, *args, **kwargs)


class SegmentView(APIView):
    @extend_schema(
        tags=["journeys"],
        summary="Create or change a saved segment (name and audience rule)",
        request=SegmentSerializer,
        responses={200: SegmentSerializer, 400: INVALID},
    )
    def put(self, request: Request, key: str) -> Response:
        given = SegmentSerializer(data=request.data)
        given.is_valid(raise_exception=True)
        try:
            segment = services.save_segment(key, given.validated_data["name"], given.validated_data["rule"])
        except services.JourneyError as error:
            raise _api_error(error) from None
        return Response(SegmentSerializer(segment).data)
