"""The catalog's variable system: components' configurations are Jinja2 templates rendered in the
portal's one sandbox with its render budget (``portal.templating``).

A component's strings read

- ``request``: ``request.id``, ``request.data`` (what the requester filled in), ``request.user``
  (``username``, ``email``, ``name``);
- ``components.<id>``: an earlier component's ``output``, ``resources`` and ``status``;
- ``bundle``: ``bundle.metadata.name``, ``bundle.metadata.version``, ``bundle.kind``.

A reference that does not exist fails the component at run time (strict undefined): a ticket is
never created with a blank where a value was meant to be. :func:`config_problems` checks a
configuration when it is saved (syntax, loops the budget would stop, references to components that
do not run before it, a sample render), so the admin refuses a broken template.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from functools import cache
from typing import Any

from jinja2 import ChainableUndefined, StrictUndefined, TemplateError, nodes

from portal.templating import BudgetedSandbox, budget_problems, budgeted_sandbox

# Built-in filters a component may use, plus ``json`` (the seed's ``{{json ...}}`` helper).
FILTERS = (
    "abs", "capitalize", "default", "d", "first", "float", "format", "indent", "int", "join",
    "last", "length", "list", "lower", "replace", "round", "string", "title", "trim", "truncate",
    "upper", "urlencode", "wordcount", "items", "selectattr", "map", "sort", "unique", "tojson",
)  # fmt: skip
NAMES = ("request", "components", "bundle")


def to_json(value: Any) -> str:
    """The seed's ``json`` helper: the value as indented JSON, keys in their given order."""
    return json.dumps(value, indent=2, ensure_ascii=False, default=str)


def _environment(undefined: type) -> BudgetedSandbox:
    environment = budgeted_sandbox(
        filters=FILTERS,
        globals=("range", "dict"),
        undefined=undefined,
        autoescape=False,
        # Handlebars drops the line of a standalone block tag ({{#each}} alone on its line); these
        # two options make Jinja2 do the same, so the seed's layout translates line for line.
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    environment.filters["json"] = to_json
    return environment


@cache
def strict_environment() -> BudgetedSandbox:
    return _environment(StrictUndefined)


class SampleUndefined(ChainableUndefined):
    """A value only known at run time, in the save-time check's sample render: it renders as a
    placeholder, so a required field that reads it is not taken for empty."""

    def __str__(self) -> str:
        return "<sample>"


@cache
def lenient_environment() -> BudgetedSandbox:
    """For the sample render of the save-time check, where runtime values are unknown."""
    return _environment(SampleUndefined)


class RenderFailed(Exception):
    """A template of a component that cannot render: its path in the config and why."""

    def __init__(self, path: str, reason: str) -> None:
        super().__init__(f"{path}: {reason}")
        self.path = path
        self.reason = reason


def render_text(
    source: str, context: Mapping[str, Any], *, path: str = "template", sample: bool = False
) -> str:
    environment = lenient_environment() if sample else strict_environment()
    try:
        return environment.from_string(source).render(**context)
    except TemplateError as exc:  # syntax, undefined, sandbox and budget errors alike
        raise RenderFailed(path, str(exc) or type(exc).__name__) from exc


def render_config(
    value: Any, context: Mapping[str, Any], path: str = "config", *, sample: bool = False
) -> Any:
    """Every string in ``value`` (a JSON-like configuration) rendered; other values as they are.
    ``sample``: the save-time check's render, where run-time values render as placeholders."""
    if isinstance(value, str):
        if "{{" in value or "{%" in value:
            return render_text(value, context, path=path, sample=sample)
        return value
    if isinstance(value, list):
        return [
            render_config(item, context, f"{path}.{index}", sample=sample)
            for index, item in enumerate(value)
        ]
    if isinstance(value, dict):
        return {
            key: render_config(item, context, f"{path}.{key}", sample=sample)
            for key, item in value.items()
        }
    return value


# --- the save-time check -------------------------------------------------------------------------


@dataclass(frozen=True)
class Problem:
    path: str  # where in the config, e.g. "config.ticket.summaryTemplate"
    message: str

    def __str__(self) -> str:
        return f"{self.path}: {self.message}"


def _strings(value: Any, path: str) -> Iterator[tuple[str, str]]:
    if isinstance(value, str):
        yield path, value
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _strings(item, f"{path}.{index}")
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from _strings(item, f"{path}.{key}")


def _component_references(tree: nodes.Template) -> set[str]:
    """The ids named as ``components.<id>`` or ``components["<id>"]``."""
    found: set[str] = set()
    for node in tree.find_all((nodes.Getattr, nodes.Getitem)):
        target = node.node
        if isinstance(target, nodes.Name) and target.name == "components":
            if isinstance(node, nodes.Getattr):
                found.add(node.attr)
            elif isinstance(node.arg, nodes.Const) and isinstance(node.arg.value, str):
                found.add(node.arg.value)
    return found


def sample_context(earlier: list[str], inputs: list[str]) -> dict[str, Any]:
    return {
        "request": {
            "id": "00000000-0000-0000-0000-000000000000",
            "data": {name: f"<{name}>" for name in inputs},
            "user": {"username": "requester", "email": "requester@example.com", "name": ""},
        },
        "components": {
            component: {"output": {}, "resources": [], "status": "succeeded"}
            for component in earlier
        },
        "bundle": {"metadata": {"name": "bundle", "version": "1.0.0"}, "kind": "bundle"},
    }


def config_problems(config: Any, *, earlier: list[str], inputs: list[str]) -> list[Problem]:
    """What is wrong with a component's templates, found without calling anything.

    ``earlier``: the ids of the components that run before it (the only ones it may read);
    ``inputs``: the bundle's declared inputs (informative: undeclared ``request.data`` keys are
    allowed, the requester may send more).
    """
    problems: list[Problem] = []
    environment = lenient_environment()
    context = sample_context(earlier, inputs)
    for path, source in _strings(config, "config"):
        if "{{" not in source and "{%" not in source and "{#" not in source:
            continue
        try:
            tree = environment.parse(source)
        except TemplateError as exc:
            problems.append(Problem(path, f"template syntax error: {exc}"))
            continue
        problems.extend(Problem(path, message) for message in budget_problems(tree))
        unknown_names = {
            node.name
            for node in tree.find_all(nodes.Name)
            if node.ctx == "load" and node.name not in NAMES
        } - _assigned_names(tree)
        problems.extend(
            Problem(path, f"unknown variable '{name}' (use request, components or bundle)")
            for name in sorted(unknown_names)
        )
        for component in sorted(_component_references(tree) - set(earlier)):
            problems.append(
                Problem(path, f"reads components.{component}, which does not run before it")
            )
        if problems and problems[-1].path == path:
            continue
        try:
            environment.from_string(source).render(**context)
        except TemplateError as exc:
            problems.append(Problem(path, f"does not render: {exc}"))
        except (TypeError, ValueError, ArithmeticError) as exc:
            problems.append(Problem(path, f"does not render: {exc}"))
    return problems


def _assigned_names(tree: nodes.Template) -> set[str]:
    """Names the template binds itself (loop variables, ``set``), with the loop's own names."""
    names = {"loop", "range", "dict", "namespace", "true", "false", "none"}
    for node in tree.find_all((nodes.For, nodes.Assign, nodes.Macro, nodes.With)):
        targets = []
        if isinstance(node, nodes.For | nodes.Assign):
            targets = [node.target]
        elif isinstance(node, nodes.With):
            targets = list(node.targets)
        elif isinstance(node, nodes.Macro):
            names.update(argument.name for argument in node.args)
        for target in targets:
            names.update(n.name for n in target.find_all(nodes.Name))
            if isinstance(target, nodes.Name):
                names.add(target.name)
    return names
