"""The public item page, where the item links of emails go by default: the item's title, picture and
price for anyone, an unknown id a 404, and campaign item links pointing at it."""

from __future__ import annotations

from django.test import Client

from campaigns import conf
from catalog.models import Item


def test_anyone_sees_the_item_with_its_picture_and_price(db):
    Item.objects.create(
        external_id="SKU-9",
        title="Cosy Teal Shirt Dress",
        category="Women > Dresses",
        brand="Northwind",
        price="49.90",
        stock=3,
        description="Soft cotton.",
        attributes={"image_url": "https://cdn.example.com/sku-9.jpg"},
    )
    page = Client().get("/items/SKU-9")
    html = page.content.decode()
    assert page.status_code == 200
    assert '<h1 id="item-title">Cosy Teal Shirt Dress</h1>' in html
    assert '<img src="https://cdn.example.com/sku-9.jpg"' in html
    assert '<p class="price" id="item-price">€49.90</p>' in html
    assert "Women › Dresses" in html and "In stock" in html


def test_an_item_without_a_picture_gets_a_drawn_one_and_its_state(db):
    Item.objects.create(external_id="lamp", title="Floor Lamp", price="120", stock=0, attributes={"image": "ftp://x"})
    html = Client().get("/items/lamp").content.decode()
    assert "<svg" in html and 'aria-label="No picture of Floor Lamp"' in html  # an ftp:// picture is not shown
    assert "Out of stock" in html
    Item.objects.filter(external_id="lamp").update(active=False)
    assert "No longer offered" in Client().get("/items/lamp").content.decode()


def test_an_unknown_item_is_not_found_and_item_links_point_at_the_page(db, settings):
    assert Client().get("/items/nope").status_code == 404
    settings.SITE_URL = "http://127.0.0.1:8123"
    assert conf.item_url_pattern() == "http://127.0.0.1:8123/items/{item_id}"
