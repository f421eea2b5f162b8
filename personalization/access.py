"""The console pages' check: signed in (any user, staff or not: a CSM need not be staff), then the
permission of the page's action. Nobody signed in goes to the login page; a signed-in person without
the permission gets 403.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any

from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse

from personalization.api.permissions import SEES_MESSAGES, SEES_MODEL, AnyOf, Requirement, satisfied

View = Callable[..., HttpResponse]


def requires(requirement: Requirement) -> Callable[[View], View]:
    def decorate(view: View) -> View:
        @wraps(view)
        def checked(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
            if not satisfied(request.user, requirement):
                raise PermissionDenied("Your role does not allow this page.")
            return view(request, *args, **kwargs)

        return login_required(checked)

    return decorate


# Who gets the home page: those who read surfaces, campaigns or experiments (a CSM, who only works
# the approval queue, lands there instead).
SEES_HOME = AnyOf("personalization.view_surface", "campaigns.view_campaign", "experiments.view_experiment")

# The console's pages in the order of the navigation, with what each needs to be opened.
CONSOLE: list[tuple[str, Requirement]] = [
    ("/", SEES_HOME),
    ("/surfaces/", "personalization.view_surface"),
    ("/campaigns/", "campaigns.view_campaign"),
    ("/journeys/", "journeys.view_journey"),
    ("/approvals/", SEES_MESSAGES),
    ("/experiments/", "experiments.view_experiment"),
    ("/people/", AnyOf("profiles.view_person", "campaigns.view_account_people")),
    ("/model/", SEES_MODEL),
    ("/audit/", "personalization.view_audit"),
]
