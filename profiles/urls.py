from __future__ import annotations

from django.urls import path

from profiles import views

app_name = "people"

urlpatterns = [
    path("people/", views.people_search, name="search"),
    path("people/<int:pk>/", views.person_detail, name="person"),
    path("people/<int:pk>/export", views.person_export, name="export"),
    path("people/<int:pk>/erase", views.person_erase, name="erase"),
    path("consent/", views.consent_page, name="consent"),
]
