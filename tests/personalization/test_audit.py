"""The audit page: every change that alters what people see, from the trails each change already leaves
and the audit entries of those that left none; who may read it; filters; rollback of a surface version."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from django.contrib.admin.models import CHANGE, LogEntry
from django.test import Client
from django.utils import timezone

from campaigns import services as campaigns
from campaigns.models import Account, ApprovalAction, ApprovalPolicy, Message
from experiments import services as experiments
from personalization import registry
from personalization.audit import KINDS, AuditQuery, changes, differences
from personalization.models import ApiKey, AuditEntry, KeyScope, ModelVersion, Surface, SurfaceVersion, VersionStatus
from personalization.surfaces import change_config, create_surface
from profiles.erasure import erase_person
from tests.access import role_user
from tests.campaigns.conftest import account, launch_and_prepare, make_campaign, person

pytestmark = pytest.mark.django_db


def _ready_version(storage: Path, name: str) -> ModelVersion:
    version = ModelVersion.objects.create(
        status=VersionStatus.READY, artifact_dir=name, metrics={"holdout": {"ndcg": 0.31}}
    )
    (storage / name).mkdir()
    (storage / name / "engine.json").write_text("{}")
    return version


@pytest.fixture
def history(settings, tmp_path: Path) -> dict[str, Any]:
    """One change of every kind, each made the way the product makes it."""
    settings.MODEL_STORAGE_DIR = tmp_path
    mara = role_user("mara", "Marketer", staff=True)
    adam = role_user("adam", "Administrator", staff=True)
    casey = role_user("casey", "CSM")

    surface = create_surface("homepage", "Homepage", {"size": 4}, by="mara")
    change_config(surface, {"size": 8, "weights": {"relevance": 0.5}}, by="mara", note="wider grid")

    person("ann", first_name="Ann", account_id="acme")
    account("acme", csm=casey, name="Acme")
    spring = make_campaign("spring", owner=mara, name="Spring", approval_policy=ApprovalPolicy.ALL)
    campaigns.update_campaign(spring, {"subject": "Spring is here, {{ person.first_name }}"}, mara)
    campaigns.update_campaign(spring, {"cap_per_day": 2}, mara)  # no holdout: Ann's message must wait for approval
    launch_and_prepare(spring, by=mara)
    message = Message.objects.get(campaign=spring)
    assert message.state == "pending_approval"
    campaigns.decide(casey, [message.pk], "approve", "looks right")

    variants = [
        experiments.VariantSpec("control", "Control", 1.0, {}, True),
        experiments.VariantSpec("treatment", "Treatment", 1.0, {}, False),
    ]
    experiments.start(experiments.create_experiment("hero", "Hero test", variants, mara, baseline_mean=0.1), mara)

    first, second = _ready_version(tmp_path, "v1"), _ready_version(tmp_path, "v2")
    registry.activate(first, by="adam")
    registry.activate(second, by="training")
    registry.activate(first, by="adam")  # a rollback

    key, _ = ApiKey.issue("web shop", KeyScope.INGEST, created_by=adam)
    admin = Client()
    admin.force_login(adam)
    revoked = admin.post(
        "/admin/personalization/apikey/", {"action": "revoke", "_selected_action": [key.pk]}, follow=True
    )
    assert revoked.status_code == 200

    person("zoe", first_name="Zoe")
    erase_person("zoe", requested_by="adam")

    acme = Account.objects.get(external_id="acme")
    LogEntry.objects.log_actions(
        adam.pk, [acme], CHANGE, change_message=[{"changed": {"fields": ["Plan"]}}], single_object=True
    )
    return {"mara": mara, "adam": adam, "casey": casey, "message": message, "surface": surface, "key": key}


def _rows(client: Client, **params: str) -> list[dict[str, Any]]:
    page = client.get("/audit/", params)
    assert page.status_code == 200, page.content[:500]
    return page.context["rows"]


def test_every_kind_of_change_is_listed_with_who_and_the_before_and_after(history):
    client = Client()
    client.force_login(history["mara"])
    rows = _rows(client)
    kinds = {r["change"].kind for r in rows}
    assert kinds == set(KINDS)
    by = {(r["change"].kind, r["change"].action): r for r in rows}

    surface = by[("surfaces", "new version 2")]
    assert surface["change"].who == "mara" and surface["change"].note == "wider grid"
    assert ("size", "4", "8") in surface["diff"]
    assert surface["rollback"] is None  # the live version
    assert by[("surfaces", "created")]["rollback"] == ("homepage", 1)

    template = by[("templates", "changed")]
    assert template["change"].who == "mara" and template["link"] == "/campaigns/spring/"
    assert [name for name, _, _ in template["diff"]] == ["subject"]
    assert template["diff"][0][2] == "Spring is here, {{ person.first_name }}"
    settings_change = by[("campaigns", "changed")]
    assert ("cap_per_day", "–", "2") in settings_change["diff"]
    assert ("campaigns", "launched") in by

    approval = by[("approvals", "approved")]
    assert approval["change"].who == "casey" and approval["change"].note == "looks right"
    assert approval["link"] == f"/approvals/{history['message'].pk}/"
    assert ("state", "pending_approval", "approved") in approval["diff"]

    hero = [r for r in rows if r["change"].kind == "experiments" and r["change"].target == "Hero test"]
    assert [r["change"].action for r in hero] == ["started", "created"]
    assert hero[0]["change"].who == "mara" and hero[0]["link"] == "/experiments/hero/"

    rolled_back = by[("models", "rolled back")]["change"]
    assert rolled_back.who == "adam" and rolled_back.target.startswith("Model v")
    assert rolled_back.before == {"active version": ModelVersion.objects.get(artifact_dir="v2").pk}
    models = [r["change"] for r in rows if r["change"].kind == "models"]
    assert [m.action for m in models] == ["rolled back", "activated", "activated"]

    revoked = by[("keys", "revoked")]["change"]
    assert revoked.who == "adam" and "web shop" in revoked.target
    assert by[("keys", "issued")]["change"].who == "adam"
    assert by[("erasures", "erased a person")]["change"].who == "adam"
    assert "zoe" not in str([r["change"] for r in rows if r["change"].kind == "erasures"])
    assert by[("admin", "changed account")]["change"].target == "Acme"

    ats = [r["change"].at for r in rows]
    assert ats == sorted(ats, reverse=True)


def test_changes_are_filtered_by_kind_person_and_date(history):
    client = Client()
    client.force_login(history["adam"])
    assert {r["change"].kind for r in _rows(client, kind="approvals")} == {"approvals"}
    assert {r["change"].kind for r in _rows(client, kind="templates")} == {"templates"}
    assert {r["change"].who for r in _rows(client, who="CASEY")} == {"casey"}
    assert {r["change"].kind for r in _rows(client, who="adam")} == {"models", "keys", "erasures", "admin"}

    today = timezone.localdate()
    assert len(_rows(client, since=today.isoformat(), until=today.isoformat())) == len(_rows(client))
    tomorrow = (today + timedelta(days=1)).isoformat()
    page = client.get("/audit/", {"since": tomorrow})
    assert page.status_code == 200 and page.context["rows"] == []
    assert "No change matches these filters." in page.content.decode()

    wrong = client.get("/audit/", {"since": "yesterday", "kind": "gossip"})
    assert wrong.status_code == 400
    html = wrong.content.decode()
    assert "&#x27;yesterday&#x27; is not a date; use YYYY-MM-DD." in html and 'id="since-error"' in html
    assert 'id="kind-error"' in html


def test_marketers_analysts_and_administrators_read_it_and_a_csm_does_not(history):
    client = Client()
    client.force_login(history["casey"])
    assert client.get("/audit/").status_code == 403

    analyst = role_user("ana", "Analyst", staff=True)
    client.force_login(analyst)
    page = client.get("/audit/")
    assert page.status_code == 200
    rows = page.context["rows"]
    assert all(r["rollback"] is None for r in rows)  # reads, changes nothing
    assert next(r for r in rows if r["change"].kind == "approvals")["link"] == ""  # may not open messages
    assert b"Roll back to this" not in page.content
    before = list(SurfaceVersion.objects.values_list("pk", flat=True))
    assert client.post("/audit/rollback/homepage/1").status_code == 403
    assert list(SurfaceVersion.objects.values_list("pk", flat=True)) == before


def test_a_marketer_rolls_a_surface_back_from_the_audit_page(history):
    client = Client()
    client.force_login(history["mara"])
    page = client.get("/audit/", {"kind": "surfaces"})
    assert b'action="/audit/rollback/homepage/1"' in page.content
    response = client.post("/audit/rollback/homepage/1", follow=True)
    assert response.status_code == 200
    assert "Homepage serves version 1&#x27;s settings again, as version 3." in response.content.decode()
    surface = Surface.objects.get(key="homepage")
    assert surface.current_version is not None and surface.current_version.number == 3
    assert surface.current_version.config == SurfaceVersion.objects.get(surface=surface, number=1).config
    newest = response.context["rows"][0]
    assert newest["change"].action == "new version 3" and newest["change"].note == "Rollback to version 1"
    assert ("size", "8", "4") in newest["diff"]
    assert client.post("/audit/rollback/homepage/9").status_code == 404


def test_pages_go_back_in_time_fifty_at_a_time(history):
    casey = history["casey"]
    for i in range(60):
        person(f"p{i}", first_name=f"P{i}", account_id="acme")
    launch_and_prepare(make_campaign("many", name="Many", approval_policy=ApprovalPolicy.ALL))
    pending = list(Message.objects.filter(campaign__key="many").values_list("pk", flat=True))
    assert len(pending) == 61
    states = sorted(set(Message.objects.filter(pk__in=pending).values_list("state", flat=True)))
    decision = campaigns.decide(casey, pending, "reject")
    assert len(decision.done) == 61, (states, decision.skipped)
    total = ApprovalAction.objects.count()
    assert total == 62
    client = Client()
    client.force_login(history["mara"])
    first = client.get("/audit/", {"kind": "approvals"})
    second = client.get("/audit/", {"kind": "approvals", "page": "2"})
    assert len(first.context["rows"]) == 50 and first.context["has_next"]
    assert len(second.context["rows"]) == 12 and not second.context["has_next"]
    seen = {r["change"].target for r in first.context["rows"]} | {r["change"].target for r in second.context["rows"]}
    assert len(seen) == 62
    assert b"Older" in first.content and b"Newer" in second.content


def test_a_change_without_a_trail_of_its_own_is_an_audit_entry():
    assert AuditEntry.objects.count() == 0
    assert changes(AuditQuery(kinds=frozenset({"models"}))) == []
    assert differences({"a": {"b": 1}, "c": 2, "e": ""}, {"a": {"b": 2}, "c": 2, "d": 0, "e": None}) == [
        ("a.b", "1", "2"),
        ("d", "", "0"),
    ]
