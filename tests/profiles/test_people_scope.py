"""Who reads which people: a CSM only the people of the accounts they manage (anyone else is a 404,
exactly as a key nobody holds, so the answer tells nothing), an Analyst everyone without export, an
Administrator everyone with export. The console's people pages (the admin's) are closed to a CSM."""

from __future__ import annotations

import json
from typing import Any

import pytest
from django.contrib.auth.models import User
from rest_framework.test import APIClient

from campaigns.models import Message
from profiles.erasure import erase_person
from tests.access import role_user, session_client
from tests.campaigns.conftest import account, make_campaign, person

pytestmark = pytest.mark.django_db


@pytest.fixture
def world() -> dict[str, Any]:
    casey = role_user("casey", "CSM")  # not staff: CSMs need not be
    other_csm = role_user("olga", "CSM")
    account("acme", csm=casey, name="Acme")
    account("globex", csm=other_csm, name="Globex")
    people = {
        "ann": person("ann", first_name="Ann", account_id="acme"),
        "cid": person("cid", first_name="Cid", company="acme"),  # the company trait names the account too
        "gus": person("gus", first_name="Gus", account_id="globex"),
        "nia": person("nia", first_name="Nia"),  # no account at all
        "leo": person("leo", first_name="Leo", account_id="globex"),
    }
    # Leo moved to Globex, but a message of his was assigned to Acme: Casey saw it in the approval queue.
    Message.objects.create(
        campaign=make_campaign("earlier"), person=people["leo"], account=account("acme", csm=casey, name="Acme")
    )
    return {"casey": casey, "people": people}


def _as(role: str, username: str, staff: bool = False) -> APIClient:
    return session_client(role_user(username, role, staff=staff))


def _not_found_shape(answer: Any, key: str) -> dict[str, Any]:
    assert answer.status_code == 404, answer.content
    body = answer.json()
    return {**body, "detail": body["detail"].replace(repr(key), "<key>")}


def test_a_csm_reads_the_people_of_their_accounts(world):
    client = session_client(world["casey"])
    for key in ("ann", "cid@example.com", "leo"):
        answer = client.get(f"/api/v1/people/{key}")
        assert answer.status_code == 200, (key, answer.content)
        assert answer.json()["person_id"] == world["people"][key.split("@")[0]].pk


@pytest.mark.parametrize("key", ["gus", "gus@example.com", "nia"])
def test_a_csm_gets_the_unknown_key_answer_for_a_person_outside_their_accounts(world, key):
    client = session_client(world["casey"])
    outside = client.get(f"/api/v1/people/{key}")
    unknown = client.get("/api/v1/people/nobody-at-all")
    assert _not_found_shape(outside, key) == _not_found_shape(unknown, "nobody-at-all")
    assert outside.json()["code"] == "not_found"
    assert str(world["people"]["gus"].pk) not in outside.content.decode()


def test_a_csm_is_not_told_that_a_key_was_erased(world, secret_client):
    erase_person("gus", requested_by="tests")
    assert secret_client.get("/api/v1/people/gus").json()["code"] == "erased"  # those who may read everyone
    client = session_client(world["casey"])
    assert _not_found_shape(client.get("/api/v1/people/gus"), "gus") == _not_found_shape(
        client.get("/api/v1/people/nobody-at-all"), "nobody-at-all"
    )


def test_a_csm_neither_exports_nor_erases_even_their_own_accounts_people(world):
    client = session_client(world["casey"])
    for key in ("ann", "gus"):
        assert client.get(f"/api/v1/people/{key}/export").status_code == 403
        assert client.delete(f"/api/v1/people/{key}").status_code == 403
        # Nor the other ways to a person's data: consent, onboarding, a campaign preview for them.
        assert client.get(f"/api/v1/people/{key}/consent").status_code == 403
        assert client.get(f"/api/v1/onboarding/{key}").status_code == 403
    assert Message.objects.filter(person=world["people"]["ann"]).count() == 0  # nothing was touched


def test_another_csm_reads_only_their_own(world):
    olga = session_client(User.objects.get(username="olga"))
    assert olga.get("/api/v1/people/gus").status_code == 200
    assert olga.get("/api/v1/people/ann").status_code == 404
    # Leo's traits name Globex: Olga reads him too, through the account he is in now.
    assert olga.get("/api/v1/people/leo").status_code == 200


def test_an_analyst_reads_everyone_without_export(world):
    client = _as("Analyst", "ana", staff=True)
    for key in ("ann", "gus", "nia"):
        assert client.get(f"/api/v1/people/{key}").status_code == 200
        assert client.get(f"/api/v1/people/{key}/export").status_code == 403
        assert client.delete(f"/api/v1/people/{key}").status_code == 403
    erase_person("nia", requested_by="tests")
    assert client.get("/api/v1/people/nia").json()["code"] == "erased"


def test_an_administrator_reads_and_exports_everyone(world):
    client = _as("Administrator", "adam", staff=True)
    for key in ("ann", "gus", "nia"):
        assert client.get(f"/api/v1/people/{key}").status_code == 200
        answer = client.get(f"/api/v1/people/{key}/export")
        assert answer.status_code == 200
        assert json.loads(b"".join(answer.streaming_content))["person_id"] == world["people"][key].pk  # type: ignore[attr-defined]


def test_the_consoles_people_pages_are_closed_to_a_csm(world):
    gus = world["people"]["gus"]
    ann = world["people"]["ann"]
    pages = [
        "/admin/profiles/person/",
        f"/admin/profiles/person/{gus.pk}/change/",
        f"/admin/profiles/person/{ann.pk}/change/",
    ]
    # A CSM as the role makes them (not staff): the admin sends them to its login.
    client = session_client(world["casey"])
    for page in pages:
        answer = client.get(page)
        assert answer.status_code == 302 and answer["Location"].startswith("/admin/login/"), page
    # Even made staff, the CSM role holds no people permission the admin would honour.
    staff_csm = _as("CSM", "casey-staff", staff=True)
    for page in pages:
        assert staff_csm.get(page).status_code == 403, page
    # An Analyst reads them there (view only).
    analyst = _as("Analyst", "ana", staff=True)
    assert analyst.get(f"/admin/profiles/person/{gus.pk}/change/").status_code == 200
