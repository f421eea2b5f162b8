from __future__ import annotations

import logging
from typing import Any

from drf_spectacular.utils import extend_schema
from rest_framework.exceptions import NotFound
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from personalization.api import person_tokens
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


def _activity(request: Request, data: dict[str, Any]) -> profiles.RecentActivity | None:
    if person_tokens.public_key(request) is None:
        person_key = data.get("person") or data.get("anonymous_id")
        if not person_key:
            return None
        return profiles.recent_activity_by_key(person_key, kinds=TRAINING_KINDS, limit=HISTORY_LIMIT)
    # The public key answers for the visitor in front of it only (docs/security.md).
    user_id = data.get("person")
    if user_id and not person_tokens.verified(request, user_id, data.get("person_token")):
        raise person_tokens.LookupRefused()
    person_id = profiles.public_reader(data.get("anonymous_id"), user_id)
    if person_id is None:
        return None
    return profiles.recent_activity(person_id, kinds=TRAINING_KINDS, limit=HISTORY_LIMIT)


def _serve(request: Request, key: str, data: dict[str, Any]) -> Response:
    activity = _activity(request, data)
    context = {k: v for k, v in (data.get("context") or {}).items() if k in CONTEXT_KEYS}
    context.update({k: data[k] for k in CONTEXT_KEYS if data.get(k)})
    asked = ServeRequest(
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
        answer = serve(asked)
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
        return _serve(request, key, query.validated_data)

    @extend_schema(
        tags=["surfaces"],
        request=SurfaceRequestSerializer,
        responses=SurfaceAnswerSerializer,
        summary="Personalized items for a surface, with inline context (current item, cart, session events)",
    )
    def post(self, request: Request, key: str) -> Response:
        body = SurfaceRequestSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        return _serve(request, key, body.validated_data)


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
