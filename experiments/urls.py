from __future__ import annotations

from django.urls import path

from experiments import views

app_name = "experiments"

urlpatterns = [
    path("", views.experiment_list, name="list"),
    path("new/", views.experiment_new, name="new"),
    path("<slug:key>/", views.experiment_results, name="results"),
    path("<slug:key>/<slug:action>", views.experiment_action, name="action"),
]
