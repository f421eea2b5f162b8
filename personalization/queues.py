"""Celery queues, one per kind of work, and which task goes to which.

A nightly training or the preparation of a large campaign takes minutes to hours; a send or a
profile refresh takes milliseconds and is expected within seconds. On one shared queue the short
work waits behind the long one. Each kind of work therefore has a queue of its own, and the
operator gives each queue its own worker processes (README, docs/deploy.md):

    celery -A personalization worker -Q training --concurrency 1 -n training@%h

A worker started without ``-Q`` consumes every queue below, so one ``make worker`` still runs
everything on a small box. With no ``REDIS_URL`` (the embedded default) tasks run in-process and
the queues do not matter.

Plain data, read by the settings: this module imports nothing of the apps.
"""

from __future__ import annotations

from kombu import Queue

INGESTION = "ingestion"  # what follows an ingested event: outbox relay, profile refresh, hot profile
SERVING = "serving"  # what serving reads, refreshed: experiment results and weights, surface stats
TRAINING = "training"  # fitting a new engine version
PREPARATION = "preparation"  # campaign and journey preparation: audience, one rendered message each
SENDING = "sending"  # handing due messages to the mail server
MAINTENANCE = "maintenance"  # the default: retention and anything not routed below

QUEUES: dict[str, str] = {
    INGESTION: "outbox relay, profile refresh (and through them the hot profile)",
    SERVING: "experiment results, guardrails and bandit weights; per-surface daily statistics",
    TRAINING: "engine training (minutes to an hour)",
    PREPARATION: "campaign and journey preparation, and resuming a stalled one",
    SENDING: "the due-message round and the sends",
    MAINTENANCE: "retention, the event log's month partitions, and any task not routed elsewhere",
}

DEFAULT_QUEUE = MAINTENANCE

# By task name, so that the route is read without importing the task (beat, the admin, the outbox).
ROUTES: dict[str, str] = {
    "profiles.tasks.relay_outbox": INGESTION,
    "profiles.tasks.refresh_profiles": INGESTION,
    "profiles.tasks.apply_retention": MAINTENANCE,
    "profiles.tasks.create_event_partitions": MAINTENANCE,
    "experiments.tasks.recompute_results": SERVING,
    "experiments.tasks.run_guardrails": SERVING,
    "experiments.tasks.reweight_bandits": SERVING,
    "personalization.tasks.attribute_surface_feedback": SERVING,
    "personalization.tasks.train_engine": TRAINING,
    "personalization.tasks.retrain_on_schedule": TRAINING,
    "campaigns.tasks.decide_matching_messages": PREPARATION,
    "personalization.tasks.watch_active_model": MAINTENANCE,
    "campaigns.tasks.prepare_campaign": PREPARATION,
    "campaigns.tasks.resume_stalled_preparations": PREPARATION,
    "campaigns.tasks.send_due_messages": SENDING,
    "campaigns.tasks.send_messages": SENDING,
    "journeys.tasks.advance_journeys": PREPARATION,
    "journeys.tasks.enter_scheduled_journeys": PREPARATION,
}


def celery_queues() -> tuple[Queue, ...]:
    """Every queue, declared: a worker without ``-Q`` consumes them all."""
    return tuple(Queue(name, routing_key=name) for name in QUEUES)


def celery_routes() -> dict[str, dict[str, str]]:
    return {task: {"queue": queue, "routing_key": queue} for task, queue in ROUTES.items()}
