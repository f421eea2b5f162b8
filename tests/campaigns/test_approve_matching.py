"""Approve or reject all that match the queue's filters: a count over every page, a confirmation that
shows it, the same transition and audit record per message as a single approval, only the user's own
accounts; a CSM who is not staff logs in and works the queue; times in the user's time zone."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.test import Client
from django.utils import timezone

from campaigns import services
from campaigns.models import ApprovalAction, ApprovalPolicy, Campaign, Message, MessageState
from tests.access import PASSWORD, role_user
from tests.campaigns.conftest import account, launch_and_prepare, make_campaign, many_people, user

pytestmark = pytest.mark.django_db


def queue(csm: User) -> Campaign:
    """120 messages of Acme (the CSM's) and 7 of Globex (another CSM's), all waiting for approval."""
    many_people("a", 120, "acme")
    many_people("g", 7, "globex")
    account("acme", csm=csm, name="Acme")
    account("globex", csm=user("olga", "campaigns.approve_message"), name="Globex")
    return launch_and_prepare(make_campaign("spring", name="Spring", approval_policy=ApprovalPolicy.ALL))


def pending(account_id: str) -> int:
    return Message.objects.filter(account__external_id=account_id, state=MessageState.PENDING_APPROVAL).count()


def confirm(client: Client, action: str, **filters: str) -> tuple[int, int, str]:
    """The first step: the confirmation page, with the count and the high-water mark it carries."""
    page = client.post("/approvals/", {"scope": "matching", "action": action, **filters})
    assert page.status_code == 200, page.status_code
    html = page.content.decode()
    count = int(re.search(r'name="confirmed" value="(\d+)"', html).group(1))  # type: ignore[union-attr]
    up_to = int(re.search(r'name="up_to" value="(\d+)"', html).group(1))  # type: ignore[union-attr]
    return count, up_to, html


@pytest.fixture
def csm() -> User:
    return role_user("casey", "CSM")  # the role's group, not staff


def test_a_csm_approves_all_matching_across_more_than_one_page(client, csm):
    queue(csm)
    client.force_login(csm)
    page = client.get("/approvals/", {"account": "acme"})
    assert page.status_code == 200
    assert len(page.context["rows"]) == 50 and page.context["page"].paginator.num_pages == 3
    assert page.context["matching"].count == 120
    assert 'id="matching-count">120<' in page.content.decode()

    count, up_to, html = confirm(client, "approve", account="acme", state="pending_approval", note="Q2 batch")
    assert count == 120 and 'Approve <span id="confirm-count">120</span> messages?' in html
    assert "account Acme" in html
    assert pending("acme") == 120  # the confirmation changes nothing

    done = client.post(
        "/approvals/",
        {
            "scope": "matching",
            "action": "approve",
            "account": "acme",
            "state": "pending_approval",
            "confirmed": count,
            "up_to": up_to,
            "note": "Q2 batch",
        },
        follow=True,
    )
    assert "Approved 120 messages matching the filters." in done.content.decode()
    acme = Message.objects.filter(account__external_id="acme")
    # The single-approve path: approved and scheduled at once, decided by the CSM, one audit record each.
    assert set(acme.values_list("state", flat=True)) == {MessageState.SCHEDULED}
    assert set(acme.values_list("decided_by", flat=True)) == {csm.pk}
    trail = ApprovalAction.objects.filter(action="approve")
    assert trail.count() == 120 and set(trail.values_list("message__account__external_id", flat=True)) == {"acme"}
    assert set(trail.values_list("actor", "actor_name", "note")) == {(csm.pk, "casey", "Q2 batch")}
    assert trail.values("message").distinct().count() == 120
    assert pending("globex") == 7


def test_a_csms_bulk_decision_never_touches_another_accounts_messages(client, csm):
    queue(csm)
    client.force_login(csm)
    # Another account's filter matches nothing the CSM may decide (and shows none of its messages).
    assert client.get("/approvals/", {"account": "globex"}).context["matching"].count == 0
    response = client.post("/approvals/", {"scope": "matching", "action": "reject", "account": "globex"})
    assert response.status_code == 302 and pending("globex") == 7

    # Every account, confirmed with a mark above every message in the table: still only theirs.
    top = Message.objects.order_by("-pk").values_list("pk", flat=True)[0]
    count, _, html = confirm(client, "reject")
    assert count == 120 and "all of your queue" in html
    client.post("/approvals/", {"scope": "matching", "action": "reject", "state": "", "confirmed": 120, "up_to": top})
    assert Message.objects.filter(account__external_id="acme", state=MessageState.REJECTED).count() == 120
    assert pending("globex") == 7
    assert not ApprovalAction.objects.filter(message__account__external_id="globex").exists()

    # The service itself: a CSM's decision over "everything" never reaches Globex.
    before = list(Message.objects.filter(account__external_id="globex").values_list("pk", "state", "decided_by"))
    result = services.decide_matching(csm, services.QueueFilters(state=""), "approve", confirmed=10_000, up_to=top)
    assert result.done == []
    assert list(Message.objects.filter(account__external_id="globex").values_list("pk", "state", "decided_by")) == (
        before
    )


def test_someone_who_may_only_look_cannot_decide_all_matching(client, csm):
    queue(csm)
    marketer = role_user("mara", "Marketer", staff=True)
    client.force_login(marketer)
    page = client.get("/approvals/")
    assert page.context["page"].paginator.count == 127 and 'id="matching"' not in page.content.decode()
    response = client.post("/approvals/", {"scope": "matching", "action": "approve", "confirmed": 200, "up_to": 10**9})
    assert response.status_code == 403
    assert pending("acme") == 120 and pending("globex") == 7 and not ApprovalAction.objects.exists()


def test_the_count_matches_what_is_decided_with_every_filter(client, csm):
    campaign = queue(csm)
    autumn = launch_and_prepare(make_campaign("autumn", name="Autumn", approval_policy=ApprovalPolicy.ALL))
    # A third of Spring's Acme messages have waited for two days.
    acme = Message.objects.filter(campaign=campaign, account__external_id="acme").order_by("pk")
    old = list(acme.values_list("pk", flat=True)[:40])
    Message.objects.filter(pk__in=old).update(created_at=timezone.now() - timedelta(days=2))
    client.force_login(csm)

    for filters, expected in [
        ({}, 240),
        ({"campaign": "autumn"}, 120),
        ({"campaign": "spring", "account": "acme"}, 120),
        ({"age": "1d"}, 40),
        ({"age": "3d"}, 0),
        ({"state": "approved"}, 0),
    ]:
        page = client.get("/approvals/", filters)
        assert page.context["matching"].count == expected, filters
        if filters.get("state") != "approved":
            assert page.context["page"].paginator.count == expected, filters

    count, up_to, _ = confirm(client, "approve", age="1d")
    assert count == 40
    client.post("/approvals/", {"scope": "matching", "action": "approve", "age": "1d", "confirmed": 40, "up_to": up_to})
    decided = set(Message.objects.filter(state=MessageState.SCHEDULED).values_list("pk", flat=True))
    assert decided == set(old)
    assert Message.objects.filter(campaign=autumn, state=MessageState.PENDING_APPROVAL).count() == 127

    bad = client.get("/approvals/", {"age": "forever"})
    assert bad.status_code == 200 and "The age filter is not valid" in bad.content.decode()


def test_messages_that_arrive_after_the_confirmation_are_left_alone(client, csm):
    queue(csm)
    client.force_login(csm)
    count, up_to, _ = confirm(client, "approve", account="acme")
    # Meanwhile another campaign puts 120 more Acme messages in the queue.
    launch_and_prepare(make_campaign("late", name="Late", approval_policy=ApprovalPolicy.ALL))
    assert pending("acme") == 240
    client.post(
        "/approvals/", {"scope": "matching", "action": "approve", "account": "acme", "confirmed": count, "up_to": up_to}
    )
    assert pending("acme") == 120
    assert not Message.objects.filter(campaign__key="late").exclude(state=MessageState.PENDING_APPROVAL).exists()


def test_more_matching_than_confirmed_changes_nothing_and_shows_the_new_count(client, csm):
    queue(csm)
    client.force_login(csm)
    _, up_to, _ = confirm(client, "approve", account="acme")
    page = client.post(
        "/approvals/", {"scope": "matching", "action": "approve", "account": "acme", "confirmed": 100, "up_to": up_to}
    )
    assert page.status_code == 200
    html = page.content.decode()
    assert "120 messages match these filters now, more than the 100 you confirmed" in html
    assert 'name="confirmed" value="120"' in html
    assert pending("acme") == 120 and not ApprovalAction.objects.exists()


def test_a_message_decided_meanwhile_is_skipped_not_decided_twice(client, csm):
    queue(csm)
    client.force_login(csm)
    count, up_to, _ = confirm(client, "approve", account="acme")
    first = Message.objects.filter(account__external_id="acme").order_by("pk").first()
    assert first is not None
    services.decide(csm, [first.pk], "reject", "someone else first")
    done = client.post(
        "/approvals/",
        {"scope": "matching", "action": "approve", "account": "acme", "confirmed": count, "up_to": up_to},
        follow=True,
    )
    assert "Approved 119 messages matching the filters." in done.content.decode()
    assert Message.objects.get(pk=first.pk).state == MessageState.REJECTED
    assert ApprovalAction.objects.filter(message=first).count() == 1


def test_a_csm_who_is_not_staff_logs_in_and_sees_only_their_accounts(csm):
    queue(csm)
    assert not csm.is_staff and not csm.is_superuser
    client = Client()
    login = client.post("/login/", {"username": "casey", "password": PASSWORD})
    assert login.status_code == 302
    landing = client.get(login["Location"])
    assert landing.status_code == 302 and landing["Location"] == "/approvals/"
    page = client.get("/approvals/")
    assert page.status_code == 200
    assert {r["message"].account.external_id for r in page.context["rows"]} == {"acme"}
    assert page.context["page"].paginator.count == 120
    html = page.content.decode()
    assert "globex" not in html.lower() and 'href="/admin/"' not in html
    theirs = Message.objects.filter(account__external_id="globex").first()
    assert theirs is not None
    assert client.get(f"/approvals/{theirs.pk}/").status_code == 404
    assert client.post(f"/approvals/{theirs.pk}/", {"action": "approve"}).status_code == 404
    assert Message.objects.get(pk=theirs.pk).state == MessageState.PENDING_APPROVAL
    # The admin's own login still wants staff.
    assert client.get("/admin/").status_code == 302


def _first_waiting_since(html: str) -> str:
    found = re.search(r'<td class="when">([^<]+)</td>', html)
    assert found is not None
    return found.group(1)


def test_times_are_shown_in_the_users_time_zone(client, csm, settings):
    queue(csm)
    Message.objects.update(created_at=datetime(2026, 1, 15, 10, 0, tzinfo=UTC))
    client.force_login(csm)
    page = client.get("/approvals/").content.decode()
    assert _first_waiting_since(page) == "Jan 15 10:00" and "Times in UTC" in page  # the project's zone

    assert client.get("/settings/").status_code == 200
    wrong = client.post("/settings/", {"time_zone": "Mars/Olympus"})
    assert wrong.status_code == 400 and "is not a time zone" in wrong.content.decode()
    saved = client.post("/settings/", {"time_zone": "Asia/Tokyo", "next": "/approvals/"})
    assert saved.status_code == 302 and saved["Location"] == "/approvals/"
    page = client.get("/approvals/").content.decode()
    assert _first_waiting_since(page) == "Jan 15 19:00" and "Times in Asia/Tokyo" in page

    # Another user keeps the project's zone; the API answers in UTC whoever asks.
    other = role_user("olivia", "CSM")
    assert other.pk != csm.pk
    first = Message.objects.filter(account__external_id="acme").order_by("pk").first()
    assert first is not None
    services.decide(csm, [first.pk], "approve")
    answer: Any = client.get(f"/api/v1/messages/{first.pk}").json()
    assert answer["decided_at"].endswith(("Z", "+00:00"))

    client.post("/settings/", {"time_zone": ""})
    assert "Times in UTC" in client.get("/approvals/").content.decode()


def test_more_than_a_request_decides_goes_to_a_worker_with_the_same_guarantees(
    client, csm, settings, django_capture_on_commit_callbacks, monkeypatch
):
    from campaigns import tasks

    settings.CAMPAIGN_BULK_DECISION_INLINE = 50  # 120 is "many" here
    queued: list[tuple[Any, ...]] = []
    monkeypatch.setattr(tasks.decide_matching_messages, "delay", lambda *args: queued.append(args))
    queue(csm)
    client.force_login(csm)
    count, up_to, _ = confirm(client, "approve", account="acme")
    with django_capture_on_commit_callbacks(execute=True):
        answer = client.post(
            "/approvals/",
            {"scope": "matching", "action": "approve", "account": "acme", "confirmed": count, "up_to": up_to},
            follow=True,
        )
    assert "Approving 120 messages matching the filters in the background" in answer.content.decode()
    assert pending("acme") == 120 and len(queued) == 1  # queued after the commit, not decided in the request

    tasks.decide_matching_messages.apply(queued[0])  # the worker
    assert Message.objects.filter(account__external_id="acme", state=MessageState.SCHEDULED).count() == 120
    assert ApprovalAction.objects.filter(actor=csm, action="approve").count() == 120
    assert pending("globex") == 7
    tasks.decide_matching_messages.apply(queued[0])  # delivered twice: nothing more happens
    assert ApprovalAction.objects.count() == 120

    # More matching than confirmed: refused before anything is queued.
    launch_and_prepare(make_campaign("late", name="Late", approval_policy=ApprovalPolicy.ALL))
    queue_more = client.post(
        "/approvals/",
        {"scope": "matching", "action": "reject", "state": "", "confirmed": 60, "up_to": 10**9},
        follow=True,
    )
    assert "120 messages match these filters now, more than the 60 you confirmed" in queue_more.content.decode()
    assert len(queued) == 1 and pending("acme") == 120
