from __future__ import annotations

import time
import tracemalloc
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal

import pytest

from campaigns.templating import (
    MessageTemplate,
    RenderLimits,
    TemplateError,
    TemplateFields,
    VariantRule,
    choose_variant,
    money,
    render_message,
    validate,
    validate_variant_rules,
)

SECRET = "do-not-leak-this-secret"


def render_text(source: str, context: dict | None = None) -> str:
    return render_message({"text": source}, context or {}).text


def refused_or_inert(source: str, context: dict | None = None, field: str = "text") -> None:
    """The template is refused (at save or at render) with a TemplateError naming the field, or it
    renders to something that reveals nothing: no internals, no secret."""
    context = {"x": 1, "person": {"first_name": "Ada"}, **(context or {})}
    try:
        output = getattr(render_message({field: source}, context), field)
    except TemplateError as error:
        assert error.field in (field, "block")
        return
    for leak in ("class", "module", "function", "built-in", "object at", "os", SECRET, "root:"):
        assert leak not in output, output


INJECTIONS = [
    "{{ ''.__class__.__mro__ }}",
    "{{ ''.__class__.__mro__[1].__subclasses__() }}",
    "{{ cycler.__init__.__globals__.os }}",
    "{{ lipsum.__globals__ }}",
    "{{ self._TemplateReference__context }}",
    "{{ joiner.__init__.__globals__ }}",
    "{{ namespace.__init__.__globals__ }}",
    "{{ range.__self__ }}",
    "{{ x|attr('__class__') }}",
    "{{ x|attr('__class__')|attr('__base__') }}",
    "{{ ''['__cla' ~ 'ss__'] }}",
    "{{ person['_' ~ '_class__'] }}",
    "{{ '{0.__class__}'.format(x) }}",
    "{{ fmt.format(x) }}",
    "{{ fmt.format_map({'a': x}) }}",
    "{{ '%s' % x }}",
    "{{ [x]|map(attribute='__class__')|list }}",
    "{{ [x]|sort(attribute='__class__') }}",
    "{{ [person]|selectattr('__class__')|list }}",
    "{{ config }}",
    "{{ config.SECRET_KEY }}",
    "{{ request }}",
    "{{ request.environ }}",
    "{{ settings }}",
    "{{ environment }}",
    "{% include '/etc/passwd' %}",
    "{% include '../../../../etc/passwd' %}",
    "{% import '/etc/passwd' as p %}",
    "{% extends '/etc/passwd' %}",
    "{% include name %}",
    "{% set p = namespace() %}{{ p }}",
    "{{ person.items.__self__ }}",
    "{{ person.get.__self__.__class__ }}",
]


@pytest.mark.parametrize("source", INJECTIONS)
def test_injection_attempts_are_refused_or_inert(source):
    refused_or_inert(source, {"fmt": "{0.__class__}", "name": "/etc/passwd"})


@pytest.mark.parametrize("source", INJECTIONS)
def test_injection_attempts_in_html_are_refused_or_inert(source):
    refused_or_inert(source, {"fmt": "{0.__class__}", "name": "/etc/passwd"}, field="html")


@pytest.mark.parametrize(
    "source",
    [
        "{{ ''.__class__.__mro__ }}",
        "{{ cycler.__init__.__globals__.os }}",
        "{{ self._TemplateReference__context }}",
        "{{ x|attr('__class__') }}",
        "{{ '{0.__class__}'.format(x) }}",
    ],
)
def test_attribute_walks_are_refused_at_save_time(source):
    with pytest.raises(TemplateError) as error:
        validate({"html": "<p>Hello</p>\n" + source})
    assert error.value.field == "html"
    assert error.value.line == 2


def test_dynamic_attribute_walks_are_refused_at_render_time():
    template = validate({"text": "{{ x['_' ~ '_class__'] }}"})  # nothing to see until it runs
    with pytest.raises(TemplateError, match="not allowed"):
        template.render({"x": 1})


def test_format_string_tricks_are_refused():
    with pytest.raises(TemplateError, match="format"):
        render_text("{{ '{0.__class__}'.format(x) }}", {"x": 1})
    with pytest.raises(TemplateError):
        render_text("{{ s.format(x) }}", {"s": "{0.__class__.__init__.__globals__}", "x": 1})
    with pytest.raises(TemplateError):
        render_text("{{ '%999999999d' % 1 }}")


def test_objects_passed_in_the_context_keep_their_secrets():
    @dataclass
    class Settings:
        _secret: str = SECRET

        def delete(self) -> str:
            return "deleted"

        delete.alters_data = True  # type: ignore[attr-defined]

    with pytest.raises(TemplateError):
        render_text("{{ s._secret }}", {"s": Settings()})
    with pytest.raises(TemplateError):
        render_text("{{ s.delete() }}", {"s": Settings()})


def test_lists_and_dicts_cannot_be_changed():
    with pytest.raises(TemplateError):
        render_text("{{ items.append(4) }}", {"items": [1, 2, 3]})
    with pytest.raises(TemplateError):
        render_text("{{ d.update({'a': 2}) }}", {"d": {"a": 1}})


@pytest.mark.parametrize(
    "source",
    [
        "{% for i in range(10**9) %}{% endfor %}",
        "{{ range(10**9)|length }}",
        "{% for i in range(1000) %}{% for j in range(1000) %}{% endfor %}{% endfor %}",
        "{{ 'a' * 10**9 }}",
        "{{ ['a'] * 10**9 }}",
        "{{ 9 ** (9 ** 9) }}",
        "{{ 2 ** 100000 }}",
        "{{ 'ab'.ljust(10**9) }}",
        "{{ 'ab'.center(10**9) }}",
        "{{ (1).to_bytes(10**9, 'big') }}",
        "{{ ('x' * 1000)|replace('', 'y' * 1000) }}",
        "{{ ['x'] * 1000|join('y' * 1000) }}",
        "{% set a = 'x' * 100000 %}{% set a = a ~ a %}{% set a = a ~ a %}{% set a = a ~ a %}{{ a }}",
        "{% set big = 'x' * 400000 %}{% set c %}{% for i in range(100) %}{{ big }}{% endfor %}{% endset %}"
        "{{ c|length }}",
        "{% macro m() %}{% for i in range(1000) %}" + "A" * 5000 + "{% endfor %}{% endmacro %}{{ m()|length }}",
        "{% macro f(n) %}{{ f(n) }}{% endmacro %}{{ f(1) }}",
        "{% for i in range(5) recursive %}{{ loop(range(5)) }}{% endfor %}",
    ],
)
def test_runaway_templates_are_stopped_quickly_and_cheaply(source):
    tracemalloc.start()
    started = time.perf_counter()
    try:
        with pytest.raises(TemplateError) as error:
            render_text(source)
        elapsed = time.perf_counter() - started
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert error.value.field == "text"
    assert elapsed < 5
    assert peak < 64 * 2**20, f"peak memory {peak / 2**20:.0f} MiB"


def test_output_size_is_capped_per_field():
    limits = RenderLimits(max_output={"subject": 20, "preheader": 50, "html": 1000, "text": 1000})
    with pytest.raises(TemplateError, match="longer than 1000") as error:
        render_message({"html": "{% for i in range(200) %}<p>{{ i }}</p>{% endfor %}"}, {}, limits=limits)
    assert error.value.field == "html"
    with pytest.raises(TemplateError) as error:
        render_message({"subject": "{{ name }} has a very long subject line"}, {"name": "Ada"}, limits=limits)
    assert error.value.field == "subject"


def test_a_slow_template_hits_the_deadline():
    limits = RenderLimits(max_seconds=0.05, max_iterations=10**9, max_range=10**6)
    started = time.perf_counter()
    with pytest.raises(TemplateError, match="longer than"):
        render_message(
            {"text": "{% for i in range(10**6) %}{% for j in range(10**6) %}{% endfor %}{% endfor %}"},
            {},
            limits=limits,
        )
    assert time.perf_counter() - started < 2


def test_html_is_autoescaped_and_text_is_not():
    context = {"name": "<script>alert('x')</script> & Co"}
    message = render_message(
        {
            "subject": "Hello {{ name }}",
            "preheader": "For {{ name }}",
            "html": "<p>Hello {{ name }}</p>",
            "text": "Hello {{ name }}",
        },
        context,
    )
    assert message.html == "<p>Hello &lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; &amp; Co</p>"
    assert message.text == "Hello <script>alert('x')</script> & Co"
    assert message.subject == "Hello <script>alert('x')</script> & Co"
    assert message.preheader == "For <script>alert('x')</script> & Co"


def test_autoescaping_cannot_be_switched_off():
    with pytest.raises(TemplateError, match="autoescape") as error:
        validate({"html": "<p>\n{% autoescape false %}{{ name }}{% endautoescape %}</p>"})
    assert (error.value.field, error.value.line) == ("html", 2)
    with pytest.raises(TemplateError):
        validate({"html": "{{ name|safe }}"})


def test_join_and_replace_escape_once_in_html():
    message = render_message(
        {"html": "{{ tags|join(', ') }}|{{ s|replace('a', '<b>') }}", "text": "{{ tags|join(', ') }}"},
        {"tags": ["<a>", "b&c"], "s": "xa"},
    )
    assert message.html == "&lt;a&gt;, b&amp;c|x&lt;b&gt;"
    assert message.text == "<a>, b&c"


def test_subject_is_one_line_so_data_cannot_inject_headers():
    message = render_message({"subject": "Hi {{ name }}"}, {"name": "Ada\r\nBcc: everyone@example.com"})
    assert message.subject == "Hi Ada Bcc: everyone@example.com"
    assert "\n" not in message.subject and "\r" not in message.subject


@pytest.mark.parametrize(
    ("field", "source", "line"),
    [
        ("subject", "Hello {{ name", 1),
        ("html", "<p>Hello</p>\n<p>{{ name }}</p>\n{% if name %}\n<p>unclosed</p>", 3),
        ("text", "Hi\n\n{{ name|nosuchfilter }}", 3),
        ("preheader", "{% endfor %}", 1),
        ("html", "<p>\n{{ name | }}\n</p>", 2),
    ],
)
def test_syntax_errors_name_the_field_and_line(field, source, line):
    with pytest.raises(TemplateError) as error:
        validate({field: source})
    assert error.value.field == field
    assert error.value.line == line
    assert field in str(error.value) and f"line {line}" in str(error.value)


def test_render_errors_name_the_field_and_line():
    with pytest.raises(TemplateError) as error:
        render_message({"subject": "fine", "text": "Hi\n{{ person.name }}\n{{ 1 / zero }}"}, {"person": {}, "zero": 0})
    assert error.value.field == "text"
    assert error.value.line == 3


def test_includes_resolve_only_named_blocks():
    blocks = {"footer": "<p>Unsubscribe: {{ unsubscribe_url }}</p>", "greeting": "Hello {{ name }}"}
    message = render_message(
        {"html": "{% include 'greeting' %}{% include 'footer' %}", "text": "{% include 'greeting' %}"},
        {"name": "<Ada>", "unsubscribe_url": "https://example.com/u?a=1&b=2"},
        blocks=blocks,
    )
    assert message.html == "Hello &lt;Ada&gt;<p>Unsubscribe: https://example.com/u?a=1&amp;b=2</p>"
    assert message.text == "Hello <Ada>"
    with pytest.raises(TemplateError, match="no block named 'header'"):
        render_message({"html": "{% include 'header' %}"}, {}, blocks=blocks)


def test_extends_and_import_use_named_blocks():
    blocks = {
        "layout": "<html>{% block body %}{% endblock %}</html>",
        "macros": "{% macro button(url, label) %}<a href='{{ url }}'>{{ label }}</a>{% endmacro %}",
    }
    page = "{% extends 'layout' %}{% block body %}{% import 'macros' as m %}{{ m.button(u, 'Go') }}{% endblock %}"
    message = render_message(
        {"html": page},
        {"u": "https://example.com"},
        blocks=blocks,
    )
    assert message.html == "<html><a href='https://example.com'>Go</a></html>"


def test_a_bad_block_is_reported_with_its_name_and_line():
    with pytest.raises(TemplateError) as error:
        validate({"html": "{% include 'footer' %}"}, blocks={"footer": "ok\n{{ x.__class__ }}"})
    assert error.value.block == "footer"
    assert error.value.line == 2
    with pytest.raises(TemplateError) as error:
        render_message({"html": "a\n{% include 'footer' %}"}, {}, blocks={"footer": "ok\n\n{{ 1 / 0 }}"})
    assert (error.value.field, error.value.block, error.value.line) == ("html", "footer", 3)


def test_unknown_variables_are_caught_at_save_time_when_the_context_is_known():
    known = {"person", "products", "unsubscribe_url"}
    validate({"text": "Hi {{ person.first_name }}, {% for p in products %}{{ p.name }}{% endfor %}"}, known_names=known)
    with pytest.raises(TemplateError, match="unknown variable 'persn'") as error:
        validate({"html": "<p>\n{{ persn.first_name }}</p>"}, known_names=known)
    assert error.value.line == 2


def test_missing_data_renders_empty_and_default_fills_in():
    message = render_message(
        {"text": "Hi {{ person.nickname }}|{{ person.nickname|default('there') }}|{{ absent }}"},
        {"person": {"first_name": "Ada"}},
    )
    assert message.text == "Hi |there|"


def test_safe_filters_format_money_dates_and_text():
    context = {
        "price": Decimal("1234.5"),
        "yen": 1500,
        "placed": datetime(2026, 5, 1, 22, 30, tzinfo=UTC),
        "day": date(2026, 12, 24),
        "title": "the quick brown fox jumps over the lazy dog",
    }
    text = render_text(
        "{{ price|money('EUR') }}|{{ price|money('EUR', 'de') }}|{{ price|money('USD') }}|{{ yen|money('JPY') }}|"
        "{{ price|money('SEK') }}|{{ placed|date('%d %b %Y %H:%M', 'Asia/Tokyo') }}|{{ day|date }}|"
        "{{ title|title|truncate(20) }}",
        context,
    )
    assert text == (
        "€1,234.50|1.234,50\u00a0€|$1,234.50|¥1,500|1,234.50 SEK|02 May 2026 07:30|24 December 2026|The Quick Brown..."
    )


def test_money_rounds_half_up_and_signs_negative_amounts():
    assert money(2.675, "EUR") == "€2.68"
    assert money("-1000", "GBP") == "-£1,000.00"
    with pytest.raises(ValueError):
        money("lots", "EUR")


def test_date_filter_refuses_odd_formats():
    with pytest.raises(TemplateError):
        render_text("{{ d|date('%s' * 100) }}", {"d": date(2026, 1, 1)})


def test_a_validated_template_renders_many_recipients():
    template = validate(
        TemplateFields(
            subject="{{ person.first_name }}, new in {{ category }}",
            preheader="Picked for you",
            html="<ul>{% for p in products %}<li>{{ p.name }} {{ p.price|money('EUR') }}</li>{% endfor %}</ul>",
            text="{% for p in products %}- {{ p.name }}\n{% endfor %}",
        )
    )
    assert isinstance(template, MessageTemplate)
    products = [{"name": f"Item {i}", "price": i + 0.5} for i in range(3)]
    for name in ("Ada", "Grace"):
        message = render_message(template, {"person": {"first_name": name}, "category": "Shoes", "products": products})
        assert message.subject == f"{name}, new in Shoes"
        assert message.html.count("<li>") == 3
        assert message.text.splitlines() == ["- Item 0", "- Item 1", "- Item 2"]


def test_unknown_fields_are_refused():
    with pytest.raises(TemplateError) as error:
        validate({"subject": "hi", "body": "x"})
    assert error.value.field == "body"


# --- variants --------------------------------------------------------------------------------------------------


RULES = [
    VariantRule("vip", segments=frozenset({"vip"})),
    VariantRule("runners", interests=frozenset({"running", "trail"})),
    VariantRule("vip-runners", segments=frozenset({"vip"}), interests=frozenset({"running"})),
    VariantRule("default"),
]


@pytest.mark.parametrize(
    ("segments", "interests", "expected"),
    [
        ({"vip"}, {"running"}, "vip"),  # first match wins, even over a more specific later rule
        ({"new"}, {"trail"}, "runners"),
        ({"new"}, {"cooking"}, "default"),
        (set(), set(), "default"),
    ],
)
def test_first_matching_variant_rule_wins_and_default_is_last(segments, interests, expected):
    assert choose_variant(RULES, segments=segments, interests=interests) == expected


def test_variant_rules_need_a_single_default_at_the_end():
    validate_variant_rules(RULES, variants={"vip", "runners", "vip-runners", "default"})
    with pytest.raises(TemplateError, match="last rule must be the default"):
        validate_variant_rules(RULES[:-1])
    with pytest.raises(TemplateError, match="never apply"):
        validate_variant_rules([VariantRule("default"), *RULES])
    with pytest.raises(TemplateError, match="unknown variant"):
        validate_variant_rules(RULES, variants={"vip", "default"})
    with pytest.raises(TemplateError):
        choose_variant(RULES[:1], segments={"new"})
