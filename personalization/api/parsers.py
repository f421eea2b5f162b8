"""The API's JSON parser: DRF's, except that a body nested too deeply for Python's parser (a few
thousand ``[``) is a 400 naming the cause, not a ``RecursionError`` and a 500."""

from __future__ import annotations

from typing import Any

from rest_framework.exceptions import ParseError
from rest_framework.parsers import JSONParser


class BoundedJSONParser(JSONParser):
    def parse(self, stream: Any, media_type: str | None = None, parser_context: Any = None) -> Any:
        try:
            return super().parse(stream, media_type, parser_context)
        except RecursionError:
            raise ParseError("JSON parse error - nested too deeply.", code="too_deep") from None
