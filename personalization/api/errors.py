"""One shape for every API error: ``{"type", "code", "detail", "attr"}``.

``attr`` names the offending field as a dotted path (``batch.3.timestamp``), or is null.
"""

from __future__ import annotations

import logging
from typing import Any

from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import RequestDataTooBig
from django.http import Http404
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

logger = logging.getLogger(__name__)


class PayloadTooLarge(exceptions.APIException):
    status_code = status.HTTP_413_REQUEST_ENTITY_TOO_LARGE
    default_detail = "The request body is too large."
    default_code = "payload_too_large"


def error_body(type_: str, code: str, detail: str, attr: str | None = None) -> dict[str, Any]:
    return {"type": type_, "code": code, "detail": detail, "attr": attr}


def _first_error(detail: Any, path: tuple[str, ...] = ()) -> tuple[str | None, exceptions.ErrorDetail | str]:
    if isinstance(detail, dict):
        for key, value in detail.items():
            key = str(key)
            return _first_error(value, path if key == "non_field_errors" else (*path, key))
    if isinstance(detail, list) and detail:
        for index, value in enumerate(detail):
            if value:  # a list of per-item dicts has empty entries for the good items
                nested = isinstance(value, (dict, list))
                return _first_error(value, (*path, str(index)) if nested and len(detail) > 1 else path)
    return (".".join(path) or None), detail if isinstance(detail, str) else str(detail)


def _type_for(exc: exceptions.APIException) -> str:
    if isinstance(exc, exceptions.ValidationError):
        return "validation_error"
    if isinstance(exc, (exceptions.NotAuthenticated, exceptions.AuthenticationFailed)):
        return "authentication_error"
    if isinstance(exc, exceptions.PermissionDenied):
        return "permission_error"
    if isinstance(exc, exceptions.Throttled):
        return "throttled_error"
    if isinstance(exc, exceptions.NotFound):
        return "not_found"
    return "invalid_request"


def exception_handler(exc: Exception, context: dict[str, Any]) -> Response:
    if isinstance(exc, Http404):
        exc = exceptions.NotFound()
    elif isinstance(exc, RequestDataTooBig):
        exc = PayloadTooLarge()
    elif isinstance(exc, DjangoPermissionDenied):
        exc = exceptions.PermissionDenied()
    response = drf_exception_handler(exc, context)
    if response is None:
        logger.exception("Unhandled error in %s", context.get("view").__class__.__name__, exc_info=exc)
        return Response(
            error_body("server_error", "error", "A server error occurred; it has been logged."),
            status=status.HTTP_500_INTERNAL_SERVER_ERROR,
        )
    assert isinstance(exc, exceptions.APIException)
    attr, detail = _first_error(exc.detail)
    code = getattr(detail, "code", None) or exc.default_code
    response.data = error_body(_type_for(exc), str(code), str(detail), attr)
    return response
