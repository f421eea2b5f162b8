"""A generated demo store: catalogue, accounts, people with planted tastes, months of sessions,
purchases, email engagement, and the homepage answers people saw before they clicked. Plain Python,
free of Django; ``manage.py seed_demo`` loads it.

Everything is drawn from a seeded random generator, so the same seed gives the same store.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

CATEGORIES = {
    "Women": ["Dresses", "Tops", "Shoes", "Jackets"],
    "Men": ["Shirts", "Trousers", "Shoes", "Jackets"],
    "Home": ["Kitchen", "Bedding", "Lighting", "Decor"],
    "Beauty": ["Skincare", "Makeup", "Fragrance"],
    "Sports": ["Running", "Yoga", "Cycling", "Outdoor"],
    "Kids": ["Toys", "Clothing", "Books"],
}
ADJECTIVES = [
    "Classic",
    "Soft",
    "Everyday",
    "Premium",
    "Light",
    "Vintage",
    "Organic",
    "Bold",
    "Cosy",
    "Essential",
    "Linen",
    "Merino",
    "Recycled",
    "Studio",
    "Weekend",
    "Tailored",
]
COLOURS = ["Red", "Navy", "Black", "White", "Olive", "Sand", "Blush", "Grey", "Teal", "Mustard"]
NOUNS = {
    "Dresses": ["Wrap Dress", "Midi Dress", "Shirt Dress", "Slip Dress"],
    "Tops": ["Blouse", "T-Shirt", "Knit Top", "Camisole"],
    "Shoes": ["Sneakers", "Loafers", "Boots", "Sandals"],
    "Jackets": ["Rain Jacket", "Denim Jacket", "Puffer", "Blazer"],
    "Shirts": ["Oxford Shirt", "Polo", "Flannel Shirt", "Linen Shirt"],
    "Trousers": ["Chinos", "Jeans", "Joggers", "Cargo Trousers"],
    "Kitchen": ["Chef Knife", "Cast Iron Pan", "Coffee Grinder", "Mixing Bowls"],
    "Bedding": ["Duvet Cover", "Pillow Set", "Throw Blanket", "Fitted Sheet"],
    "Lighting": ["Table Lamp", "Floor Lamp", "Pendant Light", "String Lights"],
    "Decor": ["Vase", "Wall Print", "Candle Set", "Mirror"],
    "Skincare": ["Face Serum", "Moisturiser", "Cleanser", "Sun Cream"],
    "Makeup": ["Lipstick", "Mascara", "Foundation", "Eye Palette"],
    "Fragrance": ["Eau de Parfum", "Body Mist", "Scented Oil"],
    "Running": ["Running Shoes", "Running Tights", "Running Vest", "Hydration Belt"],
    "Yoga": ["Yoga Mat", "Yoga Block", "Leggings", "Sports Bra"],
    "Cycling": ["Cycling Helmet", "Bike Light", "Cycling Gloves", "Jersey"],
    "Outdoor": ["Hiking Boots", "Tent", "Backpack", "Fleece"],
    "Toys": ["Building Blocks", "Plush Bear", "Puzzle", "Wooden Train"],
    "Clothing": ["Kids Hoodie", "Dungarees", "Pyjamas", "Raincoat"],
    "Books": ["Picture Book", "Activity Book", "Story Collection"],
}
BRANDS = {
    "Women": ["Maison Vela", "Nord & Co", "Lumi"],
    "Men": ["Harbour", "Nord & Co", "Atlas"],
    "Home": ["Hearth", "Oakline", "Lumi Home"],
    "Beauty": ["Glow Lab", "Petal", "Aurum"],
    "Sports": ["Stride", "Summit", "Flow"],
    "Kids": ["Tiny Tots", "Oakline Kids", "Story Bear"],
}
PRICE_RANGES = {
    "Women": (25, 160),
    "Men": (25, 150),
    "Home": (12, 220),
    "Beauty": (8, 90),
    "Sports": (15, 250),
    "Kids": (6, 60),
}
COUNTRIES = [("United Kingdom", 0.45), ("Germany", 0.2), ("France", 0.15), ("Netherlands", 0.1), ("Spain", 0.1)]
PLANS = [("free", 0.6), ("pro", 0.3), ("enterprise", 0.1)]
FEATURES = ["Saved searches", "Wishlists", "Size advisor", "Price alerts", "Style quiz", "Store pickup"]
# The customer companies people belong to (their ``account_id`` trait); CSMs approve their messages.
ACCOUNTS = [
    ("acme-retail", "Acme Retail", "enterprise"),
    ("brightside-travel", "Brightside Travel", "pro"),
    ("copper-kettle", "Copper Kettle Cafés", "pro"),
    ("dunmore-outdoor", "Dunmore Outdoor", "enterprise"),
    ("elm-street-books", "Elm Street Books", "free"),
    ("foxglove-studio", "Foxglove Studio", "pro"),
]
HOMEPAGE = "homepage"
HOMEPAGE_SIZE = 12
GUIDES = [
    "How to layer for autumn",
    "Caring for linen",
    "A capsule wardrobe in 10 pieces",
    "Choosing running shoes",
    "Five-minute skincare",
    "Lighting a small flat",
    "Gifts for little ones",
    "Packing for a hiking weekend",
]


@dataclass
class DemoPerson:
    user_id: str
    email: str
    name: str
    country: str
    plan: str
    timezone: str
    favourite_categories: list[str]
    favourite_brand: str
    budget: float
    email_engagement: float
    preferred_hour: int
    account_id: str = ""
    consents: dict[str, bool] = field(default_factory=dict)


@dataclass(frozen=True)
class DemoImpression:
    """One homepage answer a person saw at the start of a session (person by ``user_id``)."""

    recommendation_id: str
    user_id: str
    surface: str
    item_ids: list[str]
    served_at: datetime


@dataclass
class DemoStore:
    items: list[dict[str, Any]]
    people: list[DemoPerson]
    messages: list[dict[str, Any]]
    impressions: list[DemoImpression] = field(default_factory=list)


def _weighted(rng: random.Random, choices: list[tuple[str, float]]) -> str:
    return rng.choices([c for c, _ in choices], weights=[w for _, w in choices])[0]


def build_items(rng: random.Random, now: datetime) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    for top, subs in CATEGORIES.items():
        low, high = PRICE_RANGES[top]
        for sub in subs:
            for noun in NOUNS[sub]:
                for _ in range(rng.randint(5, 9)):
                    colour, adjective = rng.choice(COLOURS), rng.choice(ADJECTIVES)
                    brand = rng.choice(BRANDS[top])
                    price = round(rng.uniform(low, high), 2)
                    title = f"{adjective} {colour} {noun}"
                    items.append(
                        {
                            "external_id": f"P{len(items) + 1:05d}",
                            "kind": "product",
                            "title": title,
                            "description": f"{title} by {brand}. {adjective} design in {colour.lower()}, "
                            f"part of our {sub.lower()} range for {top.lower()}.",
                            "category": f"{top} > {sub}",
                            "brand": brand,
                            "price": f"{price:.2f}",
                            "margin": f"{price * rng.uniform(0.15, 0.55):.2f}",
                            "stock": 0 if rng.random() < 0.04 else rng.randint(1, 120),
                            "published_at": (now - timedelta(days=rng.randint(1, 400))).isoformat(),
                            "attributes": {"colour": colour.lower()},
                        }
                    )
    for index, guide in enumerate(GUIDES, start=1):
        items.append(
            {
                "external_id": f"C{index:03d}",
                "kind": "content",
                "title": guide,
                "description": f"A guide: {guide.lower()}.",
                "category": "Guides",
                "brand": "",
                "published_at": (now - timedelta(days=rng.randint(1, 200))).isoformat(),
            }
        )
    for index, feature in enumerate(FEATURES, start=1):
        items.append(
            {
                "external_id": f"F{index:02d}",
                "kind": "feature",
                "title": feature,
                "description": f"Product feature: {feature.lower()}.",
                "category": "Features",
                "brand": "",
            }
        )
    return items


def build_people(rng: random.Random, count: int) -> list[DemoPerson]:
    first = [
        "Ada",
        "Ben",
        "Chloe",
        "Dev",
        "Elif",
        "Finn",
        "Grace",
        "Hugo",
        "Isla",
        "Jonas",
        "Kira",
        "Leo",
        "Mia",
        "Noah",
        "Olga",
        "Priya",
        "Quinn",
        "Rosa",
        "Sami",
        "Tara",
        "Uma",
        "Vik",
        "Wen",
        "Yara",
        "Zoe",
    ]
    last = [
        "Adler",
        "Brown",
        "Costa",
        "Dubois",
        "Evans",
        "Fischer",
        "Garcia",
        "Hansen",
        "Ito",
        "Jensen",
        "Khan",
        "Larsen",
        "Moreau",
        "Novak",
        "Okafor",
        "Patel",
        "Rossi",
        "Schmidt",
        "Taylor",
        "Varga",
        "Weber",
    ]
    zones = {
        "United Kingdom": "Europe/London",
        "Germany": "Europe/Berlin",
        "France": "Europe/Paris",
        "Netherlands": "Europe/Amsterdam",
        "Spain": "Europe/Madrid",
    }
    people = []
    for n in range(1, count + 1):
        name = f"{rng.choice(first)} {rng.choice(last)}"
        tops = rng.sample(list(CATEGORIES), k=rng.choice([1, 1, 2]))
        favourites = [f"{top} > {rng.choice(CATEGORIES[top])}" for top in tops]
        country = _weighted(rng, COUNTRIES)
        top0 = favourites[0].split(" > ")[0]
        low, high = PRICE_RANGES[top0]
        people.append(
            DemoPerson(
                user_id=f"user-{n:05d}",
                email=f"{name.lower().replace(' ', '.')}.{n}@example.com",
                name=name,
                country=country,
                plan=_weighted(rng, PLANS),
                timezone=zones[country],
                favourite_categories=favourites,
                favourite_brand=rng.choice(BRANDS[top0]),
                budget=rng.uniform(low, high),
                email_engagement=rng.betavariate(2, 5),
                preferred_hour=rng.choice([7, 8, 12, 13, 18, 19, 20, 21]),
                account_id=ACCOUNTS[n % len(ACCOUNTS)][0],
                consents={
                    "personalization": rng.random() > 0.05,
                    "email_marketing": rng.random() < 0.7,
                    "analytics": rng.random() > 0.03,
                },
            )
        )
    return people


def _pick_item(
    rng: random.Random,
    person: DemoPerson,
    by_category: dict[str, list[dict[str, Any]]],
    all_products: list[dict[str, Any]],
) -> dict[str, Any]:
    if rng.random() < 0.75:
        pool = by_category[rng.choice(person.favourite_categories)]
        branded = [i for i in pool if i["brand"] == person.favourite_brand]
        if branded and rng.random() < 0.4:
            pool = branded
        affordable = [i for i in pool if float(i["price"]) <= person.budget * 1.3]
        return rng.choice(affordable or pool)
    return rng.choice(all_products)


def _session_messages(
    rng: random.Random,
    person: DemoPerson,
    start: datetime,
    session: int,
    by_category: dict[str, list[dict[str, Any]]],
    all_products: list[dict[str, Any]],
    impressions: list[DemoImpression],
    homepage: random.Random,
) -> Iterator[dict[str, Any]]:
    anonymous_id = f"anon-{person.user_id}-{session}"
    signed_in = rng.random() < 0.7
    at = start
    cart: list[dict[str, Any]] = []
    # A signed-in session opens on the homepage: an answer of 12 items (a third from the person's
    # tastes, the rest from the whole range), and now and then the person opens one of them (the view
    # carries the answer's id, as a shop's click handler sends it). Most visits to the homepage end
    # there: those answers are logged with nothing after them. The homepage draws from a generator of
    # its own, so the behaviour and consent drawn from ``rng`` are those of the store without it.
    shown: list[dict[str, Any]] = []
    recommendation_id = ""
    if signed_in:
        picks = [_pick_item(homepage, person, by_category, all_products) for _ in range(HOMEPAGE_SIZE // 3)]
        picks += homepage.sample(all_products, HOMEPAGE_SIZE - len(picks))
        shown = list({i["external_id"]: i for i in picks}.values())
        recommendation_id = f"demo{homepage.getrandbits(96):024x}"
        impressions.append(
            DemoImpression(recommendation_id, person.user_id, HOMEPAGE, [i["external_id"] for i in shown], at)
        )
        for _ in range(homepage.randint(1, 4)):
            bounced = [i["external_id"] for i in homepage.sample(all_products, HOMEPAGE_SIZE)]
            when = at - timedelta(hours=homepage.uniform(2, 72))
            impressions.append(
                DemoImpression(f"demo{homepage.getrandbits(96):024x}", person.user_id, HOMEPAGE, bounced, when)
            )
    opened_from_answer = False
    for _ in range(rng.randint(1, 8)):
        item = _pick_item(rng, person, by_category, all_products)
        from_answer = bool(shown) and not opened_from_answer and homepage.random() < 0.3
        opened_from_answer = opened_from_answer or from_answer
        if from_answer:
            item = homepage.choice(shown[: HOMEPAGE_SIZE // 3])
        at += timedelta(seconds=rng.randint(20, 240))
        properties = {"product_id": item["external_id"], "price": item["price"], "category": item["category"]}
        if from_answer:
            properties["recommendation_id"] = recommendation_id
        yield _track(person, anonymous_id, signed_in, "Product Viewed", at, properties, rng)
        if rng.random() < 0.18:
            cart.append(item)
            yield _track(
                person,
                anonymous_id,
                signed_in,
                "Product Added",
                at + timedelta(seconds=5),
                {"product_id": item["external_id"], "price": item["price"], "quantity": 1},
                rng,
            )
    if cart and rng.random() < 0.55:
        at += timedelta(minutes=rng.randint(1, 10))
        if not signed_in:  # checking out means signing in: the anonymous session is stitched
            yield {
                "type": "identify",
                "userId": person.user_id,
                "anonymousId": anonymous_id,
                "traits": {"email": person.email},
                "timestamp": at.isoformat(),
                "messageId": _id(rng),
            }
            signed_in = True
        yield _track(
            person,
            anonymous_id,
            signed_in,
            "Order Completed",
            at,
            {
                "order_id": f"O-{person.user_id}-{session}",
                "products": [
                    {"product_id": i["external_id"], "price": i["price"], "quantity": rng.choice([1, 1, 2])}
                    for i in cart
                ],
            },
            rng,
        )


def _id(rng: random.Random) -> str:
    return f"demo-{rng.getrandbits(64):016x}"


def _track(
    person: DemoPerson,
    anonymous_id: str,
    signed_in: bool,
    event: str,
    at: datetime,
    properties: dict[str, Any],
    rng: random.Random,
) -> dict[str, Any]:
    message: dict[str, Any] = {
        "type": "track",
        "event": event,
        "anonymousId": anonymous_id,
        "properties": properties,
        "timestamp": at.isoformat(),
        "messageId": _id(rng),
    }
    if signed_in:
        message["userId"] = person.user_id
    return message


def build_store(people_count: int = 3000, days: int = 90, seed: int = 7, now: datetime | None = None) -> DemoStore:
    rng = random.Random(seed)
    now = now or datetime.now().astimezone()
    items = build_items(rng, now)
    products = [i for i in items if i["kind"] == "product"]
    by_category: dict[str, list[dict[str, Any]]] = {}
    for item in products:
        by_category.setdefault(item["category"], []).append(item)
    people = build_people(rng, people_count)
    messages: list[dict[str, Any]] = []
    impressions: list[DemoImpression] = []
    homepage = random.Random(f"homepage-{seed}")
    accounts = {key: name for key, name, _ in ACCOUNTS}
    features = [i for i in items if i["kind"] == "feature"]
    for person in people:
        signup = now - timedelta(days=rng.randint(7, days))
        messages.append(
            {
                "type": "identify",
                "userId": person.user_id,
                "messageId": _id(rng),
                "timestamp": signup.isoformat(),
                "traits": {
                    "email": person.email,
                    "name": person.name,
                    "country": person.country,
                    "plan": person.plan,
                    "timezone": person.timezone,
                    "account_id": person.account_id,
                    "company": accounts[person.account_id],
                },
            }
        )
        messages.append(_track(person, "", True, "Signed Up", signup, {}, rng))
        for feature in rng.sample(features, k=rng.randint(0, 3)):
            at = signup + timedelta(days=rng.uniform(0, 14))
            messages.append(
                _track(person, "", True, "Feature Activated", at, {"feature_id": feature["external_id"]}, rng)
            )
        active_days = (now - signup).days
        for session in range(max(1, int(rng.expovariate(1 / 8) * active_days / days) + 1)):
            start = signup + timedelta(days=rng.uniform(0, active_days), hours=rng.uniform(-3, 3))
            start = min(start, now - timedelta(minutes=30))
            messages.extend(
                _session_messages(rng, person, start, session, by_category, products, impressions, homepage)
            )
        if person.consents["email_marketing"]:
            for week in range(active_days // 7):
                sent = signup + timedelta(weeks=week + 1)
                if rng.random() < person.email_engagement:
                    opened = sent.replace(hour=person.preferred_hour, minute=rng.randint(0, 59))
                    campaign = {"campaign_id": f"newsletter-{week}"}
                    messages.append(_track(person, "", True, "Email Opened", opened, campaign, rng))
                    if rng.random() < 0.3:
                        messages.append(
                            _track(person, "", True, "Email Link Clicked", opened + timedelta(minutes=2), campaign, rng)
                        )
    for message in messages:
        if not message.get("anonymousId"):
            message.pop("anonymousId", None)
    messages.sort(key=lambda m: m["timestamp"])
    impressions.sort(key=lambda i: i.served_at)
    return DemoStore(items, people, messages, impressions)
