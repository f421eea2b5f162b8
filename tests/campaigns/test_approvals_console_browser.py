"""In a real (headless) browser: a CSM who is not staff logs in, filters the queue to their account,
approves all matching messages (more than a page) after the confirmation with the count, and cannot
open another account's message; a marketer reads the audit of those approvals and sets a time zone.

Screenshots of each page go to ``CONSOLE_SCREENSHOTS`` (default ``docs/console/``), for docs/console.md.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest
from django.contrib.auth.models import Group, Permission, User

from campaigns.models import ApprovalAction, ApprovalPolicy, Message, MessageState
from personalization.models import ConsoleSettings
from personalization.roles import ensure_roles
from tests.browser import BROWSER_MARKS, CONSOLE_SCREENSHOTS, launch_chromium
from tests.campaigns.conftest import account, launch_and_prepare, make_campaign, many_people

SCREENSHOTS = CONSOLE_SCREENSHOTS
PASSWORD = "a-long-test-password"

pytestmark = BROWSER_MARKS


def _user(username: str, role: str, *, staff: bool) -> User:
    ensure_roles(Group, Permission)  # a transactional test before this one flushed the migration's groups
    created = User.objects.create_user(username, f"{username}@example.com", PASSWORD, is_staff=staff)
    created.groups.add(Group.objects.get(name=role))
    return created


def _pending() -> int:
    """Read the database from a thread of its own: Playwright's sync API runs an event loop in this one."""
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(lambda: Message.objects.filter(state=MessageState.PENDING_APPROVAL).count()).result()


def _log_in(page, url: str, username: str) -> None:
    page.fill("#id_username", username)
    page.fill("#id_password", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(url)


@pytest.mark.django_db(transaction=True)
def test_a_csm_who_is_not_staff_approves_all_matching_messages_of_their_account(live_server):
    from playwright.sync_api import expect, sync_playwright

    casey = _user("casey", "CSM", staff=False)
    olga = _user("olga", "CSM", staff=False)
    _user("mara", "Marketer", staff=True)
    many_people("a", 64, "acme")
    many_people("i", 6, "initech")
    many_people("g", 5, "globex")
    account("acme", csm=casey, name="Acme Corp", plan="enterprise")
    account("initech", csm=casey, name="Initech", plan="pro")
    account("globex", csm=olga, name="Globex", plan="enterprise")
    launch_and_prepare(make_campaign("spring", name="Spring picks", approval_policy=ApprovalPolicy.ALL))
    globex = Message.objects.filter(account__external_id="globex").order_by("pk").first()
    assert globex is not None
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)

    with sync_playwright() as playwright:
        browser = launch_chromium(playwright)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            offsite: list[str] = []
            page.on("request", lambda r: offsite.append(r.url) if not r.url.startswith(live_server.url) else None)

            page.goto(f"{live_server.url}/")
            assert "/login/?next=" in page.url
            page.screenshot(path=str(SCREENSHOTS / "login.png"), full_page=True)
            _log_in(page, "**/approvals/", "casey")  # / takes a CSM to the queue
            nav = page.locator("header nav")
            expect(nav).to_contain_text("Approvals")
            expect(nav).not_to_contain_text("Surfaces")
            expect(nav).not_to_contain_text("Audit")
            expect(page.locator("#matching-count")).to_have_text("70")  # their two accounts, every page
            expect(page.locator("body")).not_to_contain_text("Globex")

            # Their account only: 64 messages, 50 on this page.
            page.select_option("select[name=account]", "acme")
            page.wait_for_url("**/approvals/?*account=acme*")
            expect(page.locator("tr[data-message]")).to_have_count(50)
            expect(page.locator("#matching-count")).to_have_text("64")
            expect(page.locator(".pager")).to_contain_text("Page 1 of 2 · 64 messages")
            expect(page.locator("#time-zone")).to_contain_text("Times in UTC")
            page.screenshot(path=str(SCREENSHOTS / "approvals.png"))  # the first screenful of 50 rows

            page.click("#approve-matching")
            expect(page.locator("#confirm h1")).to_have_text("Approve 64 messages?")
            expect(page.locator("#confirm")).to_contain_text("account Acme Corp")
            assert _pending() == 75  # the confirmation changed nothing
            page.fill("#confirm input[name=note]", "Spring batch checked")
            page.screenshot(path=str(SCREENSHOTS / "approvals-confirm.png"), full_page=True)
            page.click("#confirm-button")
            page.wait_for_url("**/approvals/?*account=acme*")
            expect(page.locator(".messages")).to_contain_text("Approved 64 messages matching the filters.")
            expect(page.locator(".empty")).to_contain_text("no message is waiting for approval")
            expect(page.locator("#matching-count")).to_have_text("0")

            # Back to every account of theirs: Initech's six still wait.
            page.select_option("select[name=account]", "")
            page.wait_for_load_state("load")
            expect(page.locator("tr[data-message]")).to_have_count(6)

            # Another account's message does not exist for them.
            answer = page.goto(f"{live_server.url}/approvals/{globex.pk}/")
            assert answer is not None and answer.status == 404
            expect(page.locator("body")).to_contain_text("Page not found")
            expect(page.locator("body")).not_to_contain_text("g0@example.com")

            # Their time zone, from the top bar.
            page.goto(f"{live_server.url}/approvals/")
            page.click("#your-settings-link")
            page.wait_for_url("**/settings/")
            page.select_option("#id_time_zone", "America/New_York")
            page.screenshot(path=str(SCREENSHOTS / "settings.png"), full_page=True)
            page.click("#your-settings button[type=submit]")
            expect(page.locator(".messages")).to_contain_text("Times are now shown in America/New_York.")
            page.goto(f"{live_server.url}/approvals/")
            expect(page.locator("#time-zone")).to_contain_text("Times in America/New_York")

            # A marketer reads the audit: one approval per message, by casey, with the note.
            page.click("header form.inline button")  # log out
            page.wait_for_url("**/login/")
            page.goto(f"{live_server.url}/audit/?kind=approvals")
            _log_in(page, "**/audit/?kind=approvals", "mara")
            rows = page.locator("#audit-log tr[data-kind=approvals]")
            expect(rows).to_have_count(50)
            expect(rows.first).to_contain_text("casey")
            expect(rows.first).to_contain_text("Spring batch checked")
            expect(rows.first).to_contain_text("pending_approval")
            expect(page.locator(".pager")).to_contain_text("Older")
            page.screenshot(path=str(SCREENSHOTS / "audit.png"))
            assert offsite == []
        finally:
            browser.close()

    acme = Message.objects.filter(account__external_id="acme")
    assert set(acme.values_list("state", flat=True)) == {MessageState.SCHEDULED}
    assert set(acme.values_list("decided_by", flat=True)) == {casey.pk}
    assert Message.objects.filter(account__external_id="initech", state=MessageState.PENDING_APPROVAL).count() == 6
    assert Message.objects.filter(account__external_id="globex", state=MessageState.PENDING_APPROVAL).count() == 5
    trail = ApprovalAction.objects.all()
    assert trail.count() == 64
    assert set(trail.values_list("actor", "action", "note")) == {(casey.pk, "approve", "Spring batch checked")}
    assert ConsoleSettings.objects.get(user=casey).time_zone == "America/New_York"
