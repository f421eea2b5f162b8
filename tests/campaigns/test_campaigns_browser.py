"""A CSM works the approval queue in a real (headless) browser: logs in, approves one message and
rejects another; the approved one is sent, the rejected one never is."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from django.contrib.auth.models import Permission, User
from django.core import mail

from campaigns.models import ApprovalAction, ApprovalPolicy, Message, MessageState
from tests.browser import BROWSER_MARKS, launch_chromium
from tests.campaigns.conftest import account, launch_and_prepare, make_campaign, person, send_all, track

SCREENSHOTS = Path(os.getenv("CAMPAIGNS_SCREENSHOTS", "/tmp/campaigns-browser"))
PASSWORD = "a-long-test-password"

pytestmark = BROWSER_MARKS


def _csm() -> User:
    csm = User.objects.create_user("casey", "casey@example.com", PASSWORD, is_staff=True, first_name="Casey")
    csm.user_permissions.add(Permission.objects.get(codename="approve_message"))
    # This CSM may also read campaigns and who they go to (the campaign pages at the end of the walk).
    csm.user_permissions.add(
        Permission.objects.get(codename="view_campaign"), Permission.objects.get(codename="view_person")
    )
    return csm


@pytest.mark.django_db(transaction=True)
def test_a_csm_approves_one_message_and_rejects_another_in_the_browser(live_server, shop):
    from playwright.sync_api import expect, sync_playwright

    shop()
    csm = _csm()
    account("acme", plan="enterprise", csm=csm, name="Acme Corp")
    person("eve", first_name="Eve", account_id="acme", plan="enterprise")
    track("eve", "Product Viewed", product_id="a1")
    person("ed", first_name="Ed", account_id="acme", plan="enterprise")
    track("ed", "Product Viewed", product_id="c1")
    person("gus", first_name="Gus", account_id="globex", plan="enterprise")  # another CSM's account
    rule = {"all": [{"field": "account.plan", "op": "eq", "value": "enterprise"}]}
    campaign = launch_and_prepare(
        make_campaign("spring", name="Spring picks", approval_policy=ApprovalPolicy.RULE, approval_rule=rule)
    )
    eve = Message.objects.get(campaign=campaign, to_email="eve@example.com")
    ed = Message.objects.get(campaign=campaign, to_email="ed@example.com")
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)

    with sync_playwright() as playwright:
        browser = launch_chromium(playwright)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            page.goto(f"{live_server.url}/approvals/")
            assert "/login/?next=" in page.url  # signed-in people only, through the console's login
            page.fill("#id_username", "casey")
            page.fill("#id_password", PASSWORD)
            page.click("button[type=submit]")
            page.wait_for_url("**/approvals/")

            rows = page.locator("tr[data-message]")
            expect(rows).to_have_count(2)  # Eve and Ed; Gus belongs to another CSM's account
            expect(page.locator("body")).not_to_contain_text("gus@example.com")
            page.screenshot(path=str(SCREENSHOTS / "queue.png"), full_page=True)

            # Eve's message, exactly as it will be sent, then approve it.
            page.click(f"tr[data-message='{eve.pk}'] a")
            page.wait_for_url(f"**/approvals/{eve.pk}/")
            frame = page.frame_locator("iframe#preview")
            expect(frame.locator("body")).to_contain_text("Hi Eve,")
            expect(frame.locator("body")).to_contain_text("Item B")
            expect(page.locator("h1")).to_contain_text("Eve, picked for you")
            page.screenshot(path=str(SCREENSHOTS / "message.png"), full_page=True)
            page.fill("#decide input[name=note]", "Good to go")
            page.click("#approve")
            page.wait_for_url("**/approvals/")
            expect(page.locator(".messages")).to_contain_text("Approved 1 message.")
            expect(rows).to_have_count(1)

            # Ed's message: reject it from its page.
            page.click(f"tr[data-message='{ed.pk}'] a")
            page.wait_for_url(f"**/approvals/{ed.pk}/")
            page.click("#reject")
            page.wait_for_url("**/approvals/")
            expect(page.locator(".messages")).to_contain_text("Rejected 1 message.")
            expect(page.locator(".empty")).to_contain_text("no message is waiting for approval")

            # Every state: the decisions, with their trail.
            page.select_option("select[name=state]", "")
            page.wait_for_load_state("load")
            expect(rows).to_have_count(2)
            page.screenshot(path=str(SCREENSHOTS / "decided.png"), full_page=True)
            page.goto(f"{live_server.url}/approvals/{eve.pk}/")
            expect(page.locator("#audit")).to_contain_text("Approved by casey: “Good to go”")
            page.screenshot(path=str(SCREENSHOTS / "trail.png"), full_page=True)

            page.goto(f"{live_server.url}/campaigns/")
            expect(page.locator("#campaigns")).to_contain_text("Spring picks")
            page.screenshot(path=str(SCREENSHOTS / "campaigns.png"), full_page=True)
            page.goto(f"{live_server.url}/campaigns/spring/?person=ed")
            expect(page.locator("#audience-count")).to_have_text("3")
            page.screenshot(path=str(SCREENSHOTS / "campaign.png"), full_page=True)
        finally:
            browser.close()

    eve.refresh_from_db()
    ed.refresh_from_db()
    assert (eve.state, eve.decided_by) == (MessageState.SCHEDULED, csm)
    assert (ed.state, ed.decided_by) == (MessageState.REJECTED, csm)
    assert list(ApprovalAction.objects.order_by("at").values_list("message_id", "action")) == [
        (eve.pk, "approve"),
        (ed.pk, "reject"),
    ]

    mail.outbox.clear()
    assert send_all() == {"sent": 1}
    assert [m.to for m in mail.outbox] == [["eve@example.com"]]
    send_all()
    assert [m.to for m in mail.outbox] == [["eve@example.com"]]
    assert Message.objects.get(pk=ed.pk).sent_at is None
