"""Onboarding next-best-action: features and content not activated yet, ranked by how likely people like
the person (same plan) were to activate them, served for in-product checklists and usable in emails."""

from __future__ import annotations

from typing import Any

from django.core import mail
from rest_framework.test import APIClient

from campaigns.models import Channel, Message, MessageState
from catalog.models import Item
from personalization.models import ApiKey, KeyScope
from profiles import services as profiles
from tests.campaigns.conftest import html_of, launch_and_prepare, make_campaign, person, send_all, track


def _product() -> None:
    for sku, title, kind in (
        ("f1", "Saved searches", "feature"),
        ("f2", "Team workspaces", "feature"),
        ("f3", "Price alerts", "feature"),
        ("g1", "Getting started guide", "content"),
    ):
        Item.objects.create(external_id=sku, title=title, kind=kind)
    for n in range(10):
        person(f"free{n}", first_name=f"F{n}", plan="free")
        track(f"free{n}", "Feature Activated", feature_id="f1")
        if n < 4:
            track(f"free{n}", "Content Viewed", content_id="g1")
    for n in range(6):
        person(f"pro{n}", first_name=f"P{n}", plan="pro")
        track(f"pro{n}", "Feature Activated", feature_id="f2")
        if n < 2:
            track(f"pro{n}", "Feature Activated", feature_id="f3")


def _get(client: APIClient, key: str, **params: Any) -> Any:
    response = client.get(f"/api/v1/onboarding/{key}", params)
    assert response.status_code == 200, response.json()
    return response.json()


def test_next_best_actions_follow_what_people_on_the_same_plan_activated(db, secret_client):
    _product()
    person("newpro", first_name="Nia", plan="pro")
    track("newpro", "Feature Activated", feature_id="f3")
    person("newfree", first_name="Ned", plan="free")

    pro = _get(secret_client, "newpro")
    assert [i["item_id"] for i in pro["items"]][:2] == ["f2", "f1"]
    assert "f3" not in [i["item_id"] for i in pro["items"]]  # already activated
    assert (pro["personalized"], pro["peer_trait"], pro["peer_value"], pro["peers"]) == (True, "plan", "pro", 7)
    assert pro["items"][0]["reason"] == "86% of people on the pro plan use it"
    assert pro["recommendation_id"]

    free = _get(secret_client, "newfree")
    assert [i["item_id"] for i in free["items"]][:2] == ["f1", "g1"]
    assert {i["kind"] for i in free["items"]} == {"feature", "content"}
    assert free["items"][0]["score"] > free["items"][1]["score"]
    assert len(_get(secret_client, "newfree", limit=1)["items"]) == 1


def test_without_personalization_consent_the_checklist_uses_everyones_ranking(db, secret_client):
    _product()
    quiet = person("quiet", first_name="Q", plan="pro")
    profiles.record_consent(quiet.pk, "personalization", False, source="banner")
    body = _get(secret_client, "quiet")
    assert (body["personalized"], body["peer_trait"], body["peers"]) == (False, None, 0)
    assert body["items"][0]["item_id"] == "f1"  # what most people use, not what pro people use


def test_unknown_people_and_ingest_keys_are_refused(db, secret_client):
    assert secret_client.get("/api/v1/onboarding/nobody").status_code == 404
    _, raw = ApiKey.issue("browser", KeyScope.INGEST)
    ingest = APIClient()
    ingest.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")
    response = ingest.get("/api/v1/onboarding/nobody")
    assert response.status_code == 403 and response.json()["type"] == "permission_error"


def test_an_onboarding_campaign_is_shown_in_product_and_next_actions_fill_emails(db, secret_client):
    _product()
    person("newfree", first_name="Ned", plan="free")
    nudge = make_campaign(
        "nudge",
        channel=Channel.ONBOARDING,
        audience={"all": [{"field": "trait.first_name", "op": "eq", "value": "Ned"}]},
        subject="Try {{ next_actions[0].title }}",
        text="{% for a in next_actions %}{{ a.title }} ({{ a.reason }})\n{% endfor %}",
        html="",
        content_limit=0,
    )
    launch_and_prepare(nudge)
    assert send_all() == {"sent": 1}
    assert mail.outbox == []  # in product, not by email
    body = _get(secret_client, "newfree")
    assert [(m["campaign"], m["subject"]) for m in body["messages"]] == [("nudge", "Try Saved searches")]
    assert "Getting started guide" in body["messages"][0]["text"]
    assert Message.objects.get(campaign=nudge).state == MessageState.OPENED

    email = make_campaign(
        "welcome",
        audience={"all": [{"field": "trait.first_name", "op": "eq", "value": "Ned"}]},
        html='<ul>{% for a in next_actions %}<li><a href="{{ a.url }}">{{ a.title }}</a></li>{% endfor %}</ul>',
    )
    launch_and_prepare(email)
    send_all()
    html = html_of(mail.outbox[0])
    assert "Saved searches" in html and "Getting started guide" in html and "/t/c/" in html
