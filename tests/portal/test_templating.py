"""portal.templating: every render of user-authored Jinja has a budget it cannot outrun."""

from __future__ import annotations

import pytest
from jinja2 import StrictUndefined

from portal.templating import (
    MAX_OPERATIONS,
    RenderBudgetExceeded,
    budget_problems,
    budgeted_sandbox,
)

NESTED_RANGES = "{% for i in range(n|int) %}{% for j in range(n|int) %}{% endfor %}{% endfor %}"


def sandbox(**budget):
    return budgeted_sandbox(
        filters=["int", "upper", "join", "length"], undefined=StrictUndefined, **budget
    )


def test_nested_loops_over_a_variable_range_stop_at_the_operation_budget():
    template = sandbox().from_string(NESTED_RANGES)

    with pytest.raises(RenderBudgetExceeded) as raised:
        template.render(n=14_000)

    assert str(raised.value).startswith(
        f"template exceeded its render budget: {MAX_OPERATIONS:,} operations / 1 s"
    )


def test_loops_that_write_nothing_are_counted_too():
    template = sandbox(max_operations=50).from_string("{% for c in text %}{% endfor %}")

    with pytest.raises(RenderBudgetExceeded):
        template.render(text="x" * 51)
    assert template.render(text="x" * 49) == ""


def test_calls_are_counted():
    template = sandbox(max_operations=10).from_string(
        "{% macro twice(x) %}{{ x }}{{ x }}{% endmacro %}"
        "{% for i in range(3) %}{{ twice(i) }}{% endfor %}"
    )

    # range() and three macro calls and three iterations: 7 operations
    assert template.render() == "001122"
    with pytest.raises(RenderBudgetExceeded):
        sandbox(max_operations=6).from_string(
            "{% macro twice(x) %}{{ x }}{% endmacro %}{% for i in range(3) %}{{ twice(i) }}{% endfor %}"
        ).render()


def test_runaway_recursion_through_a_loop_is_stopped():
    template = sandbox(max_operations=100).from_string(
        "{% for item in items recursive %}{{ loop(items) }}{% endfor %}"
    )

    with pytest.raises(RenderBudgetExceeded):
        template.render(items=[1, 2])


def test_output_is_bounded():
    template = sandbox(max_output=1_000).from_string("{% for i in range(20) %}{{ x }}{% endfor %}")

    with pytest.raises(RenderBudgetExceeded, match="1,000 characters of output"):
        template.render(x="y" * 100)


def test_the_wall_clock_is_checked_at_every_operation():
    template = sandbox(max_seconds=0).from_string("{% for i in range(3) %}{{ i }}{% endfor %}")

    with pytest.raises(RenderBudgetExceeded, match="/ 0 s /"):
        template.render()


def test_each_render_has_a_budget_of_its_own():
    template = sandbox(max_operations=100).from_string("{% for i in range(60) %}{% endfor %}ok")

    assert [template.render() for _ in range(5)] == ["ok"] * 5


def test_an_ordinary_template_renders_as_jinja_would():
    template = sandbox().from_string(
        "{{ name | upper }}: {% for tag in tags %}{{ tag }}{% if not loop.last %}, {% endif %}"
        "{% endfor %} ({{ tags | length }})"
    )

    assert template.render(name="db", tags=["a", "b", "c"]) == "DB: a, b, c (3)"


def test_only_the_named_filters_and_globals_are_available():
    environment = budgeted_sandbox(filters=["upper"], globals=["range"])

    assert set(environment.filters) - {"_budgeted_iteration"} == {"upper"}
    assert set(environment.globals) == {"range"}


@pytest.mark.parametrize(
    "text",
    [
        NESTED_RANGES,
        "{% for a in x %}{% for b in y %}{{ a }}{{ b }}{% endfor %}{% endfor %}",
        "{% for a in range(1000) %}{% for b in range(1000) %}{% endfor %}{% endfor %}",
        "{% if x %}{% for a in x %}{% set y = 1 %}{% for b in a %}{% endfor %}{% endfor %}{% endif %}",
    ],
)
def test_nested_loops_that_must_outrun_the_budget_are_found_without_rendering(text):
    [problem] = budget_problems(sandbox().parse(text))

    assert "nested loops can run" in problem
    assert f"render budget of {MAX_OPERATIONS:,} operations" in problem


@pytest.mark.parametrize(
    "text",
    [
        "{% for a in x %}{{ a }}{% endfor %}",
        "{% for a in x %}{% for b in range(3) %}{{ b }}{% endfor %}{% endfor %}",
        "{% for a in range(100) %}{% for b in range(100) %}{% endfor %}{% endfor %}",
        "{% for a in x %}{% endfor %}{% for b in y %}{% endfor %}",
    ],
)
def test_loops_the_budget_can_carry_are_not_refused(text):
    assert budget_problems(sandbox().parse(text)) == []
