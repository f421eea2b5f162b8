"""Marketer-written message templates, rendered in a sandbox.

A message template has four fields: ``subject``, ``preheader``, ``html`` and ``text``. Each is a
Jinja2 template source written by a marketer, so it is treated as untrusted code:

- it runs in :class:`jinja2.sandbox.ImmutableSandboxedEnvironment`: no attribute or item starting
  with ``_``, no Python internals, no mutation of lists and dicts, no callable marked as altering
  data (``alters_data``). Methods of strings, lists and dicts are limited to a short list of
  harmless ones (no ``format``, ``ljust``, ``join``... that could build huge strings or reach
  attributes through format fields), and ``%`` string formatting is refused;
- there is no filesystem loader: templates come from strings, and ``include``, ``import``,
  ``extends`` resolve only named in-memory blocks passed alongside the template (none by default);
- the only global is a bounded ``range``; filters are a short list of safe built-ins plus ``money``
  and ``date``; there is no network access because nothing in the environment can reach it;
- rendering is bounded: each field's output has a maximum length, ``range`` and loops have an
  iteration budget, string repetition, concatenation and exponentiation are size-checked, and a
  wall-clock deadline is checked on every loop iteration, call and output chunk. A single operation
  can still run long inside C code between two checks (``sum`` of lists, ``wordwrap`` of a huge
  string), so the campaign app renders in a child process that is killed at the deadline
  (:mod:`campaigns.render_process`).

HTML is autoescaped; subject, preheader and plain text are not (they are not HTML). Subject and
preheader are single lines: whitespace, newlines included, collapses to single spaces, which also
keeps rendered data from injecting e-mail headers.

Problems are reported as :class:`TemplateError` naming the field (and the block, for an included
one) and the line: at save time by :func:`validate` (syntax, unknown filters, attribute walks into
internals) and at render time by :func:`render_message` (sandbox violations, limits, runtime errors).

Free of Django: the campaign app validates on save and renders in its workers.
"""

from __future__ import annotations

import re
import time as clock
import traceback
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping, Sequence
from contextvars import ContextVar
from dataclasses import dataclass, field
from datetime import date, datetime, tzinfo
from datetime import time as time_of_day
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any, cast
from zoneinfo import ZoneInfo

from jinja2 import BaseLoader, TemplateNotFound, TemplateSyntaxError, Undefined, nodes, pass_eval_context
from jinja2.compiler import CodeGenerator, Frame
from jinja2.environment import Template
from jinja2.exceptions import SecurityError
from jinja2.exceptions import TemplateError as JinjaTemplateError
from jinja2.filters import FILTERS
from jinja2.meta import find_undeclared_variables
from jinja2.nodes import EvalContext
from jinja2.sandbox import ImmutableSandboxedEnvironment

FIELDS = ("subject", "preheader", "html", "text")
"""The fields of a message template, in the order they are checked."""

_SINGLE_LINE_FIELDS = frozenset({"subject", "preheader"})


class TemplateError(Exception):
    """A template that cannot be saved or rendered.

    ``field`` is one of :data:`FIELDS`, ``"block"`` for a problem found while checking a named block
    on its own, or ``"variant"`` for variant rules; ``line`` is the line in that field's source, or in
    ``block`` when the problem is inside an included block.
    """

    def __init__(self, field: str, message: str, line: int | None = None, block: str | None = None) -> None:
        self.field = field
        self.message = message
        self.line = line
        self.block = block
        where = field if block is None else f"{field} (block {block!r})"
        if line is not None:
            where += f", line {line}"
        super().__init__(f"{where}: {message}")


class TemplateTooCostly(TemplateError):
    """A template that went over its time, size or memory budget: refused at save when a trial
    render shows it, a ``render_error`` when it only happens with some person's data."""


class LimitExceeded(SecurityError):
    """A render went over one of :class:`RenderLimits`."""


@dataclass(frozen=True)
class RenderLimits:
    """Bounds on what one template may cost.

    ``max_output`` caps each field's rendered length, ``max_source`` each field's source length;
    ``max_range`` is the longest ``range()``; ``max_iterations`` caps loop iterations over a whole
    message; ``max_value_size`` caps any string or list a template builds (by repetition,
    concatenation, ``join`` or ``replace``); ``max_written`` caps all the characters a message
    writes, captured ones (``{% set %}`` blocks, macros) included; ``max_seconds`` is the wall-clock
    budget per message.
    """

    max_output: Mapping[str, int] = field(
        default_factory=lambda: {"subject": 255, "preheader": 255, "html": 500_000, "text": 200_000}
    )
    max_source: int = 200_000
    max_range: int = 1_000
    max_iterations: int = 100_000
    max_value_size: int = 500_000
    max_written: int = 2_000_000
    max_seconds: float = 1.0


@dataclass(frozen=True)
class TemplateFields:
    """The four sources of a message template; empty fields render empty."""

    subject: str = ""
    preheader: str = ""
    html: str = ""
    text: str = ""

    @classmethod
    def of(cls, fields: TemplateFields | Mapping[str, str]) -> TemplateFields:
        if isinstance(fields, TemplateFields):
            return fields
        unknown = set(fields) - set(FIELDS)
        if unknown:
            raise TemplateError(sorted(unknown)[0], f"unknown template field, expected one of {', '.join(FIELDS)}")
        return cls(**{name: fields.get(name) or "" for name in FIELDS})


@dataclass(frozen=True)
class RenderedMessage:
    subject: str
    preheader: str
    html: str
    text: str


# --- render budget ---------------------------------------------------------------------------------------------


@dataclass
class _Budget:
    deadline: float
    iterations_left: int
    written_left: int
    limits: RenderLimits

    def tick(self, iterations: int = 0, written: int = 0) -> None:
        if iterations:
            self.iterations_left -= iterations
            if self.iterations_left < 0:
                raise LimitExceeded(f"loops ran more than {self.limits.max_iterations} iterations")
        if written:
            self.written_left -= written
            if self.written_left < 0:
                raise LimitExceeded(f"the message wrote more than {self.limits.max_written} characters")
        if clock.monotonic() > self.deadline:
            raise LimitExceeded(f"rendering took longer than {self.limits.max_seconds:g} s")


_budget: ContextVar[_Budget | None] = ContextVar("template_render_budget", default=None)


def _tick(iterations: int = 0, written: int = 0) -> None:
    budget = _budget.get()
    if budget is not None:
        budget.tick(iterations, written)


class _CountingBuffer(list[str]):
    """Where a template captures output; every write counts toward the message's written budget."""

    def append(self, item: str) -> None:
        _tick(written=len(item))
        super().append(item)

    def extend(self, items: Iterable[str]) -> None:
        items = tuple(items)
        _tick(written=sum(len(item) for item in items))
        super().extend(items)


def _size(value: Any) -> int:
    """Rough size of a value a template builds: characters of strings, elements of sequences."""
    if isinstance(value, str):
        return len(value)
    if isinstance(value, list | tuple):
        return sum(len(item) if isinstance(item, str) else 1 for item in value)
    return 1


# --- environment ---------------------------------------------------------------------------------------------------

_STR_METHODS = frozenset(
    {
        "capitalize", "casefold", "count", "endswith", "find", "isalnum", "isalpha", "isdigit", "islower",
        "isnumeric", "isspace", "istitle", "isupper", "lower", "lstrip", "partition", "removeprefix",
        "removesuffix", "rfind", "rpartition", "rsplit", "rstrip", "split", "splitlines", "startswith", "strip",
        "swapcase", "title", "upper", "striptags", "unescape",
    }
)  # fmt: skip
_DICT_METHODS = frozenset({"get", "items", "keys", "values"})
_SEQUENCE_METHODS = frozenset({"count", "index"})
_NUMBER_ATTRIBUTES = frozenset({"real", "imag", "numerator", "denominator", "is_integer"})
_DATE_ATTRIBUTES = frozenset(
    {"year", "month", "day", "hour", "minute", "second", "weekday", "isoweekday", "isoformat", "date", "time"}
)

_SAFE_FILTERS = (
    "abs", "capitalize", "count", "d", "default", "dictsort", "e", "escape", "filesizeformat", "first", "float",
    "groupby", "int", "items", "last", "length", "list", "lower", "map", "max", "min", "reject", "rejectattr",
    "reverse", "round", "select", "selectattr", "sort", "string", "striptags", "sum", "title", "trim",
    "truncate", "unique", "upper", "urlencode", "wordcount", "wordwrap",
)  # fmt: skip


class _GuardedCodeGenerator(CodeGenerator):
    """Compiles loops through the iteration budget, captured output through a counting buffer and
    concatenation (``~``) through the size check."""

    def visit_For(self, node: nodes.For, frame: Frame) -> None:
        guarded_iter = nodes.Call(
            nodes.EnvironmentAttribute("guard_loop", lineno=node.lineno),
            [node.iter],
            [],
            None,
            None,
            lineno=node.lineno,
        )
        guarded = nodes.For(
            node.target, guarded_iter, node.body, node.else_, node.test, node.recursive, lineno=node.lineno
        )
        super().visit_For(guarded, frame)

    def buffer(self, frame: Frame) -> None:
        # Captured output ({% set %} blocks, macros, filter blocks, caller()) is counted as it is written.
        frame.buffer = self.temporary_identifier()
        self.writeline(f"{frame.buffer} = environment.new_buffer()")

    def visit_Concat(self, node: nodes.Concat, frame: Frame) -> None:
        self.write("environment.limit_value(")
        super().visit_Concat(node, frame)
        self.write(")")


class _BlockLoader(BaseLoader):
    """Named in-memory blocks only: nothing is ever read from disk."""

    def __init__(self, blocks: Mapping[str, str]) -> None:
        self.blocks = dict(blocks)

    def get_source(self, environment: Any, template: str) -> tuple[str, str, Callable[[], bool]]:
        if template not in self.blocks:
            raise TemplateNotFound(template)
        return self.blocks[template], f"<block {template}>", lambda: True


class MessageEnvironment(ImmutableSandboxedEnvironment):
    """The sandbox marketer templates run in. One for HTML (autoescaped), one for plain text."""

    code_generator_class = _GuardedCodeGenerator
    intercepted_binops = frozenset({"*", "**", "+", "%"})

    def __init__(self, *, autoescape: bool, blocks: Mapping[str, str], limits: RenderLimits) -> None:
        super().__init__(
            autoescape=autoescape,
            loader=_BlockLoader(blocks),
            undefined=Undefined,
            extensions=(),
            auto_reload=False,
            cache_size=max(50, len(blocks) * 2),
        )
        self.limits = limits
        self.globals.clear()
        self.globals["range"] = bounded_range
        self.filters = {name: FILTERS[name] for name in _SAFE_FILTERS}
        self.filters.update({"join": _bounded_join, "replace": _bounded_replace, "money": money, "date": format_date})
        self.guard_loop = _guard_loop
        self.limit_value = self._limit_value
        self.new_buffer = _CountingBuffer

    # Attribute policy ---------------------------------------------------------------------------------------------

    def is_safe_attribute(self, obj: Any, attr: str, value: Any) -> bool:
        if not super().is_safe_attribute(obj, attr, value):
            return False
        if isinstance(obj, str):
            return attr in _STR_METHODS
        if isinstance(obj, dict):
            return attr in _DICT_METHODS
        if isinstance(obj, list | tuple):
            return attr in _SEQUENCE_METHODS
        if isinstance(obj, int | float | complex | Decimal):
            return attr in _NUMBER_ATTRIBUTES
        if isinstance(obj, date | time_of_day):
            return attr in _DATE_ATTRIBUTES
        return True

    def wrap_str_format(self, value: Any) -> None:
        # str.format and format_map are refused outright (see is_safe_attribute), not sandboxed:
        # format fields can still pad to any width.
        return None

    def unsafe_undefined(self, obj: Any, attribute: str) -> Undefined:
        raise SecurityError(f"access to attribute {attribute!r} of a {type(obj).__name__!r} value is not allowed")

    # Bounded operations -------------------------------------------------------------------------------------------

    def call(__self, __context: Any, __obj: Any, *args: Any, **kwargs: Any) -> Any:
        _tick()
        return super().call(__context, __obj, *args, **kwargs)

    def call_binop(self, context: Any, operator: str, left: Any, right: Any) -> Any:
        _tick()
        if operator == "%" and isinstance(left, str):
            raise SecurityError("'%' string formatting is not available; use the money or date filters")
        if operator == "**":
            self._check_power(left, right)
        if operator == "*":
            for sequence, times in ((left, right), (right, left)):
                if isinstance(sequence, str | list | tuple) and isinstance(times, int):
                    self._check_size(_size(sequence) * max(times, 0))
            if isinstance(left, int) and isinstance(right, int):
                self._check_bits(abs(left).bit_length() + abs(right).bit_length())
        if operator == "+" and isinstance(left, str | list | tuple) and isinstance(right, str | list | tuple):
            self._check_size(_size(left) + _size(right))
        return super().call_binop(context, operator, left, right)

    def _limit_value(self, value: Any) -> Any:
        self._check_size(_size(value))
        return value

    def _check_size(self, size: int) -> None:
        if size > self.limits.max_value_size:
            raise LimitExceeded(f"a value of {size} characters or items is larger than {self.limits.max_value_size}")

    def _check_bits(self, bits: int) -> None:
        if bits > 4096:
            raise LimitExceeded("a number with more than 4096 bits is too large")

    def _check_power(self, base: Any, exponent: Any) -> None:
        if isinstance(base, int) and isinstance(exponent, int) and exponent > 0:
            self._check_bits(max(abs(base).bit_length(), 1) * exponent)


def bounded_range(*args: int) -> range:
    """``range()`` for templates, refusing more than ``RenderLimits.max_range`` numbers."""
    numbers = range(*args)
    limit = _current_limits().max_range
    if len(numbers) > limit:
        raise LimitExceeded(f"range() of {len(numbers)} items is longer than {limit}")
    return numbers


def _guard_loop(iterable: Iterable[Any]) -> Iterator[Any]:
    for item in iterable:
        _tick(1)
        yield item


@pass_eval_context
def _bounded_join(eval_ctx: EvalContext, value: Iterable[Any], d: str = "", attribute: str | int | None = None) -> str:
    items = list(value)
    limits = _current_limits()
    estimate = len(d) * max(len(items) - 1, 0)
    if attribute is None:
        estimate += sum(len(str(item)) for item in items)
    if estimate > limits.max_value_size:
        raise LimitExceeded(f"join() would build {estimate} characters, more than {limits.max_value_size}")
    joined = FILTERS["join"](eval_ctx, items, d, attribute)
    if len(joined) > limits.max_value_size:
        raise LimitExceeded(f"join() built {len(joined)} characters, more than {limits.max_value_size}")
    return cast(str, joined)


@pass_eval_context
def _bounded_replace(eval_ctx: EvalContext, s: str, old: str, new: str, count: int | None = None) -> str:
    text = str(s)
    occurrences = len(text) + 1 if old == "" else text.count(old)
    if count is not None and count >= 0:
        occurrences = min(occurrences, count)
    estimate = len(text) + occurrences * (len(new) - len(old))
    limits = _current_limits()
    if estimate > limits.max_value_size:
        raise LimitExceeded(f"replace() would build {estimate} characters, more than {limits.max_value_size}")
    return cast(str, FILTERS["replace"](eval_ctx, s, old, new, count))


def _current_limits() -> RenderLimits:
    budget = _budget.get()
    return budget.limits if budget is not None else RenderLimits()


# --- filters -------------------------------------------------------------------------------------------------------

_CURRENCY_SYMBOLS = {"EUR": "€", "USD": "$", "GBP": "£", "JPY": "¥", "INR": "₹", "CNY": "¥", "KRW": "₩", "BRL": "R$"}
_ZERO_DECIMAL_CURRENCIES = frozenset({"JPY", "KRW", "ISK", "CLP", "VND", "HUF"})
# locale: (thousands separator, decimal mark, symbol after the amount)
_NUMBER_STYLES = {
    "en": (",", ".", False),
    "de": (".", ",", True),
    "fr": ("\u202f", ",", True),
    "es": (".", ",", True),
    "it": (".", ",", True),
    "nl": (".", ",", False),
}


def money(value: Any, currency: str = "EUR", locale: str = "en") -> str:
    """``{{ price|money('EUR', 'de') }}`` -> ``1.234,50 €``; ``{{ price|money('USD') }}`` -> ``$1,234.50``.

    Rounded half up to the currency's minor unit (none for JPY and the like).
    """
    try:
        amount = Decimal(str(value))
    except (InvalidOperation, ValueError):
        raise ValueError(f"money: {value!r} is not an amount") from None
    if not amount.is_finite():
        raise ValueError(f"money: {value!r} is not an amount")
    code = str(currency).upper()
    if locale not in _NUMBER_STYLES:
        raise ValueError(f"money: unknown locale {locale!r}, expected one of {', '.join(_NUMBER_STYLES)}")
    thousands, decimal_mark, symbol_after = _NUMBER_STYLES[locale]
    places = 0 if code in _ZERO_DECIMAL_CURRENCIES else 2
    try:
        rounded = amount.quantize(Decimal(1).scaleb(-places), rounding=ROUND_HALF_UP)
    except InvalidOperation:
        raise ValueError(f"money: {value!r} is too large") from None
    digits = f"{abs(rounded):,.{places}f}".replace(",", "\0").replace(".", decimal_mark).replace("\0", thousands)
    sign = "-" if rounded < 0 else ""
    symbol = _CURRENCY_SYMBOLS.get(code)
    if symbol is None:
        return f"{sign}{digits} {code}"
    if symbol_after:
        return f"{sign}{digits}\u00a0{symbol}"
    return f"{sign}{symbol}{digits}"


_DATE_FORMAT = re.compile(r"^(?:[^%]|%[aAbBdHIjmMpSUwWyYZz%])*$")
_TIMEZONE_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_+\-]*(?:/[A-Za-z0-9_+\-]+){0,2}$")


def format_date(value: Any, format: str = "%d %B %Y", tz: str | None = None) -> str:
    """``{{ order.placed_at|date('%d %b %Y', 'Europe/Paris') }}``.

    Accepts dates, datetimes and ISO 8601 strings; ``tz`` converts an aware datetime to that zone
    first. Only common ``strftime`` codes are accepted and the format is at most 64 characters.
    """
    if len(format) > 64 or not _DATE_FORMAT.match(format):
        raise ValueError(f"date: unsupported format {format!r}")
    moment: date
    if isinstance(value, date):
        moment = value
    elif isinstance(value, str):
        try:
            moment = datetime.fromisoformat(value)
        except ValueError:
            raise ValueError(f"date: {value!r} is not an ISO 8601 date") from None
    else:
        raise ValueError(f"date: {value!r} is not a date")
    if tz is not None and isinstance(moment, datetime) and moment.tzinfo is not None:
        if not _TIMEZONE_NAME.match(tz):
            raise ValueError(f"date: unknown timezone {tz!r}")
        try:
            zone: tzinfo = ZoneInfo(tz)
        except (ValueError, OSError):
            raise ValueError(f"date: unknown timezone {tz!r}") from None
        moment = moment.astimezone(zone)
    return moment.strftime(format)


# --- checking and compiling ----------------------------------------------------------------------------------------

_REFUSED_ATTRIBUTES = frozenset({"format", "format_map", "mro", "gi_frame", "f_globals", "func_globals"})


def _static_check(tree: nodes.Template) -> tuple[int, str] | None:
    """Refuse, before anything runs, attribute walks that can only be attempts to reach internals,
    and switching autoescaping off (which would let data write raw HTML into the message)."""
    for modifier in tree.find_all(nodes.EvalContextModifier):
        return modifier.lineno, "the autoescape tag is not available; HTML is always escaped"
    for node in tree.find_all((nodes.Getattr, nodes.Getitem)):
        if isinstance(node, nodes.Getattr):
            name = node.attr
        elif isinstance(node, nodes.Getitem) and isinstance(node.arg, nodes.Const) and isinstance(node.arg.value, str):
            name = node.arg.value
        else:
            continue
        if name.startswith("_") or name in _REFUSED_ATTRIBUTES:
            return node.lineno, f"access to {name!r} is not allowed"
    return None


def refuse_costly_constructs(
    fields: TemplateFields | Mapping[str, str], blocks: Mapping[str, str] | None = None
) -> None:
    """At save, refuse what can only be slow whatever the data: ``sum`` with a ``start`` that is not a
    number (summing lists copies the growing total once per element, inside one C call). Raises
    :class:`TemplateTooCostly`. Templates stored before are not refused when compiled: their
    render is stopped at the deadline instead."""
    environment = ImmutableSandboxedEnvironment()
    sources: list[tuple[str, str, str | None]] = [
        (name, getattr(TemplateFields.of(fields), name), None) for name in FIELDS
    ]
    sources += [("block", source, name) for name, source in (blocks or {}).items()]
    for field_name, source, block in sources:
        try:
            tree = environment.parse(source)
        except TemplateSyntaxError:
            continue  # reported by validate()
        for node in tree.find_all(nodes.Filter):
            start = next((kw.value for kw in node.kwargs if kw.key == "start"), None)
            if node.name == "sum" and start is not None and not isinstance(start, nodes.Const | nodes.Neg):
                raise TemplateTooCostly(
                    field_name, "sum() adds numbers only; start= must be a number", node.lineno, block
                )


def _line_of(exc: BaseException, filenames: Mapping[str, tuple[str, str | None]]) -> tuple[int | None, str | None]:
    """The innermost template line in a rewritten traceback, and the block it is in (if any)."""
    line: int | None = None
    block: str | None = None
    for frame in traceback.extract_tb(exc.__traceback__):
        if frame.filename in filenames:
            line = frame.lineno
            block = filenames[frame.filename][1]
    return line, block


def _error(field_name: str, exc: BaseException, filenames: Mapping[str, tuple[str, str | None]]) -> TemplateError:
    if isinstance(exc, TemplateNotFound):
        message = f"there is no block named {exc.name!r} to include, import or extend"
    elif isinstance(exc, RecursionError):
        message = "the template recurses too deeply"
    elif isinstance(exc, MemoryError):
        message = "the template needs too much memory"
    else:
        message = str(getattr(exc, "message", None) or exc) or type(exc).__name__
    if isinstance(exc, TemplateSyntaxError):
        block = None
        if exc.filename is not None and exc.filename in filenames:
            block = filenames[exc.filename][1]
        return TemplateError(field_name, message, exc.lineno, block)
    line, block = _line_of(exc, filenames)
    kind = TemplateTooCostly if isinstance(exc, LimitExceeded | RecursionError | MemoryError) else TemplateError
    return kind(field_name, message, line, block)


class MessageTemplate:
    """A validated message template, compiled once and rendered for many recipients.

    ``blocks`` are named in-memory snippets that fields may ``include``/``import``/``extend``;
    ``known_names``, when given, are the only context variables a field may use (checked at save
    time, so a typo such as ``{{ persn.first_name }}`` is caught before sending).
    """

    def __init__(
        self,
        fields: TemplateFields | Mapping[str, str],
        *,
        blocks: Mapping[str, str] | None = None,
        known_names: Collection[str] | None = None,
        limits: RenderLimits | None = None,
    ) -> None:
        self.fields = TemplateFields.of(fields)
        self.limits = limits or RenderLimits()
        self.blocks = dict(blocks or {})
        self._environments = {
            escape: MessageEnvironment(autoescape=escape, blocks=self.blocks, limits=self.limits)
            for escape in (True, False)
        }
        self._filenames: dict[str, tuple[str, str | None]] = {f"<{name}>": (name, None) for name in FIELDS}
        self._filenames.update({f"<block {name}>": (name, name) for name in self.blocks})
        self._templates: dict[str, Template] = {}
        for block_name, source in self.blocks.items():
            self._check("block", self._environments[False], source, f"<block {block_name}>", block_name, known_names)
        for name in FIELDS:
            environment = self._environment(name)
            self._templates[name] = self._check(
                name, environment, getattr(self.fields, name), f"<{name}>", None, known_names
            )

    def _environment(self, field_name: str) -> MessageEnvironment:
        return self._environments[field_name == "html"]

    def _check(
        self,
        field_name: str,
        environment: MessageEnvironment,
        source: str,
        filename: str,
        block: str | None,
        known_names: Collection[str] | None,
    ) -> Template:
        if len(source) > self.limits.max_source:
            raise TemplateError(
                field_name, f"the source is longer than {self.limits.max_source} characters", None, block
            )
        try:
            tree = environment.parse(source, name=block or field_name, filename=filename)
            problem = _static_check(tree)
            if problem is not None:
                raise TemplateError(field_name, problem[1], problem[0], block)
            if known_names is not None:
                unknown = sorted(find_undeclared_variables(tree) - set(known_names) - set(environment.globals))
                if unknown:
                    raise TemplateError(
                        field_name, f"unknown variable {unknown[0]!r}", _first_use(tree, unknown[0]), block
                    )
            code = environment.compile(tree, name=block or field_name, filename=filename)
            return environment.template_class.from_code(environment, code, environment.make_globals(None))
        except TemplateError:
            raise
        except (JinjaTemplateError, RecursionError, MemoryError) as exc:
            raise _error(field_name, exc, self._filenames) from None

    def render(self, context: Mapping[str, Any], on_field: Callable[[str], None] | None = None) -> RenderedMessage:
        """Render every field for one recipient; raises :class:`TemplateError` on any problem.
        ``on_field`` is told each field's name before it is rendered."""
        budget = _Budget(
            deadline=clock.monotonic() + self.limits.max_seconds,
            iterations_left=self.limits.max_iterations,
            written_left=self.limits.max_written,
            limits=self.limits,
        )
        token = _budget.set(budget)
        try:
            rendered = {}
            for name in FIELDS:
                if on_field is not None:
                    on_field(name)
                rendered[name] = self._render_field(name, context, budget)
        finally:
            _budget.reset(token)
        return RenderedMessage(**rendered)

    def _render_field(self, field_name: str, context: Mapping[str, Any], budget: _Budget) -> str:
        if not getattr(self.fields, field_name):
            return ""
        limit = self.limits.max_output.get(field_name, self.limits.max_value_size)
        # Single-line fields are checked again after whitespace collapses; allow them some slack here.
        raw_limit = 4 * limit + 1000 if field_name in _SINGLE_LINE_FIELDS else limit
        parts: list[str] = []
        length = 0
        try:
            for chunk in self._templates[field_name].generate(dict(context)):
                length += len(chunk)
                if length > raw_limit:
                    raise LimitExceeded(f"the output is longer than {limit} characters")
                budget.tick(written=len(chunk))
                parts.append(chunk)
        except TemplateError:
            raise
        except Exception as exc:  # anything a template can raise at render time is the template's problem
            raise _error(field_name, exc, self._filenames) from None
        output = "".join(parts)
        if field_name in _SINGLE_LINE_FIELDS:
            output = " ".join(output.split())
            if len(output) > limit:
                raise TemplateTooCostly(field_name, f"the output is longer than {limit} characters")
        return output


def _first_use(tree: nodes.Template, name: str) -> int | None:
    for node in tree.find_all(nodes.Name):
        if node.name == name and node.ctx == "load":
            return int(node.lineno)
    return None


def validate(
    template_fields: TemplateFields | Mapping[str, str],
    *,
    blocks: Mapping[str, str] | None = None,
    known_names: Collection[str] | None = None,
    limits: RenderLimits | None = None,
) -> MessageTemplate:
    """Check a template at save time; returns it compiled, raises :class:`TemplateError`."""
    return MessageTemplate(template_fields, blocks=blocks, known_names=known_names, limits=limits)


def render_message(
    fields: TemplateFields | Mapping[str, str] | MessageTemplate,
    context: Mapping[str, Any],
    *,
    blocks: Mapping[str, str] | None = None,
    limits: RenderLimits | None = None,
) -> RenderedMessage:
    """Render subject, preheader, HTML and text for one recipient.

    Pass a :class:`MessageTemplate` (from :func:`validate`) when rendering many recipients, to
    compile once. ``context`` should hold plain data: dicts, lists, strings, numbers, dates.
    """
    template = fields if isinstance(fields, MessageTemplate) else MessageTemplate(fields, blocks=blocks, limits=limits)
    return template.render(context)


# --- variants ------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class VariantRule:
    """Show ``variant`` to people in any of ``segments`` and with any of ``interests``.

    An empty set places no condition, so a rule with neither is the default, which must come last.
    """

    variant: str
    segments: frozenset[str] = frozenset()
    interests: frozenset[str] = frozenset()

    @property
    def is_default(self) -> bool:
        return not self.segments and not self.interests

    def matches(self, segments: Collection[str], interests: Collection[str]) -> bool:
        return (not self.segments or not self.segments.isdisjoint(segments)) and (
            not self.interests or not self.interests.isdisjoint(interests)
        )


def validate_variant_rules(rules: Sequence[VariantRule], variants: Collection[str] | None = None) -> None:
    """Rules are ordered, the first match wins, and the last one must be the only default."""
    if not rules:
        raise TemplateError("variant", "at least one rule (the default) is needed")
    for position, rule in enumerate(rules, start=1):
        if rule.is_default and position != len(rules):
            raise TemplateError("variant", f"rule {position} matches everyone, so the rules after it never apply")
        if variants is not None and rule.variant not in variants:
            raise TemplateError("variant", f"rule {position} names an unknown variant {rule.variant!r}")
    if not rules[-1].is_default:
        raise TemplateError("variant", "the last rule must be the default (no segments, no interests)")


def choose_variant(
    rules: Sequence[VariantRule], *, segments: Collection[str] = (), interests: Collection[str] = ()
) -> str:
    """The variant of the first rule that matches the person; the default when none does."""
    person_segments, person_interests = frozenset(segments), frozenset(interests)
    for rule in rules:
        if rule.matches(person_segments, person_interests):
            return rule.variant
    validate_variant_rules(rules)
    raise AssertionError("a valid rule list always ends with a default")  # pragma: no cover
