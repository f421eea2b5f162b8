from __future__ import annotations

from dataclasses import asdict

from drf_spectacular.utils import extend_schema
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from personalization import serving
from personalization.api.serializers import RecommendationQuerySerializer, RecommendationsSerializer
from profiles import services as profiles


class RecommendationsView(APIView):
    @extend_schema(
        tags=["recommendations"],
        parameters=[RecommendationQuerySerializer],
        responses=RecommendationsSerializer,
        summary="Recommended items for a person",
    )
    def get(self, request: Request) -> Response:
        query = RecommendationQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        key = query.validated_data.get("person")
        person = profiles.find_person(key) if key else None
        answer = serving.recommend(
            person.pk if person else None, query.validated_data["limit"], query.validated_data["kind"]
        )
        return Response(asdict(answer))
