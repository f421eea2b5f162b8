"""The experiments pages and admin screens, as a signed-in marketer sees them."""

from __future__ import annotations

import pytest
from django.contrib import admin
from django.urls import reverse

from experiments import services
from experiments.models import Experiment
from profiles.models import Event
from tests.experiments.conftest import event, expose, make_people

pytestmark = pytest.mark.django_db


@pytest.fixture
def staff_client(client, staff):
    client.force_login(staff)
    return client


def _with_data(running, now, days, key="page"):
    experiment = running(key, guardrail_metrics=["unsubscribe_rate"], secondary_metrics=["revenue_per_unit"])
    control, treatment = make_people(120, f"{key}c"), make_people(120, f"{key}t")
    expose(experiment, "control", control, now - days(3))
    expose(experiment, "treatment", treatment, now - days(3))
    Event.objects.bulk_create(
        [event(pid, "purchase", now - days(2), price="20.00") for pid in control[:10] + treatment[:22]]
    )
    services.record_results(experiment, now=now - days(1))
    services.record_results(experiment, now=now)
    return experiment


def test_the_results_page_shows_the_chart_the_srm_state_and_the_decision(staff_client, running, now, days):
    _with_data(running, now, days)
    page = staff_client.get("/experiments/page/")
    assert page.status_code == 200
    html = page.content.decode()
    assert 'id="lift-chart"' in html and html.count('class="series"') == 1
    assert "SRM: split as planned" in html
    assert page.context["decision"]["message"] in html
    assert "Revenue per person" in html and "Unsubscribe rate" in html


def test_the_list_links_every_experiment(staff_client, running, now, days):
    _with_data(running, now, days, key="listed")
    services.create_experiment("drafted", "A draft", [services.VariantSpec("a"), services.VariantSpec("b")])
    page = staff_client.get("/experiments/")
    assert page.status_code == 200
    html = page.content.decode()
    assert "/experiments/listed/" in html and "/experiments/drafted/" in html


def test_pages_need_a_staff_login(client, running):
    running("secret")
    response = client.get("/experiments/secret/")
    assert response.status_code == 302 and response["Location"].startswith("/login/")
    assert client.post("/experiments/secret/stop").status_code == 302
    assert Experiment.objects.get(key="secret").status == "running"


def test_buttons_stop_and_conclude_through_the_services(staff_client, running):
    running("buttons")
    response = staff_client.post("/experiments/buttons/stop", {"reason": "enough"}, follow=True)
    assert response.status_code == 200
    assert Experiment.objects.get(key="buttons").status == "stopped"
    staff_client.post("/experiments/buttons/conclude", {"winner": "treatment"})
    experiment = Experiment.objects.get(key="buttons")
    assert (experiment.status, experiment.winner_key) == ("concluded", "treatment")
    refused = staff_client.post("/experiments/buttons/stop", follow=True)
    assert any("Only a running experiment" in str(m) for m in refused.context["messages"])


def test_every_experiments_model_has_a_working_admin(staff_client, running, now, days):
    _with_data(running, now, days, key="admin")
    ours = [m for m in admin.site._registry if m._meta.app_label == "experiments"]
    assert len(ours) == 6
    for model in ours:
        url = reverse(f"admin:experiments_{model._meta.model_name}_changelist")
        assert staff_client.get(url).status_code == 200, url
        assert staff_client.get(url, {"q": "admin"}).status_code == 200, url
    change = reverse("admin:experiments_experiment_change", args=[Experiment.objects.get(key="admin").pk])
    assert staff_client.get(change).status_code == 200
