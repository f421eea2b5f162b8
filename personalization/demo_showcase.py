"""What ``manage.py seed_demo`` adds beside the generated behaviour so every console page has data:
role logins, accounts with their CSMs, the homepage answers people saw (attributed by the nightly
job's own code), a campaign in each state and an experiment with a verdict.

Everything goes through the services the API and the console call (surfaces, campaigns,
experiments, ingestion, tracking); nothing writes a results table by hand.
"""

from __future__ import annotations

import os
import random
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from pathlib import Path
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group, User
from django.utils import timezone

from campaigns import services as campaigns
from campaigns import tracking
from campaigns.models import Account, ApprovalPolicy, Campaign, Message, MessageState
from experiments import services as experiments
from experiments.models import Experiment
from personalization import feedback
from personalization.demo_store import ACCOUNTS, DemoStore
from personalization.models import ApiKey, KeyScope, Surface, SurfaceVersion
from personalization.surfaces import change_config
from profiles import services as profiles
from profiles.models import Person

EMAIL_SURFACE = Campaign._meta.get_field("content_surface").get_default()  # "email-product-block"

# login (password: the same word), role group, staff (may open /admin/). A CSM is not staff.
LOGINS = [
    ("marketer", "Marketer", False),
    ("analyst", "Analyst", False),
    ("csm", "CSM", False),
    ("csm2", "CSM", False),
    ("admin", "Administrator", True),
]
# Which CSM looks after which demo accounts.
CSM_ACCOUNTS = {"csm": ACCOUNTS[:3], "csm2": ACCOUNTS[3:]}

HTML = (
    "<h1>Hi {{ person.first_name|default('there') }},</h1>"
    "<p>{{ intro }}</p>"
    "{% for p in products %}<p><a href=\"{{ p.url }}\">{{ p.title }}</a> {{ p.price|money('EUR') }}"
    "<br><small>{{ p.reason }}</small></p>{% endfor %}"
    '<p><a href="{{ unsubscribe_url }}">Unsubscribe</a></p>'
)
TEXT = (
    "Hi {{ person.first_name|default('there') }},\n{{ intro }}\n"
    "{% for p in products %}- {{ p.title }}: {{ p.url }}\n{% endfor %}\nUnsubscribe: {{ unsubscribe_url }}\n"
)


def _user(username: str) -> User:
    return User.objects.get(username=username)


def ensure_logins(demo_login: str) -> list[tuple[str, str]]:
    """A login per role (password: the login) and the demo login, an Administrator with every right."""
    User = get_user_model()
    made: list[tuple[str, str]] = []
    for login, role, staff in [*LOGINS, (demo_login, "Administrator", True)]:
        user, created = User.objects.get_or_create(username=login, defaults={"is_staff": staff})
        if created:
            user.set_password(login)
            if login == demo_login:
                user.is_superuser = True
            user.save()
        user.groups.add(Group.objects.get(name=role))
        made.append((login, role))
    return made


def ensure_accounts() -> list[Account]:
    """The demo's customer companies, each looked after by a CSM login."""
    accounts = []
    for login, owned in CSM_ACCOUNTS.items():
        csm = _user(login)
        for key, name, plan in owned:
            account, _ = Account.objects.update_or_create(
                external_id=key, defaults={"name": name, "plan": plan, "csm": csm}
            )
            accounts.append(account)
    return accounts


# --- surfaces: answers people saw, attributed by the nightly job ---------------------------------


def date_first_versions(first: date) -> None:
    """The surfaces' first versions were saved before the history began (its first answers are on ``first``)."""
    at = timezone.make_aware(datetime.combine(first, time(8, 0)))
    SurfaceVersion.objects.filter(number=1, note="Demo default").update(created_at=at)


def load_impressions(store: DemoStore) -> int:
    """Log the homepage answers of the generated sessions through the impression writer."""
    surfaces = dict(Surface.objects.values_list("key", "id"))
    people: dict[str, int | None] = {}
    rows: list[feedback.ImpressionRow] = []
    for shown in store.impressions:
        if shown.surface not in surfaces:
            continue
        if shown.user_id not in people:
            found = profiles.find_person(shown.user_id)
            people[shown.user_id] = found.pk if found is not None else None
        rows.append(
            feedback.ImpressionRow(
                recommendation_id=shown.recommendation_id,
                surface_id=surfaces[shown.surface],
                version_number=1,
                model_version=None,
                person_id=people[shown.user_id],
                item_ids=shown.item_ids,
                strategy="personalized",
                experiment="",
                variant="",
                served_at=shown.served_at,
            )
        )
    written = 0
    for start in range(0, len(rows), 2000):
        written += feedback.write(rows[start : start + 2000])
    return written


def attribute_days(first: date, last: date) -> int:
    """Run the nightly attribution for every day from ``first`` to ``last``; returns days with answers."""
    days = 0
    day = first
    while day <= last:
        days += bool(feedback.compute_daily_stats(day))
        day += timedelta(days=1)
    return days


# --- campaigns: one in each state ----------------------------------------------------------------


def _values(name: str, intro: str, **overrides: Any) -> dict[str, Any]:
    values: dict[str, Any] = {
        "name": name,
        "subject": "{{ person.first_name|default('Hello') }}, {{ products[0].title if products else 'new in' }}",
        "preheader": intro,
        "html": HTML.replace("{{ intro }}", intro),
        "text": TEXT.replace("{{ intro }}", intro),
        "content_surface": EMAIL_SURFACE,
        "content_limit": 4,
        "send_time_optimization": False,
        "quiet_start": None,
        "quiet_end": None,
        "cap_per_day": None,
        "cap_per_week": None,
    }
    values.update(overrides)
    return values


def _launch(campaign: Campaign, user: Any) -> Campaign:
    return campaigns.launch(campaign, user, prepare_now=True)


def _plan_rule(*plans: str) -> dict[str, Any]:
    return {"all": [{"field": "trait.plan", "op": "in", "value": list(plans)}]}


@dataclass
class CampaignSeed:
    draft: Campaign
    awaiting_approval: Campaign
    scheduled: Campaign
    sent: Campaign


def seed_campaigns(marketer: Any, seed: int = 7) -> CampaignSeed:
    """A draft, one waiting in the CSMs' queues, one scheduled for later, and one sent with results."""
    rng = random.Random(seed)
    now = timezone.now()
    draft = campaigns.create_campaign(
        "winter-lookbook",
        _values("Winter lookbook", "Our winter edit, picked for you.", audience=_plan_rule("pro", "enterprise")),
        marketer,
    )
    awaiting = _launch(
        campaigns.create_campaign(
            "account-renewal-picks",
            _values(
                "Account renewal picks",
                "A few things your team may like before renewal.",
                audience=_plan_rule("enterprise"),
                approval_policy=ApprovalPolicy.ALL,
            ),
            marketer,
        ),
        marketer,
    )
    scheduled = _launch(
        campaigns.create_campaign(
            "weekend-sale-preview",
            _values(
                "Weekend sale preview",
                "The weekend sale starts Saturday: a first look.",
                audience=_plan_rule("pro"),
                send_at=now + timedelta(days=2),
            ),
            marketer,
        ),
        marketer,
    )
    sent = _launch(
        campaigns.create_campaign(
            "new-this-week",
            _values(
                "New this week",
                "New arrivals in the categories you like.",
                audience=_plan_rule("free"),
                holdout_share=0.1,
            ),
            marketer,
        ),
        marketer,
    )
    send_due()
    _engage(sent, rng)
    campaigns.finish_campaigns()
    if sent.holdout_experiment:  # the campaign's funnel against its holdout, as the hourly job stores it
        experiments.record_results(Experiment.objects.get(key=sent.holdout_experiment))
    return CampaignSeed(draft, awaiting, scheduled, sent)


def send_due() -> int:
    """One sending round in this process, as the periodic task does it."""
    sent = 0
    for batch in campaigns.due_message_batches():
        sent += sum(campaigns.send_batch(batch).values())
    return sent


def _engage(campaign: Campaign, rng: random.Random) -> None:
    """Recipients open and click through the tracking links; some of the clickers then buy what they
    clicked, and a few held-out people buy too (the holdout's conversion is what the lift is against)."""
    orders: list[dict[str, Any]] = []
    messages = Message.objects.filter(campaign=campaign).select_related("campaign").order_by("pk")
    for message in messages:
        if message.state == MessageState.SUPPRESSED and message.reason == "holdout":
            if rng.random() < 0.04:
                orders.append(_order(message, rng, None))
            continue
        if message.state != MessageState.SENT:
            continue
        if rng.random() < 0.45:
            campaigns.record_open(tracking.open_token(campaign.pk, message.person_id))
            item_links = [n for n, (_, item) in enumerate(message.links) if item]
            if item_links and rng.random() < 0.4:
                link = rng.choice(item_links)
                click = campaigns.record_click(tracking.click_token(campaign.pk, message.person_id, link))
                if click is not None and rng.random() < 0.35:
                    orders.append(_order(message, rng, click.item_id))
    if orders:
        profiles.ingest_messages(orders)


def _order(message: Message, rng: random.Random, item_id: str | None) -> dict[str, Any]:
    product = item_id or rng.choice(message.item_ids or ["P00001"])
    return {
        "type": "track",
        "event": "Order Completed",
        "messageId": f"demo-order-{message.campaign_id}-{message.person_id}",
        "properties": {
            "order_id": f"O-{message.campaign.key}-{message.person_id}",
            "products": [{"product_id": product, "price": f"{rng.uniform(20, 120):.2f}", "quantity": 1}],
        },
        **campaigns_identity(message.person_id),
    }


def campaigns_identity(person_id: int) -> dict[str, Any]:
    from campaigns.people import event_identity

    return event_identity(person_id) or {}


# --- an experiment with a verdict ------------------------------------------------------------------


def seed_experiment(marketer: Any, seed: int = 7, days: int = 21) -> Experiment:
    """Homepage ranking with more weight on margin (version 2) against the live version 1, started
    three weeks ago by exposure: the people shown version 2 bought a little more often."""
    rng = random.Random(seed)
    surface = Surface.objects.get(key="homepage")
    live = surface.current_version
    assert live is not None
    treatment_config = {**live.config, "weights": {**live.config.get("weights", {}), "margin": 0.5}}
    treatment = change_config(surface, treatment_config, by=marketer.username, note="More weight on margin")
    # The live answer stays version 1; version 2 serves only to the experiment's treatment.
    back = change_config(surface, live.config, by=marketer.username, note="Back to the live weights (v2 is in a test)")
    spec = experiments.VariantSpec
    experiment = experiments.create_experiment(
        "homepage-margin-weight",
        "Homepage: more weight on margin",
        [
            spec("control", "Live ranking", 1, {"surface_version": live.number}, True),
            spec("margin", "Margin weight 0.5", 1, {"surface_version": treatment.number}),
        ],
        marketer,
        target_kind="surface",
        target_key="homepage",
        primary_metric="conversion",
        secondary_metrics=["revenue_per_unit"],
        attribution_window_days=days,
        minimum_detectable_effect=0.3,
    )
    experiments.start(experiment, marketer)
    start = timezone.now() - timedelta(days=days)
    # Both versions were saved when the test began, as its exposures say: the surface's chart marks that day.
    SurfaceVersion.objects.filter(pk__in=[treatment.pk, back.pk]).update(created_at=start)
    orders: list[dict[str, Any]] = []
    for person in Person.objects.filter(merged_into=None).order_by("pk").only("pk"):
        answer = experiments.assign(experiment.key, person.pk)
        if answer is None:
            continue
        at = start + timedelta(hours=rng.uniform(0, 48))
        if not experiments.log_exposure(experiment.key, person.pk, answer.variant, at=at):
            continue
        # The planted effect: version 2's people place one more order now and then.
        if answer.variant == "margin" and rng.random() < 0.08:
            identity = campaigns_identity(person.pk)
            if identity:
                orders.append(
                    {
                        "type": "track",
                        "event": "Order Completed",
                        "messageId": f"demo-experiment-order-{person.pk}",
                        "timestamp": (at + timedelta(days=rng.uniform(1, days - 2))).isoformat(),
                        "properties": {
                            "order_id": f"O-exp-{person.pk}",
                            "products": [{"product_id": "P00001", "price": f"{rng.uniform(20, 90):.2f}"}],
                        },
                        **identity,
                    }
                )
    if orders:
        profiles.ingest_messages(orders)
    experiments.record_results(experiment)
    return experiment


# --- API keys ------------------------------------------------------------------------------------------


def keys_file() -> Path:
    """Where ``make demo`` keeps its keys."""
    return Path(settings.DATA_DIR) / "demo-api-keys.txt"


@dataclass(frozen=True)
class DemoKeys:
    secret: str
    ingest: str
    identity_secret: str


def issue_keys(user: Any) -> DemoKeys | None:
    """Issue the demo's secret and ingest keys; None when they exist (only their hashes are stored,
    so an existing key's secret cannot be shown again)."""
    if ApiKey.objects.filter(name="demo secret key", revoked_at__isnull=True).exists():
        return None
    _, secret = ApiKey.issue("demo secret key", KeyScope.SECRET, created_by=user)
    ingest_key, ingest = ApiKey.issue("demo ingest key", KeyScope.INGEST, created_by=user)
    return DemoKeys(secret, ingest, ingest_key.identity_secret)


def write_keys(keys: DemoKeys, path: Path) -> Path:
    """The keys in a file only its owner may read (mode 600), as shell lines to source."""
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w") as out:
        out.write(
            "# The demo's API keys (issued by manage.py seed_demo; only their hashes are in the database).\n"
            f"export SK={keys.secret}\nexport IK={keys.ingest}\n"
            f"# Identity-verification secret of the ingest key:\nIDENTITY_SECRET={keys.identity_secret}\n"
        )
    os.chmod(path, 0o600)
    return path
