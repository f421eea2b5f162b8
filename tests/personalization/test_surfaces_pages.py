"""The console's surface pages: create, edit with errors beside the fields, preview the draft against the
live version, save with a note as a new version, read the history's diff, roll back; who may do what."""

from __future__ import annotations

import re
from typing import Any

import pytest
from django.test import Client

from personalization.models import Surface, SurfaceVersion
from personalization.surface_compare import ShownItem, compare_lists, config_changes
from personalization.surface_editor import form_for
from personalization.surfaces import create_surface
from tests.access import role_user
from tests.personalization.test_surfaces_serving import engine, shared_storage  # noqa: F401  (fixtures)


def _client(user: Any) -> Client:
    client = Client()
    client.force_login(user)
    return client


def _posted(config: dict[str, Any], **changes: Any) -> dict[str, Any]:
    """What the editor posts for ``config``, with some fields changed."""
    form = form_for(config)
    data: dict[str, Any] = {}
    for name, value in form.values.items():
        if isinstance(value, bool):
            if value:
                data[name] = "on"
        else:
            data[name] = value
    for n, rule in enumerate(form.rules):
        for key, value in rule.items():
            data[f"cs{n}_{key}"] = value
    data["cs_count"] = str(len(form.rules))
    data.update(changes)
    return data


@pytest.fixture
def marketer(db: Any) -> Client:
    return _client(role_user("mara", "Marketer"))


@pytest.fixture
def homepage(db: Any, make_item: Any) -> Surface:
    make_item("lamp", title="Floor Lamp", category="Home > Lighting")
    make_item("kettle", title="Kettle")
    return create_surface("homepage", "Homepage", {"size": 8, "curated_items": ["kettle"]}, by="tests")


def test_the_list_links_each_surface_and_tells_no_false_help(marketer, homepage):
    page = marketer.get("/surfaces/").content.decode()
    assert 'href="/surfaces/homepage/"' in page and 'href="/surfaces/new/"' in page
    assert "in the admin" not in page and "/surfaces//" not in page


def test_invalid_values_are_shown_beside_their_fields_and_nothing_is_saved(marketer, homepage):
    data = _posted(
        {"size": 8},
        action="save",
        note="Try",
        w_margin="-1",
        max_share_per_category="150",
        size="",
        curated_items=["ghost"],
        cs_count="1",
        cs0_reason="Only a reason",
    )
    page = marketer.post("/surfaces/homepage/", data).content.decode()
    errors = dict(re.findall(r'data-field="([^"]+)">([^<]+)<', page))
    assert errors["w_margin"].startswith("Ensure this value is greater than or equal to 0")
    assert errors["max_share_per_category"] == "Between 0 and 100 %."
    assert errors["size"] == "Required."
    assert "ghost" in errors["curated_items"]
    assert errors["cs0_when"].startswith("Say when the rule applies")
    assert SurfaceVersion.objects.filter(surface=homepage).count() == 1


def test_save_needs_a_note_then_adds_a_version_and_the_history_says_what_changed(marketer, homepage):
    data = _posted({"size": 8, "curated_items": ["kettle"]}, action="save", w_margin="2", exploration_share="10")
    refused = marketer.post("/surfaces/homepage/", data).content.decode()
    assert "Say what changed and why" in refused
    assert SurfaceVersion.objects.filter(surface=homepage).count() == 1

    data["note"] = "Margin push"
    saved = marketer.post("/surfaces/homepage/", data)
    assert saved.status_code == 302 and saved["Location"] == "/surfaces/homepage/#history"
    version = SurfaceVersion.objects.get(surface=homepage, number=2)
    assert version.created_by == "mara" and version.note == "Margin push"
    assert version.config["weights"]["margin"] == 2.0 and version.config["exploration_share"] == 0.1
    assert version.config["curated_items"] == ["kettle"]  # untouched settings are kept

    page = marketer.get("/surfaces/homepage/").content.decode()
    assert "Weight on margin: 0 → 2" in page and "Exploration: 0 % → 10 %" in page
    assert "Version 2 live" in page


def test_rollback_serves_an_old_version_again_as_a_new_one(marketer, homepage):
    marketer.post("/surfaces/homepage/", _posted({"size": 8}, action="save", size="4", note="Smaller"))
    answer = marketer.post("/surfaces/homepage/rollback", {"version": "1"})
    assert answer.status_code == 302
    homepage.refresh_from_db()
    assert homepage.current_version.number == 3 and homepage.current_version.config["size"] == 8
    assert homepage.current_version.note == "Rollback to version 1"
    refused = marketer.post("/surfaces/homepage/rollback", {"version": "9"})
    assert refused.status_code == 302 and SurfaceVersion.objects.filter(surface=homepage).count() == 3


def test_create_a_surface_in_the_browser(marketer, homepage):
    data = _posted({"size": 6}, key="product-page", name="Product page", kind="carousel", item_kinds=["product"])
    data["curated_items"] = ["lamp", "kettle"]
    data.update(cs_count="1", cs0_country="DE", cs0_items=["lamp"], cs0_reason="Loved in Germany")
    answer = marketer.post("/surfaces/new/", data)
    assert answer.status_code == 302 and answer["Location"] == "/surfaces/product-page/"
    surface = Surface.objects.get(key="product-page")
    config = SurfaceVersion.objects.get(surface=surface, number=1).config
    assert surface.kind == "carousel" and config["curated_items"] == ["lamp", "kettle"]
    rule = {"when": {"country": "DE"}, "items": ["lamp"], "segment": "", "reason": "Loved in Germany"}
    assert config["cold_start"] == [rule]
    taken = marketer.post("/surfaces/new/", {**data, "key": "product-page"}).content.decode()
    assert "exists already" in taken


def test_item_search_finds_by_title(marketer, homepage):
    found = marketer.get("/surfaces/items", {"q": "lamp"}).json()["items"]
    assert [(i["id"], i["title"]) for i in found] == [("lamp", "Floor Lamp")]


def test_an_analyst_reads_but_cannot_change(db, homepage):
    analyst = _client(role_user("ana", "Analyst"))
    page = analyst.get("/surfaces/homepage/").content.decode()
    assert '<fieldset class="card editor-section" disabled' in page and "Save as new version" not in page
    refused = analyst.post("/surfaces/homepage/", _posted({"size": 8}, action="save", note="x", size="3"))
    assert refused.status_code == 403
    assert analyst.post("/surfaces/homepage/rollback", {"version": "1"}).status_code == 403
    assert SurfaceVersion.objects.filter(surface=homepage).count() == 1


def test_preview_compares_the_draft_with_the_live_version_for_the_person_and_samples(engine, marketer):  # noqa: F811
    surface = create_surface("homepage", "Homepage", {"size": 10}, by="tests")
    data = _posted({"size": 10}, action="preview", person="user-00003", w_margin="3", max_share_per_category="20")
    page = marketer.post("/surfaces/homepage/", data).content.decode()
    assert SurfaceVersion.objects.filter(surface=surface).count() == 1  # a preview saves nothing
    people = re.findall(r'<details class="compare"[^>]*data-person="([^"]+)"', page)
    assert people[0] == "user-00003" and len(people) >= 3
    assert re.search(r"\d+ in, \d+ out, \d+ moved", page)
    assert 'class="badge good">in<' in page and 'class="badge bad">out<' in page
    assert "Category mix" in page


def test_compare_lists_marks_in_out_and_moves():
    def shown(*ids: str) -> list[ShownItem]:
        return [ShownItem(i, i.upper(), "Shoes" if i < "c" else "Hats", "") for i in ids]

    result = compare_lists(shown("a", "b", "c"), shown("c", "a", "d"))
    assert [(r.item.item_id, r.change, r.moved) for r in result.draft] == [
        ("c", "up", 2),
        ("a", "down", 1),
        ("d", "new", 0),
    ]
    assert [(r.item.item_id, r.change) for r in result.live] == [("a", "same"), ("b", "out"), ("c", "same")]
    assert {(c.category, c.live, c.draft) for c in result.categories} == {("Shoes", 2, 1), ("Hats", 1, 2)}
    assert (result.added, result.removed, result.moved) == (1, 1, 2)


def test_config_changes_reads_like_a_sentence():
    old = {"size": 20, "weights": {"relevance": 1.0}, "curated_items": ["a", "b"], "cold_start": []}
    new = {
        "size": 12,
        "weights": {"relevance": 1.0, "margin": 0.5},
        "curated_items": ["b", "c"],
        "max_share_per_category": 0.3,
        "cold_start": [{"when": {"country": "DE"}, "items": ["c"], "segment": "", "reason": "Loved in Germany"}],
    }
    lines = config_changes(old, new, {"a": "Lamp", "b": "Kettle", "c": "Boots"})
    assert lines == [
        "Items per answer: 20 → 12",
        "Weight on margin: 0 → 0.5",
        "Most of the list from one category: 100 % → 30 %",
        "Curated default: added Boots; removed Lamp",
        "Cold-start rule added: when country DE: Boots (“Loved in Germany”)",
    ]
