from __future__ import annotations

from django.urls import path

from campaigns.api import views

urlpatterns = [
    path("campaigns", views.CampaignListView.as_view(), name="campaigns"),
    path("campaigns/audience-count", views.AudienceCountView.as_view(), name="campaign-audience-count"),
    path("campaigns/<slug:key>", views.CampaignDetailView.as_view(), name="campaign"),
    path("campaigns/<slug:key>/audience", views.CampaignAudienceView.as_view(), name="campaign-audience"),
    path("campaigns/<slug:key>/preview", views.PreviewView.as_view(), name="campaign-preview"),
    path("campaigns/<slug:key>/launch", views.LaunchView.as_view(), name="campaign-launch"),
    path("campaigns/<slug:key>/pause", views.PauseView.as_view(), name="campaign-pause"),
    path("campaigns/<slug:key>/resume", views.ResumeView.as_view(), name="campaign-resume"),
    path("messages", views.MessageListView.as_view(), name="campaign-messages"),
    path("messages/decisions", views.DecisionView.as_view(), name="campaign-message-decisions"),
    path("messages/<int:pk>", views.MessageDetailView.as_view(), name="campaign-message"),
    path("messages/<int:pk>/approve", views.ApproveView.as_view(), name="campaign-message-approve"),
    path("messages/<int:pk>/reject", views.RejectView.as_view(), name="campaign-message-reject"),
    path("onboarding/<str:person_key>", views.OnboardingView.as_view(), name="onboarding"),
]
