from __future__ import annotations

from typing import TYPE_CHECKING

from rest_framework.permissions import BasePermission
from rest_framework.request import Request

if TYPE_CHECKING:
    from rest_framework.views import APIView

from personalization.models import ApiKey, KeyScope


class HasScope(BasePermission):
    """Secret keys and staff sessions may do everything; ingest keys only what a view opens to them.

    A view opens itself to ingest keys with ``accepts_ingest_key = True``.
    """

    message = "This API key may only send events; use a secret key."

    def has_permission(self, request: Request, view: APIView) -> bool:
        if isinstance(request.auth, ApiKey):
            return request.auth.scope == KeyScope.SECRET or getattr(view, "accepts_ingest_key", False)
        user = request.user
        if not (user and user.is_authenticated):
            self.message = "Authentication credentials were not provided."
            return False
        self.message = "Your account has no access to the API."
        return bool(user.is_staff)
