"""Error answers that tell a visitor what happened and nothing about the installation.

Under ``/api/`` every error is the API's JSON shape (``personalization.api.errors``), whatever raised
it: an unknown path, a method a plain Django view does not take, a failure in a middleware. Elsewhere
the finished ``404.html`` and ``500.html`` pages answer. With ``DEBUG`` on (the demo) Django's own
404 page would list the URL patterns: it is replaced by the finished page too, and the debug 500
page shows no settings at all.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.template.loader import render_to_string
from django.views.debug import SafeExceptionReporterFilter

API_PREFIX = "/api/"

# (type, code, detail) of an error answer under /api/ that no API view wrote.
_API_ERRORS: dict[int, tuple[str, str, str]] = {
    400: ("invalid_request", "bad_request", "The request could not be understood."),
    403: ("permission_error", "permission_denied", "You do not have permission to perform this action."),
    404: ("not_found", "not_found", "Not found."),
    405: ("invalid_request", "method_not_allowed", "This method is not allowed here."),
    413: ("invalid_request", "payload_too_large", "The request body is too large."),
    500: ("server_error", "error", "A server error occurred; it has been logged."),
}


def api_error_response(status: int) -> JsonResponse:
    from personalization.api.errors import error_body

    type_, code, detail = _API_ERRORS.get(
        status, ("server_error", "error", _API_ERRORS[500][2]) if status >= 500 else ("invalid_request", "error", "")
    )
    return JsonResponse(error_body(type_, code, detail or "The request was refused."), status=status)


def not_found_page(request: HttpRequest) -> HttpResponse:
    return HttpResponse(render_to_string("404.html", request=request), status=404)


def _is_json(response: HttpResponse) -> bool:
    return str(response.get("Content-Type", "")).startswith("application/json")


class ErrorPagesMiddleware:
    """The outermost middleware: it sees every answer, including those of the other middleware."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        if response.status_code < 400:
            return response
        if request.path.startswith(API_PREFIX):
            if not _is_json(response):
                replacement = api_error_response(response.status_code)
                if response.has_header("Allow"):
                    replacement["Allow"] = response["Allow"]
                return replacement
            return response
        if settings.DEBUG and response.status_code == 404 and getattr(request, "resolver_match", None) is None:
            # No URL matched: Django's debug page would list every pattern.
            return not_found_page(request)
        return response

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        if settings.DEBUG and isinstance(exception, Http404) and not request.path.startswith(API_PREFIX):
            return not_found_page(request)
        return None


class QuietExceptionReporterFilter(SafeExceptionReporterFilter):
    """The debug 500 page and error mails show no settings, and hide more variables in frames."""

    hidden_settings = re.compile(
        "API|TOKEN|KEY|SECRET|PASS|SIGNATURE|HTTP_COOKIE|URL|DSN|DATABASE|HOST|BROKER|CACHE|EMAIL",
        flags=re.IGNORECASE,
    )

    def get_safe_settings(self) -> dict[str, Any]:
        return {}
