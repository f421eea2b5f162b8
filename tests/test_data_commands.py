from __future__ import annotations

import gzip
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import call_command

from catalog.models import Item
from profiles.models import Event, Person, Profile

EVENTS = """user_id,item_id,event_type,timestamp,quantity,price,order_id
u1,A,purchase,2026-10-01 10:00:00,2,3.50,o1
u1,A,purchase,2026-10-01 10:00:00,2,3.50,o1
u2,B,view,,,,
u2,,view,2026-10-02T09:00:00Z,,,
u3,C,Order Completed,1790000000,1,9.99,o2
u4,D,purchase,not-a-time,1,1,o3
"""
ITEMS = """item_id,title,description,category,brand,price,stock,colour
A,Mug,A mug,Home > Kitchen,Acme,3.50,10,blue
B,Plate,,Home > Kitchen,Acme,cheap,,
C,Lamp,,Home > Lighting,Lumi,9.99,0,white
"""


def _folder(tmp_path: Path) -> Path:
    (tmp_path / "events.csv").write_text(EVENTS)
    (tmp_path / "items.csv").write_text(ITEMS)
    (tmp_path / "users.csv").write_text("user_id,country\nu1,Germany\n")
    return tmp_path


@pytest.mark.django_db
def test_import_catalog_reports_accepted_and_rejected_with_reasons(tmp_path):
    out = StringIO()
    call_command("import_catalog", str(_folder(tmp_path)), verbosity=0, stdout=out)
    assert "3 items read: 2 accepted, 1 rejected." in out.getvalue()
    assert "price: not a number: 'cheap'  (first at line 3)" in out.getvalue()
    mug = Item.objects.get(external_id="A")
    assert (mug.stock, mug.attributes) == (10, {"colour": "blue"})
    assert not Item.objects.get(external_id="C").in_stock


@pytest.mark.django_db
def test_import_events_goes_through_ingestion_and_is_idempotent(tmp_path):
    folder = _folder(tmp_path)
    out = StringIO()
    call_command("import_events", str(folder), verbosity=0, stdout=out)
    text = out.getvalue()
    assert "6 events read: 4 accepted, 2 rejected." in text
    assert "item_id: item_id is empty  (first at line 5)" in text
    assert "timestamp: not an ISO 8601 time or Unix epoch: 'not-a-time'  (first at line 7)" in text
    # Two identical lines in the file are two purchases; the timestamp-less view is kept too.
    assert Event.objects.filter(kind="purchase", item_id="A").count() == 2
    assert Event.objects.filter(item_id="B", kind="view").exists()
    assert Event.objects.get(item_id="C").kind == "purchase"
    assert Person.objects.filter(traits__country="Germany").count() == 1
    assert Profile.objects.count() == 3

    again = StringIO()
    call_command("import_events", str(folder), verbosity=0, stdout=again)
    assert "0 accepted, 2 rejected, 4 already imported." in again.getvalue()
    assert Event.objects.filter(kind__in=["purchase", "view"]).count() == 4


def test_convert_online_retail_keeps_the_protocols_rows(tmp_path):
    source = tmp_path / "retail.csv.gz"
    rows = [
        "InvoiceNo,StockCode,Description,Quantity,InvoiceDate,UnitPrice,CustomerID,Country",
        "536365,85123A,WHITE HANGING HEART,6,2010-12-01 08:26:00,2.55,17850.0,United Kingdom",
        "536366,85123A,WHITE HEART,2,2010-12-02 08:26:00,2.65,17851,France",
        "C536367,85123A,WHITE HANGING HEART,-1,2010-12-03 08:26:00,2.55,17850,United Kingdom",
        "536368,POST,POSTAGE,1,2010-12-03 08:26:00,18,17850,United Kingdom",
        "536369,22222,FREE,1,2010-12-03 08:26:00,0,17850,United Kingdom",
        "536370,22223,GUEST,1,2010-12-03 08:26:00,1.0,,United Kingdom",
        "536371,22224,RETURN,0,2010-12-03 08:26:00,1.0,17850,United Kingdom",
    ]
    with gzip.open(source, "wt") as handle:
        handle.write("\n".join(rows) + "\n")
    out = StringIO()
    call_command("convert_online_retail", str(source), str(tmp_path / "out"), stdout=out)
    assert "7 rows read: 2 purchase events, 2 customers, 1 items" in out.getvalue()
    events = (tmp_path / "out" / "events.csv").read_text().splitlines()
    assert events[1] == "17850,85123A,purchase,2010-12-01 08:26:00,6,2.55,536365"
    assert (tmp_path / "out" / "items.csv").read_text().splitlines()[1] == (
        "85123A,White Hanging Heart,WHITE HANGING HEART,,,2.60"
    )
    assert "17851,France" in (tmp_path / "out" / "users.csv").read_text()


@pytest.mark.django_db
def test_seed_demo_makes_a_store_that_recommends(client):
    out = StringIO()
    call_command("seed_demo", people=60, days=60, verbosity=0, stdout=out)
    assert "Demo login: demo / demo" in out.getvalue()
    assert Item.objects.filter(kind="product").count() > 400
    assert Person.objects.filter(merged_into=None).count() >= 60
    assert Profile.objects.exists()

    assert client.login(username="demo", password="demo")
    body = client.get("/api/v1/recommendations?person=user-00001&limit=20").json()
    assert len(body["items"]) == 20
    assert client.get("/admin/profiles/event/").status_code == 200

    # --if-empty leaves an existing store alone.
    call_command("seed_demo", if_empty=True, verbosity=0, stdout=StringIO())
    assert Person.objects.filter(merged_into=None).count() < 200


@pytest.mark.django_db
def test_seed_demo_can_create_the_demo_surfaces():
    from personalization.models import Surface

    call_command("seed_demo", people=10, days=20, with_surfaces=True, verbosity=0, stdout=StringIO())
    surfaces = {s.key: s for s in Surface.objects.all()}
    assert set(surfaces) == {"homepage", "email-product-block"}
    version = surfaces["homepage"].current_version
    assert version is not None
    config = version.config
    assert len(config["curated_items"]) == 20 and config["max_share_per_category"] == 0.4
