from __future__ import annotations

import logging
from typing import Any

from drf_spectacular.utils import extend_schema
from rest_framework.exceptions import NotFound
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from personalization.api.surface_serializers import (
    PopularAnswerSerializer,
    PopularQuerySerializer,
    SurfaceAnswerSerializer,
    SurfaceQuerySerializer,
    SurfaceRequestSerializer,
)
from personalization.api.throttling import PrincipalRateThrottle
from personalization.serving import HISTORY_LIMIT
from personalization.surface_serving import ServeRequest, UnknownSurface, popular_answer, serve
from personalization.surfaces import CONTEXT_KEYS
from personalization.training import TRAINING_KINDS
from profiles import services as profiles

logger = logging.getLogger(__name__)


class ServingRateThrottle(PrincipalRateThrottle):
    """The usual rate limit, except that a surface still answers while the cache holding it is down."""

    def allow_request(self, request: Request, view: APIView) -> bool:
        try:
            return super().allow_request(request, view)
        except Exception as exc:
            logger.warning("Rate limit not checked, cache unavailable: %s", exc)
            return True


def _serve(key: str, data: dict[str, Any]) -> Response:
    person_key = data.get("person") or data.get("anonymous_id")
    activity = (
        profiles.recent_activity_by_key(person_key, kinds=TRAINING_KINDS, limit=HISTORY_LIMIT) if person_key else None
    )
    context = {k: v for k, v in (data.get("context") or {}).items() if k in CONTEXT_KEYS}
    context.update({k: data[k] for k in CONTEXT_KEYS if data.get(k)})
    request = ServeRequest(
        surface=key,
        person_id=activity.person_id if activity else None,
        context=context,
        current_item=data.get("item"),
        cart=list(data.get("cart") or []),
        session_items=[(e["type"], e["item_id"]) for e in data.get("recent_events") or []],
        limit=data.get("limit"),
        activity=activity,
    )
    try:
        answer = serve(request)
    except UnknownSurface:
        raise NotFound(f"No surface {key!r}.") from None
    return Response(answer.as_dict())


class SurfaceRecommendationsView(APIView):
    accepts_ingest_key = True  # storefronts ask from the browser with their ingest key
    throttle_classes = [ServingRateThrottle]

    @extend_schema(
        tags=["surfaces"],
        parameters=[SurfaceQuerySerializer],
        responses=SurfaceAnswerSerializer,
        summary="Personalized items for a surface",
    )
    def get(self, request: Request, key: str) -> Response:
        query = SurfaceQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        return _serve(key, query.validated_data)

    @extend_schema(
        tags=["surfaces"],
        request=SurfaceRequestSerializer,
        responses=SurfaceAnswerSerializer,
        summary="Personalized items for a surface, with inline context (current item, cart, session events)",
    )
    def post(self, request: Request, key: str) -> Response:
        body = SurfaceRequestSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        return _serve(key, body.validated_data)


class PopularRecommendationsView(APIView):
    """The shop's popular items, the same for everyone: no profile, no model, one cache read at most."""

    accepts_ingest_key = True
    throttle_classes = [ServingRateThrottle]

    @extend_schema(
        tags=["surfaces"],
        parameters=[PopularQuerySerializer],
        responses=PopularAnswerSerializer,
        summary="Popular items, not personalized",
    )
    def get(self, request: Request) -> Response:
        query = PopularQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        items = popular_answer(query.validated_data["limit"], query.validated_data["kind"])
        return Response({"personalized": False, "items": [i.as_dict() for i in items]})
