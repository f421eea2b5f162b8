from __future__ import annotations

from catalog.models import Item


def test_bulk_upsert_creates_replaces_and_reports_per_item_errors(secret_client, make_item):
    make_item("old", title="Old title", brand="Before", stock=3)
    payload = {
        "items": [
            {"external_id": "old", "title": "New title", "price": "12.50"},
            {
                "external_id": "new-1",
                "title": "Red Dress",
                "category": "Women > Dresses",
                "price": "49.90",
                "margin": "20",
                "stock": 0,
                "attributes": {"colour": "red"},
            },
            {"external_id": "bad", "price": "cheap"},
            {"title": "no id"},
        ]
    }

    response = secret_client.put("/api/v1/catalog/items", payload)

    assert response.status_code == 200
    body = response.json()
    assert body["upserted"] == 2 and body["rejected"] == 2
    assert [(e["index"], e["attr"]) for e in body["errors"]] == [(2, "items.2.price"), (3, "items.3.external_id")]
    old = Item.objects.get(external_id="old")
    assert (old.title, str(old.price), old.brand, old.stock) == ("New title", "12.50", "", None)  # PUT replaces
    new = Item.objects.get(external_id="new-1")
    assert new.attributes == {"colour": "red"} and not new.in_stock
    assert not Item.objects.filter(external_id="bad").exists()


def test_upsert_refuses_more_than_1000_items(secret_client):
    response = secret_client.put("/api/v1/catalog/items", {"items": [{"external_id": f"x{i}"} for i in range(1001)]})
    assert response.status_code == 400
    assert response.json()["attr"] == "items"
    assert Item.objects.count() == 0


def test_get_patch_delete_one_item(secret_client, make_item):
    make_item("sku-9", title="Mug")
    assert secret_client.get("/api/v1/catalog/items/sku-9").json()["title"] == "Mug"

    patched = secret_client.patch("/api/v1/catalog/items/sku-9", {"stock": 0, "active": False})
    assert patched.status_code == 200
    item = Item.objects.get(external_id="sku-9")
    assert (item.stock, item.active, item.title) == (0, False, "Mug")

    assert secret_client.delete("/api/v1/catalog/items/sku-9").status_code == 204
    missing = secret_client.get("/api/v1/catalog/items/sku-9")
    assert missing.status_code == 404 and missing.json()["type"] == "not_found"


def test_list_is_paginated_and_filterable(secret_client, make_item):
    for i in range(3):
        make_item(f"k{i}", kind="content" if i else "product")
    body = secret_client.get("/api/v1/catalog/items?kind=content&limit=1").json()
    assert body["count"] == 2 and len(body["results"]) == 1


def test_catalog_needs_a_secret_key(ingest_client, client):
    assert ingest_client.put("/api/v1/catalog/items", {"items": [{"external_id": "a"}]}).status_code == 403
    response = client.get("/api/v1/catalog/items")
    assert response.status_code == 401
    assert response.json()["type"] == "authentication_error"
    assert Item.objects.count() == 0


def test_a_nul_in_a_filter_is_refused_with_the_field_named_and_options_answers(secret_client, make_item):
    # Found by tests/test_schema_fuzz.py: both answered 500.
    response = secret_client.get("/api/v1/catalog/items", {"brand": "Ac\x00me"})
    assert response.status_code == 400
    assert response.json()["attr"] == "brand"
    assert secret_client.options("/api/v1/catalog/items").status_code == 200
