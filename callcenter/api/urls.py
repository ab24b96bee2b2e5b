"""The contact centre's API routes (``pbx.api.urls`` includes them under ``/api/v1/``)."""

from django.urls import path

from . import views

urlpatterns = [
    path("agents/<str:number>/state/", views.AgentStateView.as_view(), name="api-agent-state"),
    path("agent-skills/", views.AgentSkillsView.as_view(), name="api-agent-skills"),
    path("agent-skills/<str:number>/", views.AgentSkillView.as_view(), name="api-agent-skill"),
    path("me/agent/", views.MeAgentView.as_view(), name="api-me-agent"),
]
