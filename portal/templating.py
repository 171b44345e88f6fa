"""The one way the portal renders user-authored Jinja: a sandbox with a render budget.

Jinja's sandbox stops a template from reaching into Python, not from working forever:
``{% for i in range(n|int) %}{% for j in range(n|int) %}`` at n=14,000 rendered for 8 s and
held a web worker. Every app builds its environment with :func:`budgeted_sandbox` (itsm's ticket
templates now, catalog items later), which bounds each render by

- operations: every loop iteration and every call (functions, macros, methods) spends one;
  loops are counted by wrapping each ``{% for %}``'s iterable at compile time, calls through the
  sandbox's ``call`` hook;
- output: characters written by ``{{ ... }}``;
- wall-clock time, checked at every operation.

Past a bound the render stops with :class:`RenderBudgetExceeded` ("template exceeded its render
budget: 100,000 operations / 1 s"). :func:`budget_problems` finds, without rendering, nested loops
whose worst case is already over the budget, so a template check can refuse them when saved.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator
from typing import Any

from jinja2 import nodes, pass_context
from jinja2.compiler import CodeGenerator
from jinja2.runtime import Context
from jinja2.sandbox import MAX_RANGE, SandboxedEnvironment, SecurityError

MAX_OPERATIONS = 100_000
MAX_SECONDS = 1.0
MAX_OUTPUT = 1_000_000  # characters of one render, far above any ticket field's limit

# The filter every loop's iterable is wrapped in; a name no template would choose.
_ITERATION_FILTER = "_budgeted_iteration"


class RenderBudgetExceeded(SecurityError):
    """A render spent more operations, output or time than its budget allows."""


class RenderBudget:
    """What one render may still spend; created with the render's context."""

    def __init__(self, max_operations: int, max_seconds: float, max_output: int) -> None:
        self.max_operations = max_operations
        self.max_seconds = max_seconds
        self.max_output = max_output
        self.operations = 0
        self.output = 0
        self.deadline = time.monotonic() + max_seconds

    def _exceeded(self) -> RenderBudgetExceeded:
        return RenderBudgetExceeded(
            f"template exceeded its render budget: {self.max_operations:,} operations / "
            f"{self.max_seconds:g} s / {self.max_output:,} characters of output"
        )

    def spend(self) -> None:
        self.operations += 1
        if self.operations > self.max_operations or time.monotonic() > self.deadline:
            raise self._exceeded()

    def write(self, characters: int) -> None:
        self.output += characters
        if self.output > self.max_output:
            raise self._exceeded()


class _BudgetedContext(Context):
    """A render's context, carrying that render's budget (a context is made once per render)."""

    def __init__(self, environment: BudgetedSandbox, *args: Any, **kwargs: Any) -> None:
        super().__init__(environment, *args, **kwargs)
        self.render_budget = RenderBudget(
            environment.max_operations, environment.max_seconds, environment.max_output
        )


def _budget_of(context: Any) -> RenderBudget:
    budget = getattr(context, "render_budget", None)
    if budget is None:  # a context made some other way: never unbounded
        raise RenderBudgetExceeded("template rendered without a render budget")
    return budget


@pass_context
def _budgeted_iteration(context: Any, iterable: Iterable[Any]) -> Iterator[Any]:
    budget = _budget_of(context)
    for item in iterable:
        budget.spend()
        yield item


@pass_context
def _count_output(context: Any, value: Any) -> Any:
    if isinstance(value, str):
        _budget_of(context).write(len(value))
    return value


class _BudgetedCodeGenerator(CodeGenerator):
    """Wraps every loop's iterable in the iteration filter before the template is compiled."""

    def visit_Template(self, node: nodes.Template, frame: Any = None) -> None:
        for loop in node.find_all(nodes.For):
            if not (isinstance(loop.iter, nodes.Filter) and loop.iter.name == _ITERATION_FILTER):
                loop.iter = nodes.Filter(
                    loop.iter, _ITERATION_FILTER, [], [], None, None, lineno=loop.iter.lineno
                )
        super().visit_Template(node, frame)


class BudgetedSandbox(SandboxedEnvironment):
    code_generator_class = _BudgetedCodeGenerator
    context_class = _BudgetedContext

    def __init__(
        self,
        *,
        max_operations: int = MAX_OPERATIONS,
        max_seconds: float = MAX_SECONDS,
        max_output: int = MAX_OUTPUT,
        **options: Any,
    ) -> None:
        self.max_operations = max_operations
        self.max_seconds = max_seconds
        self.max_output = max_output
        super().__init__(finalize=_count_output, **options)
        self.filters[_ITERATION_FILTER] = _budgeted_iteration

    def call(__self, __context: Context, __obj: Any, *args: Any, **kwargs: Any) -> Any:
        _budget_of(__context).spend()
        return super().call(__context, __obj, *args, **kwargs)

    def restrict(self, *, filters: Iterable[str], globals: Iterable[str]) -> None:
        """Keeps only the named filters and globals (the budget's own filter stays)."""
        kept_filters = {name: self.filters[name] for name in filters}
        kept_filters[_ITERATION_FILTER] = _budgeted_iteration
        self.filters = kept_filters
        self.globals = {name: self.globals[name] for name in globals}


def budgeted_sandbox(
    *,
    filters: Iterable[str],
    globals: Iterable[str] = ("range", "dict", "namespace"),
    max_operations: int = MAX_OPERATIONS,
    max_seconds: float = MAX_SECONDS,
    max_output: int = MAX_OUTPUT,
    environment_class: type[BudgetedSandbox] = BudgetedSandbox,
    **options: Any,
) -> BudgetedSandbox:
    """A sandboxed environment with a render budget and only the named filters and globals.

    ``environment_class`` lets an app add its own sandbox rules (a subclass of
    :class:`BudgetedSandbox`); ``options`` go to Jinja's ``Environment`` (undefined, autoescape ...).
    """
    environment = environment_class(
        max_operations=max_operations, max_seconds=max_seconds, max_output=max_output, **options
    )
    environment.restrict(filters=filters, globals=globals)
    return environment


# --- finding what the budget would stop, without rendering --------------------------------------


def _iterations_bound(loop: nodes.For) -> int | None:
    """How many times a loop can run at most, when its iterable says so; None when unknown."""
    iterable = loop.iter
    if isinstance(iterable, nodes.Filter) and iterable.name == _ITERATION_FILTER:
        iterable = iterable.node
    if isinstance(iterable, nodes.Call | nodes.Const | nodes.List | nodes.Tuple | nodes.Dict):
        if isinstance(iterable, nodes.Const) and isinstance(iterable.value, str):
            return len(iterable.value)
        if isinstance(iterable, nodes.List | nodes.Tuple | nodes.Dict):
            return len(iterable.items)
        if (
            isinstance(iterable, nodes.Call)
            and isinstance(iterable.node, nodes.Name)
            and iterable.node.name == "range"
        ):
            arguments = iterable.args
            if all(isinstance(argument, nodes.Const) for argument in arguments) and arguments:
                try:
                    return len(range(*(argument.value for argument in arguments)))
                except (TypeError, ValueError):
                    return None
            return MAX_RANGE  # the sandbox's range never yields more
    return None


def budget_problems(tree: nodes.Template, *, max_operations: int = MAX_OPERATIONS) -> list[str]:
    """Loops that would certainly outrun the budget, found without rendering.

    A loop whose size the template does not fix (over a variable, a filter's result, ``range``
    of a variable) may run up to ``MAX_RANGE`` (100,000) times; one such loop is allowed (the
    budget stops it if the data makes it run away), two nested are refused, as are nested loops
    whose fixed sizes multiply past the budget.
    """
    problems: list[str] = []

    def visit(node: nodes.Node, unbounded: int, fixed: int) -> None:
        for child in node.iter_child_nodes():
            if not isinstance(child, nodes.For):
                visit(child, unbounded, fixed)
                continue
            bound = _iterations_bound(child)
            inner_unbounded = unbounded + (bound is None or bound >= MAX_RANGE)
            inner_fixed = fixed * (bound if bound is not None and bound < MAX_RANGE else 1)
            if inner_unbounded >= 2 or inner_fixed > max_operations:
                worst = MAX_RANGE**inner_unbounded * inner_fixed
                problems.append(
                    f"line {child.lineno}: nested loops can run {worst:,} times, above the "
                    f"render budget of {max_operations:,} operations"
                )
                continue
            visit(child, inner_unbounded, inner_fixed)

    visit(tree, 0, 1)
    return problems
