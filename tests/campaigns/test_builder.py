"""The campaign builder: its form becomes the same stored rules and templates the API takes, the
live count answers while editing, and the pages save, preview, test-send, confirm and report."""

from __future__ import annotations

from typing import Any

import pytest
from django.utils import timezone

from campaigns import builder, funnel
from campaigns.builder import Block, BuilderError, Row
from campaigns.models import Campaign, CampaignChange, CampaignStatus, Message
from campaigns.rules import parse_rule
from personalization.surfaces import create_surface
from tests.campaigns.conftest import launch_and_prepare, make_campaign, person, send_all, track, user

# --- form → rule -------------------------------------------------------------------------------------------


def test_rows_become_the_rule_format():
    form = {
        "match": "all",
        "a-0-kind": "trait",
        "a-0-name": "plan",
        "a-0-op": "in",
        "a-0-value": "pro, enterprise",
        "a-1-kind": "event",
        "a-1-name": "purchase",
        "a-1-op": "did",
        "a-1-times": "3",
        "a-1-days": "30",
        "a-2-kind": "event",
        "a-2-name": "view",
        "a-2-op": "did_not",
        "a-2-times": "1",
        "a-2-days": "14",
        "a-3-kind": "consent",
        "a-3-name": "email_marketing",
        "a-3-op": "granted",
        "a-4-kind": "segment",
        "a-4-op": "not_in",
        "a-4-value": "churned",
        "a-5-kind": "account",
        "a-5-name": "plan",
        "a-5-op": "eq",
        "a-5-value": "enterprise",
        "a-6-kind": "trait",
        "a-6-name": "seats",
        "a-6-op": "gte",
        "a-6-value": "50",
        "a-7-kind": "event",
        "a-7-name": "signup",
        "a-7-op": "did",
    }
    rule = builder.audience_rule(form)
    assert rule == {
        "all": [
            {"field": "trait.plan", "op": "in", "value": ["pro", "enterprise"]},
            {"field": "event.purchase", "op": "at_least", "value": {"times": 3, "days": 30}},
            {"field": "event.view", "op": "not_within_days", "value": 14},
            {"field": "consent.email_marketing", "op": "granted"},
            {"field": "segment", "op": "not_in", "value": ["churned"]},
            {"field": "account.plan", "op": "eq", "value": "enterprise"},
            {"field": "trait.seats", "op": "gte", "value": 50},
            {"field": "event.signup", "op": "ever"},
        ]
    }
    parse_rule(rule, "audience")
    # And back: the stored rule shows as the same rows.
    match, rows = builder.rows_from_rule(rule)  # type: ignore[misc]
    assert match == "all" and builder.audience_rule(builder.row_form(match, rows)) == rule
    assert rows[1] == Row("event", "purchase", "did", times="3", days="30")


def test_no_rows_is_everyone_and_any_is_kept():
    assert builder.audience_rule({"match": "all"}) == {"all": []}
    rule = builder.audience_rule({"match": "any", "a-0-kind": "last_seen", "a-0-op": "within_days", "a-0-days": "7"})
    assert rule == {"any": [{"field": "last_seen", "op": "within_days", "value": 7}]}


@pytest.mark.parametrize(
    ("form", "field"),
    [
        ({"a-0-kind": "trait", "a-0-name": "", "a-0-op": "eq", "a-0-value": "x"}, "a-0-name"),
        ({"a-0-kind": "trait", "a-0-name": "plan", "a-0-op": "eq", "a-0-value": ""}, "a-0-value"),
        ({"a-0-kind": "trait", "a-0-name": "seats", "a-0-op": "gt", "a-0-value": "many"}, "a-0-value"),
        ({"a-3-kind": "event", "a-3-name": "purchase", "a-3-op": "did", "a-3-days": "soon"}, "a-3-days"),
        ({"a-0-kind": "event", "a-0-name": "teleport", "a-0-op": "did"}, "a-0-name"),
        ({"a-0-kind": "event", "a-0-name": "view", "a-0-op": "did", "a-0-times": "0"}, "a-0-times"),
        ({"a-0-kind": "consent", "a-0-name": "newsletter", "a-0-op": "granted"}, "a-0-name"),
        ({"a-0-kind": "weather", "a-0-op": "eq"}, "a-0-kind"),
        ({"match": "some"}, "match"),
    ],
)
def test_a_bad_row_names_its_field(form: dict[str, str], field: str):
    with pytest.raises(BuilderError) as error:
        builder.audience_rule(form)
    assert error.value.field == field


def test_rules_the_rows_cannot_show_are_left_to_the_json_view():
    assert builder.rows_from_rule({"all": [{"any": [{"field": "plan", "op": "exists"}]}]}) is None
    assert builder.rows_from_rule({"all": [{"field": "affinity.category.Women", "op": "gte", "value": 0.3}]}) is None


# --- blocks → template -------------------------------------------------------------------------------------


def _blocks_form() -> dict[str, str]:
    return {
        "b-0-type": "heading",
        "b-0-text": "{{ person.first_name }}, <new> picks",
        "b-1-type": "text",
        "b-1-text": "First paragraph.\n\nSecond & last.",
        "b-2-type": "products",
        "b-2-text": "For you",
        "b-2-surface": "email-picks",
        "b-2-limit": "3",
        "b-3-type": "image",
        "b-3-src": "https://cdn.example.com/banner.png",
        "b-3-alt": "Spring sale",
        "b-3-url": "https://shop.example.com/sale",
        "b-4-type": "button",
        "b-4-label": "Shop now",
        "b-4-url": "https://shop.example.com/",
    }


def test_blocks_become_a_template_and_come_back():
    blocks = builder.blocks_of(_blocks_form())
    content = builder.render_blocks(blocks)
    assert (content.surface, content.limit) == ("email-picks", 3)
    html = content.html
    assert "{{ person.first_name }}, &lt;new&gt; picks" in html  # typed text escaped, template code kept
    assert "<p" in html and "Second &amp; last." in html
    assert "{% for p in products %}" in html and '<a href="{{ p.url }}"' in html and "{{ p.reason }}" in html
    assert '<img src="https://cdn.example.com/banner.png" alt="Spring sale"' in html
    assert '<a href="https://shop.example.com/" style=' in html and ">Shop now</a>" in html
    assert "{{ unsubscribe_url }}" in html
    assert "Shop now: https://shop.example.com/" in content.text and "- {{ p.title }}: {{ p.url }}" in content.text
    assert builder.blocks_from_html(html) == blocks
    assert builder.blocks_of(builder.block_form(blocks)) == blocks
    # Edited as code, the HTML no longer matches its blocks: it is shown as code.
    assert builder.blocks_from_html(html.replace("Shop now</a>", "Buy</a>")) is None
    assert builder.blocks_from_html("<p>hand written</p>") is None


@pytest.mark.parametrize(
    ("form", "field"),
    [
        ({"b-0-type": "heading", "b-0-text": ""}, "b-0-text"),
        ({"b-0-type": "button", "b-0-label": "Go", "b-0-url": "javascript:alert(1)"}, "b-0-url"),
        ({"b-0-type": "image", "b-0-src": "ftp://x"}, "b-0-src"),
        ({"b-0-type": "products", "b-0-surface": ""}, "b-0-surface"),
        ({"b-0-type": "products", "b-0-surface": "a", "b-0-limit": "50"}, "b-0-limit"),
        ({"b-0-type": "products", "b-0-surface": "a", "b-1-type": "products", "b-1-surface": "b"}, "b-1-type"),
        ({"b-0-type": "video"}, "b-0-type"),
    ],
)
def test_a_bad_block_names_its_field(form: dict[str, str], field: str):
    with pytest.raises(BuilderError) as error:
        builder.blocks_of(form)
    assert error.value.field == field


def test_the_holdout_interval():
    found = funnel.effect(funnel.Group(1000, 120, 0), funnel.Group(1000, 80, 0))
    assert found is not None
    assert found.difference == pytest.approx(0.04)
    assert found.low == pytest.approx(0.04 - 1.959964 * (0.12 * 0.88 / 1000 + 0.08 * 0.92 / 1000) ** 0.5)
    assert found.low > 0 and found.verdict == "The campaign raised conversion."
    assert funnel.effect(funnel.Group(10, 1, 0), funnel.Group(0, 0, 0)) is None
    assert funnel.effect(funnel.Group(50, 5, 0), funnel.Group(50, 5, 0)).verdict.startswith("No difference")  # type: ignore[union-attr]


# --- the pages ---------------------------------------------------------------------------------------------


def _page_form(**overrides: Any) -> dict[str, str]:
    form = {
        "name": "Spring picks",
        "key": "spring-picks",
        "channel": "email",
        "match": "all",
        "a-0-kind": "trait",
        "a-0-name": "plan",
        "a-0-op": "eq",
        "a-0-value": "pro",
        "subject": "{{ person.first_name }}, picked for you",
        "preheader": "New this week",
        "content_mode": "blocks",
        "b-0-type": "heading",
        "b-0-text": "Hi {{ person.first_name }}",
        "b-1-type": "products",
        "b-1-surface": "email-picks",
        "b-1-limit": "2",
        "item_url": "https://shop.example.com/p/{item_id}",
        "holdout_share": "0",
        "send_time_holdout_share": "0",
        "approval_policy": "none",
        "action": "save",
    }
    form.update(overrides)
    return form


@pytest.fixture
def marketer_client(client, marketer):
    client.force_login(marketer)
    return client


@pytest.fixture
def crowd(shop):
    shop()
    create_surface("email-picks", "Email picks", {"size": 4}, by="tests")
    person("ann", first_name="Ann", plan="pro")
    track("ann", "Product Viewed", product_id="a1")
    person("bob", first_name="Bob", plan="pro", consent=False)
    person("cy", first_name="Cy", plan="free")


def test_the_count_endpoint_answers_while_editing(marketer_client, crowd):
    answer = marketer_client.post("/campaigns/builder/count", _page_form()).json()
    assert answer["count"] == 2 and answer["no_consent"] == 1
    assert answer["rule"] == {"all": [{"field": "trait.plan", "op": "eq", "value": "pro"}]}
    assert answer["reading"] == "trait.plan = pro"
    wrong = marketer_client.post("/campaigns/builder/count", _page_form(**{"a-0-op": "gt", "a-0-value": "x"})).json()
    assert wrong["error"]["field"] == "a-0-value" and wrong["error"]["label"] == "Audience condition 1 (value)"
    everyone = marketer_client.post("/campaigns/builder/count", {"match": "all"}).json()
    assert everyone["count"] == 8  # no rows: everyone, the 3 people and the shop's 5 browsers


def test_a_marketer_creates_and_edits_a_campaign_with_the_builder(marketer_client, crowd, marketer):
    response = marketer_client.post("/campaigns/new/", _page_form())
    assert response.status_code == 302 and response["Location"] == "/campaigns/spring-picks/"
    campaign = Campaign.objects.get(key="spring-picks")
    assert campaign.audience == {"all": [{"field": "trait.plan", "op": "eq", "value": "pro"}]}
    assert (campaign.content_surface, campaign.content_limit, campaign.owner) == ("email-picks", 2, marketer)
    assert campaign.html.startswith("{# builder ") and "{% for p in products %}" in campaign.html
    assert campaign.holdout_share == 0 and campaign.cap_per_day is None
    page = marketer_client.get("/campaigns/spring-picks/edit").content.decode()
    assert 'value="Hi {{ person.first_name }}"' in page and 'name="b-1-surface"' in page
    assert "Products come from the surface <strong>email-picks</strong>" in page
    changed = _page_form(holdout_share="10", cap_per_day="2", quiet_start="22:00", quiet_end="07:00")
    assert marketer_client.post("/campaigns/spring-picks/edit", changed).status_code == 302
    campaign.refresh_from_db()
    assert (campaign.holdout_share, campaign.cap_per_day, str(campaign.quiet_start)) == (0.1, 2, "22:00:00")
    assert CampaignChange.objects.filter(campaign=campaign, action="update").exists()


def test_an_audience_the_rows_cannot_show_stays_json(marketer_client, crowd):
    nested = {"any": [{"field": "plan", "op": "eq", "value": "free"}, {"not": {"field": "plan", "op": "exists"}}]}
    make_campaign("nested", audience=nested)
    page = marketer_client.get("/campaigns/nested/edit").content.decode()
    assert 'name="audience_json"' in page and 'name="a-0-kind"' not in page
    form = {k: v for k, v in _page_form(name="Nested").items() if not k.startswith("a-")}
    written = '{"any": [{"field": "plan", "op": "eq", "value": "free"}, {"not": {"field": "plan", "op": "exists"}}]}'
    assert marketer_client.post("/campaigns/builder/count", {**form, "audience_json": written}).json()["count"] == 6
    assert marketer_client.post("/campaigns/nested/edit", {**form, "audience_json": written}).status_code == 302
    assert Campaign.objects.get(key="nested").audience == nested  # not replaced by "everyone"
    bad = marketer_client.post("/campaigns/nested/edit", {**form, "audience_json": '{"any": []}'})
    assert "<strong>Audience (JSON)</strong>: An empty &#x27;any&#x27; matches nobody" in bad.content.decode()


def test_validation_errors_name_the_field(marketer_client, crowd):
    response = marketer_client.post("/campaigns/new/", _page_form(holdout_share="70"))
    assert response.status_code == 200
    assert "<strong>Holdout</strong>: Give a percentage from 0 to 50." in response.content.decode()
    response = marketer_client.post("/campaigns/new/", _page_form(subject="{{ person.first_name "))
    assert response.status_code == 200 and "<strong>Subject</strong>" in response.content.decode()
    response = marketer_client.post("/campaigns/new/", _page_form(key="new"))
    assert "<strong>Key</strong>: &#x27;new&#x27; is reserved" in response.content.decode()
    response = marketer_client.post("/campaigns/new/", _page_form(**{"b-0-text": ""}))
    assert "<strong>Content block 1 (text)</strong>: Write the heading" in response.content.decode()
    assert not Campaign.objects.exists()


def test_the_preview_shows_the_message_a_person_gets(marketer_client, crowd):
    answer = marketer_client.post("/campaigns/builder/preview", _page_form(person="ann")).json()
    assert answer["subject"] == "Ann, picked for you" and answer["preheader"] == "New this week"
    assert "Hi Ann" in answer["html"] and "Item A1</a>" in answer["html"] and "/t/c/" in answer["html"]
    assert answer["to"] == "ann@example.com" and "- Item A1: http" in answer["text"] and answer["products"] == 2
    assert answer["code"]["html"].startswith("{# builder ")
    bob = marketer_client.post("/campaigns/builder/preview", _page_form(person="bob")).json()
    assert bob["suppressed"] == "No email marketing consent"
    nobody = marketer_client.post("/campaigns/builder/preview", _page_form(person="zed")).json()
    assert nobody["error"]["field"] == "person" and nobody["code"]["html"]


def test_a_test_send_reaches_a_real_smtp_server(marketer_client, crowd, smtp):
    response = marketer_client.post(
        "/campaigns/new/", _page_form(person="ann", test_to="mara@example.com", action="test_send")
    )
    assert response.status_code == 200 and "Test sent to mara@example.com" in response.content.decode()
    [received] = smtp.received
    assert str(received["To"]) == "mara@example.com"
    assert str(received["Subject"]) == "[Test] Ann, picked for you"
    assert "Hi Ann" in received.get_body(("html",)).get_content()
    assert not Campaign.objects.exists()  # a test send saves nothing


def test_launch_confirmation_progress_and_results(marketer_client, crowd):
    campaign = make_campaign(
        "spring", audience={"all": [{"field": "trait.first_name", "op": "exists"}]}, holdout_share=0.0
    )
    page = marketer_client.get("/campaigns/spring/confirm").content.decode()
    assert '<strong id="confirm-audience">3</strong>' in page and '<strong id="confirm-no-consent">1</strong>' in page
    assert "There is no surface &#x27;email-product-block&#x27;" in page
    progress = marketer_client.get("/campaigns/spring/progress").json()
    assert progress["status"] == "draft" and not progress["done"]
    launch_and_prepare(campaign)
    assert send_all() == {"sent": 2}
    Message.objects.filter(campaign=campaign, to_email="ann@example.com").update(opened_at=timezone.now())
    track("ann", "Order Completed", product_id="b1", price=19.9, quantity=2)
    progress = marketer_client.get("/campaigns/spring/progress").json()
    assert progress["done"] and progress["share"] == 1.0 and progress["made"] == 3
    page = marketer_client.get("/campaigns/spring/").content.decode()
    assert '<tr data-stage="prepared"><td>Prepared</td><td class="num">3</td>' in page
    assert '<tr data-stage="sent"><td>Sent</td><td class="num">2</td>' in page
    assert '<tr data-stage="opened"><td>Opened</td><td class="num">1</td>' in page
    assert '<tr data-stage="converted"><td>Converted</td><td class="num">1</td>' in page
    assert '<td class="num">39.80</td>' in page and 'id="funnel-chart"' in page
    assert "No holdout to compare with." in page
    assert Campaign.objects.get(pk=campaign.pk).status == CampaignStatus.RUNNING


def test_an_analyst_reads_but_cannot_build(client, crowd):
    analyst = user("ana", "campaigns.view_campaign")
    client.force_login(analyst)
    assert client.get("/campaigns/new/").status_code == 403
    assert client.post("/campaigns/new/", _page_form()).status_code == 403
    assert client.post("/campaigns/builder/preview", _page_form(person="ann")).status_code == 403
    assert client.post("/campaigns/builder/count", _page_form()).json()["count"] == 2
    assert not Campaign.objects.exists()


def test_a_block_list_helper_keeps_order():
    blocks = [Block("text", text="b"), Block("heading", text="a")]
    assert [b.type for b in builder.blocks_of(builder.block_form(blocks))] == ["text", "heading"]
