"""People in each role, and a small world for the permission tests to act on."""

from __future__ import annotations

from dataclasses import dataclass

from django.contrib.auth.models import Group, User
from rest_framework.test import APIClient

from campaigns import services as campaigns
from campaigns import tracking
from campaigns.models import ApprovalPolicy, Campaign, Message
from catalog.models import Item
from experiments import services as experiments
from journeys import services as journeys
from personalization.models import ApiKey, KeyScope
from personalization.surfaces import create_surface
from tests.campaigns.conftest import account, launch_and_prepare, make_campaign, person

PASSWORD = "pw-for-tests"
ROLES = ("Marketer", "CSM", "Analyst", "Administrator")


def role_user(username: str, role: str | None, *, staff: bool = False) -> User:
    user = User.objects.create_user(username, f"{username}@example.com", PASSWORD, is_staff=staff)
    if role is not None:
        user.groups.add(Group.objects.get(name=role))
    return User.objects.get(pk=user.pk)  # fresh, without a cached permission set


@dataclass
class World:
    users: dict[str, User]
    ingest_raw: str
    secret_raw: str
    ingest_key: ApiKey
    message: Message
    tokens: dict[str, str]


def build_world() -> World:
    users = {
        "staff": role_user("nobody", None, staff=True),
        "marketer": role_user("mara", "Marketer", staff=True),
        "csm": role_user("casey", "CSM"),  # not staff: CSMs need not be
        "analyst": role_user("ana", "Analyst", staff=True),
        "admin": role_user("adam", "Administrator", staff=True),
    }
    ingest_key, ingest_raw = ApiKey.issue("matrix ingest", KeyScope.INGEST)
    _, secret_raw = ApiKey.issue("matrix secret", KeyScope.SECRET)
    Item.objects.create(external_id="sku-1", title="Kettle", price="19.90", stock=5)
    ann = person("ann", first_name="Ann", account_id="acme", company="Acme")
    person("gus", first_name="Gus", account_id="globex", company="Globex")
    account("acme", csm=users["csm"], name="Acme")
    account("globex", csm=None, name="Globex")
    create_surface("homepage", "Homepage", {"size": 4}, by="tests")
    spring = launch_and_prepare(make_campaign("spring", name="Spring", approval_policy=ApprovalPolicy.ALL))
    paused = launch_and_prepare(make_campaign("paused", name="Paused"))
    campaigns.pause(paused, None)
    make_campaign("draft", name="Draft")
    exit_only = {"trigger": {"type": "event", "event": "Signed Up"}, "steps": [{"id": "out", "type": "exit"}]}
    journeys.create_journey("draft-journey", "Draft journey", exit_only)
    journeys.launch(journeys.create_journey("live-journey", "Live journey", exit_only))
    variants = [
        experiments.VariantSpec("control", "Control", 1.0, {}, True),
        experiments.VariantSpec("treatment", "Treatment", 1.0, {}, False),
    ]
    owner = users["marketer"]
    experiments.start(experiments.create_experiment("exp", "Exp", variants, owner, baseline_mean=0.1), owner)
    experiments.create_experiment("draft-exp", "Draft exp", variants, owner, baseline_mean=0.1)
    message = Message.objects.get(campaign=spring, person=ann)
    assert message.account is not None and message.account.csm_id == users["csm"].pk
    tokens = {
        "open": tracking.open_token(spring.pk, ann.pk),
        "click": tracking.click_token(spring.pk, ann.pk, 0),
        "unsubscribe": tracking.unsubscribe_token(spring.pk, ann.pk),
    }
    assert Campaign.objects.get(key="paused").status == "paused"
    return World(users, ingest_raw, secret_raw, ingest_key, message, tokens)


def api_client(raw_key: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {raw_key}")
    return client


def session_client(user: User) -> APIClient:
    client = APIClient()
    client.force_login(user)
    return client
