from __future__ import annotations

from dataclasses import asdict
from typing import Any

from django.conf import settings
from django.db import transaction
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import exceptions, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from personalization.api import person_tokens
from personalization.api.errors import PayloadTooLarge, error_body
from profiles import services
from profiles.api.people import refuse_if_erased
from profiles.api.serializers import (
    BatchSerializer,
    ConsentSerializer,
    ConsentUpdateSerializer,
    IdentifySerializer,
    IngestResultSerializer,
    PageSerializer,
    TrackSerializer,
)
from profiles.identity import identity_keys, resolve_people
from profiles.models import ConsentChange, Identity, Person
from profiles.segment import MessageError, check_values


class IngestView(APIView):
    """Base for the Segment-compatible endpoints: durable before answering, idempotent on messageId."""

    accepts_ingest_key = True
    throttle_scope = "ingest"
    message_type: str | None = None

    def initial(self, request: Request, *args: Any, **kwargs: Any) -> None:
        length = request.META.get("CONTENT_LENGTH") or "0"
        if length.isdigit() and int(length) > settings.INGEST_MAX_BODY_BYTES:
            raise PayloadTooLarge(f"The body is larger than {settings.INGEST_MAX_BODY_BYTES} bytes.")
        super().initial(request, *args, **kwargs)

    def messages(self, request: Request) -> list[Any]:
        if not isinstance(request.data, dict):
            raise exceptions.ValidationError({"": "The body must be a JSON object."}, code="invalid")
        return [request.data]

    def post(self, request: Request) -> Response:
        messages = self.messages(request)
        verify = (
            (lambda user_id, token: person_tokens.verified(request, user_id, token))
            if person_tokens.public_key(request)
            else None
        )
        result = services.ingest_from_api(messages, self.message_type, verify)
        errors = [
            {"index": r.index, "attr": self.attr_path(r.index, r.attr), "code": r.code, "detail": r.detail}
            for r in result.rejected
        ]
        if errors and not result.accepted and not result.duplicates:
            first = result.rejected[0]
            attr = self.attr_path(first.index, first.attr)
            return Response(error_body("validation_error", first.code, first.detail, attr), status=400)
        return Response(
            {
                "success": True,
                "accepted": result.accepted,
                "duplicates": result.duplicates,
                "rejected": len(errors),
                "errors": errors,
            }
        )

    def attr_path(self, index: int, attr: str) -> str | None:
        return attr or None


INGEST_RESPONSES = {
    200: IngestResultSerializer,
    400: OpenApiResponse(description="Invalid message; `attr` names the field."),
    413: OpenApiResponse(description="Body too large."),
}


class TrackView(IngestView):
    message_type = "track"

    @extend_schema(
        tags=["events"], request=TrackSerializer, responses=INGEST_RESPONSES, summary="Record an event (Segment track)"
    )
    def post(self, request: Request) -> Response:
        return super().post(request)


class IdentifyView(IngestView):
    message_type = "identify"

    @extend_schema(
        tags=["events"],
        request=IdentifySerializer,
        responses=INGEST_RESPONSES,
        summary="Tie identities together and set traits (Segment identify)",
    )
    def post(self, request: Request) -> Response:
        return super().post(request)


class PageView(IngestView):
    message_type = "page"

    @extend_schema(
        tags=["events"], request=PageSerializer, responses=INGEST_RESPONSES, summary="Record a page view (Segment page)"
    )
    def post(self, request: Request) -> Response:
        return super().post(request)


class BatchView(IngestView):
    def messages(self, request: Request) -> list[Any]:
        body = request.data
        if not isinstance(body, dict) or not isinstance(body.get("batch"), list):
            raise exceptions.ValidationError({"batch": 'Send {"batch": [messages…]}.'}, code="invalid")
        batch = body["batch"]
        if not batch:
            raise exceptions.ValidationError({"batch": "The batch is empty."}, code="empty")
        if len(batch) > settings.INGEST_MAX_BATCH:
            raise exceptions.ValidationError(
                {"batch": f"At most {settings.INGEST_MAX_BATCH} messages per batch; got {len(batch)}."},
                code="max_length",
            )
        shared_context, shared_sent_at = body.get("context"), body.get("sentAt")
        messages = []
        for message in batch:
            # What the batch shares becomes part of each message, and is validated (and counted in
            # its size) with it.
            if isinstance(message, dict):
                if isinstance(shared_context, dict) and "context" not in message:
                    message["context"] = shared_context
                if shared_sent_at and "sentAt" not in message:
                    message["sentAt"] = shared_sent_at
            messages.append(message)
        return messages

    def attr_path(self, index: int, attr: str) -> str | None:
        return f"batch.{index}" + (f".{attr}" if attr else "")

    @extend_schema(
        tags=["events"],
        request=BatchSerializer,
        responses=INGEST_RESPONSES,
        summary="Record up to 500 messages at once",
    )
    def post(self, request: Request) -> Response:
        return super().post(request)


def _checked_key(person_key: str) -> str:
    """A person's key from the URL, refused (400, naming it) when no identity could hold it."""
    try:
        check_values({"person": person_key})
    except MessageError as error:
        raise exceptions.ValidationError({"person": error.detail}, code="invalid") from None
    longest = Identity._meta.get_field("value").max_length or 255
    if len(person_key) > longest:
        raise exceptions.ValidationError({"person": f"Longer than {longest} characters."}, code="max_length")
    return person_key


def _person_or_404(person_key: str) -> Person:
    person = services.find_person(_checked_key(person_key))
    if person is None:
        raise exceptions.NotFound(f"No person is known by {person_key!r}.")
    return person


def _consent_body(person_key: str, person: Person) -> dict[str, Any]:
    return {
        "person": person_key,
        "consents": [asdict(s) for s in services.consent_states(person.pk)],
        "history": list(
            ConsentChange.objects.filter(person=person).values(
                "purpose", "granted", "source", "recorded_at", "recorded_by"
            )[:200]
        ),
    }


class ConsentView(APIView):
    """A person's consent per purpose, and its history. ``person`` is a user id, anonymous id or email."""

    @extend_schema(tags=["people"], responses=ConsentSerializer, summary="Read a person's consent")
    def get(self, request: Request, person_key: str) -> Response:
        return Response(_consent_body(person_key, _person_or_404(person_key)))

    @extend_schema(
        tags=["people"],
        request=ConsentUpdateSerializer,
        responses=ConsentSerializer,
        summary="Record consent decisions",
    )
    def put(self, request: Request, person_key: str) -> Response:
        _checked_key(person_key)
        serializer = ConsentUpdateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        with transaction.atomic():
            person = services.find_person(person_key)
            if person is None:  # consent may come before any event, e.g. at sign-up
                refuse_if_erased(person_key)  # but it may not bring an erased person back
                (person_id,) = resolve_people([identity_keys(None, person_key)])
                person = Person.objects.get(pk=person_id)
            for purpose, granted in serializer.validated_data["purposes"].items():
                services.record_consent(
                    person.pk, purpose, granted, serializer.validated_data["source"], recorded_by=str(request.user)
                )
        return Response(_consent_body(person_key, person), status=status.HTTP_200_OK)
