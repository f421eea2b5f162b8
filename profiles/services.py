"""The public face of the profiles app: people, identities, events, consent and profiles."""

from __future__ import annotations

from profiles.affinity import ProfileSnapshot
from profiles.behaviour import co_visited_items, popular_items, purchased_items, recent_items, recently_active_people
from profiles.consent import ConsentState, consent_states, has_consent, record_consent
from profiles.identity import find_person, merge_people
from profiles.ingestion import IngestResult, MessageRejection, ingest_messages
from profiles.profiling import get_profile, refresh_profile
from profiles.recent import RecentActivity, recent_activity, recent_activity_by_key
from profiles.visitors import ingest_from_api, public_reader

__all__ = [
    "ConsentState",
    "IngestResult",
    "MessageRejection",
    "ProfileSnapshot",
    "RecentActivity",
    "co_visited_items",
    "consent_states",
    "find_person",
    "get_profile",
    "has_consent",
    "ingest_from_api",
    "ingest_messages",
    "merge_people",
    "popular_items",
    "public_reader",
    "purchased_items",
    "recent_activity",
    "recent_activity_by_key",
    "recent_items",
    "recently_active_people",
    "record_consent",
    "refresh_profile",
]
