"""Approval policy, who sees and decides what, edits with their audit trail, and that a denied
action changes nothing."""

from __future__ import annotations

import pytest
from django.core import mail
from rest_framework.test import APIClient

from campaigns import services
from campaigns.models import ApprovalAction, ApprovalPolicy, Message, MessageState
from tests.campaigns.conftest import account, html_of, launch_and_prepare, make_campaign, person, send_all, user


def _people() -> None:
    person("e1", first_name="Eve", account_id="acme", company="Acme", plan="enterprise")
    person("e2", first_name="Ed", account_id="globex", company="Globex", plan="enterprise")
    person("p1", first_name="Pat", account_id="initech", company="Initech", plan="pro")
    person("s1", first_name="Sol")  # no account


def _snapshot() -> list[tuple[int, str, object]]:
    return list(Message.objects.order_by("pk").values_list("pk", "state", "decided_by"))


def _api(account_user) -> APIClient:
    client = APIClient()
    client.force_login(account_user)
    return client


def test_policy_none_schedules_every_message(db):
    _people()
    campaign = launch_and_prepare(make_campaign("none"))
    assert set(Message.objects.filter(campaign=campaign).values_list("state", flat=True)) == {MessageState.SCHEDULED}


def test_policy_all_holds_every_message_for_approval(db):
    _people()
    campaign = launch_and_prepare(make_campaign("all", approval_policy=ApprovalPolicy.ALL))
    messages = Message.objects.filter(campaign=campaign)
    assert set(messages.values_list("state", flat=True)) == {MessageState.PENDING_APPROVAL}
    assert send_all() == {}
    assert mail.outbox == []


def test_policy_rule_holds_only_the_enterprise_accounts_messages(db):
    _people()
    account("globex", plan="enterprise")
    rule = {"all": [{"field": "account.plan", "op": "eq", "value": "enterprise"}]}
    campaign = launch_and_prepare(make_campaign("rule", approval_policy=ApprovalPolicy.RULE, approval_rule=rule))
    by_email = {m.to_email: m for m in Message.objects.filter(campaign=campaign)}
    assert by_email["e1@example.com"].state == MessageState.PENDING_APPROVAL
    assert by_email["e1@example.com"].approval_rule_matched == "account.plan = enterprise"
    assert by_email["e2@example.com"].state == MessageState.PENDING_APPROVAL
    assert by_email["p1@example.com"].state == MessageState.SCHEDULED
    assert by_email["s1@example.com"].state == MessageState.SCHEDULED
    assert send_all() == {"sent": 2}
    assert sorted(m.to[0] for m in mail.outbox) == ["p1@example.com", "s1@example.com"]


def test_approval_rules_only_take_trait_and_account_fields(db):
    with pytest.raises(services.CampaignError) as error:
        make_campaign(
            approval_policy=ApprovalPolicy.RULE,
            approval_rule={"all": [{"field": "event.purchase", "op": "ever"}]},
        )
    assert error.value.attr == "approval_rule"


def test_a_csm_sees_and_decides_only_their_accounts_and_the_approved_one_is_sent(db, csm):
    _people()
    account("acme", csm=csm)
    other = user("olga", "campaigns.approve_message")
    account("globex", csm=other)
    campaign = launch_and_prepare(make_campaign("q", approval_policy=ApprovalPolicy.ALL))

    listed = _api(csm).get("/api/v1/messages", {"state": "pending_approval"}).json()
    assert [m["to_email"] for m in listed["results"]] == ["e1@example.com"]
    assert listed["results"][0]["account"] == "acme"

    mine = Message.objects.get(campaign=campaign, to_email="e1@example.com")
    response = _api(csm).post(f"/api/v1/messages/{mine.pk}/approve", {"note": "looks right"}, format="json")
    assert response.status_code == 200
    assert response.json() == {"done": [mine.pk], "skipped": []}
    mine.refresh_from_db()
    assert mine.state == MessageState.SCHEDULED and mine.decided_by == csm
    action = ApprovalAction.objects.get(message=mine)
    assert (action.action, action.actor, action.note) == ("approve", csm, "looks right")

    assert send_all() == {"sent": 1}
    assert [m.to for m in mail.outbox] == [["e1@example.com"]]


def test_a_csm_cannot_decide_another_accounts_message_and_nothing_changes(db, csm):
    _people()
    account("acme", csm=csm)
    account("globex", csm=user("olga", "campaigns.approve_message"))
    campaign = launch_and_prepare(make_campaign("q", approval_policy=ApprovalPolicy.ALL))
    mine = Message.objects.get(campaign=campaign, to_email="e1@example.com")
    theirs = Message.objects.get(campaign=campaign, to_email="e2@example.com")
    before = _snapshot()

    response = _api(csm).post(
        "/api/v1/messages/decisions", {"ids": [mine.pk, theirs.pk], "action": "approve"}, format="json"
    )
    assert response.status_code == 403
    assert response.json()["type"] == "permission_error"
    assert _api(csm).get(f"/api/v1/messages/{theirs.pk}").status_code == 404
    assert _snapshot() == before
    assert not ApprovalAction.objects.exists()


def test_a_marketer_without_the_permission_sees_but_cannot_approve(db, marketer):
    _people()
    campaign = launch_and_prepare(make_campaign("m", approval_policy=ApprovalPolicy.ALL))
    message = Message.objects.filter(campaign=campaign).first()
    assert message is not None
    before = _snapshot()
    client = _api(marketer)
    assert client.get("/api/v1/messages").json()["count"] == 4  # may look
    for url, body in (
        (f"/api/v1/messages/{message.pk}/approve", {}),
        (f"/api/v1/messages/{message.pk}/reject", {}),
        ("/api/v1/messages/decisions", {"ids": [message.pk], "action": "approve"}),
    ):
        response = client.post(url, body, format="json")
        assert response.status_code == 403, url
    assert client.patch(f"/api/v1/messages/{message.pk}", {"subject": "Changed"}, format="json").status_code == 403
    assert _snapshot() == before
    assert Message.objects.get(pk=message.pk).subject != "Changed"
    assert not ApprovalAction.objects.exists()

    # Given the permission for every account, the same marketer can.
    approver = user("lead", "campaigns.approve_message", "campaigns.approve_any_account")
    assert _api(approver).post(f"/api/v1/messages/{message.pk}/approve", {}, format="json").status_code == 200


def test_an_api_key_may_read_the_queue_but_not_decide(db, secret_client):
    _people()
    campaign = launch_and_prepare(make_campaign("k", approval_policy=ApprovalPolicy.ALL))
    message = Message.objects.filter(campaign=campaign).first()
    assert message is not None
    assert secret_client.get("/api/v1/messages").json()["count"] == 4
    response = secret_client.post(f"/api/v1/messages/{message.pk}/approve", {}, format="json")
    assert response.status_code == 403
    assert "people" in response.json()["detail"]
    assert Message.objects.get(pk=message.pk).state == MessageState.PENDING_APPROVAL


def test_a_rejected_message_is_never_sent(db, csm):
    _people()
    account("acme", csm=csm)
    campaign = launch_and_prepare(make_campaign("r", approval_policy=ApprovalPolicy.ALL))
    message = Message.objects.get(campaign=campaign, to_email="e1@example.com")
    result = services.decide(csm, [message.pk], "reject", "wrong tone")
    assert result.done == [message.pk]
    message.refresh_from_db()
    assert message.state == MessageState.REJECTED
    send_all()
    assert all(m.to != ["e1@example.com"] for m in mail.outbox)
    # A rejected message cannot be approved afterwards.
    assert services.decide(csm, [message.pk], "approve").skipped == [message.pk]
    assert Message.objects.get(pk=message.pk).state == MessageState.REJECTED


def test_an_edit_is_recorded_with_before_and_after_and_is_what_gets_sent(db, csm):
    _people()
    account("acme", csm=csm)
    campaign = launch_and_prepare(make_campaign("e", approval_policy=ApprovalPolicy.ALL))
    message = Message.objects.get(campaign=campaign, to_email="e1@example.com")
    old_subject = message.subject
    response = _api(csm).patch(
        f"/api/v1/messages/{message.pk}",
        {
            "subject": "Eve,\r\nBcc: x@example.com a note from your CSM",
            "html": '<p>Hello Eve, see <a href="https://acme.example.com/plan">your plan</a>.</p>',
            "note": "personal touch",
        },
        format="json",
    )
    assert response.status_code == 200, response.json()
    body = response.json()
    assert body["subject"] == "Eve, Bcc: x@example.com a note from your CSM"
    assert "/t/c/" in body["html"] and "acme.example.com" not in body["html"]
    edit = ApprovalAction.objects.get(message=message, action="edit")
    assert edit.before["subject"] == old_subject
    assert edit.after["subject"] == "Eve, Bcc: x@example.com a note from your CSM"
    assert edit.note == "personal touch" and edit.actor == csm

    services.decide(csm, [message.pk], "approve")
    assert send_all() == {"sent": 1}
    sent = mail.outbox[0]
    assert sent.subject == "Eve, Bcc: x@example.com a note from your CSM" and not sent.bcc
    assert "your plan" in html_of(sent)
    message.refresh_from_db()
    assert message.links == [["https://acme.example.com/plan", ""]]


def test_two_people_deciding_the_same_message_cannot_both_win(db, csm):
    _people()
    account("acme", csm=csm)
    lead = user("lead", "campaigns.approve_message", "campaigns.approve_any_account")
    campaign = launch_and_prepare(make_campaign("race", approval_policy=ApprovalPolicy.ALL))
    message = Message.objects.get(campaign=campaign, to_email="e1@example.com")
    assert services.decide(csm, [message.pk], "approve").done == [message.pk]
    assert services.decide(lead, [message.pk], "reject").skipped == [message.pk]
    assert ApprovalAction.objects.filter(message=message).count() == 1
    assert Message.objects.get(pk=message.pk).state == MessageState.SCHEDULED
