"""The campaigns API: thin views over ``campaigns.services``; errors in the project's one shape."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from django.contrib.auth.models import AbstractBaseUser
from django.db.models import Count, QuerySet
from django.shortcuts import get_object_or_404
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import exceptions, generics, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from campaigns import services
from campaigns.api.serializers import (
    AudienceCountSerializer,
    AudienceSerializer,
    CampaignSerializer,
    CampaignUpdateSerializer,
    DecisionResultSerializer,
    DecisionSerializer,
    MessageDetailSerializer,
    MessageEditSerializer,
    MessageSerializer,
    NoteSerializer,
    OnboardingQuerySerializer,
    OnboardingSerializer,
    PreviewQuerySerializer,
    PreviewSerializer,
    settings_from,
)
from campaigns.models import Campaign, Message, MessageState
from profiles import services as profiles


class Conflict(exceptions.APIException):
    status_code = status.HTTP_409_CONFLICT
    default_detail = "The campaign is not in a state that allows this."
    default_code = "conflict"


def _api_error(error: services.CampaignError) -> exceptions.APIException:
    body = {error.attr: [error.detail]} if error.attr else [error.detail]
    if error.code in ("conflict", "frozen"):
        return Conflict(body, code=error.code)
    return exceptions.ValidationError(body, code=error.code)


def _person_id(key: str) -> int:
    person = profiles.find_person(key)
    if person is None:
        raise exceptions.NotFound(f"No person is known by {key!r}.")
    return person.pk


def _human(request: Request) -> Any:
    """Approvals are made by people: an API key may read the queue but not decide."""
    if not isinstance(request.user, AbstractBaseUser):
        raise exceptions.PermissionDenied("Approvals are made by people; sign in to approve or reject.")
    return request.user


def _with_counts(campaigns: QuerySet[Campaign]) -> list[Campaign]:
    rows = list(campaigns)
    counts: dict[int, dict[str, int]] = {}
    for campaign_id, state, n in (
        Message.objects.filter(campaign__in=rows).values_list("campaign_id", "state").annotate(n=Count("id")).order_by()
    ):
        counts.setdefault(campaign_id, {})[state] = n
    for campaign in rows:
        campaign.state_counts = counts.get(campaign.pk, {})  # type: ignore[attr-defined]
    return rows


def _decide(user: Any, ids: list[int], action: str, note: str) -> services.Decision:
    try:
        return services.decide(user, ids, action, note)
    except services.ApprovalDenied as error:
        raise exceptions.PermissionDenied(str(error)) from None


NOT_FOUND = OpenApiResponse(description="No campaign with this key.")
CONFLICT = OpenApiResponse(description="The campaign's status does not allow this.")


class CampaignListView(generics.ListCreateAPIView):
    """Campaigns, newest first; create one (it starts as a draft)."""

    serializer_class = CampaignSerializer

    def get_queryset(self) -> QuerySet[Campaign]:
        campaigns = Campaign.objects.select_related("owner").order_by("-created_at", "-id")
        for param in ("status", "channel"):
            value = self.request.query_params.get(param)
            if value:
                campaigns = campaigns.filter(**{param: value})
        return campaigns

    def paginate_queryset(self, queryset: Any) -> list[Any] | None:
        page = super().paginate_queryset(queryset)
        return _with_counts(page) if page is not None else None  # type: ignore[arg-type]

    @extend_schema(tags=["campaigns"], summary="List campaigns")
    def get(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return super().get(request, *args, **kwargs)

    @extend_schema(
        tags=["campaigns"],
        summary="Create a campaign",
        responses={201: CampaignSerializer, 400: OpenApiResponse(description="Invalid; `attr` names the field.")},
    )
    def post(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        serializer = CampaignSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        try:
            campaign = services.create_campaign(
                serializer.validated_data["key"], settings_from(serializer.validated_data), request.user
            )
        except services.CampaignError as error:
            raise _api_error(error) from None
        return Response(CampaignSerializer(_with_counts(Campaign.objects.filter(pk=campaign.pk))[0]).data, status=201)


class CampaignDetailView(APIView):
    """One campaign by key: read, change (only name, description and end once launched), delete a draft."""

    def _campaign(self, key: str) -> Campaign:
        return _with_counts(Campaign.objects.filter(pk=get_object_or_404(Campaign, key=key).pk))[0]

    @extend_schema(tags=["campaigns"], responses={200: CampaignSerializer, 404: NOT_FOUND}, summary="Read a campaign")
    def get(self, request: Request, key: str) -> Response:
        return Response(CampaignSerializer(self._campaign(key)).data)

    @extend_schema(
        tags=["campaigns"],
        request=CampaignUpdateSerializer,
        responses={200: CampaignSerializer, 400: OpenApiResponse(description="Invalid."), 409: CONFLICT},
        summary="Change a campaign",
    )
    def patch(self, request: Request, key: str) -> Response:
        campaign = self._campaign(key)
        serializer = CampaignUpdateSerializer(campaign, data=request.data, partial=True)
        serializer.is_valid(raise_exception=True)
        try:
            services.update_campaign(campaign, settings_from(serializer.validated_data), request.user)
        except services.CampaignError as error:
            raise _api_error(error) from None
        return Response(CampaignSerializer(self._campaign(key)).data)

    @extend_schema(tags=["campaigns"], responses={204: None, 409: CONFLICT}, summary="Delete a draft campaign")
    def delete(self, request: Request, key: str) -> Response:
        try:
            services.delete_campaign(self._campaign(key), request.user)
        except services.CampaignError as error:
            raise _api_error(error) from None
        return Response(status=204)


class CampaignActionView(APIView):
    action_name = ""

    @extend_schema(tags=["campaigns"], request=None, responses={200: CampaignSerializer, 404: NOT_FOUND, 409: CONFLICT})
    def post(self, request: Request, key: str) -> Response:
        campaign = get_object_or_404(Campaign, key=key)
        act = {"launch": services.launch, "pause": services.pause, "resume": services.resume}[self.action_name]
        try:
            act(campaign, request.user)
        except services.CampaignError as error:
            raise _api_error(error) from None
        return Response(CampaignSerializer(_with_counts(Campaign.objects.filter(pk=campaign.pk))[0]).data)


class LaunchView(CampaignActionView):
    """Launch a draft: messages are prepared by a worker, then sent as scheduled."""

    action_name = "launch"


class PauseView(CampaignActionView):
    """Stop sending until resumed; prepared messages keep their place."""

    action_name = "pause"


class ResumeView(CampaignActionView):
    """Resume sending a paused campaign."""

    action_name = "resume"


class CampaignAudienceView(APIView):
    @extend_schema(
        tags=["campaigns"],
        responses={200: AudienceCountSerializer, 404: NOT_FOUND},
        summary="How many people the campaign's audience holds right now",
    )
    def get(self, request: Request, key: str) -> Response:
        campaign = get_object_or_404(Campaign, key=key)
        try:
            return Response({"count": services.audience_count(campaign.audience)})
        except services.CampaignError as error:
            raise _api_error(error) from None


class AudienceCountView(APIView):
    @extend_schema(
        tags=["campaigns"],
        request=AudienceSerializer,
        responses={200: AudienceCountSerializer, 400: OpenApiResponse(description="Invalid rule; `attr` names it.")},
        summary="Count the people audience rules select (live, while editing)",
    )
    def post(self, request: Request) -> Response:
        serializer = AudienceSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        try:
            return Response({"count": services.audience_count(serializer.validated_data["audience"])})
        except services.CampaignError as error:
            raise _api_error(error) from None


def preview_body(person_key: str, result: services.Preview) -> dict[str, Any]:
    message = result.message
    sendable = message.state == MessageState.DRAFT
    outcome = (
        (MessageState.PENDING_APPROVAL if message.needs_approval else MessageState.SCHEDULED)
        if sendable
        else message.state
    )
    parts = services.outgoing(message) if sendable else None
    return {
        "person": person_key,
        "outcome": outcome,
        "reason": result.suppressed_because,
        "variant": message.variant,
        "send_time_source": message.send_time_source,
        "scheduled_for": message.scheduled_for,
        "needs_approval": message.needs_approval,
        "from_email": parts.from_email if parts else "",
        "to": message.to_email,
        "subject": message.subject,
        "preheader": message.preheader,
        "headers": parts.headers if parts else {},
        "html": parts.html if parts else "",
        "text": parts.text if parts else "",
        "recommendation_id": message.recommendation_id,
        "item_ids": list(message.item_ids),
    }


class PreviewView(APIView):
    @extend_schema(
        tags=["campaigns"],
        parameters=[PreviewQuerySerializer],
        responses={200: PreviewSerializer, 404: OpenApiResponse(description="No such campaign or person.")},
        summary="Exactly what one person would receive (nothing is saved or sent)",
    )
    def get(self, request: Request, key: str) -> Response:
        campaign = get_object_or_404(Campaign, key=key)
        query = PreviewQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        person_key = query.validated_data["person"]
        try:
            result = services.preview(campaign, _person_id(person_key))
        except services.CampaignError as error:
            raise _api_error(error) from None
        return Response(PreviewSerializer(preview_body(person_key, result)).data)


MESSAGE_FILTERS = [
    OpenApiParameter("campaign", str, description="Campaign key."),
    OpenApiParameter("account", str, description="Account external id."),
    OpenApiParameter("state", str, description="e.g. pending_approval, scheduled, sent, suppressed."),
]


class MessageListView(generics.ListAPIView):
    """Messages you may see: a CSM those of their accounts; others with the view permission all."""

    serializer_class = MessageSerializer

    def get_queryset(self) -> QuerySet[Message]:
        if isinstance(self.request.user, AbstractBaseUser):
            messages = services.visible_messages(self.request.user)
        else:  # a secret API key reads everything (and decides nothing)
            messages = Message.objects.select_related("campaign", "account")
        params = self.request.query_params
        for name in ("campaign", "account", "state"):
            if "\x00" in params.get(name, ""):  # PostgreSQL text cannot hold it: no row can match
                raise exceptions.ValidationError({name: ["Must not contain a NUL character."]})
        if params.get("campaign"):
            messages = messages.filter(campaign__key=params["campaign"])
        if params.get("account"):
            messages = messages.filter(account__external_id=params["account"])
        if params.get("state"):
            messages = messages.filter(state=params["state"])
        return messages.order_by("-created_at", "-id")

    @extend_schema(tags=["approvals"], parameters=MESSAGE_FILTERS, summary="List messages (the approval queue)")
    def get(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return super().get(request, *args, **kwargs)


class MessageDetailView(APIView):
    def _message(self, request: Request, pk: int) -> Message:
        if isinstance(request.user, AbstractBaseUser):
            messages = services.visible_messages(request.user)
        else:
            messages = Message.objects.select_related("campaign", "account")
        return get_object_or_404(messages.prefetch_related("approval_actions"), pk=pk)

    @extend_schema(
        tags=["approvals"],
        responses={200: MessageDetailSerializer, 404: OpenApiResponse(description="Not in your queue.")},
        summary="A message exactly as it will be sent, with its audit trail",
    )
    def get(self, request: Request, pk: int) -> Response:
        return Response(MessageDetailSerializer(self._message(request, pk)).data)

    @extend_schema(
        tags=["approvals"],
        request=MessageEditSerializer,
        responses={200: MessageDetailSerializer, 403: OpenApiResponse(description="Not yours to edit.")},
        summary="Edit a message waiting for approval",
    )
    def patch(self, request: Request, pk: int) -> Response:
        user = _human(request)
        serializer = MessageEditSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        changes = {k: v for k, v in serializer.validated_data.items() if k != "note"}
        try:
            services.edit(user, pk, changes, serializer.validated_data["note"])
        except services.ApprovalDenied as error:
            raise exceptions.PermissionDenied(str(error)) from None
        except ValueError as error:
            raise Conflict([str(error)], code="conflict") from None
        return Response(MessageDetailSerializer(self._message(request, pk)).data)


class DecisionView(APIView):
    @extend_schema(
        tags=["approvals"],
        request=DecisionSerializer,
        responses={200: DecisionResultSerializer, 403: OpenApiResponse(description="Nothing changed.")},
        summary="Approve or reject messages, one or many (all or nothing)",
    )
    def post(self, request: Request) -> Response:
        user = _human(request)
        serializer = DecisionSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        result = _decide(user, data["ids"], data["action"], data["note"])
        return Response(DecisionResultSerializer(asdict(result)).data)


class SingleDecisionView(APIView):
    action_name = ""

    @extend_schema(
        tags=["approvals"],
        request=NoteSerializer,
        responses={200: DecisionResultSerializer, 403: OpenApiResponse(description="Nothing changed.")},
    )
    def post(self, request: Request, pk: int) -> Response:
        user = _human(request)
        serializer = NoteSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        result = _decide(user, [pk], self.action_name, serializer.validated_data["note"])
        return Response(DecisionResultSerializer(asdict(result)).data)


class ApproveView(SingleDecisionView):
    """Approve one message."""

    action_name = "approve"


class RejectView(SingleDecisionView):
    """Reject one message; it is never sent."""

    action_name = "reject"


class OnboardingView(APIView):
    """Next best actions for an in-product checklist, plus the person's onboarding messages."""

    @extend_schema(
        tags=["campaigns"],
        parameters=[OnboardingQuerySerializer],
        responses={200: OnboardingSerializer, 404: OpenApiResponse(description="No such person.")},
        summary="Onboarding: features and content to try next, ranked by what people like them activated",
    )
    def get(self, request: Request, person_key: str) -> Response:
        query = OnboardingQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        person_id = _person_id(person_key)
        answer = services.next_best_actions(person_id, query.validated_data["limit"])
        shown = services.in_product_messages(person_id)
        body = {
            "person": person_key,
            "recommendation_id": answer.recommendation_id,
            "personalized": answer.personalized,
            "peer_trait": answer.peer_trait,
            "peer_value": answer.peer_value,
            "peers": answer.peers,
            "population": answer.population,
            "items": [asdict(item) for item in answer.items],
            "degraded": answer.degraded,
            "degraded_reason": answer.degraded_reason,
            "messages": [
                {"id": m.pk, "campaign": m.campaign.key, "subject": m.subject, "text": m.text, "html": m.html}
                for m in shown
            ],
        }
        return Response(OnboardingSerializer(body).data)
