from __future__ import annotations

from typing import Any

from django.db import transaction
from django.db.models import QuerySet
from drf_spectacular.utils import extend_schema, extend_schema_view
from rest_framework import exceptions, mixins, viewsets
from rest_framework.metadata import SimpleMetadata
from rest_framework.request import Request
from rest_framework.response import Response

from catalog import services
from catalog.api.serializers import (
    ItemBatchResultSerializer,
    ItemBatchSerializer,
    ItemSerializer,
    first_field_error,
)
from catalog.models import Item


class ItemMetadata(SimpleMetadata):
    """``OPTIONS`` describes the single item's actions; the list's ``PUT`` is a batch with no one item."""

    def determine_actions(self, request: Any, view: Any) -> dict[str, Any]:
        if view.lookup_field not in view.kwargs:
            return {}
        return dict(super().determine_actions(request, view))


@extend_schema_view(
    list=extend_schema(tags=["catalogue"], summary="List items"),
    retrieve=extend_schema(tags=["catalogue"], summary="Read one item"),
    partial_update=extend_schema(tags=["catalogue"], summary="Change some fields of one item"),
    destroy=extend_schema(tags=["catalogue"], summary="Delete one item"),
)
class ItemViewSet(
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.UpdateModelMixin,
    mixins.DestroyModelMixin,
    viewsets.GenericViewSet,
):
    """The catalogue: items by their external id."""

    queryset = Item.objects.all()
    serializer_class = ItemSerializer
    lookup_field = "external_id"
    metadata_class = ItemMetadata

    def perform_update(self, serializer: Any) -> None:
        """A PATCH that brings a stock from zero to above zero is a restock, and one that lowers the price a
        price drop, as in a sync."""
        with transaction.atomic():
            item = Item.objects.select_for_update().get(pk=serializer.instance.pk)
            serializer.save()
            services.note_stock_change(item.external_id, item.stock, serializer.instance.stock)
            services.note_price_change(item.external_id, item.price, serializer.instance.price)

    def get_queryset(self) -> QuerySet[Item]:
        queryset = Item.objects.all()
        for param in ("kind", "brand", "active", "category"):
            if "\x00" in self.request.query_params.get(param, ""):  # PostgreSQL text cannot hold it
                raise exceptions.ValidationError({param: ["Must not contain a NUL character."]})
        for param in ("kind", "brand", "active"):
            value = self.request.query_params.get(param)
            if value is not None:
                queryset = queryset.filter(**{param: value == "true" if param == "active" else value})
        category = self.request.query_params.get("category")
        if category:
            queryset = queryset.filter(category__startswith=category)
        return queryset

    @extend_schema(
        tags=["catalogue"],
        request=ItemBatchSerializer,
        responses=ItemBatchResultSerializer,
        summary="Upsert up to 1,000 items",
    )
    def upsert(self, request: Request) -> Response:
        payload = request.data
        batch = ItemBatchSerializer(data={"items": payload} if isinstance(payload, list) else payload)
        batch.is_valid(raise_exception=True)
        valid_rows: list[dict[str, Any]] = []
        errors: list[dict[str, Any]] = []
        seen: dict[str, int] = {}
        for index, raw in enumerate(batch.validated_data["items"]):
            serializer = ItemSerializer(data=raw)
            if not serializer.is_valid():
                attr, code, detail = first_field_error(serializer.errors)
                errors.append(
                    {
                        "index": index,
                        "external_id": raw.get("external_id"),
                        "attr": f"items.{index}.{attr}",
                        "code": code,
                        "detail": detail,
                    }
                )
                continue
            row = serializer.validated_data
            if row["external_id"] in seen:  # the last one in the batch wins, like a replay would
                valid_rows[seen[row["external_id"]]] = row
                continue
            seen[row["external_id"]] = len(valid_rows)
            valid_rows.append(row)
        upserted = services.upsert_items(valid_rows)
        return Response({"upserted": upserted, "rejected": len(errors), "errors": errors})
