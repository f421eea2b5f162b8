from __future__ import annotations

import pytest
from django.core.management import call_command


def test_openapi_schema_generates_without_warnings(tmp_path, capsys):
    out = tmp_path / "schema.yml"
    # --fail-on-warn turns every drf-spectacular warning into a non-zero exit.
    call_command("spectacular", "--validate", "--fail-on-warn", "--file", str(out))
    text = out.read_text()
    for path in (
        "/api/v1/batch",
        "/api/v1/catalog/items",
        "/api/v1/people/{person_key}/consent",
        "/api/v1/recommendations",
    ):
        assert path in text


@pytest.mark.django_db
def test_docs_page_and_schema_load(client):
    assert client.get("/api/schema/").status_code == 200
    page = client.get("/api/docs/")
    assert page.status_code == 200
    assert b"swagger-ui" in page.content
