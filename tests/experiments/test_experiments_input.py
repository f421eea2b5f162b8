"""Finding 12 of issue 12: experiments trusted their input. Variant payloads pointing at surface
versions that do not exist started and served version 1 silently; /exposures recorded a variant the
unit was not assigned, and results counted it there; a plan 19× larger than the eligible audience
gave no warning; a variant weight of 1e308 saved and then every start answered 500."""

from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError

from experiments import services
from experiments.models import Experiment, Exposure, Variant
from tests.experiments.conftest import ab, make_people, surface_with_versions

pytestmark = pytest.mark.django_db


def _surface_experiment(payloads, key="grid"):
    return services.create_experiment(
        key,
        "Grid ranking",
        [
            services.VariantSpec("current", payload=payloads[0], is_control=True),
            services.VariantSpec("next", payload=payloads[1]),
        ],
        target_kind="surface",
        target_key="homepage",
        baseline_mean=0.05,
    )


def test_finding_12_a_payload_naming_a_surface_version_that_does_not_exist_is_refused(secret_client):
    surface_with_versions("homepage", 2)
    with pytest.raises(services.ExperimentError) as error:
        _surface_experiment([{"surface_version": 1}, {"surface_version": 7}])
    assert error.value.attr == "variants.1.payload.surface_version"
    assert "has no version 7 (it has 1–2)" in error.value.detail
    assert not Experiment.objects.filter(key="grid").exists()

    body = {
        "key": "grid-api",
        "name": "Grid",
        "target_kind": "surface",
        "target_key": "homepage",
        "variants": [{"key": "a", "payload": {"surface_version": 9}}, {"key": "b", "payload": {}}],
    }
    response = secret_client.post("/api/v1/experiments/", body, format="json")
    assert response.status_code == 400
    assert response.json()["attr"] == "variants.0.payload.surface_version"
    assert not Experiment.objects.filter(key="grid-api").exists()

    # A version that exists is accepted, and so is a model version that can serve only if it exists.
    _surface_experiment([{"surface_version": 1}, {"surface_version": 2}])
    with pytest.raises(services.ExperimentError) as error:
        _surface_experiment([{}, {"model_version": "v999"}], key="grid-model")
    assert error.value.attr == "variants.1.payload.model_version"


def test_a_payload_of_the_wrong_type_is_refused():
    with pytest.raises(services.ExperimentError) as error:
        services.create_experiment("typed", "Typed", ab(), target_kind="global")  # fine
        services.create_experiment(
            "typed-2",
            "Typed",
            [services.VariantSpec("a", payload={"holdout": "yes"}), services.VariantSpec("b")],
        )
    assert error.value.attr == "variants.0.payload.holdout"


def test_a_start_refuses_a_payload_whose_surface_version_has_gone():
    surface_with_versions("homepage", 3)
    experiment = _surface_experiment([{"surface_version": 1}, {"surface_version": 2}])
    from personalization.models import SurfaceVersion

    SurfaceVersion.objects.filter(surface__key="homepage", number=2).delete()
    with pytest.raises(services.ExperimentError) as error:
        services.start(experiment)
    assert error.value.attr == "variants.1.payload.surface_version"
    experiment.refresh_from_db()
    assert experiment.status == "draft"


def test_a_template_variant_must_be_one_of_the_campaigns():
    from tests.campaigns.conftest import make_campaign

    make_campaign("spring", variants={"b": {"subject": "B"}})
    for payload, ok in (({"template_variant": "b"}, True), ({"template_variant": "c"}, False)):
        attempt = lambda p=payload: services.create_experiment(  # noqa: E731
            f"spring-{p['template_variant']}",
            "Spring",
            [services.VariantSpec("a", payload={"template_variant": "default"}), services.VariantSpec("b", payload=p)],
            target_kind="campaign",
            target_key="spring",
        )
        if ok:
            attempt()
        else:
            with pytest.raises(services.ExperimentError) as error:
                attempt()
            assert error.value.attr == "variants.1.payload.template_variant"
            assert "has no template variant 'c' (it has b, default)" in error.value.detail


def test_finding_12_an_exposure_for_a_variant_not_assigned_is_refused_and_counted(running, secret_client):
    experiment = running("assigned-only")
    make_people(1)
    [person] = make_people(1, prefix="p")
    assigned = services.assign("assigned-only", person)
    assert assigned is not None
    other = "control" if assigned.variant == "treatment" else "treatment"

    response = secret_client.post(
        "/api/v1/experiments/assigned-only/exposures", {"person": "p0", "variant": other}, format="json"
    )
    assert response.status_code == 400
    assert response.json()["attr"] == "variant" and response.json()["code"] == "not_assigned"
    assert f"assigned '{assigned.variant}', not '{other}'" in response.json()["detail"]
    assert not Exposure.objects.filter(experiment=experiment).exists()
    experiment.refresh_from_db()
    assert experiment.refused_exposures == 1

    ok = secret_client.post(
        "/api/v1/experiments/assigned-only/exposures", {"person": "p0", "variant": assigned.variant}, format="json"
    )
    assert ok.status_code == 200 and ok.json() == {"logged": True}
    assert Exposure.objects.get(experiment=experiment).variant.key == assigned.variant


def test_finding_12_a_plan_larger_than_the_eligible_audience_is_warned_about(secret_client, staff, client):
    make_people(40)
    body = {
        "key": "too-small",
        "name": "Too small",
        "target_kind": "global",
        "primary_metric": "conversion",
        "baseline_mean": 0.05,
        "minimum_detectable_effect": 0.05,
        "variants": [{"key": "a"}, {"key": "b"}],
    }
    response = secret_client.post("/api/v1/experiments/", body, format="json")
    assert response.status_code == 201, response.json()
    warning = response.json()["plan_warning"]
    planned = response.json()["planned_sample_size"]
    assert planned * 2 > 40
    assert f"needs {planned * 2:,} people" in warning and "more than the 40 this target can reach" in warning

    client.force_login(staff)
    page = client.get("/experiments/too-small/")
    assert page.status_code == 200
    assert "more than the 40 this target can reach" in page.content.decode()

    # A plan the audience can fill carries no warning.
    roomy = {**body, "key": "roomy", "minimum_detectable_effect": 10}
    assert secret_client.post("/api/v1/experiments/", roomy, format="json").json()["plan_warning"] == ""


@pytest.mark.parametrize("weight", [1e308, float("inf"), 1001, -1])
def test_finding_12_weights_outside_sane_bounds_are_refused(secret_client, weight):
    with pytest.raises(services.ExperimentError) as error:
        services.create_experiment("heavy", "Heavy", ab(weights=(1, weight)))
    assert error.value.attr == "variants.1.weight"
    sent: object = "Infinity" if weight == float("inf") else weight
    body = {"key": "heavy-api", "name": "Heavy", "variants": [{"key": "a"}, {"key": "b", "weight": sent}]}
    response = secret_client.post("/api/v1/experiments/", body, format="json")
    assert response.status_code == 400 and response.json()["attr"] == "variants.1.weight"
    assert not Experiment.objects.filter(key__startswith="heavy").exists()


def test_weights_are_bounded_on_the_model_and_when_changed(running):
    experiment = running("bounded")
    variant = Variant.objects.filter(experiment=experiment).first()
    assert variant is not None
    for bad in (1e308, float("nan")):
        variant.weight = bad
        with pytest.raises(ValidationError):
            variant.full_clean()
    with pytest.raises(services.ExperimentError) as error:
        services.set_weights(experiment, {"treatment": 1e308})
    assert error.value.attr == "weights.treatment"
    services.set_weights(experiment, {"treatment": 1000})  # the bound itself is fine
