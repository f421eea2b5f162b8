"""A campaign end to end against a real SMTP server on loopback (aiosmtpd started by the test):
audience → render → send → the received messages are personalized, carry one-click unsubscribe,
and their tracking links come back as events attributed to the message and its recommendations."""

from __future__ import annotations

import re
from urllib.parse import urlsplit

from campaigns.models import Message, MessageState
from profiles import services as profiles
from profiles.models import Event
from tests.campaigns.conftest import launch_and_prepare, make_campaign, person, send_all, track


def _path(url: str) -> str:
    parts = urlsplit(url)
    return parts.path + (f"?{parts.query}" if parts.query else "")


def _links(html: str) -> list[str]:
    return [link.replace("&amp;", "&") for link in re.findall(r'href="([^"]+)"', html)]


def test_a_campaign_reaches_a_real_smtp_server_personalized_with_working_links(shop, smtp, client):
    shop()
    ann = person("ann", first_name="Ann", plan="pro")
    track("ann", "Product Viewed", product_id="a1")
    bob = person("bob", first_name="Bob", plan="free")
    track("bob", "Product Viewed", product_id="c1")
    person("cy", first_name="Cy", consent=False)  # no consent: never reaches the server
    campaign = make_campaign("spring", audience={"all": [{"field": "trait.first_name", "op": "exists"}]})

    launch_and_prepare(campaign)
    assert send_all() == {"sent": 2}

    received = {str(m["To"]): m for m in smtp.received}
    assert sorted(received) == ["ann@example.com", "bob@example.com"]
    assert smtp.by_recipient() == {"ann@example.com": 1, "bob@example.com": 1}

    # Personalized subject and products: Ann's come from what goes with a1, Bob's from what goes with c1.
    assert str(received["ann@example.com"]["Subject"]).startswith("Ann, picked for you: Item B")
    assert str(received["bob@example.com"]["Subject"]).startswith("Bob, picked for you: Item D")
    ann_html = received["ann@example.com"].get_body(("html",)).get_content()
    bob_html = received["bob@example.com"].get_body(("html",)).get_content()
    assert "Item B1" in ann_html and "Item B2" in ann_html and "Item D1" not in ann_html
    assert "Item D1" in bob_html and "Item D2" in bob_html and "Item B1" not in bob_html
    assert "Hi Ann," in ann_html and "New this week" in ann_html
    ann_text = received["ann@example.com"].get_body(("plain",)).get_content()
    assert "Item B1" in ann_text and "/t/c/" in ann_text and "shop.example.com" not in ann_text

    # One-click unsubscribe headers and a stable Message-ID.
    message = Message.objects.get(person=ann)
    headers = received["ann@example.com"]
    assert headers["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    unsubscribe_url = re.search(r"<(.+)>", str(headers["List-Unsubscribe"])).group(1)  # type: ignore[union-attr]
    assert "/t/u/" in unsubscribe_url
    assert headers["Message-ID"] == message.message_id_header == f"<campaign.{campaign.pk}.{ann.pk}@localhost>"

    # The open pixel marks the message opened and records an Email Opened event for the message.
    pixel = re.search(r'<img src="([^"]+/t/o/[^"]+)"', ann_html).group(1)  # type: ignore[union-attr]
    response = client.get(_path(pixel.replace("&amp;", "&")))
    assert response.status_code == 200 and response["Content-Type"] == "image/gif"
    message.refresh_from_db()
    assert message.state == MessageState.OPENED and message.opened_at is not None

    # A product link redirects to the product and is attributed to the message and its recommendation.
    tracked = [link for link in _links(ann_html) if "/t/c/" in link]
    assert len(tracked) == 3  # two products and the sale; the unsubscribe link is ours already
    product_link = tracked[0]
    first_item = message.item_ids[0]
    response = client.get(_path(product_link))
    assert response.status_code == 302
    assert response["Location"] == f"https://shop.example.com/p/{first_item}"
    message.refresh_from_db()
    assert message.state == MessageState.CLICKED
    click = Event.objects.get(person=ann, kind="email_click")
    assert click.item_id == first_item
    assert click.properties["recommendation_id"] == message.recommendation_id != ""
    assert click.properties["message_id"] == message.pk and click.properties["campaign"] == "spring"
    opened = Event.objects.get(person=ann, kind="email_open")
    assert opened.properties["message_id"] == message.pk

    # The non-product link goes where the template said, query string intact.
    sale = tracked[2]
    assert client.get(_path(sale))["Location"] == "https://shop.example.com/sale?from=email&x=1"

    # One-click unsubscribe (RFC 8058): a POST without cookies or CSRF token withdraws consent.
    response = client.post(_path(unsubscribe_url), {"List-Unsubscribe": "One-Click"})
    assert response.status_code == 200
    assert not profiles.has_consent(ann.pk, "email_marketing")
    assert Event.objects.filter(person=ann, kind="unsubscribe").count() == 1
    assert profiles.has_consent(bob.pk, "email_marketing")
