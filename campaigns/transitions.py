"""Message state changes as conditional updates: a change happens only from the states it names, so two
workers (or a worker and a CSM) can never both move the same message; the loser sees 0 rows.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from django.utils import timezone

from campaigns.models import Message, MessageState

# The state machine: which state may follow which.
ALLOWED: dict[str, frozenset[str]] = {
    MessageState.DRAFT: frozenset(
        {MessageState.PENDING_APPROVAL, MessageState.SCHEDULED, MessageState.SUPPRESSED, MessageState.FAILED}
    ),
    MessageState.PENDING_APPROVAL: frozenset({MessageState.APPROVED, MessageState.REJECTED, MessageState.SUPPRESSED}),
    MessageState.APPROVED: frozenset({MessageState.SCHEDULED, MessageState.SUPPRESSED}),
    MessageState.SCHEDULED: frozenset({MessageState.SENDING, MessageState.SUPPRESSED}),
    MessageState.SENDING: frozenset(
        {MessageState.SENT, MessageState.SCHEDULED, MessageState.SUPPRESSED, MessageState.FAILED}
    ),
    MessageState.SENT: frozenset({MessageState.OPENED, MessageState.CLICKED}),
    MessageState.OPENED: frozenset({MessageState.CLICKED}),
    # A message whose hand-over was not confirmed can still be confirmed by its (slow) sender.
    MessageState.FAILED: frozenset({MessageState.SENT}),
    MessageState.CLICKED: frozenset(),
    MessageState.REJECTED: frozenset(),
    MessageState.SUPPRESSED: frozenset(),
}


def move(message_id: int, sources: Iterable[str], target: str, **fields: Any) -> bool:
    """Move one message from one of ``sources`` to ``target``; True only if this call did it."""
    sources = list(sources)
    for source in sources:
        if target not in ALLOWED[source]:
            raise ValueError(f"a message cannot go from {source} to {target}")
    extra = {key.removeprefix("where_"): fields.pop(key) for key in list(fields) if key.startswith("where_")}
    updated = Message.objects.filter(pk=message_id, state__in=sources, **extra).update(
        state=target, updated_at=timezone.now(), **fields
    )
    return updated == 1
