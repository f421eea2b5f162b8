"""Which people belong to an account, and so to the CSM who manages it (``Account.csm``).

A person belongs to an account through their traits (``account_id``, else ``company_id``, else
``company``: the first one set names the account's ``external_id``), as preparation assigns messages
to accounts, or through a message of theirs that was assigned to the account (what the CSM sees in
the approval queue). A CSM reads people with ``campaigns.view_account_people`` only within their own
accounts; ``profiles.view_person`` reads everyone.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from campaigns.models import Account, Message

ACCOUNT_TRAITS = ("account_id", "company_id", "company")
READ_ACCOUNT_PEOPLE = "campaigns.view_account_people"


def account_key(traits: Mapping[str, Any]) -> str | None:
    """The account a person's traits name, as preparation reads it."""
    for name in ACCOUNT_TRAITS:
        value = traits.get(name)
        if value not in (None, ""):
            return str(value)[:200]
    return None


def manages_person(user: Any, person_id: int, traits: Any) -> bool:
    """Does ``user`` manage an account this person belongs to?"""
    if not getattr(user, "is_authenticated", False):
        return False
    key = account_key(traits) if isinstance(traits, Mapping) else None
    if key is not None and Account.objects.filter(external_id=key, csm_id=user.pk).exists():
        return True
    return Message.objects.filter(person_id=person_id, account__csm_id=user.pk).exists()
