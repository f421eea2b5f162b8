"""Whether a person may receive marketing email, and if not, why (no consent, or unsubscribed)."""

from __future__ import annotations

from campaigns.models import Reason
from profiles import services as profiles

PURPOSE = "email_marketing"
UNSUBSCRIBE_SOURCE = "unsubscribe link"


def email_refusal(person_id: int) -> str | None:
    """None when ``email_marketing`` consent holds; else ``unsubscribed`` when the person withdrew it
    by unsubscribing (a link, a list header, or a source that says so), ``no_consent`` otherwise."""
    state = next((s for s in profiles.consent_states(person_id) if s.purpose == PURPOSE), None)
    if state is not None and state.granted:
        return None
    if state is not None and state.updated_at is not None and "unsubscribe" in state.source.lower():
        return Reason.UNSUBSCRIBED
    return Reason.NO_CONSENT
