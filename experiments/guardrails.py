"""The guardrail job: recompute every running experiment and stop variants that harm a guardrail metric.

A variant is stopped when the always-valid (sequential) test says it makes a guardrail metric
significantly worse than control, with at least ``results.GUARDRAIL_MIN_UNITS`` people in each
group. Its people fall back to control at once (assignment serves control for a stopped variant),
the change is recorded, the owner gets an email and the results page shows why.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.conf import settings
from django.core.mail import send_mail

from experiments import lifecycle, results
from experiments.models import Experiment, Status

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class GuardrailStop:
    experiment: str
    variant: str
    metric: str
    relative_change: float | None
    p_value: float | None
    reason: str


def _reason(state: dict[str, Any], variant_name: str, control_name: str) -> str:
    change = state.get("relative_change")
    p_value = state.get("p_value")
    change_text = f" ({change:+.1%} vs {control_name})" if isinstance(change, float) else ""
    p_text = f"; always-valid p = {p_value:.2g}" if isinstance(p_value, float) else ""
    return f"{state['label']} got significantly worse in {variant_name}{change_text}{p_text}."


def apply_guardrails(experiment: Experiment, data: dict[str, Any]) -> list[GuardrailStop]:
    """Stop each variant that the results in ``data`` show harming a guardrail metric."""
    stops: list[GuardrailStop] = []
    variants = {v.key: v for v in experiment.variants.all()}
    control = next((v for v in variants.values() if v.is_control), None)
    control_name = (control.name or control.key) if control else "control"
    for state in data.get("guardrails", []):
        if state["state"] != "harmed" or state["stopped"]:
            continue
        variant = variants.get(state["variant"])
        if variant is None or variant.stopped_by_guardrail:
            continue
        reason = _reason(state, variant.name or variant.key, control_name)
        detail = {"metric": state["metric"], "relative_change": state["relative_change"], "p_value": state["p_value"]}
        if lifecycle.stop_variant(variant, reason, detail):
            variant.stopped_by_guardrail = True
            stop = GuardrailStop(
                experiment.key, variant.key, state["metric"], state["relative_change"], state["p_value"], reason
            )
            stops.append(stop)
            _tell_owner(experiment, stop)
    return stops


def _tell_owner(experiment: Experiment, stop: GuardrailStop) -> None:
    owner = experiment.owner
    address = getattr(owner, "email", "") if owner is not None else ""
    if not address:
        logger.warning("Guardrail stopped %s in %s; the experiment has no owner email", stop.variant, stop.experiment)
        return
    link = f"{(settings.SITE_URL or '').rstrip('/')}/experiments/{experiment.key}/"
    body = (
        f"The guardrail job stopped variant {stop.variant!r} of the experiment {experiment.name!r}.\n\n"
        f"{stop.reason}\n\n"
        "Everyone who was getting this variant now gets the control experience. The results so far "
        f"stay readable on the results page:\n{link}\n"
    )
    try:
        send_mail(f"Experiment {experiment.key}: variant {stop.variant} stopped by a guardrail", body, None, [address])
    except Exception:  # the stop stands even if the mail server is down
        logger.exception("Could not email %s about the guardrail stop in %s", address, experiment.key)


def run_guardrails(now: datetime | None = None) -> list[GuardrailStop]:
    """Record a fresh look at every running experiment, then act on its guardrails."""
    stops: list[GuardrailStop] = []
    for experiment in Experiment.objects.filter(status=Status.RUNNING).select_related("owner"):
        try:
            snapshot = results.record_results(experiment, now)
        except Exception:  # one broken experiment must not keep the others unguarded
            logger.exception("Could not compute the results of %s", experiment.key)
            continue
        stops.extend(apply_guardrails(experiment, snapshot.data))
    return stops
