"""A marketer builds a campaign in a real (headless) browser: an audience rule with its live count,
the product block, a preview as a person, a test send to a real SMTP server on loopback; then
launches it (prepared in the background behind a progress bar) and reads its funnel. Each step is
checked on the page and in the database; screenshots go to docs/console/ (CONSOLE_SCREENSHOTS to put
them elsewhere), listed in docs/console.md."""

from __future__ import annotations

import re
from typing import Any

import pytest
from django.utils import timezone

from campaigns.lifecycle import wait_for_background_preparations
from campaigns.models import Campaign, CampaignChange, Message
from personalization.surfaces import create_surface
from profiles import services as profiles
from tests.access import PASSWORD, role_user
from tests.browser import BROWSER_MARKS, CONSOLE_SCREENSHOTS, launch_chromium
from tests.browser import in_own_thread as _db
from tests.campaigns.conftest import person, send_all, track

SCREENSHOTS = CONSOLE_SCREENSHOTS

pytestmark = BROWSER_MARKS


def _crowd(n: int) -> None:
    """``n`` more people on the pro plan, each with email marketing consent (a holdout needs people)."""
    result = profiles.ingest_messages(
        [
            {
                "type": "identify",
                "userId": f"pro{i}",
                "traits": {"email": f"pro{i}@example.com", "first_name": f"Pro{i}", "plan": "pro"},
                "messageId": f"identify-pro{i}",
            }
            for i in range(n)
        ],
        refresh=False,
    )
    assert not result.rejected
    for i in range(n):
        found = profiles.find_person(f"pro{i}")
        assert found is not None
        profiles.record_consent(found.pk, "email_marketing", True, source="signup form")


def _cell(page: Any, stage: str) -> int:
    return int(page.locator(f"#funnel tr[data-stage={stage}] td.num").first.inner_text().replace(",", ""))


@pytest.mark.django_db(transaction=True)
def test_a_marketer_builds_previews_test_sends_launches_and_reads_a_campaign(live_server, shop, smtp, settings):
    from playwright.sync_api import expect, sync_playwright

    settings.CELERY_TASK_ALWAYS_EAGER = True
    settings.CAMPAIGN_PREPARE_IN_BACKGROUND = True  # a launch returns at once; a thread prepares
    shop()
    create_surface("email-product-block", "Email product block", {"size": 4}, by="setup")
    person("ann", first_name="Ann", plan="pro")
    track("ann", "Product Viewed", product_id="a1")
    person("bob", first_name="Bob", plan="pro", consent=False)
    person("dee", first_name="Dee", plan="pro")
    person("cy", first_name="Cy", plan="free")
    _crowd(37)
    role_user("mara", "Marketer")
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)

    with sync_playwright() as playwright:
        browser = launch_chromium(playwright)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            offsite: list[str] = []
            page.on("request", lambda r: offsite.append(r.url) if not r.url.startswith(live_server.url) else None)
            page.goto(f"{live_server.url}/campaigns/")
            page.fill("#id_username", "mara")
            page.fill("#id_password", PASSWORD)
            page.click("button[type=submit]")
            page.wait_for_url("**/campaigns/")
            page.click("#new-campaign")
            page.wait_for_url("**/campaigns/new/")

            page.fill("input[name=name]", "Spring picks")
            page.fill("input[name=key]", "spring-picks")
            # No quiet hours: the send below must not depend on the hour the test runs at.
            page.fill("input[name=quiet_start]", "")
            page.fill("input[name=quiet_end]", "")
            expect(page.locator("#audience-live")).to_have_text("46")  # no condition: everyone
            # An audience rule, counted live: plan is pro.
            page.click("#add-row")
            page.fill("input[name=a-0-name]", "plan")
            page.select_option("select[name=a-0-op]", "eq")
            page.fill("input[name=a-0-value]", "pro")
            expect(page.locator("#audience-live")).to_have_text("40")
            expect(page.locator("#no-consent")).to_contain_text("1 of them without email consent")
            expect(page.locator("#audience-reading")).to_have_text("trait.plan = pro")
            # A behaviour row, then removed again.
            page.click("#add-row")
            page.select_option("select[name=a-1-kind]", "event")
            page.select_option("select[name=a-1-name]", "view")
            expect(page.locator("#audience-live")).to_have_text("1")  # only Ann viewed something
            page.click("[data-row='1'] [data-remove]")
            expect(page.locator("#audience-live")).to_have_text("40")

            # Content: the starter blocks (heading, text, products from the email surface) and a button.
            expect(page.locator("#surface-note")).to_contain_text("Products come from the surface email-product-block")
            page.select_option("#block-type", "button")
            page.click("#add-block")
            page.fill("input[name=b-3-label]", "See the whole collection")
            page.fill("input[name=b-3-url]", "https://shop.example.com/spring")
            page.fill("input[name=holdout_share]", "25")

            # Preview as Ann: subject, preheader, the HTML with her products and the text.
            page.fill("input[name=person]", "ann")
            page.click("#preview-button")
            expect(page.locator("#pv-subject")).to_have_text("Ann, picked for you")
            expect(page.locator("#pv-preheader")).to_have_text("New this week")
            frame = page.frame_locator("#pv-html")
            expect(frame.locator("h1")).to_have_text("Ann, picked for you")
            expect(frame.locator("body")).to_contain_text("Your picks")
            expect(frame.locator("body")).to_contain_text("See the whole collection")
            expect(page.locator("#pv-text")).to_contain_text("See the whole collection: http")
            page.click("#code-view summary")
            expect(page.locator("textarea[name=html]")).to_have_value(
                re.compile(r"^\{# builder .*\{% for p in products %\}", re.S)
            )
            page.screenshot(path=str(SCREENSHOTS / "campaign-builder.png"), full_page=True)

            # A test send to a real SMTP server on loopback.
            page.fill("input[name=test_to]", "mara@example.com")
            page.click("#test-send")
            expect(page.locator(".messages")).to_contain_text("Test sent to mara@example.com as ann")
            assert [str(m["To"]) for m in smtp.received] == ["mara@example.com"]
            assert str(smtp.received[0]["Subject"]) == "[Test] Ann, picked for you"
            assert "See the whole collection" in smtp.received[0].get_body(("html",)).get_content()
            expect(page.locator("#audience-live")).to_have_text("40")  # the form came back as it was

            page.click("#save")
            page.wait_for_url("**/campaigns/spring-picks/")
            expect(page.locator(".messages")).to_contain_text("Created Spring picks")
            campaign = _db(lambda: Campaign.objects.get(key="spring-picks"))
            assert campaign.audience == {"all": [{"field": "trait.plan", "op": "eq", "value": "pro"}]}
            assert (campaign.content_surface, campaign.content_limit, campaign.holdout_share) == (
                "email-product-block",
                4,
                0.25,
            )
            assert campaign.html.startswith("{# builder ") and "https://shop.example.com/spring" in campaign.html
            assert campaign.subject == "{{ person.first_name|default('Hello') }}, picked for you"

            # Launch: the confirmation with the audience, the consent exclusions and the holdout.
            page.click("#launch")
            page.wait_for_url("**/campaigns/spring-picks/confirm")
            expect(page.locator("#confirm-audience")).to_have_text("40")
            expect(page.locator("#confirm-no-consent")).to_have_text("1")
            expect(page.locator("#confirm-holdout")).to_have_text("10")  # 25% of 40
            expect(page.locator("#confirm-sending")).to_have_text("29")  # 39 with consent, less a quarter
            expect(page.locator("#launch-summary")).to_contain_text("25% of the audience")
            page.screenshot(path=str(SCREENSHOTS / "campaign-launch.png"), full_page=True)
            page.click("#confirm-launch")
            page.wait_for_url("**/campaigns/spring-picks/")
            # Prepared in the background; the progress bar polls and the page reloads with the results.
            expect(page.locator("#results")).to_be_visible(timeout=60_000)
            _db(lambda: wait_for_background_preparations(timeout=60))

            # Sent by the worker's round; two of those who got it open it and one buys; the funnel reads it.
            own = Message.objects.filter(campaign__key="spring-picks")
            held = _db(lambda: set(own.filter(reason="holdout").values_list("to_email", flat=True)))
            expected = _db(lambda: own.exclude(reason__in=["holdout", "no_consent"]).count())
            assert 0 < len(held) < 40 and _db(send_all) == {"sent": expected}
            sent = _db(lambda: sorted(own.filter(sent_at__isnull=False).values_list("to_email", flat=True)))
            opener, buyer = sent[0], sent[1]
            _db(lambda: own.filter(to_email__in=[opener, buyer]).update(opened_at=timezone.now()))
            _db(lambda: track(buyer.split("@")[0], "Order Completed", product_id="b1", price=19.9, quantity=2))
            page.reload()
            assert (_cell(page, "prepared"), _cell(page, "sent")) == (40 - len(held), expected)
            assert (_cell(page, "opened"), _cell(page, "clicked"), _cell(page, "converted")) == (2, 0, 1)
            expect(page.locator("#funnel tr[data-stage=revenue]")).to_contain_text("39.80")
            rows = page.locator("#holdout tbody tr").evaluate_all(
                "rows => rows.map(r => Array.from(r.cells).map(c => c.innerText.trim()))"
            )
            assert rows[0][:3] == ["Got the campaign", str(40 - len(held)), "1"]
            assert rows[1][:4] == ["Holdout (got nothing)", str(len(held)), "0", "0.0%"]
            expect(page.locator("#effect")).to_contain_text("95% interval")
            expect(page.locator("#effect")).to_contain_text("No difference can be told apart from chance yet.")
            expect(page.locator("#funnel-chart polyline")).to_have_count(4)
            page.screenshot(path=str(SCREENSHOTS / "campaign-results.png"), full_page=True)
            assert not offsite, offsite
        finally:
            browser.close()

    messages = {m.to_email: m for m in Message.objects.filter(campaign__key="spring-picks")}
    assert len(messages) == 40 and "cy@example.com" not in messages
    bob = messages["bob@example.com"]
    assert bob.reason in ("no_consent", "holdout") and bob.sent_at is None
    assert all((m.sent_at is None) == (m.reason != "") for m in messages.values())
    assert list(CampaignChange.objects.filter(campaign__key="spring-picks").values_list("action", flat=True)) == [
        "launch",
        "create",
    ]
