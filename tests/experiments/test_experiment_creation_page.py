"""Creating an experiment in the browser: what a variant changes is chosen from what the target has,
a choice from another target is refused with the row named, the plan is checked against the people
the target can reach before saving, and an Analyst can neither open the page nor post to it."""

from __future__ import annotations

import json
from typing import Any

import pytest
from django.test import Client

from experiments.models import Experiment, ExperimentChange
from personalization.surfaces import change_config, create_surface, current_config
from tests.access import role_user
from tests.campaigns.conftest import make_campaign
from tests.experiments.conftest import make_people


def _client(user: Any) -> Client:
    client = Client()
    client.force_login(user)
    return client


def _form(**changes: str) -> dict[str, str]:
    data = {
        "name": "Homepage v2 against v1",
        "key": "homepage-v2",
        "description": "The new weights should lift conversion.",
        "target": "surface:homepage",
        "primary_metric": "conversion",
        "mde": "5",
        "alpha": "0.05",
        "power": "0.8",
        "traffic": "100",
        "baseline": "",
        "v0_key": "control",
        "v0_name": "Control",
        "v0_weight": "1",
        "v0_change": "",
        "v1_key": "v2",
        "v1_name": "Version 2",
        "v1_weight": "1",
        "v1_change": json.dumps({"surface_version": 2}),
        "action": "create",
    }
    data.update(changes)
    return data


@pytest.fixture
def surfaces(db: Any) -> None:
    homepage = create_surface("homepage", "Homepage", {"size": 4}, by="tests")
    change_config(homepage, current_config(homepage), by="mara", note="Heavier recency")
    create_surface("cart", "Cart", {"size": 4}, by="tests")


def test_the_page_offers_each_targets_own_versions(surfaces):
    page = _client(role_user("mara", "Marketer")).get("/experiments/new/").content.decode()
    homepage = page[page.index('data-target="surface:homepage"') :]
    homepage = homepage[: homepage.index("</optgroup>")]
    assert "Version 2 (live): Heavier recency" in homepage and "Version 1" in homepage
    assert 'data-target="surface:cart"' in page


def test_a_marketer_creates_a_draft_whose_variant_serves_a_surface_version(surfaces):
    mara = role_user("mara", "Marketer")
    answer = _client(mara).post("/experiments/new/", _form())

    assert answer.status_code == 302 and answer["Location"] == "/experiments/homepage-v2/"
    experiment = Experiment.objects.get(key="homepage-v2")
    assert (experiment.target_kind, experiment.target_key, experiment.status) == ("surface", "homepage", "draft")
    assert experiment.minimum_detectable_effect == pytest.approx(0.05)
    variants = {v.key: (v.payload, v.is_control) for v in experiment.variants.all()}
    assert variants == {"control": ({}, True), "v2": ({"surface_version": 2}, False)}
    assert ExperimentChange.objects.filter(experiment=experiment, changed_by=mara).exists()  # audited


def test_a_version_of_another_surface_is_refused_in_its_row(surfaces):
    forged = _form(target="surface:cart")  # v2 is a version of the homepage, not of the cart
    answer = _client(role_user("mara", "Marketer")).post("/experiments/new/", forged)

    assert answer.status_code == 400
    assert 'data-error="v1_change"' in answer.content.decode()
    assert not Experiment.objects.exists()


def test_a_campaigns_template_variant_is_checked_too(db):
    make_campaign("spring", name="Spring", variants={"b": {"subject": "Spring, again"}})
    mara = _client(role_user("mara", "Marketer"))
    page = mara.get("/experiments/new/").content.decode()
    assert "Template variant b" in page

    made = mara.post(
        "/experiments/new/",
        _form(key="spring-b", target="campaign:spring", v1_key="b", v1_change=json.dumps({"template_variant": "b"})),
    )
    assert made.status_code == 302
    assert Experiment.objects.get(key="spring-b").variants.get(key="b").payload == {"template_variant": "b"}
    unknown = mara.post(
        "/experiments/new/",
        _form(key="spring-c", target="campaign:spring", v1_key="c", v1_change=json.dumps({"template_variant": "c"})),
    )
    assert unknown.status_code == 400 and not Experiment.objects.filter(key="spring-c").exists()


def test_checking_the_plan_sets_the_people_needed_beside_those_the_target_reaches(surfaces):
    make_people(200)
    mara = _client(role_user("mara", "Marketer"))

    small = mara.post("/experiments/new/", _form(action="plan", baseline="0.03")).content.decode()
    assert 'data-figure="eligible">200<' in small
    assert 'id="plan-warning"' in small and "more than the" in small
    assert not Experiment.objects.exists()  # checking saves nothing

    big = mara.post("/experiments/new/", _form(action="plan", baseline="0.2", mde="200")).content.decode()
    assert 'id="plan-ok"' in big


def test_fields_out_of_range_are_named(surfaces):
    answer = _client(role_user("mara", "Marketer")).post(
        "/experiments/new/", _form(mde="0", traffic="150", v1_key="", v1_change="")
    )
    page = answer.content.decode()
    assert answer.status_code == 400
    assert 'data-error="mde"' in page and 'data-error="traffic"' in page and 'data-error="v1_key"' in page
    assert not Experiment.objects.exists()


def test_an_analyst_reads_experiments_but_cannot_create_one(surfaces):
    ana = _client(role_user("ana", "Analyst"))
    assert ana.get("/experiments/").status_code == 200
    assert 'id="new-experiment"' not in ana.get("/experiments/").content.decode()
    assert ana.get("/experiments/new/").status_code == 403
    assert ana.post("/experiments/new/", _form()).status_code == 403
    assert not Experiment.objects.exists()
