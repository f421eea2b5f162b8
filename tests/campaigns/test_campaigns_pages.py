"""The browser pages: campaigns with a live audience count and a preview, the approval queue with its
filters, one-or-many decisions, edits and the audit trail; each CSM sees only their accounts."""

from __future__ import annotations

from typing import Any

from django.contrib.auth.models import User

from campaigns import services
from campaigns.models import ApprovalAction, ApprovalPolicy, Campaign, Message, MessageState
from tests.campaigns.conftest import account, launch_and_prepare, make_campaign, person, user


def _queue_setup(csm: User) -> tuple[Any, Any]:
    person("e1", first_name="Eve", account_id="acme", company="Acme")
    person("e2", first_name="Ed", account_id="acme", company="Acme")
    person("g1", first_name="Gus", account_id="globex", company="Globex")
    account("acme", csm=csm, name="Acme")
    account("globex", csm=user("olga", "campaigns.approve_message"), name="Globex")
    spring = launch_and_prepare(make_campaign("spring", name="Spring", approval_policy=ApprovalPolicy.ALL))
    autumn = launch_and_prepare(make_campaign("autumn", name="Autumn", approval_policy=ApprovalPolicy.ALL))
    return spring, autumn


def test_pages_need_a_login(db, client):
    for url in ("/campaigns/", "/approvals/"):
        response = client.get(url)
        assert response.status_code == 302 and response["Location"].startswith("/login/")


def test_campaign_list_and_detail_with_audience_count_and_preview(db, client, marketer):
    person("ann", first_name="Ann")
    person("bob", first_name="Bob", consent=False)
    make_campaign("spring", name="Spring sale")
    client.force_login(marketer)
    listing = client.get("/campaigns/")
    assert listing.status_code == 200 and b"Spring sale" in listing.content

    detail = client.get("/campaigns/spring/", {"person": "ann"})
    assert detail.status_code == 200
    html = detail.content.decode()
    assert 'id="audience-count"' in html and ">2<" in html
    assert '<iframe class="email" sandbox=""' in html and "srcdoc=" in html
    assert "Ann, picked for you" in html
    assert "&lt;p&gt;Hi Ann,&lt;/p&gt;" in html  # the message is data inside srcdoc, not markup of the page

    declined = client.get("/campaigns/spring/", {"person": "bob"}).content.decode()
    assert "Would not be sent: No email marketing consent" in declined
    assert "No person is known by" in client.get("/campaigns/spring/", {"person": "nobody"}).content.decode()


def test_launch_from_the_page_needs_the_change_permission(db, client):
    make_campaign("spring")
    viewer = user("vic", "campaigns.view_message")
    client.force_login(viewer)
    assert client.post("/campaigns/spring/launch").status_code == 403
    assert Campaign.objects.get(key="spring").status == "draft"


def test_the_queue_shows_a_csm_only_their_accounts_with_filters(db, client, csm):
    _queue_setup(csm)
    client.force_login(csm)
    page = client.get("/approvals/")
    assert page.status_code == 200
    rows = page.context["rows"]
    assert {r["message"].to_email for r in rows} == {"e1@example.com", "e2@example.com"}
    assert all(r["may_decide"] for r in rows)
    assert [a.external_id for a in page.context["accounts"]] == ["acme"]

    spring_only = client.get("/approvals/", {"campaign": "spring"}).context["rows"]
    assert {r["message"].campaign.key for r in spring_only} == {"spring"} and len(spring_only) == 2
    assert client.get("/approvals/", {"account": "globex"}).context["rows"] == []


def test_approve_many_and_reject_one_from_the_queue(db, client, csm):
    spring, autumn = _queue_setup(csm)
    client.force_login(csm)
    mine = list(Message.objects.filter(campaign=spring, account__external_id="acme").order_by("pk"))
    response = client.post(
        "/approvals/", {"ids": [m.pk for m in mine], "action": "approve", "note": "ok", "next": "/approvals/"}
    )
    assert response.status_code == 302 and response["Location"] == "/approvals/"
    assert {m.state for m in Message.objects.filter(pk__in=[m.pk for m in mine])} == {MessageState.SCHEDULED}
    assert ApprovalAction.objects.filter(action="approve", actor=csm, note="ok").count() == 2

    one = Message.objects.get(campaign=autumn, to_email="e1@example.com")
    client.post(f"/approvals/{one.pk}/", {"action": "reject", "note": "not now"})
    assert Message.objects.get(pk=one.pk).state == MessageState.REJECTED
    trail = client.get(f"/approvals/{one.pk}/").content.decode()
    assert "Rejected</strong> by casey: “not now”" in trail


def test_a_denied_decision_from_the_page_changes_nothing(db, client, csm, marketer):
    spring, _ = _queue_setup(csm)
    theirs = Message.objects.get(campaign=spring, account__external_id="globex")
    mine = Message.objects.get(campaign=spring, to_email="e1@example.com")
    before = list(Message.objects.order_by("pk").values_list("pk", "state"))

    client.force_login(csm)
    assert client.post("/approvals/", {"ids": [mine.pk, theirs.pk], "action": "approve"}).status_code == 403
    assert client.get(f"/approvals/{theirs.pk}/").status_code == 404

    client.force_login(marketer)
    page = client.get("/approvals/")
    assert len(page.context["rows"]) == 6 and not page.context["any_decidable"]  # may look
    assert b'name="ids"' not in page.content
    assert client.post("/approvals/", {"ids": [mine.pk], "action": "approve"}).status_code == 403
    assert client.post(f"/approvals/{mine.pk}/", {"action": "reject"}).status_code == 403
    assert client.post(f"/approvals/{mine.pk}/", {"action": "edit", "subject": "x"}).status_code == 403

    assert list(Message.objects.order_by("pk").values_list("pk", "state")) == before
    assert Message.objects.get(pk=mine.pk).subject != "x"
    assert not ApprovalAction.objects.exists()


def test_edit_from_the_message_page_shows_in_the_preview_and_the_trail(db, client, csm):
    spring, _ = _queue_setup(csm)
    message = Message.objects.get(campaign=spring, to_email="e1@example.com")
    client.force_login(csm)
    page = client.get(f"/approvals/{message.pk}/").content.decode()
    assert 'id="preview" sandbox=""' in page and 'id="edit"' in page
    response = client.post(
        f"/approvals/{message.pk}/",
        {
            "action": "edit",
            "subject": "Eve, a word from Casey",
            "preheader": "",
            "html": "<p>Hello Eve</p>",
            "text": "Hello Eve",
            "note": "warmer",
        },
    )
    assert response.status_code == 302
    page = client.get(f"/approvals/{message.pk}/").content.decode()
    assert "Eve, a word from Casey" in page and "&lt;p&gt;Hello Eve&lt;/p&gt;" in page
    assert "Edited</strong> by casey: “warmer”" in page
    assert "<del>" in page and "<ins>Eve, a word from Casey</ins>" in page


def test_every_campaign_model_has_an_admin_that_lists_and_searches(db, client, csm):
    spring, _ = _queue_setup(csm)
    first = Message.objects.filter(account__external_id="acme").first()
    assert first is not None
    services.decide(csm, [first.pk], "approve")
    User.objects.create_superuser("op", "op@example.com", "pw-for-tests")
    client.login(username="op", password="pw-for-tests")
    for model in ("account", "campaign", "campaignchange", "message", "approvalaction"):
        url = f"/admin/campaigns/{model}/"
        assert client.get(url).status_code == 200, url
        assert client.get(url, {"q": "acme"}).status_code == 200, url
    assert client.get(f"/admin/campaigns/campaign/{spring.pk}/change/").status_code == 200
    message = Message.objects.filter(campaign=spring).first()
    assert message is not None
    assert client.get(f"/admin/campaigns/message/{message.pk}/change/").status_code == 200
