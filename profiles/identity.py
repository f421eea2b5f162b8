"""Identity stitching: find or create the person behind each set of identities, merging when
one message ties together identities that belonged to two different people.
"""

from __future__ import annotations

from collections.abc import Sequence

from django.db import transaction
from django.db.models import Q

from profiles.models import Consent, ConsentChange, Event, Identity, IdentityKind, Person, PersonMerge, Profile

IdentityKey = tuple[str, str]  # (kind, value)


class _Groups:
    """Union-find over identity keys, so a batch that links A–B and B–C ends with one person."""

    def __init__(self) -> None:
        self.parent: dict[IdentityKey, IdentityKey] = {}

    def find(self, key: IdentityKey) -> IdentityKey:
        self.parent.setdefault(key, key)
        root = key
        while self.parent[root] != root:
            root = self.parent[root]
        while self.parent[key] != root:
            self.parent[key], key = root, self.parent[key]
        return root

    def union(self, a: IdentityKey, b: IdentityKey) -> None:
        self.parent[self.find(a)] = self.find(b)


def identity_keys(anonymous_id: str | None, user_id: str | None, email: str | None = None) -> list[IdentityKey]:
    keys = []
    if user_id:
        keys.append((IdentityKind.USER_ID.value, user_id))
    if anonymous_id:
        keys.append((IdentityKind.ANONYMOUS_ID.value, anonymous_id))
    if email:
        keys.append((IdentityKind.EMAIL.value, email))
    return keys


def _lookup(keys: set[IdentityKey]) -> dict[IdentityKey, int]:
    found: dict[IdentityKey, int] = {}
    by_kind: dict[str, list[str]] = {}
    for kind, value in keys:
        by_kind.setdefault(kind, []).append(value)
    query = Q()
    for kind, values in by_kind.items():
        query |= Q(kind=kind, value__in=values)
    if by_kind:
        for kind, value, person_id in Identity.objects.filter(query).values_list("kind", "value", "person_id"):
            found[(kind, value)] = person_id
    return found


def _survivor(person_ids: set[int], user_people: set[int]) -> int:
    """A known user's person absorbs anonymous ones; between equals the oldest survives."""
    known = person_ids & user_people
    return min(known) if known else min(person_ids)


def resolve_people(messages: Sequence[list[IdentityKey]], reason: str = "identify") -> list[int]:
    """Person id for each message's identity keys (must run inside a transaction)."""
    groups = _Groups()
    for keys in messages:
        for key in keys:
            groups.find(key)
        for other in keys[1:]:
            groups.union(keys[0], other)
    all_keys = set(groups.parent)
    existing = _lookup(all_keys)

    members: dict[IdentityKey, list[IdentityKey]] = {}
    for key in all_keys:
        members.setdefault(groups.find(key), []).append(key)

    user_people = {pid for (kind, _), pid in existing.items() if kind == IdentityKind.USER_ID}
    person_of_group: dict[IdentityKey, int] = {}
    new_groups: list[IdentityKey] = []
    for root, keys in members.items():
        people = {existing[k] for k in keys if k in existing}
        if not people:
            new_groups.append(root)
            continue
        survivor = _survivor(people, user_people)
        for absorbed in sorted(people - {survivor}):
            merge_people(absorbed, survivor, reason=reason)
        person_of_group[root] = survivor

    if new_groups:
        created = Person.objects.bulk_create([Person() for _ in new_groups])
        for root, person in zip(new_groups, created, strict=True):
            person_of_group[root] = person.pk

    missing = [
        Identity(person_id=person_of_group[groups.find(k)], kind=k[0], value=k[1])
        for k in all_keys
        if k not in existing
    ]
    if missing:
        # Another request may have created the same identity a moment ago: theirs wins, and we
        # fold our freshly created person into theirs below.
        Identity.objects.bulk_create(missing, ignore_conflicts=True)
        now_known = _lookup({(i.kind, i.value) for i in missing})
        for identity in missing:
            ikey: IdentityKey = (identity.kind, identity.value)
            root = groups.find(ikey)
            owner = now_known.get(ikey)
            ours = person_of_group[root]
            if owner is not None and owner != ours:
                merge_people(ours, owner, reason="concurrent identity")
                person_of_group[root] = owner

    result = []
    for keys in messages:
        result.append(person_of_group[groups.find(keys[0])])
    return result


@transaction.atomic
def merge_people(source_id: int, target_id: int, reason: str = "") -> PersonMerge:
    """Fold source's identities, events, consent and traits into target, and record it."""
    if source_id == target_id:
        raise ValueError("A person cannot be merged into itself.")
    source = Person.objects.select_for_update().get(pk=source_id)
    target = Person.objects.select_for_update().get(pk=target_id)
    moved_identities = list(source.identities.values("kind", "value"))
    Identity.objects.filter(person_id=source_id).update(person_id=target_id)
    events_moved = Event.objects.filter(person_id=source_id).update(person_id=target_id)
    ConsentChange.objects.filter(person_id=source_id).update(person_id=target_id)
    for consent in Consent.objects.filter(person_id=source_id):
        mine = Consent.objects.filter(person_id=target_id, purpose=consent.purpose).first()
        if mine is None:
            consent.person_id = target_id
            consent.save(update_fields=["person"])
        else:
            if consent.updated_at > mine.updated_at:  # the newer decision stands
                mine.granted, mine.source, mine.updated_at = consent.granted, consent.source, consent.updated_at
                mine.save(update_fields=["granted", "source", "updated_at"])
            consent.delete()
    Profile.objects.filter(person_id=source_id).delete()
    target.traits = {**(source.traits or {}), **(target.traits or {})}
    target.save(update_fields=["traits", "updated_at"])
    Person.objects.filter(merged_into_id=source_id).update(merged_into_id=target_id)
    source.merged_into_id = target_id
    source.traits = {}
    # This save and the target's above also drop both hot profile copies (profiles.signals): the source's for
    # good, as it is merged away, the target's to be read again with what it received.
    source.save(update_fields=["merged_into", "traits", "updated_at"])
    return PersonMerge.objects.create(
        source_person_id=source_id,
        target_id=target_id,
        identities=moved_identities,
        events_moved=events_moved,
        reason=reason,
    )


def find_person(key: str) -> Person | None:
    """The live person behind a key a client uses: a user id, an anonymous id or an email."""
    for kind in (IdentityKind.USER_ID, IdentityKind.ANONYMOUS_ID, IdentityKind.EMAIL):
        value = key.strip().lower() if kind == IdentityKind.EMAIL else key
        person_id = Identity.objects.filter(kind=kind, value=value).values_list("person_id", flat=True).first()
        if person_id is not None:
            return Person.objects.get(pk=person_id)
    return None
