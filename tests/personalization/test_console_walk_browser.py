"""In a real (headless) browser, on the demo's data (``seed_demo --with-surfaces`` and a trained
engine, as ``make demo`` makes them):

- an Analyst walks every console page and reads data on each (the home page's figures, a surface's
  chart with its versions marked, campaigns, experiments, people, consent, the model, the audit),
  tries changes (save a surface, stop an experiment, launch a campaign, open the experiment form),
  sees each refused, and the database holds what it held;
- a Marketer lands on the home page, creates an experiment in the browser (a surface version picked
  from the surface's own, the plan checked against the people it can reach), and it is in the
  database as chosen;
- anyone opens the public page an email's item link goes to.

Screenshots go to ``CONSOLE_SCREENSHOTS`` (default ``docs/console/``), listed in docs/console.md.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from django.core.cache import cache
from django.core.management import call_command

from campaigns.models import Campaign, Message
from catalog.models import Item
from experiments.models import Experiment, Variant
from experiments.serving import forget_local_configuration
from personalization import feedback, registry
from personalization.item_table import forget_item_table
from personalization.models import AuditEntry, ModelVersion, Surface, SurfaceVersion, VersionStatus
from personalization.surfaces import forget_live_surfaces
from personalization.tasks import train_engine
from profiles.models import Person
from tests.browser import BROWSER_MARKS, CONSOLE_SCREENSHOTS, launch_chromium
from tests.browser import in_own_thread as _db

SCREENSHOTS = CONSOLE_SCREENSHOTS

pytestmark = BROWSER_MARKS


def _state() -> dict[str, Any]:
    """What a refused change must leave as it was."""
    return {
        "surface_versions": sorted(SurfaceVersion.objects.values_list("surface__key", "number")),
        "live": sorted(Surface.objects.values_list("key", "current_version__number")),
        "experiments": sorted(Experiment.objects.values_list("key", "status")),
        "variants": sorted(Variant.objects.values_list("experiment__key", "key", "weight")),
        "campaigns": sorted(Campaign.objects.values_list("key", "status")),
        "messages": Message.objects.count(),
        "audit": AuditEntry.objects.count(),
    }


def _login(page: Any, base: str, login: str) -> None:
    page.goto(f"{base}/login/")
    page.fill("#id_username", login)
    page.fill("#id_password", login)  # the demo's logins: the password is the login
    page.click("button[type=submit]")
    page.wait_for_load_state()


def _post(page: Any, path: str, data: dict[str, str]) -> int:
    """Submit a form from the page as a browser would (the session cookie and the page's CSRF token)."""
    return int(
        page.evaluate(
            """async ([path, data]) => {
                const token = document.querySelector('input[name=csrfmiddlewaretoken]')?.value
                    || document.cookie.split('; ').find(c => c.startsWith('csrftoken='))?.split('=')[1];
                const body = new URLSearchParams({...data, csrfmiddlewaretoken: token});
                const answer = await fetch(path, {method: 'POST', body, redirect: 'manual',
                    headers: {'X-CSRFToken': token}});
                return answer.status;
            }""",
            [path, data],
        )
    )


@pytest.fixture
def demo(transactional_db: Any, settings: Any, tmp_path: Path) -> Iterator[ModelVersion]:
    settings.MODEL_STORAGE_DIR = tmp_path / "models"
    settings.SURFACE_IMPRESSIONS_INLINE = True
    for forget in (registry.forget_loaded_engine, forget_live_surfaces, forget_item_table, feedback.forget_exposures):
        forget()
    forget_local_configuration()
    cache.clear()
    keys = tmp_path / "keys.txt"
    call_command("seed_demo", people=250, days=60, with_surfaces=True, keys_file=str(keys), verbosity=0)
    version = ModelVersion.objects.create(requested_by="tests")
    train_engine.apply(args=[version.pk])
    version.refresh_from_db()
    assert version.status == VersionStatus.ACTIVE, version.error
    registry.forget_loaded_engine()
    yield version
    registry.forget_loaded_engine()
    forget_item_table()


# (path, screenshot or "", a selector that must show data)
ANALYST_PAGES = [
    ("/", "home.png", "#surface-performance tr[data-surface='homepage'] svg.spark"),
    ("/surfaces/", "", "table.data a[href='/surfaces/homepage/']"),
    ("/surfaces/homepage/", "surface-performance.png", "#chart-surface-rates .marker"),
    ("/campaigns/", "campaigns-list.png", "a[href='/campaigns/new-this-week/']"),
    ("/campaigns/new-this-week/", "campaign-page.png", "h1"),
    ("/experiments/", "experiments.png", "a[href='/experiments/homepage-margin-weight/']"),
    ("/experiments/homepage-margin-weight/", "experiment-results.png", "svg"),
    ("/people/", "", "table.data tbody tr"),
    ("/consent/", "", "svg"),
    ("/model/", "model.png", "#active-version dl.facts"),
    ("/audit/", "", "#audit-log tbody tr"),
]


@pytest.mark.django_db(transaction=True)
def test_an_analyst_reads_every_page_and_a_marketer_creates_an_experiment(live_server, demo):
    from playwright.sync_api import expect, sync_playwright

    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    base = live_server.url
    before = _state()
    surface_key = "homepage"
    versions = list(SurfaceVersion.objects.filter(surface__key=surface_key).values_list("number", flat=True))
    assert len(versions) >= 2  # the demo's experiment serves version 2 to its treatment
    item = Item.objects.filter(active=True).exclude(title="").order_by("external_id").first()
    assert item is not None

    with sync_playwright() as playwright:
        browser = launch_chromium(playwright)
        try:
            # --- the Analyst reads everything ---
            analyst = browser.new_page(viewport={"width": 1280, "height": 900})
            offsite: list[str] = []
            analyst.on("request", lambda r: offsite.append(r.url) if not r.url.startswith(base) else None)
            _login(analyst, base, "analyst")
            for path, shot, shows in ANALYST_PAGES:
                answer = analyst.goto(f"{base}{path}")
                assert answer is not None and answer.status == 200, path
                expect(analyst.locator(shows).first).to_be_attached()
                if shot == "surface-performance.png":  # the chart, not the long editor above it
                    analyst.locator("#performance-section").screenshot(path=str(SCREENSHOTS / shot))
                elif shot:
                    analyst.screenshot(path=str(SCREENSHOTS / shot), full_page=True)
            assert offsite == []  # nothing fetched from a network: charts are drawn on the server

            # What the home page says is what the tables hold.
            analyst.goto(f"{base}/")
            expect(analyst.locator("#experiments-running")).to_contain_text("Homepage")
            expect(analyst.locator("#model-version")).to_contain_text(f"v{demo.pk}")
            expect(analyst.locator("#campaigns-in-flight tr[data-campaign]").first).to_be_visible()
            people = _db(Person.objects.filter(merged_into=None).count)
            assert int(analyst.locator('[data-figure="people"]').inner_text()) == people
            answers = analyst.locator("#surface-performance tr[data-surface='homepage'] [data-figure='answers']")
            assert int(answers.inner_text()) > 0

            # No button offers a change...
            analyst.goto(f"{base}/surfaces/{surface_key}/")
            assert analyst.locator("button[value=save]").count() == 0
            analyst.goto(f"{base}/experiments/homepage-margin-weight/")
            assert analyst.get_by_role("button", name="Stop").count() == 0
            analyst.goto(f"{base}/experiments/")
            assert analyst.locator("#new-experiment").count() == 0
            # ...and each change tried anyway is refused.
            analyst.goto(f"{base}/surfaces/{surface_key}/")
            assert _post(analyst, f"/surfaces/{surface_key}/", {"action": "save", "note": "mine"}) == 403
            assert _post(analyst, f"/surfaces/{surface_key}/rollback", {"version": "1"}) == 403
            assert _post(analyst, "/experiments/homepage-margin-weight/stop", {"reason": "mine"}) == 403
            assert _post(analyst, "/campaigns/winter-lookbook/launch", {}) == 403
            refused = analyst.goto(f"{base}/experiments/new/")
            assert refused is not None and refused.status == 403
            analyst.screenshot(path=str(SCREENSHOTS / "refused.png"))
            assert _db(_state) == before

            # --- the Marketer lands on the home page and creates an experiment ---
            marketer = browser.new_page(viewport={"width": 1280, "height": 900})
            _login(marketer, base, "marketer")
            marketer.wait_for_url(f"{base}/")
            expect(marketer.locator("#approvals-waiting [data-figure='approvals']")).not_to_have_text("0")
            marketer.screenshot(path=str(SCREENSHOTS / "home-marketer.png"), full_page=True)
            marketer.get_by_role("link", name="Experiments").first.click()
            marketer.click("#new-experiment")
            marketer.wait_for_url("**/experiments/new/")
            marketer.fill("input[name=name]", "Homepage version 2 for everyone")
            marketer.fill("input[name=key]", "homepage-v2-all")
            marketer.select_option("#target", f"surface:{surface_key}")
            marketer.fill("input[name=v1_key]", "v2")
            marketer.fill("input[name=v1_name]", "Version 2")
            version_2 = json.dumps({"surface_version": 2}, sort_keys=True)
            marketer.select_option("select[name=v1_change]", version_2)
            # The other targets' choices are hidden once the target is chosen.
            groups = marketer.locator("select[name=v1_change] optgroup")
            hidden = dict(groups.evaluate_all("gs => gs.map(g => [g.dataset.target, g.hidden])"))
            assert hidden["surface:homepage"] is False
            assert hidden["surface:email-product-block"] is True and hidden["campaign:winter-lookbook"] is True
            marketer.click("#check-plan")
            expect(marketer.locator("#plan-check")).to_be_visible()
            eligible = int(marketer.locator('#plan-check [data-figure="eligible"]').inner_text().split(",")[0])
            assert eligible == people
            assert _db(lambda: Experiment.objects.filter(key="homepage-v2-all").exists()) is False
            marketer.screenshot(path=str(SCREENSHOTS / "experiment-new.png"), full_page=True)
            marketer.click("#create-experiment")
            marketer.wait_for_url("**/experiments/homepage-v2-all/")
            expect(marketer.get_by_role("button", name="Start")).to_be_visible()
            made = _db(
                lambda: {
                    v.key: (v.payload, v.is_control)
                    for v in Variant.objects.filter(experiment__key="homepage-v2-all", experiment__status="draft")
                }
            )
            assert made == {"control": ({}, True), "v2": ({"surface_version": 2}, False)}
            owner = _db(lambda: Experiment.objects.get(key="homepage-v2-all").owner.username)  # type: ignore[union-attr]
            assert owner == "marketer"

            # --- the public page an email's item link goes to ---
            visitor = browser.new_page(viewport={"width": 1280, "height": 800})
            shown = visitor.goto(f"{base}/items/{item.external_id}")
            assert shown is not None and shown.status == 200
            expect(visitor.locator("#item-title")).to_have_text(item.title)
            visitor.screenshot(path=str(SCREENSHOTS / "item.png"))
        finally:
            browser.close()
