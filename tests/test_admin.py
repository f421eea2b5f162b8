from __future__ import annotations

import pytest
from django.contrib import admin
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.urls import reverse

from personalization.models import ApiKey


@pytest.fixture
def staff_client(client, db):
    get_user_model().objects.create_superuser("op", "op@example.com", "pw-for-tests")
    client.login(username="op", password="pw-for-tests")
    return client


def test_every_model_has_an_admin_that_lists_searches_and_filters(staff_client):
    call_command("seed_demo", people=20, days=30, verbosity=0)
    ours = [m for m in admin.site._registry if m._meta.app_label in ("catalog", "profiles", "personalization")]
    assert len(ours) >= 9
    for model in ours:
        url = reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_changelist")
        assert staff_client.get(url).status_code == 200, url
        assert staff_client.get(url, {"q": "user-00001"}).status_code == 200, url


def test_a_new_api_key_is_shown_once_and_only_its_hash_is_stored(staff_client):
    url = reverse("admin:personalization_apikey_add")
    response = staff_client.post(url, {"name": "shop frontend", "scope": "ingest"}, follow=True)
    assert response.status_code == 200
    shown = [str(m) for m in response.context["messages"]]
    assert any("ik_" in m and "not shown again" in m for m in shown)
    key = ApiKey.objects.get(name="shop frontend")
    raw = next(m for m in shown if "ik_" in m).split("The new key is ")[1].split(" ")[0]
    assert key.key_hash != raw and raw.startswith(key.prefix)
