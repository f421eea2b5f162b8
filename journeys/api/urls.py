from __future__ import annotations

from django.urls import path

from journeys.api import views

urlpatterns = [
    path("journeys", views.JourneyListView.as_view(), name="journeys"),
    path("journeys/<slug:key>", views.JourneyDetailView.as_view(), name="journey"),
    path("journeys/<slug:key>/launch", views.LaunchView.as_view(), name="journey-launch"),
    path("journeys/<slug:key>/pause", views.PauseView.as_view(), name="journey-pause"),
    path("journeys/<slug:key>/steps", views.StepCountsView.as_view(), name="journey-steps"),
    path("segments", views.SegmentListView.as_view(), name="segments"),
    path("segments/<slug:key>", views.SegmentView.as_view(), name="segment"),
]
