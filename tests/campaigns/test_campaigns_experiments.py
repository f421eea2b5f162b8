"""Experiments in campaigns: a campaign holdout receives nothing and is measured; send-time optimization
runs with a holdout sent at the fixed time; template variants and subject lines can be an experiment's
variants; variants can also follow segments."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from django.core import mail

from campaigns import services
from campaigns.models import Message, MessageState, Reason
from experiments import services as experiments
from experiments.models import Experiment, Exposure, Status
from tests.campaigns.conftest import launch_and_prepare, make_campaign, person, send_all, track

PEOPLE = 30


def _crowd(**traits: Any) -> None:
    for n in range(PEOPLE):
        person(f"x{n}", first_name=f"X{n}", **traits)


def test_a_campaign_holdout_receives_nothing_and_is_exposed_when_the_others_are_sent(db):
    _crowd()
    campaign = launch_and_prepare(make_campaign("hold", holdout_share=0.3))
    experiment = Experiment.objects.get(key=campaign.holdout_experiment)
    assert (experiment.status, experiment.target_kind, experiment.target_key) == (Status.RUNNING, "campaign", "hold")

    messages = Message.objects.filter(campaign=campaign)
    held = messages.filter(state=MessageState.SUPPRESSED, reason=Reason.HOLDOUT)
    assert 0 < held.count() < PEOPLE
    assert {m.assignments[experiment.key] for m in held} == {"holdout"}
    assert {m.assignments[experiment.key] for m in messages.exclude(reason=Reason.HOLDOUT)} == {"campaign"}
    assert held.filter(html="").count() == held.count()  # nothing rendered for them

    sent = send_all()
    assert sent == {"sent": PEOPLE - held.count()}
    held_out_addresses = set(held.values_list("to_email", flat=True))
    assert not held_out_addresses & {m.to[0] for m in mail.outbox}

    exposures = Exposure.objects.filter(experiment=experiment)
    assert exposures.count() == PEOPLE
    assert exposures.filter(variant__key="holdout").count() == held.count()


def test_send_time_optimization_runs_with_a_holdout_sent_at_the_fixed_time(db):
    _crowd(timezone="Europe/Berlin")
    track("reader", "Email Opened")  # somebody has read an email: there is a pattern to learn
    send_at = datetime(2030, 1, 14, 9, tzinfo=UTC)
    campaign = launch_and_prepare(
        make_campaign("sto", send_time_optimization=True, send_time_holdout_share=0.5, send_at=send_at)
    )
    key = campaign.send_time_experiment
    assert Experiment.objects.get(key=key).primary_metric == "email_open_rate"
    messages = list(Message.objects.filter(campaign=campaign))
    fixed = [m for m in messages if m.assignments[key] == "fixed"]
    optimized = [m for m in messages if m.assignments[key] == "optimized"]
    assert fixed and optimized and len(fixed) + len(optimized) == PEOPLE
    assert {(m.send_time_source, m.scheduled_for) for m in fixed} == {("fixed", send_at)}
    assert {m.send_time_source for m in optimized} == {"cold_start"}
    assert all(m.scheduled_for != send_at for m in optimized)


def test_template_variants_and_subject_lines_as_an_experiments_variants(db):
    _crowd()
    variant_b = {"b": {"html": "<p>Variant B, {{ person.first_name }}</p>"}}
    campaign = make_campaign("spring", variants=variant_b)  # the experiment's payloads name its variants
    experiment = experiments.create_experiment(
        "spring-subject",
        "Spring subject line",
        [
            experiments.VariantSpec("a", payload={"template_variant": "default"}, is_control=True),
            experiments.VariantSpec("b", payload={"template_variant": "b", "subject": "B for {{ person.first_name }}"}),
        ],
        target_kind="campaign",
        target_key="spring",
    )
    experiments.start(experiment)
    campaign = services.update_campaign(campaign, {"experiment_key": "spring-subject"})
    campaign = launch_and_prepare(campaign)
    messages = list(Message.objects.filter(campaign=campaign).select_related("person"))
    b = [m for m in messages if m.assignments.get("spring-subject") == "b"]
    a = [m for m in messages if m.assignments.get("spring-subject") == "a"]
    assert a and b
    for message in b:
        name = message.person.traits["first_name"]
        assert (message.variant, message.subject) == ("b", f"B for {name}")
        assert message.html == f"<p>Variant B, {name}</p>"
    assert all(m.variant == "default" and "picked for you" in m.subject for m in a)

    send_all()
    assert Exposure.objects.filter(experiment=experiment).count() == PEOPLE

    # Concluded with a winner, everyone gets the winning variant (and nobody is exposed any more).
    experiments.conclude(experiment, winner="b")
    later = launch_and_prepare(make_campaign("spring-2", experiment_key="spring-subject", variants={"b": {}}))
    assert set(Message.objects.filter(campaign=later).values_list("variant", flat=True)) == {"b"}
    assert all(not m.assignments for m in Message.objects.filter(campaign=later))


def test_variants_chosen_per_segment(db):
    person("vip", first_name="Vera", plan="enterprise")
    person("reg", first_name="Rick", plan="free")
    campaign = launch_and_prepare(
        make_campaign(
            "seg",
            variants={"vip": {"subject": "A personal note, {{ person.first_name }}"}},
            variant_rules=[{"variant": "vip", "segments": ["enterprise"]}, {"variant": "default"}],
        )
    )
    by_name = {m.person.traits["first_name"]: m for m in Message.objects.filter(campaign=campaign)}
    assert (by_name["Vera"].variant, by_name["Vera"].subject) == ("vip", "A personal note, Vera")
    assert by_name["Rick"].variant == "default"
