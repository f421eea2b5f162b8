"""Template injection through the campaign save path: refused when the campaign is saved (API,
services, admin), or rendered inert (the message fails for that person, nothing leaks, nothing is sent)."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import User
from django.core import mail

from campaigns import services
from campaigns.models import Campaign, CampaignChange, Message, MessageState, Reason
from tests.campaigns.conftest import campaign_values, html_of, launch_and_prepare, make_campaign, person, send_all

REFUSED_AT_SAVE = [
    "{{ ''.__class__.__mro__ }}",
    "{{ ''.__class__.__mro__[1].__subclasses__() }}",
    "{{ cycler.__init__.__globals__.os }}",
    "{{ self._TemplateReference__context }}",
    "{{ person.__class__.__init__.__globals__['os'].popen('id').read() }}",
    "{{ products|attr('__class__') }}",
    "{% for c in ().__class__.__base__.__subclasses__() %}{{ c }}{% endfor %}",
    "{{ '{0.__class__}'.format(person) }}",
    "{{ persn.first_name }}",
]


def _payload(**overrides: object) -> dict[str, object]:
    values = campaign_values(**overrides)
    return {"key": "inject", **{k: v for k, v in values.items()}}


@pytest.mark.parametrize("source", REFUSED_AT_SAVE)
def test_the_api_refuses_to_save_an_injection_in_any_field(secret_client, source):
    for field in ("subject", "html", "text"):
        response = secret_client.post("/api/v1/campaigns", _payload(**{field: source}), format="json")
        assert response.status_code == 400, (field, response.json())
        body = response.json()
        assert body["type"] == "validation_error"
        assert body["attr"] == field
    assert not Campaign.objects.exists()
    assert not CampaignChange.objects.exists()


def test_an_injection_in_a_variant_or_block_is_refused_and_named(secret_client):
    response = secret_client.post(
        "/api/v1/campaigns", _payload(variants={"b": {"html": "{{ ''.__class__ }}"}}), format="json"
    )
    assert response.status_code == 400
    assert response.json()["attr"] == "variants"
    assert "variant 'b'" in response.json()["detail"]

    response = secret_client.post(
        "/api/v1/campaigns",
        _payload(blocks={"footer": "{{ self.__dict__ }}"}, html="{% include 'footer' %}"),
        format="json",
    )
    assert response.status_code == 400
    assert response.json()["attr"] == "blocks"
    assert not Campaign.objects.exists()


def test_changing_a_saved_template_to_an_injection_is_refused_and_keeps_the_old_one(db, secret_client):
    campaign = make_campaign("keep")
    response = secret_client.patch(
        "/api/v1/campaigns/keep", {"html": "<p>{{ lipsum.__globals__['os'] }}</p>"}, format="json"
    )
    assert response.status_code == 400
    assert response.json()["attr"] == "html"
    campaign.refresh_from_db()
    assert "__globals__" not in campaign.html
    assert list(CampaignChange.objects.filter(campaign=campaign).values_list("action", flat=True)) == ["create"]


def test_the_admin_form_refuses_an_injection(db, client):
    User.objects.create_superuser("op", "op@example.com", "pw-for-tests")
    client.login(username="op", password="pw-for-tests")
    data = {
        **{k: v for k, v in campaign_values().items() if v is not None and not isinstance(v, (dict, list, bool))},
        "key": "from-admin",
        "channel": "email",
        "html": "{{ ''.__class__.__mro__ }}",
        "audience": '{"all": []}',
        "blocks": "{}",
        "variants": "{}",
        "variant_rules": "[]",
        "approval_rule": "{}",
        "window_weekdays": "[0, 1, 2, 3, 4, 5, 6]",
        "approval_policy": "none",
        "content_surface": "email-product-block",
        "content_kind": "product",
        "send_time_holdout_share": "0",
        "holdout_share": "0",
    }
    response = client.post("/admin/campaigns/campaign/add/", data)
    assert response.status_code == 200  # the form again, with the error
    assert "html" in response.context["adminform"].form.errors
    assert not Campaign.objects.filter(key="from-admin").exists()


DYNAMIC_ATTEMPTS = [
    "{{ person['_' ~ '_class__'] }}",
    "{{ (person|list)['_' ~ '_len__'] }}",
    "{{ [person, 2]|map(attribute='__class__')|list }}",
    "{% include '/etc/passwd' %}",
    # Over budget only for this person's data (the same for everyone is refused at save, see
    # tests/campaigns/test_render_budget.py).
    "{{ 'a' * (10**9 if person.first_name == 'Ann' else 1) }}",
    "{% for i in range(10**9 if person.first_name == 'Ann' else 1) %}x{% endfor %}",
]


@pytest.mark.parametrize("source", DYNAMIC_ATTEMPTS)
def test_what_only_fails_at_render_fails_that_message_and_sends_nothing(db, source):
    person("ann", first_name="Ann")
    campaign = make_campaign("dyn", html=f"<p>{source}</p>", text="")
    launch_and_prepare(campaign)
    message = Message.objects.get(campaign=campaign)
    assert message.state == MessageState.FAILED
    assert message.reason == Reason.RENDER_ERROR
    assert message.detail.startswith("html")
    assert message.html == ""
    assert send_all() == {}
    assert mail.outbox == []


def test_data_cannot_inject_headers_or_markup(db):
    person("ann", first_name="Ann\r\nBcc: victim@example.com", last_name="<script>alert(1)</script>")
    campaign = make_campaign("data", subject="Hi {{ person.first_name }}", html="<p>{{ person.last_name }}</p>")
    launch_and_prepare(campaign)
    assert send_all() == {"sent": 1}
    sent = mail.outbox[0]
    assert "\n" not in sent.subject and "\r" not in sent.subject
    assert sent.to == ["ann@example.com"] and not sent.bcc
    html = html_of(sent)
    assert "<script>" not in html and "&lt;script&gt;" in html


def test_services_refuse_the_same_way(db):
    with pytest.raises(services.CampaignError) as error:
        services.create_campaign("svc", campaign_values(preheader="{{ ''.__class__ }}"))
    assert error.value.attr == "preheader"
    assert "line 1" in error.value.detail
