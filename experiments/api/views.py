from __future__ import annotations

from dataclasses import asdict
from typing import Any

from django.db.models import QuerySet
from django.shortcuts import get_object_or_404
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import exceptions, mixins, status, viewsets
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from experiments import services
from experiments.api.serializers import (
    AssignmentQuerySerializer,
    AssignmentsSerializer,
    ConcludeSerializer,
    ExperimentCreateSerializer,
    ExperimentSerializer,
    ExperimentUpdateSerializer,
    ExposureInputSerializer,
    ExposureResultSerializer,
    RebucketSerializer,
    ResultsSerializer,
    StopSerializer,
    settings_from,
)
from experiments.models import Experiment
from personalization.api import person_tokens
from profiles import services as profiles


class Conflict(exceptions.APIException):
    status_code = status.HTTP_409_CONFLICT
    default_detail = "The experiment is not in a state that allows this."
    default_code = "conflict"


def _nested(attr: str | None, detail: str) -> Any:
    """{"variants": {"0": {"key": [detail]}}} from "variants.0.key", so the error names the field."""
    if not attr:
        return [detail]
    error: Any = [detail]
    for part in reversed(attr.split(".")):
        error = {part: error}
    return error


def _api_error(error: services.ExperimentError) -> exceptions.APIException:
    if error.code in ("conflict", "frozen"):
        return Conflict(_nested(error.attr, error.detail), code=error.code)
    return exceptions.ValidationError(_nested(error.attr, error.detail), code=error.code)


def _variant_specs(rows: list[dict[str, Any]]) -> list[services.VariantSpec]:
    return [
        services.VariantSpec(r["key"], r.get("name", ""), r.get("weight", 1.0), r.get("payload", {}), r["is_control"])
        for r in rows
    ]


def _person_id(request: Request, key: str, token: Any) -> int | None:
    """The person behind ``key``; with the public key only the visitor in front of it: an anonymous id,
    or a user id with a person token signed by the customer's backend, never an email (docs/security.md)."""
    if person_tokens.public_key(request) is None:
        person = profiles.find_person(key)
        return person.pk if person is not None else None
    if person_tokens.verified(request, key, token):
        return profiles.public_reader(None, key)
    return profiles.public_reader(key, None, history=False)


PERSON_TOKEN = OpenApiParameter(
    "person_token", str, description="With the ingest key, a user id in `person` needs this token (docs/security.md)."
)
NOT_FOUND = OpenApiResponse(description="No experiment with this key.")
CONFLICT = OpenApiResponse(description="The experiment's status does not allow this (e.g. stopping a draft).")


class ExperimentViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """Experiments by key: list, create, read, change settings and weights, and move through the lifecycle."""

    serializer_class = ExperimentSerializer
    lookup_field = "key"
    queryset = Experiment.objects.all()

    def get_queryset(self) -> QuerySet[Experiment]:
        queryset = Experiment.objects.select_related("owner", "started_by", "stopped_by", "concluded_by", "layer")
        queryset = queryset.prefetch_related("variants")
        for param in ("status", "target_kind", "target_key"):
            value = self.request.query_params.get(param)
            if value and "\x00" in value:  # PostgreSQL text cannot hold it
                raise exceptions.ValidationError({param: ["Must not contain a NUL character."]})
            if value:
                queryset = queryset.filter(**{param: value})
        return queryset.order_by("-created_at", "-id")

    @extend_schema(
        summary="List experiments",
        parameters=[
            OpenApiParameter("status", str, enum=["draft", "running", "stopped", "concluded"]),
            OpenApiParameter("target_kind", str, enum=["surface", "campaign", "global"]),
            OpenApiParameter("target_key", str),
        ],
    )
    def list(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return super().list(request, *args, **kwargs)

    @extend_schema(summary="Read an experiment", responses={200: ExperimentSerializer, 404: NOT_FOUND})
    def retrieve(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return super().retrieve(request, *args, **kwargs)

    @extend_schema(
        summary="Create a draft experiment",
        request=ExperimentCreateSerializer,
        responses={201: ExperimentSerializer, 400: OpenApiResponse(description="Invalid; `attr` names the field.")},
    )
    def create(self, request: Request) -> Response:
        body = ExperimentCreateSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        data = dict(body.validated_data)
        options = settings_from(data)
        name = options.pop("name")
        if options.get("owner") is None:  # a person creating it owns it; an API key names the owner
            options["owner"] = request.user if getattr(request.user, "is_staff", False) else None
        try:
            experiment = services.create_experiment(
                data["key"], name, _variant_specs(data["variants"]), request.user, data.get("layer") or None, **options
            )
        except services.ExperimentError as error:
            raise _api_error(error) from None
        return Response(ExperimentSerializer(self._fresh(experiment)).data, status=status.HTTP_201_CREATED)

    @extend_schema(
        summary="Change settings or weights",
        description="A draft may change everything. A running experiment may change its name, description, "
        "owner and extra metrics, and its weights and traffic (only the people whose bucket must move move).",
        request=ExperimentUpdateSerializer,
        responses={200: ExperimentSerializer, 400: OpenApiResponse(description="Invalid."), 409: CONFLICT},
    )
    def partial_update(self, request: Request, key: str) -> Response:
        experiment = self.get_object()
        body = ExperimentUpdateSerializer(data=request.data, partial=True)
        body.is_valid(raise_exception=True)
        data = dict(body.validated_data)
        weights = data.pop("weights", None)
        traffic = data.pop("traffic", None) if experiment.status != "draft" else None
        changes = settings_from(data)
        try:
            if changes or "variants" in data or "layer" in data:
                variants = _variant_specs(data["variants"]) if "variants" in data else None
                services.update_experiment(experiment, changes, request.user, variants, data.get("layer"))
            if weights is not None or traffic is not None:
                services.set_weights(experiment, weights or {}, request.user, traffic=traffic)
        except services.ExperimentError as error:
            raise _api_error(error) from None
        return Response(ExperimentSerializer(self._fresh(experiment)).data)

    def _fresh(self, experiment: Experiment) -> Experiment:
        return self.get_queryset().get(pk=experiment.pk)

    def _act(self, request: Request, action: Any, serializer_class: type, **kwargs: Any) -> Response:
        experiment = self.get_object()
        body = serializer_class(data=request.data)
        body.is_valid(raise_exception=True)
        try:
            action(experiment, request.user, **kwargs, **body.validated_data)
        except services.ExperimentError as error:
            raise _api_error(error) from None
        return Response(ExperimentSerializer(self._fresh(experiment)).data)

    @extend_schema(
        summary="Start assigning people",
        request=None,
        responses={200: ExperimentSerializer, 404: NOT_FOUND, 409: CONFLICT},
    )
    def start(self, request: Request, key: str) -> Response:
        experiment = self.get_object()
        try:
            services.start(experiment, request.user)
        except services.ExperimentError as error:
            raise _api_error(error) from None
        return Response(ExperimentSerializer(self._fresh(experiment)).data)

    @extend_schema(
        summary="Stop: everyone gets control",
        request=StopSerializer,
        responses={200: ExperimentSerializer, 404: NOT_FOUND, 409: CONFLICT},
    )
    def stop(self, request: Request, key: str) -> Response:
        return self._act(request, services.stop, StopSerializer)

    @extend_schema(
        summary="Conclude, optionally shipping a winner to everyone",
        request=ConcludeSerializer,
        responses={200: ExperimentSerializer, 400: OpenApiResponse(description="Unknown winner."), 409: CONFLICT},
    )
    def conclude(self, request: Request, key: str) -> Response:
        return self._act(request, services.conclude, ConcludeSerializer)

    @extend_schema(
        summary="Re-bucket: reshuffle everyone and start the results afresh",
        request=RebucketSerializer,
        responses={200: ExperimentSerializer, 404: NOT_FOUND, 409: CONFLICT},
    )
    def rebucket(self, request: Request, key: str) -> Response:
        return self._act(request, services.rebucket, RebucketSerializer)


class AssignmentsView(APIView):
    """Client-side assignment: the variants of every running experiment for one person."""

    accepts_ingest_key = True

    @extend_schema(
        summary="Variants for a person",
        parameters=[AssignmentQuerySerializer, PERSON_TOKEN],
        responses=AssignmentsSerializer,
    )
    def get(self, request: Request) -> Response:
        query = AssignmentQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        key = query.validated_data["person"]
        person_id = _person_id(request, key, request.query_params.get("person_token"))
        answers = []
        if person_id is not None:
            for answer in services.assignments_for(
                person_id, query.validated_data.get("target_kind"), query.validated_data.get("target_key")
            ):
                answers.append({**asdict(answer), "is_holdout": answer.is_holdout})
        return Response({"person": key, "known": person_id is not None, "assignments": answers})


class ExposuresView(APIView):
    """Where the client shows a variant, it reports the exposure; only the first one per person counts."""

    accepts_ingest_key = True
    throttle_scope = "ingest"

    @extend_schema(
        summary="Record that a person was shown a variant",
        request=ExposureInputSerializer,
        responses={
            200: ExposureResultSerializer,
            400: OpenApiResponse(
                description="Unknown person or variant, or a variant the person is not assigned; `attr` names it."
            ),
            404: NOT_FOUND,
        },
    )
    def post(self, request: Request, key: str) -> Response:
        experiment = get_object_or_404(Experiment, key=key)
        body = ExposureInputSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        token = request.data.get("person_token") if isinstance(request.data, dict) else None
        person_id = _person_id(request, body.validated_data["person"], token)
        if person_id is None:
            raise exceptions.ValidationError(
                {"person": ["Unknown person: send a track or identify call for them first."]}, code="unknown"
            )
        try:
            logged = services.log_exposure(
                experiment.key, person_id, body.validated_data["variant"], body.validated_data.get("timestamp")
            )
        except services.UnknownVariant as error:
            raise exceptions.ValidationError({"variant": [str(error)]}, code="unknown") from None
        except services.NotAssigned as error:
            raise exceptions.ValidationError({"variant": [str(error)]}, code="not_assigned") from None
        return Response({"logged": logged})


class ResultsView(APIView):
    """The latest stored look at the results (computed now if there is none yet) and the lift history."""

    @extend_schema(
        summary="Results of an experiment",
        parameters=[
            OpenApiParameter(
                "fresh", bool, description="Compute and store a new look now instead of returning the latest one."
            )
        ],
        responses={
            200: ResultsSerializer,
            404: NOT_FOUND,
            409: OpenApiResponse(description="A draft has no results yet; start it first."),
        },
    )
    def get(self, request: Request, key: str) -> Response:
        experiment = get_object_or_404(Experiment, key=key)
        snapshot = services.latest_results(experiment)
        fresh = request.query_params.get("fresh") in ("1", "true", "yes")
        if snapshot is None or fresh:
            if experiment.status == "draft":
                raise Conflict({"status": ["A draft has no results yet; start it first."]})
            snapshot = services.record_results(experiment)
        return Response({**snapshot.data, "history": services.lift_history(experiment)})
