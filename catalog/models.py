from __future__ import annotations

from django.db import models


class ItemKind(models.TextChoices):
    PRODUCT = "product", "Product"
    CONTENT = "content", "Content"
    FEATURE = "feature", "Feature"


class Item(models.Model):
    """Something a surface can show: a product, a piece of content, or a product feature."""

    external_id = models.CharField(max_length=200, unique=True, help_text="The id the client system uses.")
    kind = models.CharField(max_length=16, choices=ItemKind.choices, default=ItemKind.PRODUCT)
    title = models.CharField(max_length=500, blank=True)
    description = models.TextField(blank=True)
    category = models.CharField(
        max_length=500, blank=True, db_index=True, help_text="Category path, levels separated by ' > '."
    )
    brand = models.CharField(max_length=200, blank=True, db_index=True)
    price = models.DecimalField(max_digits=12, decimal_places=2, null=True, blank=True)
    margin = models.DecimalField(
        max_digits=12, decimal_places=2, null=True, blank=True, help_text="Profit per unit, in the price's currency."
    )
    stock = models.IntegerField(null=True, blank=True, help_text="Units in stock; empty means not tracked.")
    published_at = models.DateTimeField(null=True, blank=True)
    active = models.BooleanField(default=True)
    attributes = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["external_id"]
        # updated_at: serving refreshes its in-memory catalogue with the rows changed in the last seconds.
        indexes = [models.Index(fields=["kind", "active"]), models.Index(fields=["updated_at"])]

    def __str__(self) -> str:
        return self.title or self.external_id

    @property
    def in_stock(self) -> bool:
        return self.stock is None or self.stock > 0

    @property
    def top_category(self) -> str:
        return self.category.split(" > ")[0] if self.category else ""
