from __future__ import annotations

from django.urls import path

from campaigns import builder_views, views

app_name = "campaigns"

urlpatterns = [
    path("campaigns/", views.campaign_list, name="list"),
    path("campaigns/new/", builder_views.new_campaign, name="new"),
    path("campaigns/builder/count", builder_views.audience_count, name="builder-count"),
    path("campaigns/builder/preview", builder_views.preview, name="builder-preview"),
    path("campaigns/<slug:key>/", views.campaign_detail, name="detail"),
    path("campaigns/<slug:key>/edit", builder_views.edit_campaign, name="edit"),
    path("campaigns/<slug:key>/confirm", builder_views.confirm_launch, name="confirm"),
    path("campaigns/<slug:key>/progress", builder_views.progress, name="progress"),
    path("campaigns/<slug:key>/<slug:action>", views.campaign_action, name="action"),
    path("approvals/", views.approval_queue, name="queue"),
    path("approvals/<int:pk>/", views.message_detail, name="message"),
    path("t/o/<str:token>.gif", views.open_pixel, name="open"),
    path("t/c/<str:token>", views.click, name="click"),
    path("t/u/<str:token>", views.unsubscribe, name="unsubscribe"),
]
