"""Audience rules over traits and behaviour, compiled to database queries (and the same rules read in
Python, as approval rules are, give the same answer)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from campaigns import people
from campaigns.rules import RuleError, matches, parse_rule
from catalog.models import Item
from profiles import services as profiles
from tests.campaigns.conftest import person, track


def _who(rule: dict[str, Any]) -> set[str]:
    found = people.audience(parse_rule(rule, "audience"))
    return {p.traits["first_name"] for p in found}


@pytest.fixture
def crowd(db: Any) -> None:
    now = timezone.now()
    Item.objects.create(external_id="dress", title="Dress", category="Women > Dresses", price="80")
    Item.objects.create(external_id="drill", title="Drill", category="Tools", price="120")
    Item.objects.create(external_id="sock", title="Sock", category="Women > Socks", price="5")
    long_ago = now - timedelta(days=90)
    person("ann", first_name="Ann", plan="Pro", country="Germany", seats=50, seen_at=long_ago)
    person("bob", first_name="Bob", plan="free", country="Spain", seats=3, seen_at=long_ago)
    person(
        "cat",
        first_name="Cat",
        plan="enterprise",
        country="France",
        seats=400,
        company="Initech Labs",
        seen_at=long_ago,
    )
    person("dan", first_name="Dan", seen_at=long_ago)
    track("ann", "Order Completed", at=now - timedelta(days=3), product_id="dress")
    track("bob", "Order Completed", at=now - timedelta(days=60), product_id="drill")
    track("cat", "Product Viewed", at=now - timedelta(days=1), product_id="dress")
    track("dan", "Product Viewed", at=now - timedelta(days=40), product_id="drill")
    for user_id in ("ann", "bob", "cat", "dan"):
        found = profiles.find_person(user_id)
        assert found is not None
        profiles.refresh_profile(found.pk)


def test_trait_conditions(crowd):
    assert _who({"all": []}) == {"Ann", "Bob", "Cat", "Dan"}
    assert _who({"all": [{"field": "plan", "op": "eq", "value": "pro"}]}) == {"Ann"}  # case does not matter
    assert _who({"all": [{"field": "plan", "op": "in", "value": ["free", "enterprise"]}]}) == {"Bob", "Cat"}
    assert _who({"all": [{"field": "plan", "op": "ne", "value": "free"}]}) == {"Ann", "Cat", "Dan"}
    assert _who({"all": [{"field": "country", "op": "exists"}]}) == {"Ann", "Bob", "Cat"}
    assert _who({"all": [{"field": "trait.company", "op": "contains", "value": "initech"}]}) == {"Cat"}
    assert _who({"all": [{"field": "trait.seats", "op": "gte", "value": 50}]}) == {"Ann", "Cat"}
    assert _who({"not": {"field": "plan", "op": "exists"}}) == {"Dan"}


def test_behaviour_conditions(crowd):
    assert _who({"all": [{"field": "event.purchase", "op": "within_days", "value": 30}]}) == {"Ann"}
    assert _who({"all": [{"field": "event.purchase", "op": "ever"}]}) == {"Ann", "Bob"}
    assert _who({"all": [{"field": "event.purchase", "op": "never"}]}) == {"Cat", "Dan"}
    assert _who({"all": [{"field": "last_seen", "op": "within_days", "value": 7}]}) == {"Ann", "Cat"}
    assert _who({"all": [{"field": "last_seen", "op": "not_within_days", "value": 30}]}) == {"Bob", "Dan"}
    assert _who({"all": [{"field": "affinity.category.Women", "op": "gte", "value": 0.5}]}) == {"Ann", "Cat"}
    assert _who({"all": [{"field": "price_band", "op": "eq", "value": "mid"}]}) == {"Bob", "Dan"}
    assert _who({"all": [{"field": "price_band", "op": "not_in", "value": ["mid"]}]}) == {"Ann", "Cat"}


def test_how_often_consent_segment_and_account(crowd, settings):
    from campaigns.models import Account

    now = timezone.now()
    track("cat", "Product Viewed", at=now - timedelta(days=2), product_id="sock")
    track("cat", "Product Viewed", at=now - timedelta(days=50), product_id="drill")
    often = {"field": "event.view", "op": "at_least", "value": {"times": 2, "days": 30}}
    assert _who({"all": [often]}) == {"Cat"}
    assert _who({"all": [{**often, "value": {"times": 3}}]}) == {"Cat"}  # ever: the one 50 days ago counts
    assert _who({"all": [{**often, "op": "fewer_than"}]}) == {"Ann", "Bob", "Dan"}
    bob = profiles.find_person("bob")
    assert bob is not None
    profiles.record_consent(bob.pk, "email_marketing", False, source="preference centre")
    assert _who({"all": [{"field": "consent.email_marketing", "op": "granted"}]}) == {"Ann", "Cat", "Dan"}
    assert _who({"all": [{"field": "consent.email_marketing", "op": "not_granted"}]}) == {"Bob"}
    assert _who({"all": [{"field": "consent.analytics", "op": "not_granted"}]}) == {"Ann", "Bob", "Cat", "Dan"}
    assert _who({"all": [{"field": "segment", "op": "in", "value": ["pro", "free"]}]}) == {"Ann", "Bob"}
    assert _who({"all": [{"field": "segment", "op": "ne", "value": "pro"}]}) == {"Bob", "Cat", "Dan"}
    person("eve", first_name="Eve", segments=["vip"], company_id="globex")
    assert _who({"all": [{"field": "segment", "op": "eq", "value": "vip"}]}) == {"Eve"}
    Account.objects.create(external_id="Initech Labs", name="Initech", plan="enterprise")
    Account.objects.create(external_id="globex", name="Globex", plan="pro")
    assert _who({"all": [{"field": "account.plan", "op": "eq", "value": "enterprise"}]}) == {"Cat"}
    assert _who({"all": [{"field": "account.id", "op": "in", "value": ["globex", "nope"]}]}) == {"Eve"}
    assert _who({"all": [{"field": "account.name", "op": "ne", "value": "globex"}]}) == {"Ann", "Bob", "Cat", "Dan"}
    assert _who({"all": [{"field": "account.id", "op": "exists"}]}) == {"Cat", "Eve"}


def test_the_new_conditions_read_the_same_on_facts():
    rule = parse_rule(
        {
            "all": [
                {"field": "event.purchase", "op": "at_least", "value": {"times": 2, "days": 30}},
                {"field": "consent.email_marketing", "op": "granted"},
                {"field": "segment", "op": "in", "value": ["vip"]},
            ]
        }
    )
    facts = {"event.purchase.times.30": 2, "consent.email_marketing": True, "segment": ["VIP"]}
    assert matches(rule, facts)
    assert not matches(rule, {**facts, "event.purchase.times.30": 1})
    assert not matches(rule, {**facts, "consent.email_marketing": False})
    assert not matches(rule, {**facts, "segment": "free"})


def test_groups_combine(crowd):
    rule = {
        "all": [
            {"any": [{"field": "plan", "op": "eq", "value": "free"}, {"field": "event.purchase", "op": "ever"}]},
            {"not": {"field": "country", "op": "eq", "value": "Spain"}},
        ]
    }
    assert _who(rule) == {"Ann"}


@pytest.mark.parametrize(
    ("rule", "attr"),
    [
        ([], "audience"),
        ({"all": [{"field": "shoe.size", "op": "eq", "value": 1}]}, "audience.all.0.field"),
        ({"all": [{"field": "plan", "op": "within_days", "value": 3}]}, "audience.all.0.op"),
        ({"all": [{"field": "event.purchase", "op": "within_days", "value": "soon"}]}, "audience.all.0.value"),
        ({"all": [{"field": "event.teleport", "op": "ever"}]}, "audience.all.0.field"),
        ({"all": [{"field": "account.tier", "op": "eq", "value": "pro"}]}, "audience.all.0.field"),
        ({"all": [{"field": "consent.newsletter", "op": "granted"}]}, "audience.all.0.field"),
        ({"all": [{"field": "consent.analytics", "op": "eq", "value": 1}]}, "audience.all.0.op"),
        ({"all": [{"field": "event.view", "op": "at_least", "value": {"times": 0}}]}, "audience.all.0.value.times"),
        (
            {"all": [{"field": "event.view", "op": "at_least", "value": {"times": 2, "days": 0}}]},
            "audience.all.0.value.days",
        ),
        ({"all": [{"field": "event.view", "op": "at_least", "value": 2}]}, "audience.all.0.value"),
        ({"all": [{"field": "segment", "op": "gt", "value": 2}]}, "audience.all.0.op"),
        ({"any": []}, "audience.any"),
        ({"all": [], "any": []}, "audience"),
        ({"all": [{"field": "trait.a__b", "op": "exists"}]}, "audience.all.0.field"),
        ({"all": [{"field": "plan", "op": "eq", "value": "pro", "extra": 1}]}, "audience.all.0.extra"),
    ],
)
def test_bad_rules_name_the_offending_part(rule, attr):
    with pytest.raises(RuleError) as error:
        parse_rule(rule, "audience")
    assert error.value.attr == attr


PLANS = ["free", "pro", "enterprise", "Pro"]
condition = st.one_of(
    st.builds(lambda v: {"field": "plan", "op": "eq", "value": v}, st.sampled_from(PLANS)),
    st.builds(lambda v: {"field": "plan", "op": "ne", "value": v}, st.sampled_from(PLANS)),
    st.builds(lambda vs: {"field": "plan", "op": "in", "value": vs}, st.lists(st.sampled_from(PLANS), min_size=1)),
    st.builds(lambda n: {"field": "trait.seats", "op": "gte", "value": n}, st.integers(0, 500)),
    st.builds(lambda n: {"field": "trait.seats", "op": "lt", "value": n}, st.integers(0, 500)),
    st.just({"field": "country", "op": "exists"}),
    st.just({"field": "country", "op": "not_exists"}),
)
rules = st.recursive(
    condition,
    lambda inner: st.one_of(
        st.builds(lambda parts: {"all": parts}, st.lists(inner, max_size=3)),
        st.builds(lambda parts: {"any": parts}, st.lists(inner, min_size=1, max_size=3)),
        st.builds(lambda part: {"not": part}, inner),
    ),
    max_leaves=6,
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(rule=rules)
def test_the_database_and_python_agree_on_trait_rules(crowd, rule):
    parsed = parse_rule(rule, "audience")
    in_python = {
        p.traits["first_name"]
        for p in people.audience(parse_rule({"all": []}))
        if matches(parsed, {f"trait.{k}": v for k, v in p.traits.items()})
    }
    assert _who(rule) == in_python
