"""The campaign builder's conversions: audience rows ↔ audience rules, content blocks → templates.

The builder stores what the JSON and API paths store: an audience rule in the format of
``campaigns/rules.py`` and Jinja templates in ``html`` and ``text``. Nothing else is kept, except
the block list the HTML was generated from, as a Jinja comment at its top (``{# builder … #}``),
so the blocks can be edited again; a template edited in the code view no longer matches its
blocks and is shown as code.

A form is a flat mapping of names to strings (what a browser posts):

- audience: ``match`` (all / any) and rows ``a-<n>-kind``, ``a-<n>-name``, ``a-<n>-op``,
  ``a-<n>-value``, ``a-<n>-times``, ``a-<n>-days``;
- content: blocks ``b-<n>-type`` (heading, text, button, products, image) with ``b-<n>-text``,
  ``b-<n>-label``, ``b-<n>-url``, ``b-<n>-surface``, ``b-<n>-limit``, ``b-<n>-src``, ``b-<n>-alt``.

Errors are :class:`BuilderError` naming the form field (``a-2-days``) and saying what to give.
Free of Django.
"""

from __future__ import annotations

import html as html_lib
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from campaigns.rules import CONSENT_PURPOSES, EVENT_KINDS, RuleError, parse_rule

ROW_KINDS = ("trait", "event", "last_seen", "consent", "segment", "account")
TRAIT_OPS = {
    "eq": "is",
    "ne": "is not",
    "in": "is one of",
    "not_in": "is none of",
    "contains": "contains",
    "exists": "is set",
    "not_exists": "is not set",
    "gt": "is more than",
    "gte": "is at least",
    "lt": "is less than",
    "lte": "is at most",
}
EVENT_VERBS = {"did": "did", "did_not": "did not do"}
LAST_SEEN_OPS = {"within_days": "in the last", "not_within_days": "not in the last"}
CONSENT_OPS = {"granted": "has given", "not_granted": "has not given"}
LIST_OPS = {"in": "is one of", "not_in": "is none of"}
ACCOUNT_OPS = {"eq": "is", "ne": "is not", "in": "is one of", "not_in": "is none of"}
ACCOUNT_FIELDS = {"plan": "plan", "name": "name", "id": "id"}
BLOCK_TYPES = ("heading", "text", "button", "products", "image")
MAX_ROWS = 50
MAX_BLOCKS = 40
MARKER = "{# builder "
_ROW = re.compile(r"^a-(\d{1,3})-kind$")
_BLOCK = re.compile(r"^b-(\d{1,3})-type$")
_TEMPLATE_PART = re.compile(r"({{.*?}}|{%.*?%})", re.DOTALL)


class BuilderError(ValueError):
    """A form value that cannot be used; ``field`` is the form field's name."""

    def __init__(self, field: str, detail: str) -> None:
        super().__init__(f"{field}: {detail}")
        self.field, self.detail = field, detail


# --- audience -------------------------------------------------------------------------------------------


@dataclass
class Row:
    """One audience condition as the form shows it."""

    kind: str
    name: str = ""
    op: str = ""
    value: str = ""
    times: str = ""
    days: str = ""


def _indexes(form: Mapping[str, str], pattern: re.Pattern[str]) -> list[int]:
    return sorted({int(m.group(1)) for key in form if (m := pattern.match(key))})


def rows_of(form: Mapping[str, str]) -> list[Row]:
    rows = []
    for n in _indexes(form, _ROW):
        get = lambda part, n=n: str(form.get(f"a-{n}-{part}", "")).strip()  # noqa: E731
        rows.append(Row(get("kind"), get("name"), get("op"), get("value"), get("times"), get("days")))
    return rows


def _whole(text: str, field: str, low: int, high: int, what: str) -> int:
    try:
        number = int(text)
    except ValueError:
        raise BuilderError(field, f"Give a whole number of {what} between {low} and {high}.") from None
    if not low <= number <= high:
        raise BuilderError(field, f"Give a whole number of {what} between {low} and {high}.")
    return number


def _number(text: str, field: str) -> int | float:
    try:
        value = float(text)
    except ValueError:
        raise BuilderError(field, "Give a number.") from None
    return int(value) if value.is_integer() else value


def _values(text: str, field: str) -> list[str]:
    values = [part.strip() for part in text.split(",") if part.strip()]
    if not values:
        raise BuilderError(field, "Give one or more values, separated by commas.")
    return values


def _choice(value: str, options: Mapping[str, str] | tuple[str, ...] | frozenset[str], field: str) -> str:
    if value not in options:
        raise BuilderError(field, f"Choose one of {', '.join(sorted(options))}.")
    return value


def row_condition(row: Row, n: int) -> dict[str, Any]:
    """The rule condition of one row; raises :class:`BuilderError` naming the row's field."""
    f = f"a-{n}-"
    kind = _choice(row.kind, ROW_KINDS, f + "kind")
    if kind == "trait":
        if not re.fullmatch(r"[A-Za-z0-9_.-]{1,100}", row.name):
            raise BuilderError(f + "name", "Name the trait: letters, digits, '_', '-' or '.'.")
        op = _choice(row.op, TRAIT_OPS, f + "op")
        condition: dict[str, Any] = {"field": f"trait.{row.name}", "op": op}
        if op in ("in", "not_in"):
            condition["value"] = _values(row.value, f + "value")
        elif op in ("gt", "gte", "lt", "lte"):
            condition["value"] = _number(row.value, f + "value")
        elif op in ("eq", "ne", "contains"):
            if not row.value:
                raise BuilderError(f + "value", "Give the value to compare with.")
            condition["value"] = row.value
        return condition
    if kind == "event":
        event = _choice(row.name, EVENT_KINDS, f + "name")
        verb = _choice(row.op, EVENT_VERBS, f + "op")
        times = _whole(row.times, f + "times", 1, 10000, "times") if row.times else 1
        days = _whole(row.days, f + "days", 1, 3650, "days") if row.days else None
        field_name = f"event.{event}"
        if times > 1:
            value: dict[str, int] = {"times": times, **({"days": days} if days is not None else {})}
            return {"field": field_name, "op": "at_least" if verb == "did" else "fewer_than", "value": value}
        if days is None:
            return {"field": field_name, "op": "ever" if verb == "did" else "never"}
        return {"field": field_name, "op": "within_days" if verb == "did" else "not_within_days", "value": days}
    if kind == "last_seen":
        op = _choice(row.op, LAST_SEEN_OPS, f + "op")
        return {"field": "last_seen", "op": op, "value": _whole(row.days, f + "days", 1, 3650, "days")}
    if kind == "consent":
        purpose = _choice(row.name, CONSENT_PURPOSES, f + "name")
        return {"field": f"consent.{purpose}", "op": _choice(row.op, CONSENT_OPS, f + "op")}
    if kind == "segment":
        return {"field": "segment", "op": _choice(row.op, LIST_OPS, f + "op"), "value": _values(row.value, f + "value")}
    name = _choice(row.name, ACCOUNT_FIELDS, f + "name")
    op = _choice(row.op, ACCOUNT_OPS, f + "op")
    if op in ("in", "not_in"):
        return {"field": f"account.{name}", "op": op, "value": _values(row.value, f + "value")}
    if not row.value:
        raise BuilderError(f + "value", "Give the value to compare with.")
    return {"field": f"account.{name}", "op": op, "value": row.value}


def audience_rule(form: Mapping[str, str]) -> dict[str, Any]:
    """The audience rule the form's rows describe (no rows: everyone), checked by ``parse_rule``."""
    match = str(form.get("match", "all") or "all")
    if match not in ("all", "any"):
        raise BuilderError("match", "Choose all or any.")
    indexes = _indexes(form, _ROW)
    if len(indexes) > MAX_ROWS:
        raise BuilderError("match", f"At most {MAX_ROWS} conditions.")
    rows = rows_of(form)
    conditions = [row_condition(row, n) for n, row in zip(indexes, rows, strict=True)]
    rule = {"all": []} if not conditions else {match: conditions}
    try:
        parse_rule(rule, "audience")
    except RuleError as error:
        position = re.match(r"audience\.(?:all|any)\.(\d+)(?:\.(\w+))?", error.attr)
        if position:
            part = {"field": "name", "op": "op", "value": "value"}.get(position.group(2) or "", "value")
            raise BuilderError(f"a-{indexes[int(position.group(1))]}-{part}", error.detail) from None
        raise BuilderError("match", error.detail) from None
    return rule


def rows_from_rule(rule: Any) -> tuple[str, list[Row]] | None:
    """The rows that describe a stored rule, or None when the rule needs the JSON view (nested
    groups, affinities, price bands)."""
    if not isinstance(rule, Mapping) or len(rule) != 1:
        return None
    match = next(iter(rule))
    parts = rule[match]
    if match not in ("all", "any") or not isinstance(parts, list):
        return None
    rows: list[Row] = []
    for part in parts:
        row = _row_of(part)
        if row is None:
            return None
        rows.append(row)
    return match, rows


def _text(value: Any) -> str:
    if isinstance(value, list):
        return ", ".join(str(v) for v in value)
    return "" if value is None else str(value)


def _row_of(condition: Any) -> Row | None:
    if not isinstance(condition, Mapping) or "field" not in condition:
        return None
    field_name, op, value = str(condition["field"]), str(condition.get("op", "")), condition.get("value")
    field_name = {"plan": "trait.plan", "country": "trait.country", "email": "trait.email"}.get(field_name, field_name)
    head, _, rest = field_name.partition(".")
    if head == "trait" and op in TRAIT_OPS:
        return Row("trait", rest, op, _text(value))
    if head == "event" and rest:
        if op in ("ever", "never"):
            return Row("event", rest, "did" if op == "ever" else "did_not")
        if op in ("within_days", "not_within_days"):
            return Row("event", rest, "did" if op == "within_days" else "did_not", days=_text(value))
        if op in ("at_least", "fewer_than") and isinstance(value, Mapping):
            verb = "did" if op == "at_least" else "did_not"
            return Row("event", rest, verb, times=_text(value.get("times")), days=_text(value.get("days")))
        return None
    if field_name == "last_seen" and op in LAST_SEEN_OPS:
        return Row("last_seen", "", op, days=_text(value))
    if head == "consent" and op in CONSENT_OPS:
        return Row("consent", rest, op)
    if field_name == "segment" and op in ("in", "not_in", "eq", "ne"):
        return Row("segment", "", {"eq": "in", "ne": "not_in"}.get(op, op), _text(value))
    if head == "account" and op in ACCOUNT_OPS:
        return Row("account", rest, op, _text(value))
    return None


# --- content --------------------------------------------------------------------------------------------


@dataclass
class Block:
    type: str
    text: str = ""
    label: str = ""
    url: str = ""
    surface: str = ""
    limit: int = 4
    src: str = ""
    alt: str = ""

    def as_dict(self) -> dict[str, Any]:
        keep = {"heading": ("text",), "text": ("text",), "button": ("label", "url")}.get(self.type)
        if self.type == "products":
            keep = ("text", "surface", "limit")
        if self.type == "image":
            keep = ("src", "alt", "url")
        return {"type": self.type, **{name: getattr(self, name) for name in keep or ()}}


@dataclass
class Content:
    """What the blocks produce: the templates and the product block's surface and size."""

    blocks: list[Block]
    html: str
    text: str
    surface: str | None = None  # None: no product block
    limit: int = 0
    warnings: list[str] = field(default_factory=list)


def _http_url(value: str, field: str, template_ok: bool = True) -> str:
    if template_ok and value.startswith("{{") and value.endswith("}}"):
        return value
    if not re.fullmatch(r"https?://[^\s\"'<>]+", value):
        raise BuilderError(field, "Give an http(s) address.")
    return value


def blocks_of(form: Mapping[str, str]) -> list[Block]:
    """The blocks of a form, in order; raises :class:`BuilderError` naming the block's field."""
    indexes = _indexes(form, _BLOCK)
    if len(indexes) > MAX_BLOCKS:
        raise BuilderError("blocks", f"At most {MAX_BLOCKS} blocks.")
    blocks: list[Block] = []
    for n in indexes:
        get = lambda part, n=n: str(form.get(f"b-{n}-{part}", "")).strip()  # noqa: E731
        f = f"b-{n}-"
        kind = _choice(get("type"), BLOCK_TYPES, f + "type")
        if kind in ("heading", "text"):
            if not get("text"):
                raise BuilderError(f + "text", f"Write the {kind}, or remove the block.")
            blocks.append(Block(kind, text=get("text")))
        elif kind == "button":
            if not get("label"):
                raise BuilderError(f + "label", "Give the button a label.")
            blocks.append(Block(kind, label=get("label"), url=_http_url(get("url"), f + "url")))
        elif kind == "image":
            src = _http_url(get("src"), f + "src", template_ok=False)
            link = _http_url(get("url"), f + "url") if get("url") else ""
            blocks.append(Block(kind, src=src, alt=get("alt"), url=link))
        else:
            if not re.fullmatch(r"[-a-zA-Z0-9_]{1,100}", get("surface")):
                raise BuilderError(f + "surface", "Choose the surface the products come from.")
            limit = _whole(get("limit") or "4", f + "limit", 1, 20, "products")
            if any(b.type == "products" for b in blocks):
                raise BuilderError(f + "type", "One product block per campaign: every recipient gets one ranked list.")
            blocks.append(Block(kind, text=get("text"), surface=get("surface"), limit=limit))
    return blocks


def _literal(text: str) -> str:
    """HTML-escape what the marketer typed, leaving ``{{ … }}`` and ``{% … %}`` as template code."""
    return "".join(
        part if _TEMPLATE_PART.fullmatch(part) else html_lib.escape(part, quote=True)
        for part in _TEMPLATE_PART.split(text)
    )


FONT = "font-family:Helvetica,Arial,sans-serif;color:#1f2430"
MUTED = "color:#6b7280;font-size:13px"


def _block_html(block: Block) -> str:
    if block.type == "heading":
        return f'<h1 style="font-size:24px;margin:0 0 16px;{FONT}">{_literal(block.text)}</h1>'
    if block.type == "text":
        paragraphs = [p.strip() for p in re.split(r"\n\s*\n", block.text) if p.strip()]
        return "".join(
            f'<p style="font-size:16px;line-height:1.5;margin:0 0 16px;{FONT}">'
            f"{_literal(p).replace(chr(10), '<br>')}</p>"
            for p in paragraphs
        )
    if block.type == "button":
        return (
            '<p style="margin:0 0 20px"><a href="' + _literal(block.url) + '" style="display:inline-block;'
            "background:#2d5bd7;color:#ffffff;text-decoration:none;padding:12px 20px;border-radius:6px;"
            f'font-weight:bold;font-family:Helvetica,Arial,sans-serif">{_literal(block.label)}</a></p>'
        )
    if block.type == "image":
        image = (
            f'<img src="{html_lib.escape(block.src)}" alt="{_literal(block.alt)}" width="560" '
            'style="display:block;max-width:100%;height:auto;border:0">'
        )
        if block.url:
            image = f'<a href="{_literal(block.url)}">{image}</a>'
        return f'<div style="margin:0 0 20px">{image}</div>'
    title = f'<h2 style="font-size:18px;margin:0 0 8px;{FONT}">{_literal(block.text)}</h2>' if block.text else ""
    return (
        "{% if products %}" + title + '<table role="presentation" width="100%" cellpadding="0" cellspacing="0" '
        'style="margin:0 0 20px">{% for p in products %}<tr><td style="padding:10px 0;border-bottom:1px solid #e5e7eb">'
        f'<a href="{{{{ p.url }}}}" style="font-size:16px;font-weight:bold;color:#2d5bd7;text-decoration:none">'
        "{{ p.title }}</a>{% if p.price %} "
        f'<span style="{FONT};font-size:15px">· {{{{ p.price|money }}}}</span>{{% endif %}}'
        f'{{% if p.reason %}}<div style="{MUTED}">{{{{ p.reason }}}}</div>{{% endif %}}</td></tr>{{% endfor %}}'
        "</table>{% endif %}"
    )


def _block_text(block: Block) -> str:
    if block.type in ("heading", "text"):
        return block.text
    if block.type == "button":
        return f"{block.label}: {block.url}"
    if block.type == "image":
        return f"{block.alt}: {block.url}" if block.url and block.alt else (block.url or "")
    title = f"{block.text}\n" if block.text else ""
    return title + "{% for p in products %}- {{ p.title }}: {{ p.url }}\n{% endfor %}"


def _marker(blocks: list[Block]) -> str:
    data = json.dumps([b.as_dict() for b in blocks], ensure_ascii=False, separators=(",", ":"))
    return MARKER + data.replace("#}", "#\\u007d") + " #}\n"


def render_blocks(blocks: list[Block]) -> Content:
    """The HTML and text templates of the blocks, with the unsubscribe link every email needs."""
    body = "".join(_block_html(b) for b in blocks)
    html = (
        _marker(blocks)
        + '<html><body style="margin:0;padding:0;background:#f4f5f7">'
        + '<div style="max-width:600px;margin:0 auto;background:#ffffff;padding:24px">'
        + body
        + f'<p style="{MUTED};{FONT.split(";")[0]};margin-top:24px">'
        + '<a href="{{ unsubscribe_url }}" style="color:#6b7280">Unsubscribe</a></p>'
        + "</div></body></html>"
    )
    text_parts = [t for t in (_block_text(b) for b in blocks) if t]
    text = "\n\n".join(text_parts) + "\n\nUnsubscribe: {{ unsubscribe_url }}\n"
    products = next((b for b in blocks if b.type == "products"), None)
    return Content(blocks, html, text, products.surface if products else None, products.limit if products else 0, [])


def blocks_from_html(html: str) -> list[Block] | None:
    """The blocks a builder-made HTML template was generated from; None when it was written (or
    edited) as code and the blocks would no longer produce it."""
    if not html.startswith(MARKER):
        return None
    end = html.find(" #}\n")
    if end < 0:
        return None
    try:
        data = json.loads(html[len(MARKER) : end])
    except ValueError:
        return None
    if not isinstance(data, list):
        return None
    blocks = []
    for item in data:
        if not isinstance(item, Mapping) or item.get("type") not in BLOCK_TYPES:
            return None
        known = {k: v for k, v in item.items() if k in Block.__dataclass_fields__}
        try:
            blocks.append(Block(**known))
        except TypeError:
            return None
    return blocks if render_blocks(blocks).html == html else None


def block_form(blocks: list[Block]) -> dict[str, str]:
    """The form fields that describe ``blocks`` (the inverse of :func:`blocks_of`)."""
    form: dict[str, str] = {}
    for n, block in enumerate(blocks):
        for name, value in block.as_dict().items():
            form[f"b-{n}-{name}"] = str(value)
    return form


def row_form(match: str, rows: list[Row]) -> dict[str, str]:
    """The form fields that describe the rows (the inverse of :func:`rows_of`)."""
    form = {"match": match}
    for n, row in enumerate(rows):
        for name in ("kind", "name", "op", "value", "times", "days"):
            form[f"a-{n}-{name}"] = getattr(row, name)
    return form
