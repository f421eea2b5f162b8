"""A marketer builds the abandoned-cart journey in a real (headless) browser: from its template, with
a refused holdout shown beside its field, runs the one-person test, launches it, and watches the step
counts move on the journey's page while people add to their carts, one buys, and the rest get the
email; each step checked on the page and in the database. Screenshots go to docs/console/
(CONSOLE_SCREENSHOTS to put them elsewhere), listed in docs/console.md."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.contrib.auth.models import Group, Permission
from django.db.models import F

from campaigns.models import Message
from journeys import services
from journeys.models import Entry, EntryState, Journey, StepRun
from personalization.roles import ensure_roles
from profiles import outbox
from tests.access import PASSWORD, role_user
from tests.browser import BROWSER_MARKS, CONSOLE_SCREENSHOTS, launch_chromium
from tests.browser import in_own_thread as _db
from tests.journeys.conftest import cart_campaign, item, now, person, track

SCREENSHOTS = CONSOLE_SCREENSHOTS

pytestmark = BROWSER_MARKS


def _carts(*people: str, hours_ago: float = 0) -> None:
    """People add to their carts (through ingestion, as the API does); the outbox is delivered."""
    for name in people:
        track(name, "Product Added", at=now() - timedelta(hours=hours_ago), product_id="a1", quantity=1)
    outbox.relay()


def _bob_buys() -> None:
    track("bob", "Order Completed", order_id="o-1", products=[{"product_id": "a1", "price": 12.5, "quantity": 2}])
    outbox.relay()


def _advance(elapsed: timedelta = timedelta(0)) -> None:
    """The workers' round, after ``elapsed`` has passed for everyone waiting."""
    if elapsed:
        Entry.objects.filter(state=EntryState.ACTIVE).update(due_at=F("due_at") - elapsed)
    services.advance_due(now=now())


def _counts(page: Any, step: str) -> dict[str, str]:
    node = page.locator(f'.flow [data-step="{step}"]')
    return {k: node.locator(f'[data-count="{k}"]').inner_text() for k in ("entered", "waiting", "moved_on", "exited")}


@pytest.mark.django_db(transaction=True)
def test_a_marketer_builds_tests_launches_and_watches_the_abandoned_cart_journey(live_server):
    from playwright.sync_api import expect, sync_playwright

    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    ensure_roles(Group, Permission)  # a transactional test before this one emptied the tables
    role_user("mara", "Marketer")
    item("a1", title="Blue mug")
    cart_campaign()
    for name in ("ana", "bob", "cy", "dee"):
        person(name)
    track("ana", "Product Added", at=now() - timedelta(hours=6), product_id="a1")  # before the journey exists

    with sync_playwright() as playwright:
        browser = launch_chromium(playwright)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            offsite: list[str] = []
            page.on("request", lambda r: offsite.append(r.url) if not r.url.startswith(live_server.url) else None)
            page.goto(f"{live_server.url}/journeys/")
            page.fill("#id_username", "mara")
            page.fill("#id_password", PASSWORD)
            page.click("button[type=submit]")
            page.wait_for_url("**/journeys/")
            expect(page.locator("nav")).to_contain_text("Journeys")

            # From the template.
            page.click("#new-journey")
            page.wait_for_url("**/journeys/new/")
            expect(page.locator('[data-starter="abandoned-cart"]')).to_contain_text("Wait 4 hours")
            page.screenshot(path=str(SCREENSHOTS / "journey-templates.png"), full_page=True)
            page.locator('[data-starter="abandoned-cart"] a.btn').click()
            page.wait_for_url("**/journeys/new/?starter=abandoned-cart")
            assert page.input_value("#id_key") == "abandoned-cart"
            assert page.input_value("#id_step-0-wait_amount") == "4"
            expect(page.locator("#trigger-summary")).to_have_text(
                "When someone adds something to the cart (Product Added)"
            )
            # Fields follow the step's kind without a round trip.
            expect(page.locator("#id_step-1-campaign")).to_be_visible()
            expect(page.locator("#id_step-0-wait_amount")).to_be_visible()
            page.select_option("select[name=step-0-wait_mode]", "until_event")
            expect(page.locator("#id_step-0-wait_amount")).to_be_hidden()
            expect(page.locator("#id_step-0-until_event")).to_be_visible()
            page.select_option("select[name=step-0-wait_mode]", "duration")

            # A holdout above half is refused beside its field; nothing is stored.
            page.fill("#id_holdout_percent", "60")
            page.click("#save-button")
            expect(page.locator('[data-field="holdout_percent"]')).to_have_text("Give a share from 0 to 50 %.")
            assert _db(lambda: Journey.objects.count()) == 0
            page.fill("#id_holdout_percent", "0")
            # An exit step added and removed again: the list changes, nothing is saved.
            page.click('button[data-add="exit"]')
            expect(page.locator("fieldset.step")).to_have_count(3)
            expect(page.locator('fieldset.step[data-step="2"] [data-summary]')).to_have_text("Leave the journey")
            page.click('button[data-remove="2"]')
            expect(page.locator("fieldset.step")).to_have_count(2)
            expect(page.locator('fieldset.step[data-step="1"] [data-summary]')).to_have_text(
                "Send the email “cart-reminder”"
            )
            page.screenshot(path=str(SCREENSHOTS / "journey-builder.png"), full_page=True)
            page.click("#save-button")
            page.wait_for_url("**/journeys/abandoned-cart/")
            expect(page.locator("#status")).to_have_text("Draft")
            journey = _db(lambda: Journey.objects.select_related("current_version").get(key="abandoned-cart"))
            assert journey.current_version is not None
            assert journey.current_version.definition["steps"] == [
                {"id": "wait", "type": "wait", "seconds": 14400.0},
                {"id": "send", "type": "send_email", "campaign": "cart-reminder"},
            ]
            assert journey.current_version.definition["holdout_share"] == 0.0

            # The test run: Ana carted six hours ago and bought nothing, so she would get the email.
            page.fill("#id_person", "ana")
            page.click("#test-button")
            expect(page.locator("#test-entry")).to_contain_text("Enters at their latest “Product Added”")
            expect(page.locator('#test-path li[data-step="send"]')).to_contain_text("sends the email “cart-reminder”")
            expect(page.locator("#test-outcome")).to_have_text("Finishes the journey after the last step.")
            page.locator("#test-run").scroll_into_view_if_needed()
            page.screenshot(path=str(SCREENSHOTS / "journey-test-run.png"), full_page=True)
            assert _db(lambda: (Entry.objects.count(), Message.objects.count())) == (0, 0)

            page.click("#launch")
            expect(page.locator("#status")).to_have_text("Live")

            # Three people add to their carts; the worker starts their waits. The counts move in place.
            _db(lambda: _carts("bob", "cy", "dee"))
            _db(_advance)
            expect(page.locator('.flow [data-step="wait"] [data-count="waiting"]')).to_have_text("3", timeout=10_000)
            assert _counts(page, "wait") == {"entered": "3", "waiting": "3", "moved_on": "0", "exited": "0"}
            # Bob buys: he leaves from the wait.
            _db(_bob_buys)
            expect(page.locator('.flow [data-step="wait"] [data-count="exited"]')).to_have_text("1", timeout=10_000)
            expect(page.locator('.flow [data-step="wait"] [data-reasons]')).to_contain_text(
                "exit event: Order Completed"
            )
            # His purchase is counted where he was, beside the measures of the journey (nobody held out).
            wait_measures = page.locator('.flow [data-step="wait"] [data-measure="conversion"]')
            expect(wait_measures).to_contain_text("1 of 3 bought (33.3%)", timeout=10_000)
            expect(page.locator('.flow [data-step="wait"] [data-measure="revenue"]')).to_contain_text("25.00 spent")
            expect(page.locator('#journey-holdout [data-measure="conversion"]')).to_contain_text("1 of 3 bought")
            # Four hours later the others get the email.
            _db(lambda: _advance(timedelta(hours=4)))
            expect(page.locator('.flow [data-step="send"] [data-count="moved_on"]')).to_have_text("2", timeout=10_000)
            assert _counts(page, "wait") == {"entered": "3", "waiting": "0", "moved_on": "2", "exited": "1"}
            assert _counts(page, "send") == {"entered": "2", "waiting": "0", "moved_on": "2", "exited": "0"}
            expect(page.locator('[data-total="done"]')).to_have_text("2")
            page.screenshot(path=str(SCREENSHOTS / "journey-flow.png"), full_page=True)

            states, sends, messages = _db(
                lambda: (
                    dict(Entry.objects.values_list("person__traits__email", "state")),
                    StepRun.objects.filter(step="send").count(),
                    sorted(Message.objects.filter(origin__startswith="journey:").values_list("to_email", flat=True)),
                )
            )
            assert states == {"bob@example.com": "exited", "cy@example.com": "done", "dee@example.com": "done"}
            assert sends == 2 and messages == ["cy@example.com", "dee@example.com"]

            page.goto(f"{live_server.url}/journeys/")
            row = page.locator('tr[data-journey="abandoned-cart"]')
            expect(row.locator('[data-count="done"]')).to_have_text("2")
            expect(row.locator('[data-count="exited"]')).to_have_text("1")
            page.screenshot(path=str(SCREENSHOTS / "journeys.png"), full_page=True)
            assert not offsite, f"requests left the server: {offsite}"
        finally:
            browser.close()
