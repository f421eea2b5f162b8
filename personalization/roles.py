"""The roles of the console, as Django groups with permissions (created by a migration).

Each role is a list of ``app_label.codename`` permissions; pages and the API check the permission of
each action (``personalization/api/permissions.py``), never ``is_staff``. docs/security.md describes
them for people. Give someone a role by adding them to the group (admin → Users → Groups).
"""

from __future__ import annotations

from typing import Any

PEOPLE_READ = [
    "profiles.view_person",
    "profiles.view_identity",
    "profiles.view_consent",
    "profiles.view_consentchange",
    "profiles.view_event",
    "profiles.view_profile",
]
SURFACES_READ = [
    "personalization.view_surface",
    "personalization.view_surfaceversion",
    "personalization.view_surfacedailystats",
]
SURFACES_CHANGE = [
    "personalization.add_surface",
    "personalization.change_surface",
    "personalization.add_surfaceversion",
]
EXPERIMENTS_READ = [
    "experiments.view_experiment",
    "experiments.view_variant",
    "experiments.view_layer",
    "experiments.view_exposure",
    "experiments.view_resultsnapshot",
    "experiments.view_experimentchange",
]
CAMPAIGNS_READ = ["campaigns.view_campaign", "campaigns.view_campaignchange", "campaigns.view_account"]
JOURNEYS_READ = [
    "journeys.view_journey",
    "journeys.view_journeyversion",
    "journeys.view_entry",
    "journeys.view_steprun",
]
JOURNEYS_CHANGE = [
    *JOURNEYS_READ,
    "journeys.add_journey",
    "journeys.change_journey",
    "journeys.launch_journey",
]

ROLES: dict[str, list[str]] = {
    "Marketer": [
        "catalog.view_item",
        *SURFACES_READ,
        *SURFACES_CHANGE,
        "personalization.preview_recommendations",
        *CAMPAIGNS_READ,
        "campaigns.add_campaign",
        "campaigns.change_campaign",
        "campaigns.delete_campaign",
        "campaigns.view_message",
        "personalization.launch_campaign",
        *JOURNEYS_CHANGE,
        *EXPERIMENTS_READ,
        "experiments.add_experiment",
        "experiments.change_experiment",
        "personalization.run_experiment",
        "personalization.conclude_experiment",
        *PEOPLE_READ,
        "personalization.view_audit",
    ],
    # The approval queue and the people of the accounts they manage (campaigns.approvals and
    # campaigns.account_people narrow both to them).
    "CSM": ["campaigns.approve_message", "campaigns.view_account", "campaigns.view_account_people"],
    "Analyst": [
        "catalog.view_item",
        *SURFACES_READ,
        "personalization.view_modelversion",
        *CAMPAIGNS_READ,
        *JOURNEYS_READ,
        *EXPERIMENTS_READ,
        *PEOPLE_READ,
        "personalization.view_audit",
    ],
    "Administrator": [
        "personalization.view_apikey",
        "personalization.add_apikey",
        "personalization.change_apikey",
        "auth.view_group",
        "auth.add_group",
        "auth.change_group",
        "auth.delete_group",
        "auth.view_permission",
        "auth.view_user",
        "auth.add_user",
        "auth.change_user",
        "personalization.view_modelversion",
        "personalization.change_modelversion",
        *SURFACES_READ,
        *SURFACES_CHANGE,
        *PEOPLE_READ,
        "profiles.change_consent",
        "profiles.export_person",
        "profiles.erase_person",
        "personalization.view_audit",
        *JOURNEYS_CHANGE,
    ],
}


def ensure_roles(group_model: Any, permission_model: Any, skip_missing: bool = False) -> None:
    """Create the groups and give each exactly its permissions (a missing permission is an error,
    unless ``skip_missing``: a migration that runs before the one adding a permission)."""
    for name, codes in ROLES.items():
        group, _ = group_model.objects.get_or_create(name=name)
        permissions = []
        for code in codes:
            app_label, codename = code.split(".")
            found = permission_model.objects.filter(content_type__app_label=app_label, codename=codename).first()
            if found is None and skip_missing:
                continue
            if found is None:
                raise LookupError(f"Role {name}: no permission {code}")
            permissions.append(found)
        group.permissions.set(permissions)
