"""Finding 4 of issue 12: the 1 s render limit was bypassed by one filter call. A campaign saved with
``{{ ([[0]*2000]*3000)|sum(start=[])|length }}`` killed a gunicorn worker on preview and cost 54 s per
recipient in preparation; ``wordwrap`` and ``join`` on huge inputs ran 4–6 s. Renders now run in a
child process killed at the deadline (campaigns/render_process.py): every such payload fails as a
``render_error`` within 1.5 s wall, and the save path refuses what a trial render shows."""

from __future__ import annotations

import time

import pytest

from campaigns import render_process, services
from campaigns.models import Campaign, Message, MessageState, Reason
from campaigns.templating import TemplateTooCostly, validate
from tests.campaigns.conftest import launch_and_prepare, make_campaign, person

CONTRACT_SECONDS = 1.5
PAYLOADS = [
    "{{ ([[0]*2000]*3000)|sum(start=[])|length }}",
    "{{ ('x' * 400000)|wordwrap(1)|length }}",
    "{{ ([[0]*2000]*3000)|join(',')|length }}",
    # Each string is 72 MB: seconds on any machine (a smaller one finished inside the budget on a quiet box).
    "{{ ([[0]*4000]*6000)|string|length }}{{ ([[0]*4000]*6000)|string|length }}",
]


@pytest.fixture(autouse=True)
def _warm_render_process() -> None:
    # The first render of a process starts its child; that is not part of any render's budget.
    render_process.render(validate({"text": "warm"}), {})


def _timed(call, *args, **kwargs):
    started = time.monotonic()
    result = call(*args, **kwargs)
    return result, time.monotonic() - started


@pytest.mark.parametrize("payload", PAYLOADS)
def test_finding_4_a_costly_template_fails_as_a_render_error_within_the_budget_in_preparation(db, payload):
    person("ann", first_name="Ann")
    # The first preparation of a process loads the engine; that is not the template's budget.
    launch_and_prepare(make_campaign("warm"))
    campaign = make_campaign("costly")
    services.launch(campaign)
    # As stored by an earlier version, before the save path refused it.
    Campaign.objects.filter(pk=campaign.pk).update(html=f"<p>{payload}</p>")
    _, seconds = _timed(services.prepare, campaign.pk)
    message = Message.objects.get(campaign=campaign)
    assert (message.state, message.reason) == (MessageState.FAILED, Reason.RENDER_ERROR)
    assert message.detail.startswith("html"), message.detail
    # Over the deadline, or refused at once by a size guard that sees the cost coming (join, replace).
    reasons = ("took longer than 1 s", "larger than", "more than")
    assert any(words in message.detail for words in reasons), message.detail
    assert message.html == ""
    assert seconds < CONTRACT_SECONDS, f"preparation took {seconds:.2f} s"


@pytest.mark.parametrize("payload", PAYLOADS)
def test_finding_4_a_costly_template_fails_within_the_budget_in_preview(db, secret_client, payload):
    person("ann", first_name="Ann")
    campaign = make_campaign("costly-preview")
    # The first preview of a process loads the engine; that is not the template's budget.
    assert secret_client.get("/api/v1/campaigns/costly-preview/preview", {"person": "ann"}).status_code == 200
    Campaign.objects.filter(pk=campaign.pk).update(html=f"<p>{payload}</p>")
    response, seconds = _timed(secret_client.get, "/api/v1/campaigns/costly-preview/preview", {"person": "ann"})
    assert response.status_code == 200, response.content
    assert response.json()["outcome"] == MessageState.FAILED
    assert response.json()["reason"].startswith("html")
    assert seconds < CONTRACT_SECONDS, f"preview took {seconds:.2f} s"
    # The process that rendered it still renders the next template at once.
    good, seconds = _timed(render_process.render, validate({"text": "Hi {{ name }}"}), {"name": "Ann"})
    assert good.text == "Hi Ann" and seconds < 0.5


@pytest.mark.parametrize("payload", PAYLOADS)
def test_finding_4_the_save_path_refuses_a_template_costly_for_everyone(db, payload):
    started = time.monotonic()
    with pytest.raises(services.CampaignError) as error:
        make_campaign("refused", html=f"<p>{payload}</p>")
    assert time.monotonic() - started < CONTRACT_SECONDS + 0.5
    assert error.value.attr == "html"
    assert not Campaign.objects.filter(key="refused").exists()


def test_a_template_costly_only_for_some_data_saves_and_fails_for_that_person_only(db):
    person("ann", first_name="Ann")
    person("bob", first_name="Bob")
    payload = "{{ ('x' * (400000 if person.first_name == 'Ann' else 10))|wordwrap(1)|length }}"
    campaign = launch_and_prepare(make_campaign("some", html=f"<p>{payload}</p>", text=""))
    by_person = {m.to_email: m for m in Message.objects.filter(campaign=campaign)}
    assert by_person["ann@example.com"].reason == Reason.RENDER_ERROR
    assert by_person["bob@example.com"].state in (MessageState.SCHEDULED, MessageState.PENDING_APPROVAL)
    assert "19" in by_person["bob@example.com"].html


def test_the_child_is_killed_at_the_deadline_and_the_spare_takes_over():
    process = render_process.RenderProcess()
    try:
        process.render(validate({"text": "warm"}), {})
        time.sleep(0.5)  # let the spare finish starting, as it has in a process that has been running
        kills = process.kills
        started = time.monotonic()
        with pytest.raises(TemplateTooCostly) as error:
            process.render(validate({"text": PAYLOADS[0]}), {})
        assert time.monotonic() - started < CONTRACT_SECONDS
        assert process.kills == kills + 1 and "stopped" in error.value.message
        started = time.monotonic()
        assert process.render(validate({"text": "{{ 6 * 7 }}"}), {}).text == "42"
        assert time.monotonic() - started < 0.5  # the spare was ready
    finally:
        process.stop()


def test_the_child_sees_no_secret_from_the_environment(monkeypatch):
    monkeypatch.setenv("SECRET_KEY", "must-not-reach-the-child")
    monkeypatch.setenv("DATABASE_URL", "postgres://must-not-reach-the-child@db/pe")
    environment = render_process.child_environment()
    assert set(environment) == {"PATH", "PYTHONPATH", "PYTHONDONTWRITEBYTECODE", "OMP_NUM_THREADS"}
    assert "must-not-reach-the-child" not in str(environment)
