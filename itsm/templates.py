"""Ticket templates: list them, say which variables they need, render them (US-3).

Two sources. File templates come from ``config/itsm_config.json`` (seed 003's shape,
``{platform: {name: {field: "text with {variable}"}}}``); active ``TicketTemplate`` rows edited in
the admin override a file template of the same platform and name.

Two engines, both rendering only here:

- "format": the seed's ``{variable}`` placeholders, with ``{{``/``}}`` for literal braces as in
  ``str.format``. The text is parsed with ``string.Formatter().parse`` and only plain names are
  allowed: ``{a.b}``, ``{a[0]}``, ``{0}``, ``{a!r}`` and ``{a:>9}`` are refused, because
  ``str.format`` would follow attributes and indexes of whatever object it is given. Rendering never
  calls ``str.format``: it joins the literal pieces with ``str(value)`` of each variable.
- "jinja" (admin rows only): one module-level sandboxed Jinja2 environment (the NetBox pattern of
  rendering user-authored Jinja in a single place), built by :func:`portal.templating.budgeted_sandbox`
  so every render has an operation, output and time budget; no loader (so no
  include/import/extends and no file I/O), StrictUndefined, a short list of text filters, and no
  autoescape since the output is ticket text, not HTML. Loops nested so that they must outrun the
  budget are refused when the template is checked; others are stopped when they outrun it.

Variable values are user input and are inserted as text, never parsed as templates: a value of
``{x}`` or ``{{ 7*7 }}`` comes out exactly as given.
"""

from __future__ import annotations

import logging
import operator
import string
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from typing import TYPE_CHECKING, Any, Literal

from django.conf import settings
from jinja2 import StrictUndefined, TemplateSyntaxError, UndefinedError, meta, nodes
from jinja2 import TemplateError as JinjaTemplateError
from jinja2.sandbox import SecurityError

from itsm.config import TICKET_PLATFORMS, get_config
from itsm.errors import TemplateError
from itsm.metrics import TEMPLATE_RENDERING_ERRORS
from portal.templating import (
    BudgetedSandbox,
    RenderBudgetExceeded,
    budget_problems,
    budgeted_sandbox,
)

if TYPE_CHECKING:
    from itsm.models import TicketTemplate

logger = logging.getLogger("itsm.templates")

ENGINES = ("format", "jinja")
SOURCE_FILE = "file"
SOURCE_DATABASE = "database"


@dataclass
class TemplateInfo:
    """One template as the API and the UI show it.

    ``fields`` are the raw template texts; ``variables`` the names a caller must supply (sorted);
    ``defaults`` the names the template uses that have a value when not supplied (Jira's
    ``project`` from ``JIRA_PROJECT_KEY``), with that value.
    """

    name: str
    platform: str
    source: Literal["file", "database"]
    engine: Literal["format", "jinja"]
    description: str
    fields: dict[str, str]
    variables: list[str]
    defaults: dict[str, str] = field(default_factory=dict)


# --- "format": the seed's {variable} placeholders -------------------------------------------

_FORMATTER = string.Formatter()

# A parsed format text: literal pieces and variable names, in order.
_Piece = tuple[Literal["text", "variable"], str]


def _placeholder_problem(name: str, spec: str, conversion: str | None) -> str | None:
    shown = (
        "{" + name + (f"!{conversion}" if conversion else "") + (f":{spec}" if spec else "") + "}"
    )
    if name == "" or name.isdigit():
        return f"placeholder {shown} is positional; name the variable, like {{job_name}}"
    if "." in name or "[" in name:
        return (
            f"placeholder {shown} uses attribute or index access; "
            "only plain names like {job_name} are allowed"
        )
    if conversion or spec:
        return f"placeholder {shown} has a conversion or format spec; use a plain {{{name}}}"
    if not name.isidentifier():
        return f"placeholder {shown} is not a variable name (letters, digits and _)"
    return None


@lru_cache(maxsize=1024)
def _parse_format(text: str) -> tuple[_Piece, ...]:
    """The pieces of a format text; TemplateError for a broken brace or a disallowed placeholder."""
    pieces: list[_Piece] = []
    try:
        parsed = list(_FORMATTER.parse(text))
    except ValueError as exc:  # "Single '}' encountered", "expected '}' before end of string"
        raise TemplateError(f"{exc}; write {{{{ or }}}} for a literal brace") from exc
    for literal, name, spec, conversion in parsed:
        if literal:
            pieces.append(("text", literal))
        if name is None:
            continue
        problem = _placeholder_problem(name, spec or "", conversion)
        if problem:
            raise TemplateError(problem)
        pieces.append(("variable", name))
    return tuple(pieces)


def _render_format(text: str, values: Mapping[str, str]) -> str:
    return "".join(
        value if kind == "text" else values[value] for kind, value in _parse_format(text)
    )


# --- "jinja": one sandboxed environment -----------------------------------------------------

_MAX_OUTPUT = 1_000_000  # characters of one rendered field, far above any platform's limit
_MAX_REPEAT = 100_000  # longest string or list that "*" may build
_MAX_EXPONENT = 100


class _TicketSandbox(BudgetedSandbox):
    """The sandbox, with ``*`` and ``**`` bounded: ``{{ 'x' * 10**10 }}`` would exhaust memory."""

    intercepted_binops = frozenset({"*", "**"})

    def call_binop(self, context: Any, operator_name: str, left: Any, right: Any) -> Any:
        if operator_name == "**":
            if isinstance(right, int | float) and abs(right) > _MAX_EXPONENT:
                raise SecurityError(f"exponent above {_MAX_EXPONENT}")
            return operator.pow(left, right)
        for sequence, count in ((left, right), (right, left)):
            if (
                isinstance(sequence, str | list | tuple)
                and isinstance(count, int)
                and len(sequence) * count > _MAX_REPEAT
            ):
                raise SecurityError(f"repetition longer than {_MAX_REPEAT}")
        return operator.mul(left, right)


def _build_jinja() -> BudgetedSandbox:
    # Text and list filters only: none built to reach into objects (attr, map, selectattr,
    # groupby ...), none that formats with % or makes markup. The "attribute=" argument that sort,
    # unique, min, max and sum accept still looks items up through the sandbox's checks.
    safe_filters = [
        "abs",
        "capitalize",
        "center",
        "count",
        "d",
        "default",
        "first",
        "float",
        "indent",
        "int",
        "join",
        "last",
        "length",
        "list",
        "lower",
        "max",
        "min",
        "replace",
        "reverse",
        "round",
        "sort",
        "string",
        "sum",
        "title",
        "trim",
        "truncate",
        "unique",
        "upper",
        "wordcount",
        "wordwrap",
    ]
    return budgeted_sandbox(
        filters=safe_filters,
        globals=("range", "dict", "namespace"),
        max_output=_MAX_OUTPUT,
        environment_class=_TicketSandbox,
        autoescape=False,  # ticket text, not HTML
        undefined=StrictUndefined,
        loader=None,  # no include/import/extends, no file access
        keep_trailing_newline=True,
    )


JINJA_ENV = _build_jinja()

_FORBIDDEN_NODES: dict[type[nodes.Node], str] = {
    nodes.Include: "include",
    nodes.Import: "import",
    nodes.FromImport: "import",
    nodes.Extends: "extends",
}


@lru_cache(maxsize=1024)
def _jinja_problems(text: str) -> tuple[str, ...]:
    """What is wrong with a Jinja text, found without rendering it (cached: parsing is slow).

    Compiling (not rendering) also finds unknown filters and tests outside conditionals.
    """
    try:
        tree = JINJA_ENV.parse(text)
        JINJA_ENV.compile(tree)
    except TemplateSyntaxError as exc:  # TemplateAssertionError (unknown filter) included
        return (f"syntax error on line {exc.lineno}: {exc.message}",)
    problems: list[str] = []
    for node_type, word in _FORBIDDEN_NODES.items():
        if any(True for _ in tree.find_all(node_type)):
            problems.append(f"{{% {word} %}} is not allowed: a template stands alone")
    private = sorted(
        {node.attr for node in tree.find_all(nodes.Getattr) if node.attr.startswith("_")}
        | {
            node.arg.value
            for node in tree.find_all(nodes.Getitem)
            if isinstance(node.arg, nodes.Const)
            and isinstance(node.arg.value, str)
            and node.arg.value.startswith("_")
        }
    )
    if private:
        problems.append(f"access to private attributes is not allowed: {', '.join(private)}")
    problems.extend(budget_problems(tree))
    return tuple(problems)


@lru_cache(maxsize=512)
def _compile_jinja(text: str) -> Any:
    """The compiled template (cached: compiling costs far more than rendering)."""
    problems = _jinja_problems(text)
    if problems:
        raise TemplateError("; ".join(problems))
    return JINJA_ENV.from_string(text)


@lru_cache(maxsize=1024)
def _jinja_variables(text: str) -> frozenset[str]:
    _compile_jinja(text)  # refuse what could not be rendered
    return frozenset(meta.find_undeclared_variables(JINJA_ENV.parse(text)))


def _plain_data(value: Any, depth: int = 0) -> Any:
    """JSON-like data for Jinja (so loops work); anything else becomes its text."""
    if value is None or isinstance(value, str | int | float | bool):
        return value
    if depth < 10 and isinstance(value, list | tuple):
        return [_plain_data(item, depth + 1) for item in value]
    if depth < 10 and isinstance(value, dict):
        return {str(key): _plain_data(item, depth + 1) for key, item in value.items()}
    return str(value)


def _render_jinja(text: str, values: Mapping[str, Any]) -> str:
    try:
        output = _compile_jinja(text).render(values)
    except RenderBudgetExceeded as exc:
        raise TemplateError(str(exc)) from exc
    except JinjaTemplateError as exc:  # SecurityError, UndefinedError, the limits above
        raise TemplateError(f"{type(exc).__name__}: {exc.message or exc}") from exc
    except (ArithmeticError, TypeError, ValueError, LookupError, RecursionError) as exc:
        raise TemplateError(f"{type(exc).__name__}: {exc}") from exc
    if len(output) > _MAX_OUTPUT:
        raise TemplateError(f"rendered text is longer than {_MAX_OUTPUT} characters")
    return output


# --- variables ------------------------------------------------------------------------------


def _field_variables(engine: str, text: str) -> frozenset[str]:
    if engine == "jinja":
        return _jinja_variables(text)
    return frozenset(value for kind, value in _parse_format(text) if kind == "variable")


def _all_variables(engine: str, fields: Mapping[str, str]) -> set[str]:
    names: set[str] = set()
    for field_name, text in fields.items():
        try:
            names |= _field_variables(engine, text)
        except TemplateError as exc:
            raise TemplateError(f"{field_name}: {exc.message}") from exc
    return names


def variables_by_field(info: TemplateInfo) -> dict[str, list[str]]:
    """Which of the template's variables each field uses, in the order they appear in it: the one
    place that parses a template's text for names (pages place a field's errors beside the inputs
    that feed it, and order the inputs as the ticket reads)."""
    known = set(info.variables)
    uses: dict[str, list[str]] = {}
    for field_name, text in info.fields.items():
        try:
            if info.engine == "jinja":
                found = [
                    node.name
                    for node in JINJA_ENV.parse(text).find_all(nodes.Name)
                    if node.ctx == "load"
                ]
            else:
                found = [value for kind, value in _parse_format(text) if kind == "variable"]
        except (TemplateError, TemplateSyntaxError):  # an invalid template is refused elsewhere
            found = []
        uses[field_name] = [name for name in dict.fromkeys(found) if name in known]
    return uses


def variables_in_order(info: TemplateInfo) -> list[str]:
    """The variables in the order the ticket reads (summary before description), not A to Z."""
    ordered = [name for names in variables_by_field(info).values() for name in names]
    return list(dict.fromkeys([*ordered, *info.variables]))


def _defaults(platform: str) -> dict[str, str]:
    """Values used for variables the caller leaves out; read at call time, not import time."""
    if platform == "jira":
        project = (getattr(settings, "ITSM_ENDPOINTS", {}) or {}).get("JIRA_PROJECT_KEY", "")
        if project:
            return {"project": project}
    return {}


def required_variables(info: TemplateInfo) -> list[str]:
    """The variables a caller must supply, sorted; TemplateError if the template is invalid."""
    return sorted(_all_variables(info.engine, info.fields) - set(_defaults(info.platform)))


# --- the two sources ------------------------------------------------------------------------


def _info(
    *,
    platform: str,
    name: str,
    source: Literal["file", "database"],
    engine: str,
    description: str,
    fields: Any,
) -> TemplateInfo:
    """A TemplateInfo with its variables; TemplateError if the stored template is invalid."""
    problems = check_template(platform, engine, fields, allow_any_platform=True)
    if problems:
        raise TemplateError(
            f"template {platform}/{name} is invalid: {'; '.join(problems)}",
            template_name=name,
            platform=platform,
        )
    used = _all_variables(engine, fields)
    defaults = {key: value for key, value in _defaults(platform).items() if key in used}
    return TemplateInfo(
        name=name,
        platform=platform,
        source=source,
        engine=engine,  # type: ignore[arg-type]  # checked above
        description=description,
        fields=dict(fields),
        variables=sorted(used - set(defaults)),
        defaults=defaults,
    )


def _file_templates(platform: str | None) -> dict[tuple[str, str], dict[str, Any]]:
    found = {}
    for template_platform, templates in get_config().templates.items():
        if platform is not None and template_platform != platform:
            continue
        for name, fields in (templates or {}).items():
            found[(template_platform, name)] = {
                "platform": template_platform,
                "name": name,
                "source": SOURCE_FILE,
                "engine": "format",
                "description": "",
                "fields": fields,
            }
    return found


def _database_templates(
    platform: str | None, name: str | None = None
) -> dict[tuple[str, str], dict[str, Any]]:
    from itsm.models import TicketTemplate  # the app registry is ready by the time this runs

    rows = TicketTemplate.objects.filter(is_active=True)
    if platform is not None:
        rows = rows.filter(platform=platform)
    if name is not None:
        rows = rows.filter(name=name)
    return {
        (row.platform, row.name): {
            "platform": row.platform,
            "name": row.name,
            "source": SOURCE_DATABASE,
            "engine": row.engine,
            "description": row.description,
            "fields": row.fields,
        }
        for row in rows.only("platform", "name", "engine", "description", "fields")
    }


def info_from_row(row: TicketTemplate) -> TemplateInfo:
    """The TemplateInfo of one row, active or not (the admin shows its variables)."""
    return _info(
        platform=row.platform,
        name=row.name,
        source=SOURCE_DATABASE,
        engine=row.engine,
        description=row.description,
        fields=row.fields,
    )


def list_templates(platform: str | None = None) -> list[TemplateInfo]:
    """Every usable template, sorted by platform and name; a database row hides its file twin.

    An invalid stored template is left out and logged (get_template explains what is wrong), so
    that one bad row does not break the list.
    """
    merged = {**_file_templates(platform), **_database_templates(platform)}
    infos = []
    for key in sorted(merged):
        try:
            infos.append(_info(**merged[key]))
        except TemplateError as exc:
            logger.error(
                "itsm.template_invalid",
                extra={
                    "event": "itsm.template_invalid",
                    "platform": key[0],
                    "template_name": key[1],
                    "error": exc.message,
                },
            )
    return infos


def get_template(platform: str, name: str) -> TemplateInfo:
    """The template ``name`` of ``platform`` (the database row first); TemplateError if none."""
    stored = _database_templates(platform, name).get((platform, name)) or _file_templates(
        platform
    ).get((platform, name))
    if stored is None:
        raise TemplateError(
            f"unknown template {platform}/{name}", template_name=name, platform=platform
        )
    try:
        return _info(**stored)
    except TemplateError:
        # Counted: a stored template that cannot render is a rendering failure an operator must
        # see. (Unknown names are not counted: they are caller input and would grow the labels.)
        TEMPLATE_RENDERING_ERRORS.labels(template_name=name).inc()
        raise


# --- rendering ------------------------------------------------------------------------------


def _fail(
    info: TemplateInfo, message: str, missing: list[str] | None = None, *, count: bool = True
) -> TemplateError:
    if not count:
        return TemplateError(
            message, template_name=info.name, missing=missing, platform=info.platform
        )
    TEMPLATE_RENDERING_ERRORS.labels(template_name=info.name).inc()
    logger.warning(
        "itsm.template_render_failed",
        extra={
            "event": "itsm.template_render_failed",
            "platform": info.platform,
            "template_name": info.name,
            "missing": sorted(missing or []),
            "error": message,
        },
    )
    return TemplateError(message, template_name=info.name, missing=missing, platform=info.platform)


def render(
    info: TemplateInfo, variables: Mapping[str, Any], *, count_errors: bool = True
) -> dict[str, str]:
    """Each field's text with the variables filled in, in the template's field order.

    Variables the template does not use are ignored; None counts as not supplied. For "format"
    every value is inserted as ``str(value)``; for "jinja" values are passed as JSON-like data
    (lists and dicts stay iterable) and the output is text. TemplateError, counted in
    ``itsm_template_rendering_errors_total``, lists every missing variable at once.
    ``count_errors=False`` for previews: a half-typed draft is not a rendering failure.
    """
    supplied = {key: value for key, value in variables.items() if value is not None}
    values: dict[str, Any] = {**_defaults(info.platform), **supplied}
    try:
        used = _all_variables(info.engine, info.fields)
    except TemplateError as exc:
        raise _fail(info, exc.message, count=count_errors) from exc
    missing = sorted(used - set(values))

    convert: Callable[[Any], Any] = str if info.engine == "format" else _plain_data
    values = {key: convert(value) for key, value in values.items() if key in used}
    if missing and info.engine == "format":
        raise _fail(info, f"missing variables: {', '.join(missing)}", missing, count=count_errors)

    rendered: dict[str, str] = {}
    for field_name, text in info.fields.items():
        try:
            if info.engine == "jinja":
                rendered[field_name] = _render_jinja(text, values)
            else:
                rendered[field_name] = _render_format(text, values)
        except TemplateError as exc:
            if missing and isinstance(exc.__cause__, UndefinedError):
                # A Jinja variable the template guards with "default" or "is defined" may be left
                # out; only when rendering fails is its absence the caller's error.
                raise _fail(
                    info, f"missing variables: {', '.join(missing)}", missing, count=count_errors
                ) from exc
            raise _fail(info, f"{field_name}: {exc.message}", count=count_errors) from exc
    return rendered


# --- checking before save -------------------------------------------------------------------


def check_template(
    platform: str, engine: str, fields: Any, *, allow_any_platform: bool = False
) -> list[str]:
    """What is wrong with a template, as messages for the admin form; [] when it is usable.

    Parses and inspects only; nothing is rendered. Any field name is accepted (the payload is
    validated against the platform's schema when a ticket is created).
    """
    problems: list[str] = []
    if not allow_any_platform and platform not in TICKET_PLATFORMS:
        problems.append(f"platform must be one of {', '.join(TICKET_PLATFORMS)}")
    if engine not in ENGINES:
        problems.append(f"engine must be one of {', '.join(ENGINES)}")
        return problems
    if not isinstance(fields, dict) or not fields:
        problems.append(
            'fields must be a JSON object of field names to template text, like {"summary": "..."}'
        )
        return problems
    for field_name, text in fields.items():
        if not isinstance(field_name, str) or not field_name.strip():
            problems.append("every field needs a name")
            continue
        if not isinstance(text, str):
            problems.append(f"{field_name}: the template must be text, not {type(text).__name__}")
            continue
        if engine == "jinja":
            problems.extend(f"{field_name}: {problem}" for problem in _jinja_problems(text))
        else:
            try:
                _parse_format(text)
            except TemplateError as exc:
                problems.append(f"{field_name}: {exc.message}")
    if not problems and platform in TICKET_PLATFORMS:
        problems.extend(_shape_problems(platform, fields))
    return problems


def _shape_problems(platform: str, fields: dict[str, str]) -> list[str]:
    """Fields the platform's schema needs but the template lacks, and names it does not know:
    mistakes that would otherwise only show when someone uses the template."""
    from itsm.validation import validate

    sample = {name: "x" for name in fields}
    issue_type = None
    if platform == "jira":
        sample.setdefault("project", "OPS")  # JIRA_PROJECT_KEY may supply it
        issue_type = fields.get("issue_type") if "{" not in fields.get("issue_type", "{") else None
        sample["issue_type"] = issue_type or "Task"
    return [
        f"{error.field}: {error.message}"
        for error in validate(platform, sample, issue_type)
        if error.code in ("required", "unknown_field")
    ]
