"""A person for support, their export, their erasure.

``<person_key>`` is a user id, an anonymous id or an email, tried in that order (as everywhere in
the API). Only a secret key, or a logged-in person with the permission of the action, may call them:
``profiles.view_person`` to read, ``profiles.export_person`` to export, ``profiles.erase_person``
to erase. A CSM reads with ``campaigns.view_account_people`` instead, and only the people of the
accounts they manage (``campaigns.account_people``); anyone else answers 404 exactly as an unknown
key does, so the answer does not tell whether the person exists. The browser-safe ingest key never can.
"""

from __future__ import annotations

from typing import Any

from django.http import StreamingHttpResponse
from drf_spectacular.utils import OpenApiExample, OpenApiResponse, extend_schema, inline_serializer
from rest_framework import exceptions, serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from campaigns.account_people import manages_person
from personalization.models import ApiKey
from profiles import erasure, export
from profiles.identity import find_person
from profiles.models import Person


class PersonErased(exceptions.NotFound):
    default_code = "erased"


def refuse_if_erased(person_key: str) -> None:
    receipt = erasure.erased_receipt(person_key)
    if receipt is not None:
        raise PersonErased(f"The person known by {person_key!r} was erased (receipt {receipt.pk}).")


def _person_or_404(person_key: str) -> Person:
    person = find_person(person_key)
    if person is not None:
        return person
    refuse_if_erased(person_key)
    raise exceptions.NotFound(f"No person is known by {person_key!r}.")


def reads_only_own_accounts(request: Request) -> bool:
    """A signed-in person who reads people through their accounts only (a CSM), not everyone."""
    return not isinstance(request.auth, ApiKey) and not request.user.has_perm("profiles.view_person")


def _readable_person_or_404(request: Request, person_key: str) -> Person:
    if not reads_only_own_accounts(request):
        return _person_or_404(person_key)
    person = find_person(person_key)
    if person is None or not manages_person(request.user, person.pk, person.traits):
        # The same answer as for a key nobody holds (not "erased", not 403): nothing to learn from it.
        raise exceptions.NotFound(f"No person is known by {person_key!r}.")
    return person


class PersonIdentitySerializer(serializers.Serializer):
    kind = serializers.CharField()
    value = serializers.CharField()
    created_at = serializers.DateTimeField()


class PersonConsentStateSerializer(serializers.Serializer):
    purpose = serializers.CharField()
    granted = serializers.BooleanField()
    source = serializers.CharField(help_text='"default" when the person never said anything.')  # type: ignore[assignment]
    updated_at = serializers.DateTimeField(allow_null=True)


class PersonProfileSerializer(serializers.Serializer):
    event_counts = serializers.DictField(child=serializers.IntegerField())
    last_seen_at = serializers.DateTimeField(allow_null=True)
    category_affinity = serializers.DictField(child=serializers.FloatField())
    brand_affinity = serializers.DictField(child=serializers.FloatField())
    price_band = serializers.CharField()
    typical_price = serializers.FloatField(allow_null=True)
    computed_at = serializers.DateTimeField()


class PersonSummarySerializer(serializers.Serializer):
    person_id = serializers.IntegerField()
    merged_people = serializers.IntegerField(help_text="How many people were merged into this one.")
    created_at = serializers.DateTimeField()
    identities = PersonIdentitySerializer(many=True)
    traits = serializers.DictField()
    consents = PersonConsentStateSerializer(many=True)
    counts = serializers.DictField(child=serializers.IntegerField(), help_text="Rows held per table (app.Model).")
    last_seen_at = serializers.DateTimeField(allow_null=True)
    profile = PersonProfileSerializer(allow_null=True)


class ErasureReceiptSerializer(serializers.Serializer):
    receipt = serializers.UUIDField(help_text="The receipt id: keep it as the record of the erasure.")
    requested_by = serializers.CharField()
    requested_at = serializers.DateTimeField()
    people = serializers.IntegerField(help_text="The person and everyone merged into them.")
    counts = serializers.DictField(child=serializers.IntegerField(), help_text="Rows removed per table.")


class ApiErrorSerializer(serializers.Serializer):
    """The API's one error shape."""

    type = serializers.CharField()
    code = serializers.CharField()
    detail = serializers.CharField()
    attr = serializers.CharField(allow_null=True)


def _errors(*statuses: int) -> dict[int, OpenApiResponse]:
    described = {
        401: "No credentials.",
        403: "An ingest key, or a session without the permission.",
        404: (
            'No person is known by this key (code "not_found"), or they were erased (code "erased"); for a CSM, '
            "also a person outside the accounts they manage."
        ),
    }
    return {s: OpenApiResponse(ApiErrorSerializer, description=described[s]) for s in statuses}


def receipt_body(receipt: Any) -> dict[str, Any]:
    return {
        "receipt": str(receipt.pk),
        "requested_by": receipt.requested_by,
        "requested_at": receipt.requested_at,
        "people": receipt.people,
        "counts": receipt.counts,
    }


class PersonView(APIView):
    @extend_schema(
        tags=["people"],
        summary="What is held about a person, for support",
        responses={200: PersonSummarySerializer, **_errors(401, 403, 404)},
    )
    def get(self, request: Request, person_key: str) -> Response:
        return Response(export.person_summary(_readable_person_or_404(request, person_key)))

    @extend_schema(
        tags=["people"],
        summary="Erase a person and everyone merged into them",
        description=(
            "Removes every row, every cached copy and every future training input of the person and everyone "
            "merged into them, and keeps a receipt without personal data. Events that later name one of their "
            'keys are refused (code "erased").'
        ),
        responses={
            200: OpenApiResponse(
                ErasureReceiptSerializer,
                examples=[
                    OpenApiExample(
                        "receipt",
                        {
                            "receipt": "0b7c8a52-2f55-4f0e-9f55-3c1d5a6f1e11",
                            "requested_by": "api-key:sk_AbCdEfG",
                            "requested_at": "2026-11-27T08:00:00Z",
                            "people": 2,
                            "counts": {"profiles.Event": 41, "profiles.Identity": 3, "profiles.Person": 2},
                        },
                    )
                ],
            ),
            **_errors(401, 403, 404),
        },
    )
    def delete(self, request: Request, person_key: str) -> Response:
        try:
            receipt = erasure.erase_person(person_key, requested_by=str(request.user))
        except erasure.AlreadyErased as already:
            raise PersonErased(
                f"The person known by {person_key!r} was erased (receipt {already.receipt_id})."
            ) from None
        except erasure.PersonNotFound as missing:
            raise exceptions.NotFound(str(missing)) from None
        return Response(receipt_body(receipt))


class PersonExportView(APIView):
    @extend_schema(
        tags=["people"],
        summary="Everything held about a person and everyone merged into them (streamed JSON)",
        description=(
            'One JSON document: `{"exported_at", "person_id", "people", "summary", "tables": {"app.Model": [rows]}}`, '
            "every table that holds rows of the person (identities, consent and its history, events, profile, "
            "campaign messages and approvals, impressions, exposures, merges…). Streamed: it starts at once and "
            "holds constant memory whatever its size."
        ),
        responses={
            200: OpenApiResponse(
                inline_serializer(
                    "PersonExport",
                    {
                        "exported_at": serializers.DateTimeField(),
                        "person_id": serializers.IntegerField(),
                        "people": serializers.ListField(child=serializers.IntegerField()),
                        "summary": PersonSummarySerializer(),
                        "tables": serializers.DictField(child=serializers.ListField(child=serializers.DictField())),
                    },
                )
            ),
            **_errors(401, 403, 404),
        },
    )
    def get(self, request: Request, person_key: str) -> StreamingHttpResponse:
        person = _person_or_404(person_key)
        response = StreamingHttpResponse(
            (piece.encode() for piece in export.export_person(person)), content_type="application/json"
        )
        response["Content-Disposition"] = f'attachment; filename="person-{person.pk}.json"'
        response["Cache-Control"] = "no-store"
        return response
