"""The console's people pages: search by each kind of key, a person's consent, timeline and messages,
a CSM only within their accounts, an analyst without export or erasure, erasure with its receipt, and
the consent overview."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

import pytest
from django.db import connection
from django.test import Client
from django.utils import timezone

from campaigns.models import Message
from catalog.models import Item
from personalization.surfaces import create_surface
from profiles import consent_overview
from profiles import services as profiles
from profiles.models import ConsentChange, ErasureReceipt, Event, Identity, Person, PersonMerge
from profiles.people_search import _by_key
from tests.access import role_user
from tests.campaigns.conftest import account, launch_and_prepare, make_campaign, person, track

pytestmark = pytest.mark.django_db


def _rows(html: str) -> list[int]:
    return [int(pid) for pid in re.findall(r'<tr data-person="(\d+)"', html)]


def _anonymous_visitor(anonymous_id: str, *events: tuple[str, str], at: Any = None) -> Person:
    when = {"timestamp": at.isoformat()} if at is not None else {}
    profiles.ingest_messages(
        [
            {"type": "track", "anonymousId": anonymous_id, "event": name, "properties": {"product_id": item}, **when}
            for name, item in events
        ],
        refresh=False,
    )
    found = profiles.find_person(anonymous_id)
    assert found is not None
    return found


def page_client(user: Any) -> Client:
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def marketer() -> Any:
    return page_client(role_user("mara", "Marketer", staff=True))


def test_search_finds_a_person_by_user_id_email_and_anonymous_id_exact_and_by_prefix(marketer):
    ann = person("ann-1", first_name="Ann", email="Ann.Lee@Example.com")
    person("bob-2", first_name="Bob")
    visitor = _anonymous_visitor("anon-7f3c91", ("Product Viewed", "sku-1"))

    for query, expected in [
        ("ann-1", ann.pk),  # user id, exact
        ("ann.lee@example.com", ann.pk),  # email, exact
        ("ANN.LEE@EXAMPLE.COM", ann.pk),  # emails are matched in lower case
        ("ann.l", ann.pk),  # email prefix
        ("anon-7f3c91", visitor.pk),  # anonymous id, exact
        ("anon-7f", visitor.pk),  # anonymous id prefix
    ]:
        page = marketer.get("/people/", {"q": query})
        assert page.status_code == 200
        assert _rows(page.content.decode()) == [expected], query

    html = marketer.get("/people/", {"q": "ann"}).content.decode()
    assert _rows(html) == [ann.pk]  # user id and email both match: one row
    assert "ann.lee@example.com" in html and "ann-1" in html  # who they are, not an id only
    assert 'data-purpose="email_marketing"' in html and "Email marketing ✓" in html

    html = marketer.get("/people/", {"q": "nobody-by-this-key"}).content.decode()
    assert _rows(html) == [] and "Nobody is known by a key" in html
    html = marketer.get("/people/", {"q": "an%"}).content.decode()  # a LIKE wildcard is a character
    assert _rows(html) == []
    html = marketer.get("/people/", {"q": "a"}).content.decode()  # too short for a prefix: exact only
    assert _rows(html) == [] and "at least 2 characters" in html
    assert _rows(marketer.get("/people/", {"q": "an"}).content.decode()) == [ann.pk, visitor.pk]  # user ids first


def test_search_pages_without_counting(marketer):
    people = [person(f"bulk-{n:02d}", first_name="Bulk") for n in range(30)]
    first = marketer.get("/people/", {"q": "bulk-"}).content.decode()
    assert _rows(first) == [p.pk for p in people[:25]]  # in key order
    assert "page=2" in first
    second = marketer.get("/people/", {"q": "bulk-", "page": 2}).content.decode()
    assert _rows(second) == [p.pk for p in people[25:]]
    assert "page=3" not in second


@pytest.mark.skipif(connection.vendor != "postgresql", reason="PostgreSQL's plan")
def test_a_prefix_search_reads_a_range_of_an_index_not_the_table():
    people = Person.objects.bulk_create([Person() for _ in range(3000)])
    Identity.objects.bulk_create(
        [Identity(person=p, kind="anonymous_id", value=f"{n % 3}-anon-{n:05d}") for n, p in enumerate(people)]
    )
    query = (
        _by_key(Identity.objects.filter(kind="anonymous_id"))
        .filter(key__startswith="1-anon-")
        .order_by("kind", "key")[:51]
    )
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE profiles_identity")
        sql, params = query.query.sql_with_params()
        cursor.execute("EXPLAIN " + sql, params)
        plan = "\n".join(row[0] for row in cursor.fetchall())
    # The prefix is a range of the index, read in its order and stopped at the page: not a filter over
    # every anonymous id, no scan of the table, no sort of the matches.
    assert "Index Scan using identity_kind_value_prefix" in plan, plan
    assert re.search(r"Index Cond: .*value\)::text >= '1-anon-'", plan), plan
    assert "Seq Scan" not in plan and "Sort" not in plan, plan
    assert [i.value for i in query] == [f"1-anon-{n:05d}" for n in range(1, 3000, 3)][:51]


def test_the_person_page_shows_identities_consent_history_timeline_messages_and_surfaces(marketer):
    now = timezone.now()
    Item.objects.create(external_id="dress-1", title="Cosy Teal Shirt Dress", price="59.00", stock=3)
    Item.objects.create(external_id="lamp-2", title="Brass Floor Lamp", price="120.00", stock=3)
    _anonymous_visitor("anon-ann-phone", ("Product Viewed", "lamp-2"), at=now - timedelta(hours=10))
    ann = person("ann-1", first_name="Ann", consent=True, at=now - timedelta(days=3))
    profiles.ingest_messages(
        [{"type": "identify", "anonymousId": "anon-ann-phone", "userId": "ann-1", "traits": {}}], refresh=False
    )
    profiles.record_consent(ann.pk, "email_marketing", False, source="unsubscribe link", at=now - timedelta(days=1))
    track("ann-1", "Product Viewed", at=now - timedelta(hours=5), product_id="dress-1")
    track("ann-1", "Order Completed", at=now - timedelta(hours=2), products=[{"product_id": "dress-1", "price": 59}])
    campaign = launch_and_prepare(make_campaign("spring", name="Spring picks"))
    create_surface("homepage", "Homepage", {"size": 4}, by="tests")
    assert PersonMerge.objects.filter(target_id=ann.pk).exists()

    page = marketer.get(f"/people/{ann.pk}/")
    assert page.status_code == 200
    html = page.content.decode()
    assert 'id="person-name">ann-1@example.com<' in html
    assert "<code>anon-ann-phone</code>" in html and "Merged into this person" in html
    # Consent now, and both changes in its history, newest first.
    consent = html[html.index('id="consent-now"') : html.index('id="consent-history"')]
    assert re.search(r'data-purpose="email_marketing">.*?withdrawn.*?unsubscribe link', consent)
    history = html[html.index('id="consent-history"') : html.index('id="profile"')]
    assert history.count("<tr data-purpose") == ConsentChange.objects.filter(person=ann).count() == 2
    assert history.index("withdrawn") < history.index("granted")
    # The timeline: readable names, item titles, newest first; the merged visitor's view included.
    timeline = html[html.index('id="timeline"') : html.index('id="messages"')]
    assert timeline.index("Purchased") < timeline.index("Viewed") < timeline.index("Brass Floor Lamp")
    assert timeline.count("Cosy Teal Shirt Dress") == 2
    # The message they were prepared, with its campaign and status.
    message = Message.objects.get(campaign=campaign, person=ann)
    section = html[html.index('id="messages"') : html.index('id="surfaces"')]
    assert f'data-message="{message.pk}"' in section and "Spring picks" in section
    assert message.get_state_display() in section
    # What the homepage gives them now, by the serving function.
    assert 'data-surface="homepage"' in html and "Strategy <strong>" in html


def test_the_timeline_pages_newest_first(marketer):
    now = timezone.now()
    ann = person("ann-1", seen_at=now - timedelta(days=1))
    for n in range(35):
        track("ann-1", "Product Viewed", at=now - timedelta(minutes=n), product_id=f"sku-{n}")
    first = marketer.get(f"/people/{ann.pk}/").content.decode()
    assert "sku-0<" in first and "sku-29<" in first and "sku-30<" not in first and "events=2" in first
    second = marketer.get(f"/people/{ann.pk}/", {"events": 2}).content.decode()
    assert "sku-30<" in second and "sku-34<" in second and "sku-29<" not in second
    assert Event.objects.filter(person=ann).count() == 36  # and the identify call


def test_a_csm_finds_and_opens_only_the_people_of_their_accounts():
    casey = role_user("casey", "CSM")
    account("acme", csm=casey, name="Acme")
    account("globex", csm=role_user("olga", "CSM"), name="Globex")
    ann = person("ann-1", account_id="acme")
    gus = person("gus-1", account_id="globex")
    client = page_client(casey)

    assert _rows(client.get("/people/", {"q": "ann-1"}).content.decode()) == [ann.pk]
    assert _rows(client.get("/people/", {"q": "gus-1"}).content.decode()) == []
    assert _rows(client.get("/people/").content.decode()) == [ann.pk]
    assert client.get(f"/people/{ann.pk}/").status_code == 200
    assert client.get(f"/people/{gus.pk}/").status_code == 404  # as for nobody: nothing to learn
    assert client.get("/people/999999/").status_code == 404
    assert client.get("/consent/").status_code == 403


def test_an_analyst_reads_a_person_but_has_no_export_or_erase(marketer):
    ann = person("ann-1")
    track("ann-1", "Product Viewed", product_id="sku-1")
    events = Event.objects.filter(person=ann).count()
    analyst = page_client(role_user("ana", "Analyst", staff=True))
    html = analyst.get(f"/people/{ann.pk}/").content.decode()
    assert "ann-1@example.com" in html
    assert 'id="erase-person"' not in html and 'id="export-person"' not in html
    assert "does not include previewing" in html

    for url, data in [
        (f"/people/{ann.pk}/erase", {"confirm": "erase"}),
        (f"/people/{ann.pk}/export", {"confirm": "yes"}),
    ]:
        assert analyst.get(url).status_code == 403
        assert analyst.post(url, data).status_code == 403
    assert Person.objects.filter(pk=ann.pk).exists()
    assert Event.objects.filter(person=ann).count() == events
    assert ErasureReceipt.objects.count() == 0
    admin_html = page_client(role_user("adam", "Administrator", staff=True)).get(f"/people/{ann.pk}/")
    assert 'id="erase-person"' in admin_html.content.decode()


def test_an_administrator_exports_after_confirming():
    ann = person("ann-1")
    admin = page_client(role_user("adam", "Administrator", staff=True))
    assert "Download the export" in admin.get(f"/people/{ann.pk}/export").content.decode()
    answer = admin.post(f"/people/{ann.pk}/export", {"confirm": "yes"})
    assert answer.status_code == 200 and answer["Content-Disposition"] == f'attachment; filename="person-{ann.pk}.json"'
    body = b"".join(answer.streaming_content).decode()  # type: ignore[attr-defined]
    assert f'"person_id":{ann.pk}' in body and "ann-1@example.com" in body


def test_an_administrator_erases_through_the_page_and_sees_the_receipt():
    ann = person("ann-1")
    track("ann-1", "Product Viewed", product_id="sku-1")
    admin = page_client(role_user("adam", "Administrator", staff=True))
    confirm = admin.get(f"/people/{ann.pk}/erase").content.decode()
    assert "This cannot be undone" in confirm and "<code>ann-1@example.com</code>" in confirm

    unconfirmed = admin.post(f"/people/{ann.pk}/erase", {})
    assert unconfirmed.status_code == 400 and "Tick the box" in unconfirmed.content.decode()
    assert Person.objects.filter(pk=ann.pk).exists()

    done = admin.post(f"/people/{ann.pk}/erase", {"confirm": "erase"})
    assert done.status_code == 302
    receipt = ErasureReceipt.objects.get()
    assert done["Location"] == f"/people/?receipt={receipt.pk}"
    assert receipt.requested_by == "user:adam" and receipt.counts["profiles.Event"] == 2  # identify, view
    assert not Person.objects.filter(pk=ann.pk).exists() and profiles.find_person("ann-1") is None
    html = admin.get(done["Location"]).content.decode()
    assert 'id="erasure-receipt"' in html and str(receipt.pk) in html and "profiles.Event" in html
    assert admin.get(f"/people/{ann.pk}/").status_code == 404


def test_the_consent_overview_shows_shares_over_time_and_recent_changes(marketer):
    now = timezone.now()
    today = timezone.localdate()
    ann = person("ann-1", consent=None)
    bob = person("bob-2", consent=None)
    person("cid-3", consent=None)  # never says anything: email marketing's default (no) holds
    Person.objects.update(created_at=now - timedelta(days=30))
    profiles.record_consent(ann.pk, "email_marketing", True, source="signup form", at=now - timedelta(days=5))
    profiles.record_consent(bob.pk, "email_marketing", True, source="signup form", at=now - timedelta(days=5))
    profiles.record_consent(bob.pk, "email_marketing", False, source="unsubscribe link", at=now - timedelta(days=1))
    profiles.record_consent(bob.pk, "personalization", False, source="banner", at=now - timedelta(days=1))

    days, shares = consent_overview.daily_shares(days=10, today=today)
    email = dict(zip(days, shares["email_marketing"], strict=True))
    assert email[today - timedelta(days=9)] == 0.0
    assert email[(now - timedelta(days=5)).date()] == pytest.approx(2 / 3)
    assert email[today] == pytest.approx(1 / 3)
    assert shares["personalization"][0] == 1.0 and shares["personalization"][-1] == pytest.approx(2 / 3)

    html = marketer.get("/consent/").content.decode()
    assert 'id="consent-chart"' in html and html.count('<g class="series"') == 3
    changes = html[html.index('id="consent-changes"') :]
    assert changes.count("<tr data-purpose") == 4 and "bob-2@example.com" in changes and "unsubscribe link" in changes
    filtered = marketer.get("/consent/", {"purpose": "personalization"}).content.decode()
    rows = filtered[filtered.index('id="consent-changes"') :]
    assert rows.count("<tr data-purpose") == 1 and "banner" in rows
    wrong = marketer.get("/consent/", {"purpose": "sms"})
    assert wrong.status_code == 400 and "purpose:" in wrong.content.decode()
