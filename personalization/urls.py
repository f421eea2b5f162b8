from __future__ import annotations

from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import URLPattern, URLResolver, include, path
from django.views.decorators.http import require_http_methods
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from catalog.api.views import ItemViewSet
from catalog.pages import item_page
from personalization.api.surface_config_views import (
    SurfaceRollbackView,
    SurfacesView,
    SurfaceVersionsView,
    SurfaceView,
)
from personalization.api.surface_views import PopularRecommendationsView, SurfaceRecommendationsView
from personalization.api.views import RecommendationsView
from personalization.audit_page import audit_log, rollback_surface
from personalization.console_settings import your_settings
from personalization.home_page import home
from personalization.model_pages import change_drift_rule, change_schedule, model_page
from personalization.surface_console import (
    item_search,
    surface_detail,
    surface_new,
    surface_overview,
    surface_rollback,
)
from profiles.api.people import PersonExportView, PersonView
from profiles.api.views import BatchView, ConsentView, IdentifyView, PageView, TrackView

items = ItemViewSet.as_view({"get": "list", "put": "upsert"})
item = ItemViewSet.as_view({"get": "retrieve", "patch": "partial_update", "delete": "destroy"})

api_v1: list[URLPattern | URLResolver] = [
    path("catalog/items", items, name="catalog-items"),
    path("catalog/items/<str:external_id>", item, name="catalog-item"),
    path("track", TrackView.as_view(), name="track"),
    path("identify", IdentifyView.as_view(), name="identify"),
    path("page", PageView.as_view(), name="page"),
    path("batch", BatchView.as_view(), name="batch"),
    path("people/<str:person_key>/consent", ConsentView.as_view(), name="consent"),
    path("people/<str:person_key>/export", PersonExportView.as_view(), name="person-export"),
    path("people/<str:person_key>", PersonView.as_view(), name="person"),
    path("recommendations", RecommendationsView.as_view(), name="recommendations"),
    path("recommendations/popular", PopularRecommendationsView.as_view(), name="popular-recommendations"),
    path("surfaces", SurfacesView.as_view(), name="surfaces-api"),
    path("surfaces/<slug:key>", SurfaceView.as_view(), name="surface-api"),
    path("surfaces/<slug:key>/versions", SurfaceVersionsView.as_view(), name="surface-versions"),
    path("surfaces/<slug:key>/rollback", SurfaceRollbackView.as_view(), name="surface-rollback"),
    path("surfaces/<slug:key>/recommendations", SurfaceRecommendationsView.as_view(), name="surface-recommendations"),
    path("experiments/", include("experiments.api.urls")),
    path("", include("campaigns.api.urls")),
    path("", include("journeys.api.urls")),
]

urlpatterns = [
    path("", home, name="home"),
    # The console's own login: any active user (a CSM need not be staff); the admin keeps its own.
    path("login/", require_http_methods(["GET", "POST"])(auth_views.LoginView.as_view(next_page="home")), name="login"),
    path("logout/", auth_views.LogoutView.as_view(next_page="login"), name="logout"),
    path("settings/", your_settings, name="console-settings"),
    path("admin/", admin.site.urls),
    path("api/v1/", include(api_v1)),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="schema"), name="api-docs"),
    path("experiments/", include("experiments.urls")),
    path("surfaces/", surface_overview, name="surfaces"),
    path("model/", model_page, name="model"),
    path("model/schedule", change_schedule, name="model-schedule"),
    path("model/drift-rule", change_drift_rule, name="model-drift-rule"),
    path("audit/", audit_log, name="audit"),
    path("audit/rollback/<slug:key>/<int:number>", rollback_surface, name="audit-rollback-surface"),
    path("surfaces/new/", surface_new, name="surface-new"),
    path("surfaces/items", item_search, name="surface-item-search"),
    path("surfaces/<slug:key>/", surface_detail, name="surface"),
    path("surfaces/<slug:key>/rollback", surface_rollback, name="surface-rollback"),
    # Public: where the item links of emails go by default (ITEM_URL).
    path("items/<str:item_id>", item_page, name="item-page"),
    path("", include("campaigns.urls")),
    path("", include("journeys.urls")),
    path("", include("profiles.urls")),
]
