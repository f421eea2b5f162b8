from __future__ import annotations

from django.urls import path

from campaigns import views

app_name = "campaigns"

urlpatterns = [
    path("campaigns/", views.campaign_list, name="list"),
    path("campaigns/<slug:key>/", views.campaign_detail, name="detail"),
    path("campaigns/<slug:key>/<slug:action>", views.campaign_action, name="action"),
    path("approvals/", views.approval_queue, name="queue"),
    path("approvals/<int:pk>/", views.message_detail, name="message"),
    path("t/o/<str:token>.gif", views.open_pixel, name="open"),
    path("t/c/<str:token>", views.click, name="click"),
    path("t/u/<str:token>", views.unsubscribe, name="unsubscribe"),
]
