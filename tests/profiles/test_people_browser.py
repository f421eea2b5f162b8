"""A marketer finds a person by email in a real (headless) browser and reads their consent and
timeline; an administrator erases a person after the confirmation and reads the receipt.

Screenshots of each page go to ``CONSOLE_SCREENSHOTS`` (default ``docs/console/``), for docs/console.md.
"""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.contrib.auth.models import Group, Permission
from django.utils import timezone

from catalog.models import Item
from personalization.roles import ensure_roles
from personalization.surfaces import create_surface
from profiles import services as profiles
from profiles.models import Consent, ConsentChange, ErasureReceipt, Event, Person
from tests.access import PASSWORD, role_user
from tests.browser import BROWSER_MARKS, CONSOLE_SCREENSHOTS, launch_chromium
from tests.campaigns.conftest import launch_and_prepare, make_campaign, person, track

SCREENSHOTS = CONSOLE_SCREENSHOTS

pytestmark = BROWSER_MARKS


def _shop_with_ann() -> Person:
    # A transactional test's database is flushed after it, groups from the migration included.
    ensure_roles(Group, Permission)
    now = timezone.now()
    Item.objects.create(
        external_id="dress-1", title="Cosy Teal Shirt Dress", category="Dresses", price="59.00", stock=3
    )
    Item.objects.create(external_id="boots-2", title="Chelsea Boots", category="Shoes", price="89.00", stock=3)
    Item.objects.create(external_id="lamp-3", title="Brass Floor Lamp", category="Home", price="120.00", stock=3)
    for n, name in enumerate(["bea", "cid", "dan", "eli"]):
        person(f"{name}-{n}", first_name=name.title(), consent=n % 2 == 0, at=now - timedelta(days=20 - n))
    ann = person(
        "ann-1",
        first_name="Ann",
        last_name="Lee",
        email="ann.lee@example.com",
        plan="pro",
        country="DE",
        consent=True,
        at=now - timedelta(days=12),
        seen_at=now - timedelta(days=12),
    )
    Person.objects.update(created_at=now - timedelta(days=30))
    track("ann-1", "Product Viewed", at=now - timedelta(days=3), product_id="lamp-3")
    track("ann-1", "Product Viewed", at=now - timedelta(days=2), product_id="boots-2")
    track("ann-1", "Product Viewed", at=now - timedelta(hours=6), product_id="dress-1")
    track("ann-1", "Product Added", at=now - timedelta(hours=5), product_id="dress-1")
    track(
        "ann-1",
        "Order Completed",
        at=now - timedelta(hours=4),
        order_id="o-77",
        products=[{"product_id": "dress-1", "price": 59, "quantity": 1}],
    )
    profiles.record_consent(ann.pk, "email_marketing", False, source="unsubscribe link", at=now - timedelta(days=1))
    profiles.refresh_profile(ann.pk)
    create_surface("homepage", "Homepage", {"size": 4}, by="tests")
    launch_and_prepare(make_campaign("spring", name="Spring picks"))  # Ann's is held back: she withdrew
    return ann


def _browser(playwright):
    return launch_chromium(playwright)


def _log_in(page, live_server, path: str, username: str) -> None:
    page.goto(f"{live_server.url}{path}")
    assert "/login/?next=" in page.url  # signed-in people only, through the console's login
    page.fill("#id_username", username)
    page.fill("#id_password", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(f"**{path}")


@pytest.mark.django_db(transaction=True)
def test_a_marketer_finds_a_person_by_email_and_reads_their_consent_and_timeline(live_server):
    from playwright.sync_api import expect, sync_playwright

    ann = _shop_with_ann()
    role_user("mara", "Marketer", staff=True)
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    # What the database holds, read before the browser runs (no queries from inside its event loop).
    people = Person.objects.count()
    history_count = ConsentChange.objects.filter(person=ann).count()
    email_changes = ConsentChange.objects.filter(purpose="email_marketing").count()
    events = Event.objects.filter(person=ann).count()
    latest = Event.objects.filter(person=ann).order_by("-timestamp").first()
    assert latest is not None and latest.kind == "purchase" and latest.item_id == "dress-1"
    assert Consent.objects.get(person=ann, purpose="email_marketing").granted is False

    with sync_playwright() as playwright:
        browser = _browser(playwright)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            offsite: list[str] = []
            page.on("request", lambda r: offsite.append(r.url) if not r.url.startswith(live_server.url) else None)
            _log_in(page, live_server, "/people/", "mara")
            expect(page.locator("#people-results tbody tr")).to_have_count(people)
            page.screenshot(path=str(SCREENSHOTS / "people.png"), full_page=True)

            page.fill("#people-q", "Ann.Lee@example.com")
            page.press("#people-q", "Enter")
            page.wait_for_url(re.compile(r".*/people/\?q=Ann.Lee%40example.com"))
            rows = page.locator("#people-results tbody tr")
            expect(rows).to_have_count(1)
            assert rows.first.get_attribute("data-person") == str(ann.pk)
            expect(rows.first).to_contain_text("ann.lee@example.com")
            expect(rows.first).to_contain_text("ann-1")
            page.screenshot(path=str(SCREENSHOTS / "people-search.png"), full_page=True)

            rows.first.locator("a").first.click()
            page.wait_for_url(f"**/people/{ann.pk}/")
            expect(page.locator("#person-name")).to_have_text("ann.lee@example.com")
            # Consent now and its history, as the database holds them.
            email_now = page.locator("#consent-now tr[data-purpose=email_marketing]")
            expect(email_now).to_contain_text("withdrawn")
            expect(email_now).to_contain_text("unsubscribe link")
            history = page.locator("#consent-history tbody tr")
            expect(history).to_have_count(history_count)
            expect(history.first).to_contain_text("withdrawn")
            expect(history.last).to_contain_text("granted")
            # The timeline, newest first, with item titles; as the event log holds it.
            first_event = page.locator("#timeline tbody tr").first
            expect(first_event).to_contain_text("Purchased")
            expect(first_event).to_contain_text("Cosy Teal Shirt Dress")
            expect(page.locator("#timeline tbody tr")).to_have_count(events)
            expect(page.locator("#price-band")).not_to_have_text("–")
            expect(page.locator("#messages tbody tr")).to_have_count(1)
            expect(page.locator("#messages tbody tr")).to_contain_text("Spring picks")
            expect(page.locator("#messages tbody tr")).to_contain_text("Suppressed")
            expect(page.locator("#surfaces [data-surface=homepage]")).to_contain_text("Strategy")
            assert page.locator("#erase-person").count() == 0  # a marketer may not erase
            page.screenshot(path=str(SCREENSHOTS / "person.png"), full_page=True)

            page.click("nav.tabs >> text=Consent")
            page.wait_for_url("**/consent/")
            expect(page.locator("svg#consent-chart g.series")).to_have_count(3)
            expect(page.locator("#consent-changes tbody tr").first).to_contain_text("ann.lee@example.com")
            page.select_option("#purpose-filter", "email_marketing")
            page.wait_for_url("**/consent/?purpose=email_marketing")
            changes = page.locator("#consent-changes tbody tr")
            expect(changes).to_have_count(email_changes)
            page.screenshot(path=str(SCREENSHOTS / "consent.png"), full_page=True)
            assert offsite == []  # everything is served by the app itself
        finally:
            browser.close()

    # Reading changed nothing.
    assert ConsentChange.objects.filter(person=ann).count() == history_count
    assert Event.objects.filter(person=ann).count() == events
    assert Consent.objects.get(person=ann, purpose="email_marketing").granted is False


@pytest.mark.django_db(transaction=True)
def test_an_administrator_erases_a_person_after_confirming_and_reads_the_receipt(live_server):
    from playwright.sync_api import expect, sync_playwright

    ann = _shop_with_ann()
    role_user("adam", "Administrator", staff=True)
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)

    with sync_playwright() as playwright:
        browser = _browser(playwright)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            _log_in(page, live_server, f"/people/{ann.pk}/", "adam")
            page.click("#erase-person")
            page.wait_for_url(f"**/people/{ann.pk}/erase")
            page.screenshot(path=str(SCREENSHOTS / "person-erase.png"), full_page=True)
            page.check("#confirm-erase-box")
            page.click("#confirm-erase")
            page.wait_for_url(re.compile(r".*/people/\?receipt="))
            shown = page.locator("#erasure-receipt code").first.inner_text()
            expect(page.locator("#erasure-receipt")).to_contain_text("user:adam")
            expect(page.locator("#erasure-receipt")).to_contain_text("profiles.Event")
            page.screenshot(path=str(SCREENSHOTS / "erasure-receipt.png"), full_page=True)
        finally:
            browser.close()

    receipt = ErasureReceipt.objects.get()
    assert str(receipt.pk) == shown and receipt.requested_by == "user:adam"
    assert receipt.counts["profiles.Event"] == 6  # the identify call and five events
    assert not Person.objects.filter(pk=ann.pk).exists()
    assert profiles.find_person("ann.lee@example.com") is None
