from __future__ import annotations

from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import URLPattern, URLResolver, include, path
from django.views.decorators.http import require_http_methods
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from catalog.api.views import ItemViewSet
from personalization.access import home
from personalization.api.surface_pages import surface_overview
from personalization.api.surface_views import PopularRecommendationsView, SurfaceRecommendationsView
from personalization.api.views import RecommendationsView
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
    path("admin/", admin.site.urls),
    path("api/v1/", include(api_v1)),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="schema"), name="api-docs"),
    path("experiments/", include("experiments.urls")),
    path("surfaces/", surface_overview, name="surfaces"),
    path("", include("campaigns.urls")),
]
