from __future__ import annotations

from django.urls import path

from experiments.api.views import AssignmentsView, ExperimentViewSet, ExposuresView, ResultsView

experiments = ExperimentViewSet.as_view({"get": "list", "post": "create"})
experiment = ExperimentViewSet.as_view({"get": "retrieve", "patch": "partial_update"})

urlpatterns = [
    path("", experiments, name="experiments"),
    # Before "<key>": "assignments" is a reserved key.
    path("assignments", AssignmentsView.as_view(), name="experiment-assignments"),
    path("<slug:key>", experiment, name="experiment"),
    path("<slug:key>/start", ExperimentViewSet.as_view({"post": "start"}), name="experiment-start"),
    path("<slug:key>/stop", ExperimentViewSet.as_view({"post": "stop"}), name="experiment-stop"),
    path("<slug:key>/conclude", ExperimentViewSet.as_view({"post": "conclude"}), name="experiment-conclude"),
    path("<slug:key>/rebucket", ExperimentViewSet.as_view({"post": "rebucket"}), name="experiment-rebucket"),
    path("<slug:key>/exposures", ExposuresView.as_view(), name="experiment-exposures"),
    path("<slug:key>/results", ResultsView.as_view(), name="experiment-results"),
]
