"""What ``manage.py seed_demo`` adds beside the generated behaviour so every console page has data:
role logins, accounts with their CSMs, the homepage answers people saw (attributed by the nightly
job's own code), a campaign in each state, an experiment with a verdict, and journeys with people
moving through them.

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
from zoneinfo import ZoneInfo

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group, User
from django.utils import timezone

from campaigns import services as campaigns
from campaigns import tracking
from campaigns.models import Account, ApprovalPolicy, Campaign, Channel, Message, MessageState
from catalog.models import Item
from catalog.services import UPSERT_FIELDS, upsert_items
from experiments import services as experiments
from experiments.models import Experiment
from journeys import advancing, billing_cycle, entering, lifecycle, starters
from journeys.definition import EventFacts
from journeys.models import Journey
from personalization import feedback
from personalization.demo_store import ACCOUNTS, DemoStore
from personalization.models import ApiKey, KeyScope, Surface, SurfaceVersion
from personalization.surfaces import change_config
from profiles import outbox
from profiles import services as profiles
from profiles.models import Consent, Event, Person

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
# The day of the month each account's billing cycle starts (None: calendar months).
BILLING_DAYS = {
    "acme-retail": 8,
    "brightside-travel": 1,
    "copper-kettle": 15,
    "dunmore-outdoor": 22,
    "elm-street-books": None,
    "foxglove-studio": 28,
}

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
                external_id=key, defaults={"name": name, "plan": plan, "csm": csm, "billing_day": BILLING_DAYS[key]}
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


# --- journeys: the five cases live, with people moving through them -------------------------------

CART_HTML = (
    "<h1>Still thinking it over?</h1><p>You left these in your cart:</p>"
    '{% for i in journey.cart %}<p><a href="{{ i.url }}">{{ i.title }}</a> × {{ i.quantity }}</p>{% endfor %}'
    "<p>You may also like:</p>"
    '{% for p in products %}<p><a href="{{ p.url }}">{{ p.title }}</a></p>{% endfor %}'
    '<p><a href="{{ unsubscribe_url }}">Unsubscribe</a></p>'
)
STOCK_HTML = (
    '<h1>{{ journey.item.title }} is back</h1><p><a href="{{ journey.item.url }}">{{ journey.item.title }}</a> '
    "is back in stock.</p>"
    '{% for p in products %}<p><a href="{{ p.url }}">{{ p.title }}</a></p>{% endfor %}'
    '<p><a href="{{ unsubscribe_url }}">Unsubscribe</a></p>'
)
CALENDAR_HTML = (
    "<h1>One step left: your calendar</h1><p>You connected your CRM. Connect your calendar and every "
    "meeting lands on the right deal.</p>"
    '{% for step in journey.pinned %}<p><a href="{{ step.url }}">{{ step.note }}</a></p>{% endfor %}'
    '<p><a href="{{ unsubscribe_url }}">Unsubscribe</a></p>'
)
EXPANSION_HTML = (
    "<p>Hi {{ person.first_name|default('there') }},</p><p>{{ journey.account.name }} made "
    "{{ journey.account.count }} API calls this billing cycle. A plan with more room would keep things "
    "fast; shall we talk it over?</p><p>{{ journey.csm.name }}</p>"
    '<p><a href="{{ unsubscribe_url }}">Unsubscribe</a></p>'
)
DIGEST_HTML = (
    "<h1>Your week</h1>"
    '{% for i in journey.picks %}<p><a href="{{ i.url }}">{{ i.title }}</a></p>{% endfor %}'
    '<p><a href="{{ unsubscribe_url }}">Unsubscribe</a></p>'
)
LIVE_JOURNEYS = tuple(starters.STARTERS)  # all five cases
REPLAY_STEP = timedelta(minutes=15)
REPLAY_STEP_OLDER = timedelta(hours=6)  # further back than REPLAY_RECENT, nobody waits on a short step
REPLAY_RECENT = timedelta(days=7)
EXPANSION_THRESHOLD = 500


@dataclass
class JourneySeed:
    live: list[Journey]
    drafts: list[Journey]
    restocked: str


def _journey_campaigns(marketer: Any) -> None:
    """The campaigns the journeys' emails use as templates: drafts, never launched themselves."""
    templates = {
        "cart-reminder": _values(
            "Cart reminder (journey template)",
            "Still in your cart.",
            subject="Still thinking it over? {{ journey.cart|length }} items in your cart",
            html=CART_HTML,
            text="{% for i in journey.cart %}- {{ i.title }}: {{ i.url }}\n{% endfor %}",
        ),
        "back-in-stock": _values(
            "Back in stock (journey template)",
            "Back in stock.",
            subject="{{ journey.item.title }} is back in stock",
            html=STOCK_HTML,
            text="{{ journey.item.title }} is back: {{ journey.item.url }}",
        ),
        "onboarding-calendar": _values(
            "Onboarding: connect the calendar (journey template)",
            "Connect your calendar.",
            subject="One step left: connect your calendar",
            html=CALENDAR_HTML,
            text="{% for step in journey.pinned %}{{ step.note }}: {{ step.url }}\n{% endfor %}",
        ),
        "upgrade-prompt": _values(
            "Upgrade prompt (in the product)",
            "You are growing fast.",
            channel=Channel.ONBOARDING,
            subject="You are growing fast",
            html="<p>{{ journey.account.name }} made {{ journey.account.count }} API calls this billing cycle.</p>",
            text="{{ journey.account.name }} made {{ journey.account.count }} API calls this billing cycle.",
        ),
        "expansion-csm": _values(
            "Expansion, from the CSM (journey template)",
            "Room to grow.",
            subject="{{ journey.account.name }}: room to grow",
            html=EXPANSION_HTML,
            text="{{ journey.account.name }} made {{ journey.account.count }} API calls this billing cycle.",
        ),
        "weekly-digest": _values(
            "Weekly digest (journey template)",
            "Your week.",
            subject="Your week: {{ journey.picks|length }} picks",
            html=DIGEST_HTML,
            text="{% for i in journey.picks %}- {{ i.title }}: {{ i.url }}\n{% endfor %}",
            send_time_optimization=True,
        ),
    }
    for key, values in templates.items():
        if not Campaign.objects.filter(key=key).exists():
            campaigns.create_campaign(key, values, marketer)


def _starter_campaigns(definition: dict[str, Any], marketer: Any) -> None:
    """Draft campaigns for the templates a starter names and the demo lacks: an email for a send step,
    an in-product message for a surface update. Their content is a placeholder to edit."""
    for step in definition.get("steps", []):
        key = step.get("campaign")
        if not key or Campaign.objects.filter(key=key).exists():
            continue
        name = key.replace("-", " ").capitalize()
        values = _values(f"{name} (journey template)", f"{name}.")
        if step.get("type") == "update_surface":
            values["channel"] = Channel.ONBOARDING
        campaigns.create_campaign(key, values, marketer)


def _reachable_people(limit: int) -> list[Person]:
    """People with an email address and marketing consent, who can be sent a journey's email."""
    granted = set(Consent.objects.filter(purpose="email_marketing", granted=True).values_list("person_id", flat=True))
    found = Person.objects.filter(merged_into=None, traits__has_key="email").order_by("pk")
    return [p for p in found if p.pk in granted][:limit]


def _cart_events(people: list[Person], products: list[str], rng: random.Random) -> list[dict[str, Any]]:
    """Over the last two days: carts that were bought within hours, carts left behind long enough for
    the email, and carts of the last hours still in their wait."""
    now = timezone.now()
    messages: list[dict[str, Any]] = []
    for n, person in enumerate(people):
        identity = campaigns_identity(person.pk)
        if not identity:
            continue
        story = ("bought", "left", "left", "recent")[n % 4]
        hours_ago = rng.uniform(0.3, 3.5) if story == "recent" else rng.uniform(6, 44)
        at = now - timedelta(hours=hours_ago)
        product = rng.choice(products)
        messages.append(
            {
                "type": "track",
                "event": "Product Added",
                "messageId": f"demo-journey-cart-{person.pk}",
                "timestamp": at.isoformat(),
                "properties": {"product_id": product, "quantity": 1 + (n % 2)},
                **identity,
            }
        )
        if story == "bought":
            messages.append(
                {
                    "type": "track",
                    "event": "Order Completed",
                    "messageId": f"demo-journey-order-{person.pk}",
                    "timestamp": (at + timedelta(hours=rng.uniform(0.5, 3))).isoformat(),
                    "properties": {
                        "order_id": f"O-journey-{person.pk}",
                        "products": [{"product_id": product, "price": f"{rng.uniform(20, 90):.2f}", "quantity": 1}],
                    },
                    **identity,
                }
            )
    return messages


def _track(identity: dict[str, Any], event: str, message_id: str, at: datetime, **properties: Any) -> dict[str, Any]:
    return {
        "type": "track",
        "event": event,
        "messageId": message_id,
        "timestamp": at.isoformat(),
        "properties": properties,
        **identity,
    }


def _onboarding_events(people: list[Person], rng: random.Random) -> list[dict[str, Any]]:
    """Over the last six days, people say their role and connect the CRM: account executives who did
    it long enough ago to be shown the calendar step, some who did lately and wait out their three
    days, some who connected the calendar on their own (they leave), and people of other roles."""
    now = timezone.now()
    messages: list[dict[str, Any]] = []
    for n, person in enumerate(people):
        identity = campaigns_identity(person.pk)
        if not identity:
            continue
        story = ("shown", "waiting", "connected", "other role", "shown", "waiting")[n % 6]
        days_ago = rng.uniform(3.3, 5.8) if story in ("shown", "connected") else rng.uniform(0.3, 2.7)
        at = now - timedelta(days=days_ago)
        role = "sales_manager" if story == "other role" else "account_executive"
        messages.append(
            {
                "type": "identify",
                "messageId": f"demo-journey-role-{person.pk}",
                "timestamp": (at - timedelta(minutes=5)).isoformat(),
                "traits": {"role": role},
                **identity,
            }
        )
        messages.append(
            _track(identity, "Integration Connected", f"demo-journey-crm-{person.pk}", at, integration="crm")
        )
        if story == "connected":
            later = at + timedelta(days=rng.uniform(0.5, 2.5))
            messages.append(
                _track(
                    identity, "Integration Connected", f"demo-journey-cal-{person.pk}", later, integration="calendar"
                )
            )
    return messages


def _api_calls(people: list[Person], rng: random.Random) -> list[dict[str, Any]]:
    """API calls of three accounts' people: one account passed 500 calls in its last billing cycle
    and again in this one, one in this one only, one is still short of it."""
    now = timezone.now()
    by_account: dict[str, list[dict[str, Any]]] = {}
    for person in people:
        identity = campaigns_identity(person.pk)
        account = (person.traits or {}).get("account_id")
        if identity and account:
            by_account.setdefault(str(account), []).append(identity)
    plan = [  # account, cycles back (0: this one), calls
        ("acme-retail", 1, EXPANSION_THRESHOLD + 40),
        ("acme-retail", 0, EXPANSION_THRESHOLD + 10),
        ("dunmore-outdoor", 0, EXPANSION_THRESHOLD + 25),
        ("brightside-travel", 0, EXPANSION_THRESHOLD - 180),
    ]
    messages: list[dict[str, Any]] = []
    for account, back, calls in plan:
        callers = by_account.get(account, [])[:5]
        if not callers:
            continue
        day = BILLING_DAYS[account]
        start = billing_cycle.cycle_start(now, day)
        for _ in range(back):
            start = billing_cycle.cycle_start(start - timedelta(microseconds=1), day)
        end = min(billing_cycle.cycle_end(start, day), now - timedelta(minutes=30))
        if end <= start:
            continue
        span = (end - start).total_seconds()
        moments = sorted(rng.uniform(0, span) for _ in range(calls))
        for n, offset in enumerate(moments):
            messages.append(
                _track(
                    rng.choice(callers),
                    "API Call",
                    f"demo-journey-api-{account}-{back}-{n}",
                    start + timedelta(seconds=offset),
                    endpoint=rng.choice(["/v2/contacts", "/v2/deals", "/v2/search"]),
                )
            )
    return messages


def _digests(people: list[Person]) -> None:
    """The last two Mondays: the digest's schedule at 08:10 in Berlin and in London, for a sample of
    people, each Monday's entries advanced and their emails sent as the workers would."""
    today = timezone.now().astimezone(ZoneInfo("UTC"))
    monday = (today - timedelta(days=today.weekday() or 7)).replace(hour=0, minute=0, second=0, microsecond=0)
    ids = [p.pk for p in people]
    for week in (7, 0):
        day = monday - timedelta(days=week)
        for hour in (7, 8):  # 08:10 in Berlin (and Paris, Madrid, Amsterdam), then in London
            at = day + timedelta(hours=hour, minutes=10)
            entering.on_schedule(now=at, people=ids)
            for step in range(0, 4 * 4):
                advancing.advance_due(now=at + REPLAY_STEP * step)
        send_due()


def _replay(message_ids: list[str]) -> None:
    """What the event stream and the workers did while those events came in: each event evaluated at
    its time (``journeys.entering.on_events``) and due steps advanced every 15 minutes up to now
    (``journeys.advancing.advance_due``), with the journeys' own code and clock argument."""
    rows = list(
        Event.objects.filter(message_id__in=message_ids)
        .order_by("timestamp", "pk")
        .values_list("person_id", "kind", "name", "item_id", "properties", "timestamp", "message_id", "position")
    )
    if not rows:
        return
    facts = [
        EventFacts(p, k, n, i, dict(props or {}), at.timestamp(), m, pos) for p, k, n, i, props, at, m, pos in rows
    ]
    now = timezone.now()
    moment = rows[0][5]
    index = 0
    while moment < now:
        step = REPLAY_STEP if now - moment <= REPLAY_RECENT else REPLAY_STEP_OLDER
        moment = min(moment + step, now)
        batch = []
        while index < len(facts) and facts[index].timestamp <= moment.timestamp():
            batch.append(facts[index])
            index += 1
        if batch:
            entering.on_events(batch, moment)
        advancing.advance_due(now=moment)


def _restock(rng: random.Random) -> str:
    """An item people looked at lately sells out, then a catalogue sync brings it back: its journey
    enters those people (through the catalogue's restock hook and the outbox) and emails them."""
    since = timezone.now() - timedelta(days=30)
    reachable = {p.pk for p in _reachable_people(100_000)}
    viewers: dict[str, set[int]] = {}
    for item_id, person_id in (
        Event.objects.filter(kind="view", timestamp__gte=since).exclude(item_id="").values_list("item_id", "person_id")
    ):
        if person_id in reachable:
            viewers.setdefault(item_id, set()).add(person_id)
    in_stock = set(Item.objects.filter(kind="product", stock__gt=0, active=True).values_list("external_id", flat=True))
    fitting = sorted((len(v), k) for k, v in viewers.items() if k in in_stock and 3 <= len(v) <= 40)
    if not fitting:
        return ""
    item_id = fitting[-1][1]
    item = Item.objects.get(external_id=item_id)
    row = {f: getattr(item, f) for f in ("external_id", *UPSERT_FIELDS)}
    upsert_items([{**row, "stock": 0}])  # sold out: nothing enters
    upsert_items([{**row, "stock": 12 + rng.randrange(10)}])  # the sync brings it back
    outbox.relay()
    return item_id


def seed_journeys(marketer: Any, seed: int = 7, people: int = 60) -> JourneySeed:
    """The five cases live with people moving through them: carts bought, left and still in their
    wait; an item back in stock; account executives shown the calendar step, waiting for day 3 or
    gone; accounts past 500 API calls in a billing cycle (the CSM's email waiting for approval); the
    last two Mondays' digests. Events are stored, the journeys launched, then the events replayed at
    the times they happened, with the journeys' own code."""
    rng = random.Random(seed)
    _journey_campaigns(marketer)
    created: dict[str, Journey] = {}
    for key, found in starters.starters().items():
        if Journey.objects.filter(key=key).exists():
            continue
        _starter_campaigns(found["definition"], marketer)
        try:
            created[key] = lifecycle.create_journey(
                key, found["name"], found["definition"], marketer.username, marketer
            )
        except lifecycle.JourneyError:
            continue  # a starter whose campaigns or segments the demo does not have
    products = list(
        Item.objects.filter(kind="product", stock__gt=0, active=True)
        .order_by("external_id")
        .values_list("external_id", flat=True)[:200]
    )
    reachable = _reachable_people(people * 4)
    carts = _cart_events(reachable[:people], products, rng)
    onboarding = _onboarding_events(reachable[people : people + people // 2], rng)
    calls = _api_calls(reachable, rng)
    stream = carts + onboarding + calls
    # Stored before the journeys are live (nothing enters yet), then replayed at the times they happened.
    profiles.ingest_messages(stream, refresh=False)
    live = [lifecycle.launch(created[key]) for key in LIVE_JOURNEYS if key in created]
    _replay([m["messageId"] for m in stream if m["type"] == "track"])
    restocked = _restock(rng)
    advancing.advance_due()
    send_due()
    if "weekly-digest" in created:
        everyone = Person.objects.filter(merged_into=None, traits__has_key="email").order_by("pk")
        _digests(list(everyone[: people // 2]))
    drafts = [j for key, j in created.items() if key not in LIVE_JOURNEYS]
    return JourneySeed(live, drafts, restocked)


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
