"""Campaign rendering throughput: messages rendered per second per worker process, beside a baseline.

    .venv/bin/python -m bench.campaign --people 100000 --processes 1,2

Renders one campaign for ``--people`` people (100,000 by default) held in memory, through the same
functions the preparation task calls for each recipient once it has loaded them from the database:
``CompiledCampaign.choose_variant`` and ``rendering.render_for`` (person context, signed unsubscribe
link, sandboxed Jinja2 render of subject, preheader, HTML and text, link extraction), and then
``rendering.tracked`` (click redirects and the open pixel, added when the message is sent). Loading
people and asking the engine for their products are left out: each person gets four products drawn
from a 2,000-item in-memory catalogue, so the numbers are about rendering, not about the database
or the recommender.

Baseline, in the same run and the same processes: the same compiled template rendered with one
fixed context (no per-person context, no token signing, no link handling): what rendering costs in
Jinja2's sandbox alone. Each row is run with 1 and with N worker processes (forked, each renders
its share); "per process" is each process's own count over its own time. The people are rendered in
``--rounds`` slices, each slice by every path in turn, so that a change in the machine's load
(other processes on a shared box) hits all paths alike; the table gives the median over the
slices, and the ratio is the median of each slice's ratio to its baseline.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import random
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "personalization.settings")
# Settings refuse to start without keys when DEBUG is off; this script signs nothing anyone reads.
os.environ.setdefault("SECRET_KEY", "bench-only-secret")
os.environ.setdefault("TRACKING_SECRET_KEY", "bench-only-tracking-secret")

import django  # noqa: E402

django.setup()

from campaigns.rendering import (  # noqa: E402
    CompiledCampaign,
    ContentBlock,
    Recipient,
    compile_campaign,
    render_for,
    tracked,
)

LAYOUT = """<!doctype html><html><head><meta charset="utf-8"><title>{{ campaign.name }}</title></head>
<body style="margin:0;background:#f4f4f4"><table width="100%" cellpadding="0" cellspacing="0"><tr><td align="center">
<table width="600" cellpadding="0" cellspacing="0" style="background:#fff">
<tr><td style="padding:24px;font:16px Arial">{% block body %}{% endblock %}</td></tr>
<tr><td style="padding:16px;font:12px Arial;color:#888">{% include 'footer' %}</td></tr>
</table></td></tr></table></body></html>"""
FOOTER = """You receive this because you have an account{% if account.name %} at {{ account.name }}{% endif %}.
<a href="{{ unsubscribe_url }}">Unsubscribe</a> · <a href="https://shop.example.com/preferences">Preferences</a>"""
HTML = """{% extends 'layout' %}{% block body %}
<h1 style="font-size:22px">Hi {{ person.first_name|default('there') }},</h1>
<p>{% if person.plan == 'enterprise' %}As one of our partners{% else %}This week{% endif %}, picked for you:</p>
{% for p in products %}<table width="100%"><tr>
<td><a href="{{ p.url }}" style="color:#2d5bd7">{{ p.title }}</a><br><span style="color:#888">{{ p.brand }} ·
{{ p.category|replace(' > ', ' / ') }}</span></td>
<td align="right"><strong>{{ p.price|money('EUR', 'de') }}</strong></td></tr></table>{% endfor %}
<p><a href="https://shop.example.com/new?utm_source=email&amp;utm_campaign={{ campaign.key }}">See what is new</a></p>
{% endblock %}"""
TEXT = """Hi {{ person.first_name|default('there') }},

{% for p in products %}- {{ p.title }} ({{ p.price|money('EUR') }}): {{ p.url }}
{% endfor %}
See everything new: https://shop.example.com/new
Unsubscribe: {{ unsubscribe_url }}"""
FIELDS = {
    "subject": "{{ person.first_name|default('Hello') }}, {{ products[0].title }} and {{ products|length - 1 }} more",
    "preheader": "New in {{ products[0].category.split(' > ')[0] if products else 'the shop' }} this week",
    "html": HTML,
    "text": TEXT,
}
VARIANTS = {"vip": {"subject": "{{ person.first_name }}, a personal selection for {{ account.name|default('you') }}"}}
RULES: list[dict[str, Any]] = [{"variant": "vip", "segments": ["enterprise"]}, {"variant": "default"}]

FIRST = ["Ada", "Ben", "Cleo", "Dev", "Eli", "Fay", "Gus", "Hana", "Ivo", "Jun", "Kim", "Lea", "Max", "Nia", "Oto"]
LAST = ["Smith", "Meyer", "Dubois", "Rossi", "Garcia", "de Vries", "Nowak", "Silva", "Berg", "Kim"]
PLANS = ["free"] * 6 + ["pro"] * 3 + ["enterprise"]
ZONES = ["Europe/London", "Europe/Berlin", "Europe/Paris", "Europe/Madrid", "America/New_York"]
MATERIALS = ["Linen", "Wool", "Cotton", "Oak", "Glass"]
CATEGORIES = ["Women > Dresses", "Men > Shoes", "Home > Kitchen", "Home > Lighting", "Kids > Toys", "Beauty > Skin"]


def compiled() -> CompiledCampaign:
    return compile_campaign(
        1,
        "bench",
        "Picked for you",
        FIELDS,
        blocks={"layout": LAYOUT, "footer": FOOTER},
        variants=VARIANTS,
        variant_rules=RULES,
    )


def catalogue(rng: random.Random) -> list[dict[str, Any]]:
    items = []
    for n in range(2000):
        category = rng.choice(CATEGORIES)
        items.append(
            {
                "id": f"sku-{n:05d}",
                "title": f"{rng.choice(MATERIALS)} {category.split(' > ')[1][:-1]} {n}",
                "url": f"https://shop.example.com/p/sku-{n:05d}",
                "price": round(rng.uniform(5, 400), 2),
                "category": category,
                "brand": rng.choice(["Maison Vela", "Nordlicht", "Acme", "Studio Oak"]),
                "score": 0.0,
                "reason": "Popular right now",
                "source": "popular",
            }
        )
    return items


@dataclass(frozen=True)
class Work:
    recipients: list[Recipient]
    contents: list[ContentBlock]


def people(count: int, seed: int = 0) -> Work:
    rng = random.Random(seed)
    items = catalogue(rng)
    recipients, contents = [], []
    for n in range(count):
        first, plan = rng.choice(FIRST), rng.choice(PLANS)
        company = f"Company {n % 997}" if plan != "free" else ""
        traits = {
            "first_name": first,
            "name": f"{first} {rng.choice(LAST)}",
            "email": f"person{n}@example.com",
            "plan": plan,
            "country": rng.choice(["UK", "Germany", "France", "Spain", "US"]),
            "timezone": rng.choice(ZONES),
        }
        account = {"id": company, "name": company, "plan": plan} if company else None
        recipients.append(Recipient(n + 1, traits["email"], traits, account, frozenset({plan})))
        contents.append(ContentBlock(f"rec-{n}", rng.sample(items, 4)))
    return Work(recipients, contents)


def _baseline(campaign: CompiledCampaign, work: Work, start: int, stop: int) -> int:
    template = campaign.template("default")
    fixed = {
        "person": {"first_name": "Ada", "plan": "pro"},
        "account": {"name": "Acme"},
        "products": list(work.contents[0].items),
        "items": list(work.contents[0].items),
        "campaign": {"key": "bench", "name": "Picked for you"},
        "unsubscribe_url": "https://example.com/t/u/token",
        "recommendation_id": "rec-0",
        "next_actions": [],
    }
    for _ in range(start, stop):
        template.render(fixed)
    return stop - start


def _campaign(campaign: CompiledCampaign, work: Work, start: int, stop: int) -> int:
    for n in range(start, stop):
        recipient = work.recipients[n]
        render_for(campaign, recipient, work.contents[n], variant=campaign.choose_variant(recipient))
    return stop - start


def _campaign_and_tracking(campaign: CompiledCampaign, work: Work, start: int, stop: int) -> int:
    for n in range(start, stop):
        recipient = work.recipients[n]
        rendered = render_for(campaign, recipient, work.contents[n], variant=campaign.choose_variant(recipient))
        tracked(1, recipient.person_id, rendered.html, rendered.text, rendered.links)
    return stop - start


PATHS: dict[str, Callable[[CompiledCampaign, Work, int, int], int]] = {
    "baseline: same template, fixed context": _baseline,
    "campaign: render_for per recipient": _campaign,
    "campaign + tracking at send": _campaign_and_tracking,
}

_work: Work | None = None


def _run(args: tuple[str, int, int]) -> tuple[int, float]:
    name, start, stop = args
    assert _work is not None
    campaign = compiled()
    began = time.perf_counter()
    done = PATHS[name](campaign, _work, start, stop)
    return done, time.perf_counter() - began


def measure(name: str, start: int, stop: int, processes: int) -> tuple[float, float]:
    """(messages per second per process, total messages per second) for people ``start:stop``."""
    count = stop - start
    shares = [(name, start + count * i // processes, start + count * (i + 1) // processes) for i in range(processes)]
    began = time.perf_counter()
    if processes == 1:
        results = [_run(shares[0])]
    else:
        with multiprocessing.get_context("fork").Pool(processes) as pool:
            results = pool.map(_run, shares)
    wall = time.perf_counter() - began
    per_process = statistics.fmean(done / seconds for done, seconds in results)
    return per_process, sum(done for done, _ in results) / wall


def main() -> None:
    global _work
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--people", type=int, default=100_000)
    parser.add_argument("--processes", default="1,2", help="comma-separated process counts")
    parser.add_argument("--rounds", type=int, default=10, help="slices, each rendered by every path in turn")
    parser.add_argument("--seed", type=int, default=0)
    options = parser.parse_args()
    counts = [int(p) for p in options.processes.split(",")]
    _work = people(options.people, options.seed)
    sample = render_for(compiled(), _work.recipients[0], _work.contents[0])
    print(f"{options.people:,} people, {len(sample.html):,} characters of HTML per message, {os.cpu_count()} CPUs\n")
    print("| path | processes | messages | messages/s per process | messages/s in all | per process vs baseline |")
    print("|---|---:|---:|---:|---:|---:|")
    names = list(PATHS)
    for processes in counts:
        per_process: dict[str, list[float]] = {name: [] for name in names}
        total: dict[str, list[float]] = {name: [] for name in names}
        for round_ in range(options.rounds):
            start = options.people * round_ // options.rounds
            stop = options.people * (round_ + 1) // options.rounds
            for name in names:
                rate, overall = measure(name, start, stop, processes)
                per_process[name].append(rate)
                total[name].append(overall)
        baseline = per_process[names[0]]
        for name in names:
            ratio = statistics.median(r / b for r, b in zip(per_process[name], baseline, strict=True))
            print(
                f"| {name} | {processes} | {options.people:,} | {statistics.median(per_process[name]):,.0f} | "
                f"{statistics.median(total[name]):,.0f} | {ratio:.2f} |",
                flush=True,
            )


if __name__ == "__main__":
    main()
