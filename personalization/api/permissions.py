"""Who may do what on the API: the permission each action needs, in one table.

- A **secret key** may do everything.
- An **ingest key** (public, it ships in browsers) may only use the views that open themselves to it
  with ``accepts_ingest_key = True`` (events, surface recommendations for the visitor in front of it,
  experiment assignments and exposures); what it may ask there is limited by those views
  (``personalization/api/person_tokens.py``).
- A **signed-in person** needs the Django permission the table below names for the URL and method,
  through their role (``personalization/roles.py``) or directly; ``is_staff`` plays no part. A URL
  missing from the table is refused to everyone but a secret key, so a new endpoint is closed until
  someone decides who may use it (the role-matrix test fails for it too).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from rest_framework.permissions import BasePermission
from rest_framework.request import Request

if TYPE_CHECKING:
    from rest_framework.views import APIView

from personalization.models import ApiKey, KeyScope


@dataclass(frozen=True)
class AnyOf:
    """One of these permissions is enough (e.g. a CSM's ``approve_message`` or a marketer's ``view_message``)."""

    permissions: tuple[str, ...]

    def __init__(self, *permissions: str) -> None:
        object.__setattr__(self, "permissions", permissions)


Requirement = str | tuple[str, ...] | AnyOf  # one permission, all of these, or any of these

LAUNCH = "personalization.launch_campaign"
RUN_EXPERIMENT = "personalization.run_experiment"
CONCLUDE_EXPERIMENT = "personalization.conclude_experiment"
PREVIEW = "personalization.preview_recommendations"
VIEW_SURFACE = "personalization.view_surface"
# A configuration change is a new version: changing a surface needs both.
CHANGE_SURFACE = ("personalization.change_surface", "personalization.add_surfaceversion")
EXPORT_PERSON = "profiles.export_person"
ERASE_PERSON = "profiles.erase_person"
# The model page (/model/) and what changes the closed loop: the retraining schedule, the drift rule.
SEES_MODEL = "personalization.view_modelversion"
TRAINS_MODEL = "personalization.change_modelversion"
SEES_MESSAGES = AnyOf("campaigns.view_message", "campaigns.approve_message")

# URL name → HTTP method → what a signed-in person needs.
REQUIRED: dict[str, dict[str, Requirement]] = {
    "catalog-items": {"GET": "catalog.view_item", "PUT": ("catalog.add_item", "catalog.change_item")},
    "catalog-item": {"GET": "catalog.view_item", "PATCH": "catalog.change_item", "DELETE": "catalog.delete_item"},
    # Events are for machines; a person sending them needs the model permission.
    "track": {"POST": "profiles.add_event"},
    "identify": {"POST": ("profiles.add_event", "profiles.change_person")},
    "page": {"POST": "profiles.add_event"},
    "batch": {"POST": ("profiles.add_event", "profiles.change_person")},
    "consent": {"GET": ("profiles.view_person", "profiles.view_consent"), "PUT": "profiles.change_consent"},
    # A CSM's account_people reads only the people of their accounts (profiles.api.people narrows it).
    "person": {"GET": AnyOf("profiles.view_person", "campaigns.view_account_people"), "DELETE": ERASE_PERSON},
    "person-export": {"GET": EXPORT_PERSON},
    "recommendations": {"GET": PREVIEW},
    "popular-recommendations": {"GET": "personalization.view_surface"},
    "surface-recommendations": {"GET": PREVIEW, "POST": PREVIEW},
    "surfaces-api": {"GET": VIEW_SURFACE, "POST": ("personalization.add_surface", *CHANGE_SURFACE)},
    "surface-api": {"GET": VIEW_SURFACE, "PATCH": CHANGE_SURFACE},
    "surface-versions": {"GET": ("personalization.view_surface", "personalization.view_surfaceversion")},
    "surface-rollback": {"POST": CHANGE_SURFACE},
    "experiments": {"GET": "experiments.view_experiment", "POST": "experiments.add_experiment"},
    "experiment-assignments": {"GET": "experiments.view_experiment"},
    "experiment": {"GET": "experiments.view_experiment", "PATCH": "experiments.change_experiment"},
    "experiment-start": {"POST": RUN_EXPERIMENT},
    "experiment-stop": {"POST": RUN_EXPERIMENT},
    "experiment-rebucket": {"POST": RUN_EXPERIMENT},
    "experiment-conclude": {"POST": CONCLUDE_EXPERIMENT},
    "experiment-exposures": {"POST": "experiments.add_exposure"},
    "experiment-results": {"GET": "experiments.view_experiment"},
    "campaigns": {"GET": "campaigns.view_campaign", "POST": "campaigns.add_campaign"},
    "campaign-audience-count": {"POST": "campaigns.view_campaign"},
    "campaign": {
        "GET": "campaigns.view_campaign",
        "PATCH": "campaigns.change_campaign",
        "DELETE": "campaigns.delete_campaign",
    },
    "campaign-audience": {"GET": "campaigns.view_campaign"},
    "campaign-preview": {"GET": ("campaigns.view_campaign", "profiles.view_person")},
    "campaign-launch": {"POST": LAUNCH},
    "campaign-pause": {"POST": LAUNCH},
    "campaign-resume": {"POST": LAUNCH},
    # Which messages a person sees and may decide is narrowed further by campaigns.approvals.
    "campaign-messages": {"GET": SEES_MESSAGES},
    "campaign-message-decisions": {"POST": "campaigns.approve_message"},
    "campaign-message": {"GET": SEES_MESSAGES, "PATCH": "campaigns.approve_message"},
    "campaign-message-approve": {"POST": "campaigns.approve_message"},
    "campaign-message-reject": {"POST": "campaigns.approve_message"},
    "onboarding": {"GET": "profiles.view_person"},
    "journeys": {"GET": "journeys.view_journey", "POST": "journeys.add_journey"},
    "journey": {"GET": "journeys.view_journey", "PATCH": "journeys.change_journey"},
    "journey-launch": {"POST": "journeys.launch_journey"},
    "journey-pause": {"POST": "journeys.launch_journey"},
    "journey-steps": {"GET": "journeys.view_journey"},
    # Saved segments are part of journeys (their audience triggers and segment branches).
    "segments": {"GET": "journeys.view_journey"},
    "segment": {"PUT": "journeys.change_journey"},
}


def satisfied(user: Any, requirement: Requirement) -> bool:
    if isinstance(requirement, str):
        return bool(user.has_perm(requirement))
    if isinstance(requirement, AnyOf):
        return any(user.has_perm(p) for p in requirement.permissions)
    return bool(user.has_perms(requirement))


def requirement_for(request: Request) -> Requirement | None:
    match = getattr(request, "resolver_match", None)
    name = match.url_name if match is not None else None
    method = "GET" if request.method == "HEAD" else request.method
    return REQUIRED.get(name or "", {}).get(method or "")


class HasScope(BasePermission):
    """Secret keys may do everything; ingest keys what a view opens to them; people what their role allows."""

    message = "This API key may only send events and ask for its own visitor; use a secret key."

    def has_permission(self, request: Request, view: APIView) -> bool:
        if isinstance(request.auth, ApiKey):
            return request.auth.scope == KeyScope.SECRET or getattr(view, "accepts_ingest_key", False)
        user = request.user
        if not (user and user.is_authenticated):
            self.message = "Authentication credentials were not provided."
            return False
        requirement = requirement_for(request)
        if requirement is None:
            self.message = f"Nobody may {request.method} this path with a session."
            return False
        if not satisfied(user, requirement):
            self.message = "Your role does not allow this action."
            return False
        return True
