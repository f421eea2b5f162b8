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

from django.db.models import Q, QuerySet

from campaigns.models import Account, Message
from profiles.models import Person

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


def managed_people(user: Any) -> QuerySet:
    """Ids of the people who may belong to ``user``'s accounts, for narrowing a search in SQL: a person
    whose traits name one of the accounts in any of ``ACCOUNT_TRAITS``, or with a message assigned to one.
    A superset where several traits are set (``account_key`` reads only the first): check each person
    found with ``manages_person``."""
    keys = list(Account.objects.filter(csm_id=user.pk).values_list("external_id", flat=True))
    condition = Q(pk__in=Message.objects.filter(account__csm_id=user.pk).values("person_id"))
    for name in ACCOUNT_TRAITS:
        condition |= Q(**{f"traits__{name}__in": keys})
    return Person.objects.filter(condition).values("pk")


def billing_day(key: str | None) -> int | None:
    """The day of the month the account's billing cycle starts on; None when the account is unknown
    or has none (its cycles are then calendar months)."""
    if key is None:
        return None
    return Account.objects.filter(external_id=key).values_list("billing_day", flat=True).first()
