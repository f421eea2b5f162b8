"""A marketer opens the results page of a running experiment in a real (headless) browser."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission

from experiments import services
from profiles.models import Event
from tests.browser import BROWSER_MARKS, launch_chromium
from tests.experiments.conftest import event, expose, make_people, surface_with_versions

SCREENSHOT = Path(os.getenv("EXPERIMENTS_SCREENSHOT", "/tmp/experiment-results.png"))

pytestmark = BROWSER_MARKS


def _running_experiment_with_data(now, days) -> str:
    surface_with_versions("homepage", 5)
    experiment = services.create_experiment(
        "hero-banner",
        "Homepage hero: seasonal vs evergreen",
        [
            services.VariantSpec("evergreen", "Evergreen", 1, {"surface_version": 3}, True),
            services.VariantSpec("seasonal", "Seasonal", 1, {"surface_version": 4}),
            services.VariantSpec("minimal", "Minimal", 1, {"surface_version": 5}),
        ],
        target_kind="surface",
        target_key="homepage",
        secondary_metrics=["revenue_per_unit"],
        guardrail_metrics=["unsubscribe_rate"],
        baseline_mean=0.08,
        minimum_detectable_effect=0.2,
    )
    services.start(experiment)
    rates = {"evergreen": 0.08, "seasonal": 0.11, "minimal": 0.07}
    for look in range(4):
        rows = []
        for key, rate in rates.items():
            people = make_people(150, f"{key}-{look}-")
            expose(experiment, key, people, now - days(4 - look))
            buyers = people[: int(len(people) * rate)]
            rows += [event(pid, "purchase", now - days(3.5 - look), price="35.00") for pid in buyers]
        Event.objects.bulk_create(rows)
        services.record_results(experiment, now=now - days(3 - look))
    return experiment.key


@pytest.mark.django_db(transaction=True)
def test_the_results_page_of_a_running_experiment_shows_the_chart_and_the_srm_state(live_server, now, days):
    from playwright.sync_api import sync_playwright

    key = _running_experiment_with_data(now, days)
    marketer = get_user_model().objects.create_user("marketer", "marketer@example.com", "a-long-test-password")
    marketer.user_permissions.add(Permission.objects.get(codename="view_experiment"))

    with sync_playwright() as playwright:
        browser = launch_chromium(playwright)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            offsite: list[str] = []
            page.on("request", lambda r: offsite.append(r.url) if not r.url.startswith(live_server.url) else None)
            page.goto(f"{live_server.url}/experiments/{key}/")
            assert "/login/?next=" in page.url  # signed-in people only, through the console's login
            page.fill("#id_username", "marketer")
            page.fill("#id_password", "a-long-test-password")
            page.click("button[type=submit]")
            page.wait_for_url(f"**/experiments/{key}/")

            chart = page.locator("svg#lift-chart")
            chart.wait_for(state="visible")
            assert chart.locator("g.series").count() == 2  # one per treatment
            assert chart.locator("g.series[data-series=seasonal] circle").count() == 4  # one point per look
            srm = page.locator("#srm")
            assert srm.is_visible()
            assert "split as planned" in srm.inner_text()
            assert page.locator("#decision").inner_text().strip()
            assert page.locator("#variants tbody tr").count() == 3
            page.screenshot(path=str(SCREENSHOT), full_page=True)
            assert offsite == []  # everything is served by the app itself
        finally:
            browser.close()
