"""The error answers every API operation can give, written into the OpenAPI schema.

Each view documents what is particular to it (a 409 for a state that does not allow the action, a
body's 400); this hook adds, in the API's one error shape (``personalization.api.errors``), what
the shared machinery answers on every operation: 401 without credentials, 403 without the scope or
permission, 429 when throttled, 400 when a body or a query is invalid, 404 when a path names
nothing, 413 when a body is too large. A status a view documented without a body gets the shape.
"""

from __future__ import annotations

from typing import Any

ERROR_SCHEMA: dict[str, Any] = {
    "type": "object",
    "description": "The API's one error shape.",
    "properties": {
        "type": {"type": "string"},
        "code": {"type": "string"},
        "detail": {"type": "string"},
        "attr": {"type": "string", "nullable": True, "description": "The offending field as a dotted path."},
    },
    "required": ["type", "code", "detail", "attr"],
}

_DESCRIBED = {
    "400": "Invalid input; `attr` names the field.",
    "401": "No credentials, or a key that is not valid.",
    "403": "The key's scope or the session's permissions do not allow this.",
    "404": "The path names nothing that exists.",
    "413": "The request body is too large.",
    "429": "Too many requests; retry after the `Retry-After` header's seconds.",
}
_BODY_METHODS = {"post", "put", "patch"}
_METHODS = {"get", "post", "put", "patch", "delete"}


def _error_content() -> dict[str, Any]:
    return {"application/json": {"schema": {"$ref": "#/components/schemas/ApiError"}}}


def document_errors(result: dict[str, Any], generator: Any, request: Any, public: bool) -> dict[str, Any]:
    result.setdefault("components", {}).setdefault("schemas", {})["ApiError"] = ERROR_SCHEMA
    for path, operations in result.get("paths", {}).items():
        if not path.startswith("/api/v1/"):
            continue
        for method, operation in operations.items():
            if method not in _METHODS:
                continue
            statuses = {"401", "403", "429"}
            parameters = operation.get("parameters", [])
            if any(p.get("in") == "path" for p in parameters):
                statuses.add("404")
            if any(p.get("in") == "query" for p in parameters):
                statuses.add("400")
            if method in _BODY_METHODS:
                statuses |= {"400", "413"}
            responses = operation.setdefault("responses", {})
            for status in statuses:
                responses.setdefault(status, {"description": _DESCRIBED[status]})
            for status, response in responses.items():
                if status.startswith(("4", "5")) and "content" not in response:
                    response["content"] = _error_content()
    return result
