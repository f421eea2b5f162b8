from __future__ import annotations

from django.urls import path

from journeys import console

app_name = "journeys"

urlpatterns = [
    path("journeys/", console.journey_list, name="list"),
    path("journeys/new/", console.journey_new, name="new"),
    path("journeys/<slug:key>/", console.journey_detail, name="detail"),
    path("journeys/<slug:key>/edit", console.journey_edit, name="edit"),
    path("journeys/<slug:key>/counts", console.journey_counts, name="counts"),
    path("journeys/<slug:key>/<slug:action>", console.journey_action, name="action"),
]
