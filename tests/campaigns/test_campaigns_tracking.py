"""Signed tracking links: opens, clicks and unsubscribes become events attributed to the message and
its recommendations and move the message forward; forged or foreign tokens do nothing, and the
click endpoint only ever redirects to one of the message's own links."""

from __future__ import annotations

from django.core import signing

from campaigns import tracking
from campaigns.models import ApprovalPolicy, Message, MessageState
from profiles import services as profiles
from profiles.models import Event
from tests.campaigns.conftest import launch_and_prepare, make_campaign, person, send_all, track


def _sent(shop) -> Message:
    shop()
    person("ann", first_name="Ann")
    track("ann", "Product Viewed", product_id="a1")
    campaign = launch_and_prepare(make_campaign("t"))
    assert send_all() == {"sent": 1}
    return Message.objects.get(campaign=campaign)


def test_an_open_is_recorded_once_however_often_the_pixel_loads(db, shop, client):
    message = _sent(shop)
    url = f"/t/o/{tracking.open_token(message.campaign_id, message.person_id)}.gif"
    for _ in range(3):
        response = client.get(url)
        assert response.status_code == 200 and response.content.startswith(b"GIF89a")
        assert "no-cache" in response["Cache-Control"] or "max-age=0" in response["Cache-Control"]
    message.refresh_from_db()
    assert message.state == MessageState.OPENED
    events = Event.objects.filter(person=message.person, kind="email_open")
    assert events.count() == 1
    assert events[0].properties["campaign"] == "t" and events[0].properties["variant"] == "default"


def test_clicks_are_attributed_to_the_item_and_the_recommendation(db, shop, client):
    message = _sent(shop)
    first, second = message.item_ids
    for link, item in ((0, first), (1, second), (0, first)):
        response = client.get(f"/t/c/{tracking.click_token(message.campaign_id, message.person_id, link)}")
        assert response.status_code == 302
        assert response["Location"] == f"https://shop.example.com/p/{item}"
    message.refresh_from_db()
    assert message.state == MessageState.CLICKED and message.opened_at is not None
    clicks = Event.objects.filter(person=message.person, kind="email_click").order_by("item_id")
    assert [c.item_id for c in clicks] == sorted([first, second])  # once per link
    assert {c.properties["recommendation_id"] for c in clicks} == {message.recommendation_id}
    assert {c.properties["message_id"] for c in clicks} == {message.pk}


def test_tokens_cannot_be_forged_reused_for_another_purpose_or_pointed_elsewhere(db, shop, client):
    message = _sent(shop)
    campaign_id, person_id = message.campaign_id, message.person_id
    open_token = tracking.open_token(campaign_id, person_id)
    assert client.get(f"/t/c/{open_token}").status_code == 404  # an open token is not a click token
    assert client.get(f"/t/c/{tracking.click_token(campaign_id, person_id, 99)}").status_code == 404
    forged = signing.Signer(salt="another").sign(f"{campaign_id}-{person_id}-0")
    assert client.get(f"/t/c/{forged}").status_code == 404
    assert client.get(f"/t/c/{campaign_id}-{person_id}-0:not-a-signature").status_code == 404
    assert client.get("/t/c/https%3A%2F%2Fevil.example.com").status_code == 404
    assert client.post(f"/t/u/{open_token}").status_code == 404  # a pixel token cannot unsubscribe
    assert client.get(f"/t/o/{forged}.gif").status_code == 200  # still an image, but nothing recorded
    message.refresh_from_db()
    assert message.state == MessageState.SENT
    assert not Event.objects.filter(kind__in=["email_open", "email_click", "unsubscribe"]).exists()
    assert profiles.has_consent(person_id, "email_marketing")


def test_links_in_a_message_not_sent_yet_redirect_but_count_nothing(db, shop, client):
    shop()
    person("ann", first_name="Ann")
    campaign = launch_and_prepare(make_campaign("p", approval_policy=ApprovalPolicy.ALL))
    message = Message.objects.get(campaign=campaign)
    response = client.get(f"/t/c/{tracking.click_token(campaign.pk, message.person_id, 0)}")
    assert response.status_code == 302
    client.get(f"/t/o/{tracking.open_token(campaign.pk, message.person_id)}.gif")
    message.refresh_from_db()
    assert message.state == MessageState.PENDING_APPROVAL and message.clicked_at is None
    assert not Event.objects.filter(kind__in=["email_open", "email_click"]).exists()


def test_unsubscribe_confirmation_page_then_post(db, shop, client):
    message = _sent(shop)
    url = f"/t/u/{tracking.unsubscribe_token(message.campaign_id, message.person_id)}"
    page = client.get(url)
    assert page.status_code == 200 and b"Unsubscribe?" in page.content
    done = client.post(url)
    assert done.status_code == 200 and b"You are unsubscribed" in done.content
    message.refresh_from_db()
    assert message.unsubscribed_at is not None
    event = Event.objects.get(person=message.person, kind="unsubscribe")
    assert event.properties["message_id"] == message.pk
    state = next(s for s in profiles.consent_states(message.person_id) if s.purpose == "email_marketing")
    assert (state.granted, state.source) == (False, "unsubscribe link")
    assert client.get("/t/u/1-1:bad").status_code == 404
