"""In a real (headless) browser: a marketer reads the audit of a morning's changes (a surface tuned,
a template edited, a campaign launched, an approval, a key revoked), narrows it to
surfaces, and rolls the surface back; an analyst reads the same page without the rollback.

The screenshot goes to ``CONSOLE_SCREENSHOTS`` (default ``docs/console/``), for docs/console.md.
"""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Group, Permission, User
from django.utils import timezone

from campaigns import services as campaigns
from campaigns.models import ApprovalPolicy, Message
from personalization import audit
from personalization.models import ApiKey, KeyScope, Surface
from personalization.roles import ensure_roles
from personalization.surfaces import change_config, create_surface
from tests.browser import BROWSER_MARKS, CONSOLE_SCREENSHOTS, launch_chromium
from tests.campaigns.conftest import account, launch_and_prepare, make_campaign, person

SCREENSHOTS = CONSOLE_SCREENSHOTS
PASSWORD = "a-long-test-password"

pytestmark = BROWSER_MARKS


def _user(username: str, role: str, *, staff: bool = False) -> User:
    ensure_roles(Group, Permission)  # a transactional test before this one flushed the migration's groups
    created = User.objects.create_user(username, f"{username}@example.com", PASSWORD, is_staff=staff)
    created.groups.add(Group.objects.get(name=role))
    return created


@pytest.mark.django_db(transaction=True)
def test_a_marketer_reads_the_audit_and_rolls_a_surface_back(live_server):
    from playwright.sync_api import expect, sync_playwright

    mara = _user("mara", "Marketer")
    _user("ana", "Analyst")
    adam = _user("adam", "Administrator", staff=True)
    casey = _user("casey", "CSM")
    surface = create_surface("homepage", "Homepage", {"size": 8}, by="mara")
    change_config(surface, {"size": 12, "weights": {"relevance": 0.6, "margin": 0.4}}, by="mara", note="more margin")
    person("ann", first_name="Ann", account_id="acme")
    account("acme", csm=casey, name="Acme")
    spring = make_campaign("spring", owner=mara, name="Spring picks", approval_policy=ApprovalPolicy.ALL)
    campaigns.update_campaign(spring, {"subject": "{{ person.first_name }}, spring is here"}, mara)
    launch_and_prepare(spring, by=mara)
    campaigns.decide(casey, [Message.objects.get(campaign=spring).pk], "approve", "fine")
    key, _ = ApiKey.issue("web shop", KeyScope.INGEST, created_by=adam)
    ApiKey.objects.filter(pk=key.pk).update(revoked_at=timezone.now())
    audit.record(
        "keys", "revoked", str(key), by=adam, target_id=key.pk, before={"revoked": False}, after={"revoked": True}
    )
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)

    with sync_playwright() as playwright:
        browser = launch_chromium(playwright)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            page.goto(f"{live_server.url}/audit/")
            page.fill("#id_username", "mara")
            page.fill("#id_password", PASSWORD)
            page.click("button[type=submit]")
            page.wait_for_url("**/audit/")
            log = page.locator("#audit-log")
            for text in (
                "New version 2",
                "more margin",
                "Spring picks",
                "spring is here",
                "Approved",
                "fine",
                "Revoked",
            ):
                expect(log).to_contain_text(text)
            kinds = page.locator("#audit-log tbody tr").evaluate_all("rows => rows.map(r => r.dataset.kind)")
            assert {"surfaces", "templates", "campaigns", "approvals", "keys"} <= set(kinds)
            page.screenshot(path=str(SCREENSHOTS / "audit-all.png"), full_page=True)

            page.select_option("select[name=kind]", "surfaces")
            page.wait_for_url("**/audit/?kind=surfaces*")
            expect(page.locator("#audit-log tbody tr")).to_have_count(2)
            page.once("dialog", lambda dialog: dialog.accept())  # "Serve version 1 of this surface again?"
            page.click("#audit-log tr:has-text('Created') button.rollback")
            page.wait_for_url("**/audit/?kind=surfaces")
            expect(page.locator(".messages")).to_contain_text(
                "Homepage serves version 1's settings again, as version 3."
            )
            expect(page.locator("#audit-log tbody tr").first).to_contain_text("Rollback to version 1")
            expect(page.locator("#audit-log tbody tr").first).to_contain_text("12")

            page.click("header form.inline button")  # log out
            page.wait_for_url("**/login/")
            page.goto(f"{live_server.url}/audit/?kind=surfaces")
            page.fill("#id_username", "ana")
            page.fill("#id_password", PASSWORD)
            page.click("button[type=submit]")
            page.wait_for_url("**/audit/?kind=surfaces")
            expect(page.locator("#audit-log tbody tr")).to_have_count(3)
            expect(page.locator("button.rollback")).to_have_count(0)
        finally:
            browser.close()

    live = Surface.objects.get(key="homepage").current_version
    assert live is not None and live.number == 3 and live.config["size"] == 8 and live.created_by == "mara"
