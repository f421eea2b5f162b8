"""Request bodies sent with ``Transfer-Encoding: chunked``.

gunicorn de-chunks such a body and says so with ``wsgi.input_terminated``, but passes no
``CONTENT_LENGTH``; Django and DRF then read the body as empty (a Segment library or a proxy
that streams its requests would have every event silently dropped as an empty message). This
middleware reads the de-chunked body, up to one byte more than ``DATA_UPLOAD_MAX_MEMORY_SIZE``,
and hands it on with its length, so the usual limits (413 for a body too large) apply to it.
"""

from __future__ import annotations

import io
from collections.abc import Callable

from django.conf import settings
from django.core.handlers.wsgi import LimitedStream
from django.http import HttpRequest, HttpResponse


class ChunkedRequestMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        meta = request.META
        if (
            "chunked" in meta.get("HTTP_TRANSFER_ENCODING", "").lower()
            and not meta.get("CONTENT_LENGTH")
            and meta.get("wsgi.input_terminated")
        ):
            limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE or 2**31
            body = meta["wsgi.input"].read(limit + 1)
            meta["CONTENT_LENGTH"] = str(len(body))
            request._stream = LimitedStream(io.BytesIO(body), len(body))  # type: ignore[assignment]
        return self.get_response(request)
