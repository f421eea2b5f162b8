"""Rendering one message for one recipient: the path the workers, the previews and the benchmark share.

Inputs are plain data (a :class:`Recipient`, a :class:`ContentBlock` of recommended items), so
rendering is independent of the database: the preparation task loads them, the benchmark builds
them in memory. The output is the message as the template produced it, plus the list of links in
it; tracking (click redirects, the open pixel) is added at sending by :func:`tracked`, which is
deterministic, so a preview shows byte for byte what will be sent.
"""

from __future__ import annotations

import html as html_lib
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from campaigns import render_process, tracking
from campaigns.templating import (
    MessageTemplate,
    RenderedMessage,
    TemplateError,
    TemplateFields,
    TemplateTooCostly,
    VariantRule,
    choose_variant,
    refuse_costly_constructs,
    validate,
    validate_variant_rules,
)

DEFAULT_VARIANT = "default"
KNOWN_NAMES = frozenset(
    {
        "person",
        "account",
        "items",
        "products",
        "campaign",
        "unsubscribe_url",
        "recommendation_id",
        "next_actions",
        "journey",  # what a journey step brings: its cart, the item back in stock (journeys.template_context)
    }
)
FIELDS = ("subject", "preheader", "html", "text")

_HREF = re.compile(r"""(?P<prefix>\bhref\s*=\s*)(?P<quote>["'])(?P<url>https?://[^"'<>\s]+)(?P=quote)""", re.IGNORECASE)
_TEXT_URL = re.compile(r"""https?://[^\s<>"'\])]+""")


@dataclass(frozen=True)
class Recipient:
    person_id: int
    email: str
    traits: Mapping[str, Any]
    account: Mapping[str, Any] | None = None
    segments: frozenset[str] = frozenset()
    interests: frozenset[str] = frozenset()


@dataclass(frozen=True)
class ContentBlock:
    """Items from a surface, ready for a template: each a dict with id, title, url, price, reason…"""

    recommendation_id: str = ""
    items: Sequence[Mapping[str, Any]] = ()


@dataclass(frozen=True)
class RenderedContent:
    variant: str
    subject: str
    preheader: str
    html: str
    text: str
    links: list[list[str]] = field(default_factory=list)  # [url, item id or ""]


@dataclass
class CompiledCampaign:
    """A campaign's templates compiled once for many recipients (one per variant)."""

    campaign_id: int
    key: str
    name: str
    fields: TemplateFields
    blocks: dict[str, str]
    variants: dict[str, TemplateFields]
    rules: list[VariantRule]
    templates: dict[tuple[str, str], MessageTemplate] = field(default_factory=dict)

    def template(self, variant: str, subject: str | None = None) -> MessageTemplate:
        """The compiled template of a variant, optionally with an experiment's subject line instead."""
        key = (variant, subject or "")
        compiled = self.templates.get(key)
        if compiled is None:
            fields = self.variants.get(variant, self.fields)
            if subject:
                fields = TemplateFields(subject, fields.preheader, fields.html, fields.text)
            compiled = validate(fields, blocks=self.blocks, known_names=KNOWN_NAMES)
            self.templates[key] = compiled
        return compiled

    def choose_variant(self, recipient: Recipient, wanted: str | None = None) -> str:
        """An experiment's variant when it names one this campaign has, else the first matching rule."""
        if wanted and (wanted in self.variants or wanted == DEFAULT_VARIANT):
            return wanted
        if not self.rules:
            return DEFAULT_VARIANT
        return choose_variant(self.rules, segments=recipient.segments, interests=recipient.interests)


def variant_fields(base: TemplateFields, overrides: Mapping[str, Any]) -> TemplateFields:
    """A variant's fields: what it sets, the campaign's template for the rest."""
    unknown = set(overrides) - set(FIELDS)
    if unknown:
        raise TemplateError(sorted(unknown)[0], f"unknown template field, expected one of {', '.join(FIELDS)}")
    values: dict[str, str] = {}
    for name in FIELDS:
        value = overrides.get(name)
        value = getattr(base, name) if value is None else value
        if not isinstance(value, str):
            raise TemplateError(name, "must be text")
        values[name] = value
    return TemplateFields(**values)


def parse_variant_rules(rules: Sequence[Mapping[str, Any]]) -> list[VariantRule]:
    parsed = []
    for position, rule in enumerate(rules):
        if not isinstance(rule, Mapping) or not isinstance(rule.get("variant"), str):
            raise TemplateError("variant", f"rule {position + 1} needs a variant name")
        segments, interests = rule.get("segments") or [], rule.get("interests") or []
        if not isinstance(segments, list) or not isinstance(interests, list):
            raise TemplateError("variant", f"rule {position + 1}: segments and interests are lists")
        parsed.append(VariantRule(rule["variant"], frozenset(map(str, segments)), frozenset(map(str, interests))))
    return parsed


def compile_campaign(
    campaign_id: int,
    key: str,
    name: str,
    fields: Mapping[str, str] | TemplateFields,
    *,
    blocks: Mapping[str, str] | None = None,
    variants: Mapping[str, Mapping[str, Any]] | None = None,
    variant_rules: Sequence[Mapping[str, Any]] = (),
) -> CompiledCampaign:
    """Validate and compile every variant; raises :class:`TemplateError` naming the field (and variant)."""
    base = TemplateFields.of(fields)
    blocks = dict(blocks or {})
    parsed_variants: dict[str, TemplateFields] = {}
    for variant_name, overrides in (variants or {}).items():
        if not isinstance(overrides, Mapping):
            raise TemplateError("variant", f"variant {variant_name!r} must be an object of template fields")
        parsed_variants[variant_name] = variant_fields(base, overrides)
    rules = parse_variant_rules(variant_rules)
    if rules:
        validate_variant_rules(rules, variants={*parsed_variants, DEFAULT_VARIANT})
    compiled = CompiledCampaign(campaign_id, key, name, base, blocks, parsed_variants, rules)
    compiled.template(DEFAULT_VARIANT)
    for variant_name in parsed_variants:
        try:
            compiled.template(variant_name)
        except TemplateError as error:
            raise TemplateError(
                error.field, f"variant {variant_name!r}: {error.message}", error.line, error.block
            ) from None
    return compiled


def person_context(recipient: Recipient) -> dict[str, Any]:
    traits = dict(recipient.traits)
    name = str(traits.get("name") or "").strip()
    first = str(traits.get("first_name") or (name.split()[0] if name else "")).strip()
    last = str(traits.get("last_name") or (" ".join(name.split()[1:]) if name else "")).strip()
    return {
        "id": recipient.person_id,
        "email": recipient.email,
        "name": name or " ".join(part for part in (first, last) if part),
        "first_name": first,
        "last_name": last,
        "plan": traits.get("plan", ""),
        "country": traits.get("country", ""),
        "timezone": traits.get("timezone", ""),
        "traits": traits,
    }


def render_for(
    compiled: CompiledCampaign,
    recipient: Recipient,
    content: ContentBlock,
    *,
    variant: str = DEFAULT_VARIANT,
    subject: str | None = None,
    next_actions: Sequence[Mapping[str, Any]] = (),
    journey: Mapping[str, Any] | None = None,
) -> RenderedContent:
    """Render the chosen variant for one recipient; raises :class:`TemplateError`. ``journey`` is
    what a journey's entry brings to the template (its cart, the item back in stock)."""
    items = [dict(item) for item in content.items]
    context = {
        "person": person_context(recipient),
        "account": dict(recipient.account or {}),
        "items": items,
        "products": items,
        "campaign": {"key": compiled.key, "name": compiled.name},
        "unsubscribe_url": tracking.unsubscribe_url(compiled.campaign_id, recipient.person_id),
        "recommendation_id": content.recommendation_id,
        "next_actions": [dict(action) for action in next_actions],
        "journey": dict(journey or {}),
    }
    # In a child process killed at the template's deadline: no single filter call can run longer.
    message: RenderedMessage = render_process.render(compiled.template(variant, subject), context)
    item_urls = {str(item.get("url")): str(item.get("id") or "") for item in items if item.get("url")}
    return RenderedContent(
        variant=variant,
        subject=message.subject,
        preheader=message.preheader,
        html=message.html,
        text=message.text,
        links=links_of(message.html, message.text, item_urls),
    )


SAMPLE_RECIPIENT = Recipient(
    person_id=0,
    email="sample@example.com",
    traits={"first_name": "Sam", "last_name": "Sample", "plan": "pro", "country": "GB", "timezone": "Europe/London"},
    account={"name": "Sample Ltd", "tier": "enterprise"},
)
SAMPLE_CONTENT = ContentBlock(
    recommendation_id="sample",
    items=[
        {
            "id": f"sample-{n}",
            "title": f"Sample product {n}",
            "url": f"https://shop.example.com/p/sample-{n}",
            "price": 10.0 * n,
            "category": "Home > Kitchen",
            "brand": "Acme",
            "score": 1.0 / n,
            "reason": "Popular right now",
            "source": "popular",
        }
        for n in range(1, 7)
    ],
)


SAMPLE_JOURNEY: dict[str, Any] = {
    "key": "sample",
    "name": "Sample journey",
    "entered_at": "2026-01-01T00:00:00+00:00",
    "event": {"name": "Product Added", "kind": "add_to_cart", "item_id": "P1", "properties": {}, "at": 0},
    "cart": [dict(item, quantity=1) for item in SAMPLE_CONTENT.items[:3]],
    "item": dict(SAMPLE_CONTENT.items[0]),
}


def refuse_costly(compiled: CompiledCampaign) -> None:
    """Render every variant once for a sample person, as the workers would; raise the error of a
    template that goes over its budget (time, size, memory) whatever the data. Other render errors
    depend on a person's data and are left to the render of that person."""
    refuse_costly_constructs(compiled.fields, compiled.blocks)
    for name, fields in compiled.variants.items():
        try:
            refuse_costly_constructs(fields)
        except TemplateTooCostly as error:
            raise TemplateTooCostly(error.field, f"variant {name!r}: {error.message}", error.line) from None
    sample_actions = [{"id": "F1", "title": "Wishlists", "kind": "feature", "reason": "", "url": ""}]
    for variant in (DEFAULT_VARIANT, *compiled.variants):
        try:
            render_for(
                compiled,
                SAMPLE_RECIPIENT,
                SAMPLE_CONTENT,
                variant=variant,
                next_actions=sample_actions,
                journey=SAMPLE_JOURNEY,
            )
        except TemplateTooCostly as error:
            where = "" if variant == DEFAULT_VARIANT else f"variant {variant!r}: "
            raise TemplateTooCostly(error.field, f"{where}{error.message}", error.line, error.block) from None
        except TemplateError:
            continue


# --- links and tracking ----------------------------------------------------------------------------------------


def _trackable(url: str) -> bool:
    return not url.startswith(tracking.base_url() + "/t/")


def links_of(html: str, text: str, item_urls: Mapping[str, str] | None = None) -> list[list[str]]:
    """Every distinct http(s) link in the HTML (href attributes) and the text, in order of appearance,
    each with the id of the item it points at (when it is one of the content block's items)."""
    item_urls = item_urls or {}
    found: dict[str, str] = {}
    for match in _HREF.finditer(html):
        url = html_lib.unescape(match.group("url"))
        if _trackable(url):
            found.setdefault(url, item_urls.get(url, ""))
    for match in _TEXT_URL.finditer(text):
        url = match.group(0)
        if _trackable(url):
            found.setdefault(url, item_urls.get(url, ""))
    return [[url, item_id] for url, item_id in found.items()]


def _pixel(url: str) -> str:
    style = "display:block;border:0;width:1px;height:1px"
    return f'<img src="{html_lib.escape(url)}" width="1" height="1" alt="" style="{style}">'


def tracked(campaign_id: int, person_id: int, html: str, text: str, links: Sequence[Sequence[str]]) -> tuple[str, str]:
    """The HTML and text as sent: known links replaced by signed click redirects, an open pixel
    at the end of the HTML body. Deterministic: the same message always yields the same output."""
    index = {str(link[0]): position for position, link in enumerate(links)}
    redirects: dict[str, str] = {}  # a link is usually in both the HTML and the text: sign it once

    def redirect(url: str) -> str:
        found = redirects.get(url)
        if found is None:
            found = redirects[url] = tracking.click_url(campaign_id, person_id, index[url])
        return found

    def replace_href(match: re.Match[str]) -> str:
        url = html_lib.unescape(match.group("url"))
        if url not in index:
            return match.group(0)
        target = html_lib.escape(redirect(url))
        return f"{match.group('prefix')}{match.group('quote')}{target}{match.group('quote')}"

    def replace_text(match: re.Match[str]) -> str:
        url = match.group(0)
        return redirect(url) if url in index else url

    out_html = _HREF.sub(replace_href, html) if html else html
    if out_html:
        pixel = _pixel(tracking.open_url(campaign_id, person_id))
        closing = out_html.lower().rfind("</body>")
        out_html = out_html[:closing] + pixel + out_html[closing:] if closing >= 0 else out_html + pixel
    out_text = _TEXT_URL.sub(replace_text, text) if text else text
    return out_html, out_text
