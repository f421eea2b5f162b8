"""A marketer tunes a surface in a real (headless) browser: changes its weights and a quota, picks a
curated item by title, previews the draft against the live version, saves with a note, sees the new
answer, rolls back; each step checked on the page and in the database. Screenshots of the pages go
to docs/console/ (CONSOLE_SCREENSHOTS to put them elsewhere), listed in docs/console.md."""

from __future__ import annotations

import re
from typing import Any

import pytest

from catalog.models import Item
from personalization.models import Surface, SurfaceVersion
from personalization.surfaces import create_surface
from tests.access import PASSWORD, role_user
from tests.browser import BROWSER_MARKS, CONSOLE_SCREENSHOTS, launch_chromium
from tests.browser import in_own_thread as _db
from tests.personalization.test_surfaces_serving import engine, shared_storage  # noqa: F401  (fixtures)

SCREENSHOTS = CONSOLE_SCREENSHOTS

pytestmark = BROWSER_MARKS


def _items_shown(page: Any) -> list[str]:
    """The item ids of the preview table on the surfaces list page, in order."""
    return page.locator("#preview-items tr[data-item]").evaluate_all("rows => rows.map(r => r.dataset.item)")


@pytest.mark.django_db(transaction=True)
def test_a_marketer_tunes_previews_saves_and_rolls_back_a_surface(live_server, engine):  # noqa: F811
    from playwright.sync_api import expect, sync_playwright

    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    create_surface("homepage", "Homepage grid", {"size": 10}, by="setup", note="First cut")
    role_user("mara", "Marketer")
    pick = Item.objects.filter(kind="product", stock__gt=0, active=True).exclude(title="").order_by("external_id")[7]

    with sync_playwright() as playwright:
        browser = launch_chromium(playwright)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            offsite: list[str] = []
            page.on("request", lambda r: offsite.append(r.url) if not r.url.startswith(live_server.url) else None)
            page.goto(f"{live_server.url}/surfaces/")
            page.fill("#id_username", "mara")
            page.fill("#id_password", PASSWORD)
            page.click("button[type=submit]")
            page.wait_for_url("**/surfaces/")
            expect(page.locator("body")).not_to_contain_text("in the admin")

            # What user-00003 gets now, from the live version 1.
            page.fill("input[name=person]", "user-00003")
            page.click("text=Show what they get")
            expect(page.locator("body")).to_contain_text("surface version 1")
            before = _items_shown(page)
            assert len(before) == 10
            page.screenshot(path=str(SCREENSHOTS / "surfaces.png"), full_page=True)

            page.click("text=Homepage grid")
            page.wait_for_url("**/surfaces/homepage/")
            expect(page.locator("#live-version")).to_have_text("Version 1 live")
            page.screenshot(path=str(SCREENSHOTS / "surface-editor.png"), full_page=True)

            # Weights by slider and number, a diversity quota, a curated item picked by title.
            page.fill("#id_w_margin", "3")
            assert page.locator("input[data-mirror=id_w_margin]").input_value() == "3"
            page.locator("input[data-mirror=id_max_share_per_category]").fill("20")
            assert page.input_value("#id_max_share_per_category") == "20"
            search = page.locator("[data-picker=curated_items] .picker-search")
            search.fill(pick.title[:12])
            page.locator(f'[data-picker=curated_items] .picker-results li[data-item="{pick.external_id}"]').click()
            picked = page.locator(f'[data-picker=curated_items] .picked li[data-item="{pick.external_id}"]')
            expect(picked).to_contain_text(pick.title)

            # The draft against the live version, for user-00003 and a few recently active people.
            page.fill("#id_person", "user-00003")
            page.click("#preview-button")
            page.wait_for_url("**/surfaces/homepage/#preview")
            chosen = page.locator("details.compare").first
            expect(chosen).to_have_attribute("data-person", "user-00003")
            expect(chosen.locator("summary")).to_contain_text(re.compile(r"\d+ in, \d+ out, \d+ moved"))
            assert page.locator("details.compare").count() >= 3
            expect(chosen.locator("table.category-mix")).to_be_visible()
            assert chosen.locator(".draft-list tr.new").count() >= 1
            # The draft's values survive the preview, and nothing is saved yet.
            assert page.input_value("#id_w_margin") == "3"
            assert _db(lambda: SurfaceVersion.objects.filter(surface__key="homepage").count()) == 1
            chosen.scroll_into_view_if_needed()
            page.screenshot(path=str(SCREENSHOTS / "surface-preview.png"), full_page=True)

            page.fill("#id_note", "More margin, at most 20 % from one category")
            page.click("#save-button")
            page.wait_for_url("**/surfaces/homepage/#history")
            expect(page.locator("#live-version")).to_have_text("Version 2 live")
            latest = page.locator("table.history tr[data-version='2']")
            expect(latest).to_contain_text("Weight on margin: 0 → 3")
            expect(latest).to_contain_text("Most of the list from one category: 100 % → 20 %")
            expect(latest).to_contain_text(f"Curated default: added {pick.title}")
            version = _db(lambda: SurfaceVersion.objects.get(surface__key="homepage", number=2))
            assert version.created_by == "mara" and version.note.startswith("More margin")
            assert version.config["weights"]["margin"] == 3.0 and version.config["max_share_per_category"] == 0.2
            assert version.config["curated_items"] == [pick.external_id]
            page.screenshot(path=str(SCREENSHOTS / "surface-history.png"), full_page=True)

            # The new answer.
            page.goto(f"{live_server.url}/surfaces/?surface=homepage&person=user-00003")
            expect(page.locator("body")).to_contain_text("surface version 2")
            after = _items_shown(page)
            assert after != before

            # One click back to version 1 (saved as version 3), and the old answer again.
            page.goto(f"{live_server.url}/surfaces/homepage/")
            page.click("button[data-rollback='1']")
            page.wait_for_url("**/surfaces/homepage/#history")
            expect(page.locator("#live-version")).to_have_text("Version 3 live")
            expect(page.locator("table.history tr[data-version='3']")).to_contain_text("Rollback to version 1")
            current, first = _db(
                lambda: (
                    Surface.objects.select_related("current_version").get(key="homepage").current_version,
                    SurfaceVersion.objects.get(surface__key="homepage", number=1),
                )
            )
            assert current is not None and current.number == 3 and current.config == first.config
            page.goto(f"{live_server.url}/surfaces/?surface=homepage&person=user-00003")
            expect(page.locator("body")).to_contain_text("surface version 3")
            assert _items_shown(page) == before

            page.goto(f"{live_server.url}/surfaces/new/")
            expect(page.locator("h1")).to_have_text("New surface")
            page.screenshot(path=str(SCREENSHOTS / "surface-new.png"), full_page=True)
            assert not offsite, f"requests left the server: {offsite}"
        finally:
            browser.close()
