"""The closed loop, simulated: does the engine keep up with a shop whose people change their minds?

    .venv/bin/python bench/loop.py --seed 7            # 30 days, the drift on day 15
    .venv/bin/python bench/loop.py --seed 7 --quick    # 14 days, the drift on day 4, 300 visits a day

A generated shop (``--items`` items in 8 categories, ``--people`` people) whose people click and buy
from what a surface shows them by a planted preference model: each person likes two categories
(weights 0.6 and 0.3, the rest share 0.1), each item has an appeal, a shown item at position p is
looked at with probability 1 / (1 + p) ** 0.8, and a looked-at item is clicked with probability
``0.6 * taste(category) * appeal`` (a third of that for an item the person has already touched);
a click becomes a purchase with probability ``0.3 * taste / 0.6``. Besides the surface, people
browse on their own by the same tastes (one or two views and sometimes a purchase per visit).

The drift, on day ``--drift-day``, is a new season, as a fashion or home shop sees it each spring
and autumn: ``--new-items`` (80) new items, spread over the same categories with appeals drawn as
the others', enter the catalogue that morning; last season's items keep half their appeal
(``SEASON_FADE``: out of fashion, no longer promoted), and ``--drift-share`` (30 %) of the people
move their liked categories to two others. People find the new items by browsing on their own
from the first day. A model fitted before the season cannot serve the new items at all (serving
proposes only items the model knows) and still ranks last season's by their old appeal; a refit
knows the new items from the events on them. (The earlier drift, people moving between existing
categories only, was followed by the never-retrained model through each person's latest events:
retraining had nothing to add.)

Each arm runs in its own process and its own scratch database (PostgreSQL when ``DATABASE_URL`` is
set, else the embedded SQLite default), through the project's own code: people and events enter by
``profiles.ingestion.ingest_messages``; every visit is answered by ``surface_serving.serve`` on a
surface with a 10 % exploration share; the answers are logged as impressions (with their
exploration slots) by ``feedback.write``; each night the attribution task runs; fits go through
``training.train_version`` and its gate, by the retraining task (nightly arms) or by the watch task
and its drift rule (drift arm). A simulated clock stands in for the wall clock in the processes
(``timezone.now`` and the serving code's ``time.time``), so that days pass in seconds.

Arms, one seed (the same shop, people, visits, drift and random draws for every arm):

- ``none``: the model fitted on the warm-up weeks serves the whole run;
- ``nightly``: retrained every night without exposure learning (``exposure_learning`` off);
- ``nightly_exposure``: retrained every night learning from exposure (the default);
- ``drift``: retrained only when the drift rule of the daily watch fires (exposure learning on).

Reported per arm and day: click-through (attributed clicks per item shown, from the project's own
daily attribution), purchases, and the share of the oracle: expected clicks of the served lists
under the planted model over those of the best possible list for each visit. The last line is JSON
with each arm's click-through over the last 10 days, its ratio to ``none``, and the drift rule's
detection delay (days from the drift's start to the end of the day whose watch fired).

The engine's settings for the fits are sized for this small shop (``ENGINE_SETTINGS`` below), the
same for every arm; nothing in them was chosen by looking at the results. The label windows are a
week long (``horizon_days`` 7): with the default 30 days no window has a past in a 44-day history,
and the ranker's lists fall back to each person's last events (the fit's ``lists`` says which was
used). Each night's fits are printed with the gate's two figures and basis,
the ranker's lists and rows, and the exposure rows and negatives that reached them. The shop serves
``--visits`` (400) answers a day, under the drift rule's default ``min_answers`` of 500, so the
bench sets the rule's ``min_answers`` to ``--min-answers`` (300); every other threshold is the
default. Each arm is a process of its own: ``--jobs`` arms run at once (2 by default, for 2 cores).
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
import types
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

ARMS = ("none", "nightly", "nightly_exposure", "drift")
START = datetime(2026, 3, 2, tzinfo=UTC)  # the first simulated day (a Monday)
CATEGORIES = 8
SLOTS = 8
SEASON_FADE = 0.5  # last season's items keep half their appeal once the new season is in the shop
ENGINE_SETTINGS = {
    "als_factors": 32,
    "als_iterations": 10,
    "ranker_trees": 100,
    "train_candidates": 60,
    "n_candidates": 200,
    "train_threads": 1,
    # Label windows of a week: with 30-day windows (the default) no window has a past in a shop
    # whose history is 14 + 30 days, and the ranker's lists fall back to each person's last events.
    "horizon_days": 7.0,
}
SURFACE = {
    "size": SLOTS,
    "exploration_share": 0.1,
    # Every item stays explorable: the exploration traffic is what position bias is estimated from.
    "under_exposed_below": 1_000_000,
    "in_stock_only": False,
}


# --- the simulated world -------------------------------------------------------------------------


@dataclass
class World:
    seed: int
    n_people: int
    n_items: int
    drift_share: float
    visits_per_day: int
    new_items: int = 0
    category: np.ndarray = field(init=False)
    appeal: np.ndarray = field(init=False)
    taste: np.ndarray = field(init=False)
    activity: np.ndarray = field(init=False)
    touched: list[set[int]] = field(init=False)

    def __post_init__(self) -> None:
        rng = np.random.default_rng([self.seed, 0])
        total = self.n_items + self.new_items
        self.category = np.arange(total) % CATEGORIES
        self.appeal = np.exp(rng.normal(0.0, 0.35, total))
        # The new season's items are not in the shop before the drift: nobody can be shown or find them.
        self.appeal[self.n_items :] = 0.0
        self.season_appeal = np.exp(np.random.default_rng([self.seed, 6]).normal(0.0, 0.35, self.new_items))
        self.taste = np.stack([self._taste(rng) for _ in range(self.n_people)])
        self.activity = rng.gamma(1.5, 1.0, self.n_people)
        self.activity /= self.activity.sum()
        self.touched = [set() for _ in range(self.n_people)]

    @staticmethod
    def _taste(rng: np.random.Generator, avoid: tuple[int, ...] = ()) -> np.ndarray:
        choices = [c for c in range(CATEGORIES) if c not in avoid]
        first, second = rng.choice(choices, 2, replace=False)
        taste = np.full(CATEGORIES, 0.1 / (CATEGORIES - 2))
        taste[first], taste[second] = 0.6, 0.3
        return taste

    def drift(self) -> None:
        """The new season: its items arrive, last season's lose half their appeal, and some people
        move to other categories."""
        rng = np.random.default_rng([self.seed, 1])
        self.appeal[: self.n_items] *= SEASON_FADE
        self.appeal[self.n_items :] = self.season_appeal
        moved = rng.random(self.n_people) < self.drift_share
        for person in np.flatnonzero(moved).tolist():
            liked = tuple(np.argsort(-self.taste[person])[:2].tolist())
            self.taste[person] = self._taste(rng, avoid=liked)

    def click_probability(self, person: int) -> np.ndarray:
        """If looked at: the chance of a click on each item."""
        p = 0.6 * self.taste[person][self.category] * self.appeal
        if self.touched[person]:
            p[list(self.touched[person])] /= 3.0
        return np.clip(p, 0.0, 0.95)

    def visits(self, day: int) -> list[tuple[int, float]]:
        """(person, seconds into the day) of every visit of ``day``, in time order."""
        rng = np.random.default_rng([self.seed, 2, day + 1000])
        count = int(rng.poisson(self.visits_per_day))
        people = rng.choice(self.n_people, count, p=self.activity)
        seconds = np.sort(rng.uniform(8 * 3600, 22 * 3600, count))
        return list(zip(people.tolist(), seconds.tolist(), strict=True))


def examined(position: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + position) ** 0.8


def oracle_clicks(world: World, person: int) -> float:
    """Expected clicks of the best list: the most clickable items, best first."""
    best = np.sort(world.click_probability(person))[::-1][:SLOTS]
    return float((best * examined(np.arange(best.shape[0]))).sum())


# --- one arm, in its own process -------------------------------------------------------------------


class Clock:
    """The simulated time: ``timezone.now`` and the serving code's ``time.time`` read it."""

    def __init__(self) -> None:
        self.at = START

    def now(self) -> datetime:
        return self.at

    def time(self) -> float:
        return self.at.timestamp()


def _patch_clock(clock: Clock) -> None:
    from django.utils import timezone

    from personalization import serving, surface_serving

    timezone.now = clock.now
    shim = types.SimpleNamespace(time=clock.time, monotonic=time.monotonic, perf_counter=time.perf_counter)
    surface_serving.time = shim  # type: ignore[assignment]
    serving.time = shim  # type: ignore[assignment]


def _day(n: int) -> datetime:
    return START + timedelta(days=n)


def _track(user: str, event: str, properties: dict[str, Any], at: datetime, message_id: str) -> dict[str, Any]:
    return {
        "type": "track",
        "userId": user,
        "event": event,
        "properties": properties,
        "timestamp": at.isoformat(),
        "messageId": message_id,
    }


def run_arm(args: argparse.Namespace) -> dict[str, Any]:
    import django

    django.setup()
    from django.core.management import call_command

    from catalog.models import Item
    from personalization import feedback, registry
    from personalization.models import DriftRule, FitTrigger, ModelHealthSnapshot, ModelVersion, SurfaceDailyStats
    from personalization.retraining import retrain
    from personalization.surface_serving import ServeRequest, serve
    from personalization.surfaces import create_surface
    from personalization.tasks import attribute_surface_feedback, retrain_on_schedule, watch_active_model
    from profiles.ingestion import ingest_messages
    from profiles.models import Identity

    clock = Clock()
    _patch_clock(clock)
    started = time.perf_counter()
    call_command("migrate", verbosity=0)
    world = World(args.seed, args.people, args.items, args.drift_share, args.visits, args.new_items)
    warmup = args.warmup_days
    clock.at = _day(-warmup) - timedelta(days=1)

    def add_items(numbers: range, published: datetime, season: str) -> None:
        Item.objects.bulk_create(
            [
                Item(
                    external_id=f"sku-{i:04d}",
                    title=f"Item {i} of category {world.category[i]}, {season}",
                    category=f"Category {world.category[i]}",
                    brand=f"Brand {i % 23}",
                    price=10 + i % 40,
                    stock=1000,
                    published_at=published,
                )
                for i in numbers
            ]
        )

    add_items(range(args.items), _day(-warmup - 60), "last season")
    countries = ("France", "Spain", "Norway", "Germany")
    for start in range(0, args.people, 1000):
        ingest_messages(
            [
                {"type": "identify", "userId": f"u{n}", "traits": {"country": countries[n % 4]}, "messageId": f"id-{n}"}
                for n in range(start, min(start + 1000, args.people))
            ],
            refresh=False,
        )
    person_id = dict(Identity.objects.filter(kind="user_id").values_list("value", "person_id"))
    people = [person_id[f"u{n}"] for n in range(args.people)]
    create_surface("home", "Home", SURFACE, by="bench")
    DriftRule.objects.filter(pk=DriftRule.current().pk).update(min_answers=args.min_answers)

    def organic(person: int, at: datetime, rng: np.random.Generator, tag: str) -> list[dict[str, Any]]:
        """Browsing outside the surface, by the person's tastes."""
        messages: list[dict[str, Any]] = []
        chance = world.taste[person][world.category] * world.appeal
        for k in range(int(rng.integers(1, 3))):
            item = int(rng.choice(chance.shape[0], p=chance / chance.sum()))
            when = at + timedelta(minutes=5 + 3 * k)
            messages.append(
                _track(f"u{person}", "Product Viewed", {"product_id": f"sku-{item:04d}"}, when, f"{tag}v{k}")
            )
            world.touched[person].add(item)
            if rng.random() < 0.15:
                order = {"order_id": f"{tag}o{k}", "products": [{"product_id": f"sku-{item:04d}", "price": 20}]}
                messages.append(
                    _track(f"u{person}", "Order Completed", order, when + timedelta(minutes=1), f"{tag}o{k}")
                )
        return messages

    # Warm-up: people browse on their own; then the first model is fitted.
    for day in range(-warmup, 0):
        messages = []
        for n, (person, second) in enumerate(world.visits(day)):
            rng = np.random.default_rng([args.seed, 3, day + 1000, n])
            messages += organic(person, _day(day) + timedelta(seconds=second), rng, f"w{day}-{n}-")
        clock.at = _day(day + 1)
        ingest_messages(messages, refresh=False)
    clock.at = _day(0) - timedelta(hours=2)
    first = retrain(FitTrigger.MANUAL, reason="the warm-up weeks")
    if registry.active_version() is None:
        raise SystemExit(f"the first fit did not activate: {first.status} {first.error}")

    days: list[dict[str, Any]] = []
    fired: list[int] = []
    seen_fit = first.pk
    for day in range(args.days):
        if day == args.drift_day:
            world.drift()
            clock.at = _day(day)
            add_items(range(args.items, args.items + args.new_items), _day(day), "new season")
        shown_clicks = oracle = 0.0
        pending: list[dict[str, Any]] = []
        impressions: list[Any] = []
        visits = world.visits(day)
        day_started = time.perf_counter()
        for n, (person, second) in enumerate(visits):
            at = _day(day) + timedelta(seconds=second)
            clock.at = at
            rng = np.random.default_rng([args.seed, 4, day, n])
            answer = serve(ServeRequest(surface="home", person_id=people[person], rng=rng, log=False))
            impressions.append(
                feedback.ImpressionRow(
                    recommendation_id=answer.recommendation_id,
                    surface_id=_surface_id(),
                    version_number=answer.version,
                    model_version=answer.model_version,
                    person_id=people[person],
                    item_ids=[i.item_id for i in answer.items],
                    strategy=answer.strategy,
                    experiment=answer.experiment,
                    variant=answer.variant,
                    served_at=at,
                    degraded=answer.degraded,
                    explored=[k for k, i in enumerate(answer.items) if i.exploring],
                )
            )
            shown = np.asarray([int(i.item_id[4:]) for i in answer.items], dtype=np.int64)
            probability = world.click_probability(person)
            look = examined(np.arange(shown.shape[0]))
            shown_clicks += float((probability[shown] * look).sum())
            oracle += oracle_clicks(world, person)
            draws = rng.random((2, SLOTS))
            tag = f"d{day}-{n}-"
            for k, item in enumerate(shown.tolist()):
                if draws[0, k] < look[k] * probability[item]:
                    when = at + timedelta(seconds=30 + 20 * k)
                    sku = f"sku-{item:04d}"
                    props = {"product_id": sku, "recommendation_id": answer.recommendation_id}
                    pending.append(_track(f"u{person}", "Product Viewed", props, when, f"{tag}c{k}"))
                    taste = world.taste[person][world.category[item]]
                    world.touched[person].add(item)
                    if draws[1, k] < 0.3 * taste / 0.6:
                        order = {"order_id": f"{tag}b{k}", "products": [{"product_id": sku, "price": 20}]}
                        pending.append(
                            _track(f"u{person}", "Order Completed", order, when + timedelta(minutes=2), f"{tag}b{k}")
                        )
            own = np.random.default_rng([args.seed, 5, day, n])
            if own.random() < 0.6:
                pending += organic(person, at, own, tag)
            if len(impressions) >= args.batch:
                feedback.write(impressions)
                ingest_messages(pending, refresh=False)
                impressions, pending = [], []
        clock.at = _day(day + 1) - timedelta(minutes=1)
        feedback.write(impressions)
        ingest_messages(pending, refresh=False)
        # The night: attribution of the day, then the watch (and its drift rule) or the schedule.
        night_started = time.perf_counter()
        clock.at = _day(day + 1) + timedelta(hours=1)
        attribute_surface_feedback.apply(args=[_day(day).date().isoformat()])
        if args.arm == "drift":
            watch_active_model.apply(args=[_day(day).date().isoformat()])
            snapshot = ModelHealthSnapshot.objects.get(day=_day(day).date())
            if (snapshot.drift or {}).get("fired"):
                fired.append(day)
        elif args.arm in ("nightly", "nightly_exposure"):
            clock.at = _day(day + 1) + timedelta(hours=2)
            retrain_on_schedule.apply()
        stats = SurfaceDailyStats.objects.get(day=_day(day).date())
        fits = [_fit_record(v) for v in ModelVersion.objects.filter(pk__gt=seen_fit).order_by("id")]
        seen_fit = max([seen_fit, *(f["version"] for f in fits)])
        days.append(
            {
                "day": day,
                "answers": stats.impressions,
                "items_shown": stats.items_shown,
                "clicks": stats.clicks,
                "purchases": stats.purchases,
                "ctr": stats.clicks / stats.items_shown if stats.items_shown else 0.0,
                "oracle_share": shown_clicks / oracle if oracle else 0.0,
                "day_seconds": round(night_started - day_started, 1),
                "night_seconds": round(time.perf_counter() - night_started, 1),
                "fits": fits,
            }
        )
        print(json.dumps({"arm": args.arm, **days[-1]}), file=sys.stderr, flush=True)
    versions = list(ModelVersion.objects.order_by("id").values_list("status", "trigger"))
    return {
        "arm": args.arm,
        "days": days,
        "drift_fired_days": fired,
        "fits": len(versions),
        "fits_activated": sum(1 for status, _ in versions if status in ("active", "retired")),
        "fits_refused": sum(1 for status, _ in versions if status == "rejected"),
        "seconds": round(time.perf_counter() - started, 1),
    }


def _fit_record(version: Any) -> dict[str, Any]:
    """What a fit did: the gate's two figures and basis, and what reached the ranker."""
    metrics, engine = version.metrics or {}, (version.training or {}).get("engine") or {}
    exposure = engine.get("exposure") or {}
    active = metrics.get("active") or {}
    return {
        "version": version.pk,
        "status": version.status,
        "ndcg": round((metrics.get("holdout") or {}).get("ndcg", float("nan")), 4),
        "active_ndcg": round(active["ndcg"], 4) if active.get("ndcg") is not None else None,
        "basis": active.get("basis"),
        "lists": engine.get("lists"),
        "ranker_lists": engine.get("groups"),
        "ranker_rows": engine.get("rows"),
        "exposure_rows": exposure.get("list_rows", 0),
        "exposure_negatives": exposure.get("negatives", 0),
    }


_surface_ids: dict[str, int] = {}


def _surface_id() -> int:
    if "home" not in _surface_ids:
        from personalization.models import Surface

        _surface_ids["home"] = Surface.objects.get(key="home").pk
    return _surface_ids["home"]


# --- the run: every arm, then the table ------------------------------------------------------------


def _arm_environment(arm: str, scratch: Path, base_url: str | None) -> dict[str, str]:
    env = {
        k: v for k, v in os.environ.items() if k not in ("REDIS_URL", "CACHE_URL", "DATABASE_URL", "ENGINE_SETTINGS")
    }
    settings = dict(ENGINE_SETTINGS, exposure_learning=arm != "nightly")
    env.update(
        DJANGO_SETTINGS_MODULE="personalization.settings",
        SECRET_KEY="bench-only-secret",
        TRACKING_SECRET_KEY="bench-only-tracking-secret",
        DATA_DIR=str(scratch / arm),
        MODEL_STORAGE_DIR=str(scratch / arm / "models"),
        ENGINE_SETTINGS=json.dumps(settings),
        CELERY_EAGER="True",
        OMP_NUM_THREADS="1",
    )
    if base_url:
        from bench.scratch_database import recreate_database

        env["DATABASE_URL"] = recreate_database(base_url, f"bench_loop_{arm}")
    return env


def _last_10(days: list[dict[str, Any]], key: str) -> float:
    tail = days[-10:]
    if key == "ctr":
        shown = sum(d["items_shown"] for d in tail)
        return sum(d["clicks"] for d in tail) / shown if shown else 0.0
    if key == "purchases":
        return float(sum(d["purchases"] for d in tail))
    return float(np.mean([d[key] for d in tail]))


def render(results: dict[str, dict[str, Any]], drift_day: int) -> str:
    arms = [a for a in ARMS if a in results]
    lines = ["click-through (clicks per item shown) / purchases / share of the oracle, per simulated day", ""]
    lines.append("day  " + "".join(f"{a:>26}" for a in arms))
    for n in range(len(results[arms[0]]["days"])):
        cells = []
        for arm in arms:
            d = results[arm]["days"][n]
            cells.append(f"{100 * d['ctr']:7.2f}% {d['purchases']:5d} {100 * d['oracle_share']:6.1f}%")
        mark = "  <- drift" if n == drift_day else ""
        lines.append(f"{n:3d}  " + "".join(f"{c:>26}" for c in cells) + mark)
    lines.append("")
    base = _last_10(results["none"]["days"], "ctr") if "none" in results else None
    for arm in arms:
        r = results[arm]
        ctr = _last_10(r["days"], "ctr")
        ratio = f", {ctr / base:.3f}x none" if base else ""
        lines.append(
            f"{arm:17s} last 10 days: CTR {100 * ctr:.2f}%{ratio}, purchases {_last_10(r['days'], 'purchases'):.0f},"
            f" oracle share {100 * _last_10(r['days'], 'oracle_share'):.1f}%; fits {r['fits']}"
            f" ({r['fits_activated']} activated, {r['fits_refused']} refused); {r['seconds']:.0f} s"
        )
    return "\n".join(lines)


def summary(results: dict[str, dict[str, Any]], args: argparse.Namespace) -> dict[str, Any]:
    ctr = {arm: round(_last_10(r["days"], "ctr"), 5) for arm, r in results.items()}
    fired = results.get("drift", {}).get("drift_fired_days", [])
    after = [d for d in fired if d >= args.drift_day]
    delay = after[0] - args.drift_day + 1 if after else None
    base = ctr.get("none")
    return {
        "seed": args.seed,
        "ctr_last_10_days": ctr,
        "ctr_ratio_to_none": {arm: round(v / base, 3) for arm, v in ctr.items()} if base else None,
        "purchases_last_10_days": {arm: _last_10(r["days"], "purchases") for arm, r in results.items()},
        "oracle_share_last_10_days": {arm: round(_last_10(r["days"], "oracle_share"), 4) for arm, r in results.items()},
        "drift_day": args.drift_day,
        "drift_detection_delay_days": delay,
        "drift_fired_before_the_drift": [d for d in fired if d < args.drift_day],
        "target_exposure_vs_none": 1.1,
        "target_delay_days": 2,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--people", type=int, default=1500)
    parser.add_argument("--items", type=int, default=160)
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--warmup-days", type=int, default=14)
    parser.add_argument("--visits", type=int, default=400, help="Visits a day (each answered by the surface).")
    parser.add_argument(
        "--min-answers",
        type=int,
        default=300,
        help="The drift rule's min_answers (default rule: 500), below the simulated shop's answers a day.",
    )
    parser.add_argument("--drift-day", type=int, default=15)
    parser.add_argument(
        "--drift-share", type=float, default=0.3, help="Share of the people whose liked categories move at the drift."
    )
    parser.add_argument(
        "--new-items", type=int, default=80, help="Items of the new season, added to the catalogue at the drift."
    )
    parser.add_argument("--batch", type=int, default=50, help="Visits answered before their events are ingested.")
    parser.add_argument("--arms", default=",".join(ARMS))
    parser.add_argument("--jobs", type=int, default=2, help="Arms run at once (one process each).")
    parser.add_argument(
        "--quick",
        action="store_true",
        help="The shorter run: --days 14 --drift-day 4 --visits 300 --min-answers 200 (about a third of the CPU).",
    )
    parser.add_argument("--arm", help=argparse.SUPPRESS)
    parser.add_argument("--out", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.quick:
        args.days, args.drift_day, args.visits, args.min_answers = 14, 4, 300, 200
    if args.arm:
        result = run_arm(args)
        Path(args.out).write_text(json.dumps(result), encoding="utf-8")
        return 0

    arms = [a.strip() for a in args.arms.split(",") if a.strip()]
    unknown = [a for a in arms if a not in ARMS]
    if unknown:
        parser.error(f"--arms: unknown arm {unknown[0]} (known: {', '.join(ARMS)})")
    base_url = os.environ.get("DATABASE_URL") or None
    # Stopped (SIGTERM): the arms' processes are ended too, by the ``finally`` below.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    started = time.perf_counter()
    results: dict[str, dict[str, Any]] = {}
    with tempfile.TemporaryDirectory(prefix="bench-loop-") as tmp:
        scratch = Path(tmp)
        queue = list(arms)
        running: list[tuple[str, subprocess.Popen[bytes], Path]] = []
        try:
            while queue or running:
                while queue and len(running) < args.jobs:
                    arm = queue.pop(0)
                    (scratch / arm).mkdir(parents=True)
                    out = scratch / f"{arm}.json"
                    command = [sys.executable, str(Path(__file__).resolve()), *(argv or sys.argv[1:])]
                    command += ["--arm", arm, "--out", str(out)]
                    process = subprocess.Popen(command, cwd=ROOT, env=_arm_environment(arm, scratch, base_url))
                    running.append((arm, process, out))
                time.sleep(0.5)
                for entry in list(running):
                    arm, process, out = entry
                    if process.poll() is None:
                        continue
                    running.remove(entry)
                    if process.returncode != 0:
                        raise SystemExit(f"arm {arm} failed (exit {process.returncode})")
                    results[arm] = json.loads(out.read_text(encoding="utf-8"))
        finally:
            for _, process, _ in running:
                process.kill()
            if base_url:
                from bench.scratch_database import drop_database

                for arm in arms:
                    drop_database(base_url, f"bench_loop_{arm}")
    print(render(results, args.drift_day))
    print(f"\n{len(arms)} arms in {time.perf_counter() - started:.0f} s (wall), {args.jobs} at a time")
    print(json.dumps(summary(results, args)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
