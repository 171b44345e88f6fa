"""Ticket templates (US-3): the seed's file templates, admin rows, the sandbox, the admin form."""

from __future__ import annotations

import json

import pytest
from django.urls import reverse
from prometheus_client import REGISTRY

from itsm.errors import TemplateError
from itsm.models import TicketTemplate
from itsm.templates import (
    JINJA_ENV,
    TemplateInfo,
    check_template,
    get_template,
    list_templates,
    render,
    required_variables,
)

RCA_VARIABLES = {
    "job_name": "build-42",
    "job_id": 123,
    "severity": "high",
    "details": "...",
    "priority": "3",
}


def errors_for(name: str) -> float:
    value = REGISTRY.get_sample_value(
        "itsm_template_rendering_errors_total", {"template_name": name}
    )
    return value or 0.0


def jinja(fields: dict[str, str], name: str = "adhoc") -> TemplateInfo:
    """A Jinja template as a database row would give it, without saving one."""
    return TemplateInfo(name, "jira", "database", "jinja", "", fields, [])


def formatted(fields: dict[str, str], name: str = "adhoc") -> TemplateInfo:
    return TemplateInfo(name, "servicenow", "file", "format", "", fields, [])


@pytest.fixture
def jira_project_key(settings):
    settings.ITSM_ENDPOINTS = {**settings.ITSM_ENDPOINTS, "JIRA_PROJECT_KEY": "OPS"}


@pytest.fixture
def no_jira_project_key(settings):
    settings.ITSM_ENDPOINTS = {**settings.ITSM_ENDPOINTS, "JIRA_PROJECT_KEY": ""}


# --- the seed's file templates --------------------------------------------------------------


def test_seed_rca_incident_renders_exactly_the_seed_text(db):
    rendered = render(get_template("servicenow", "rca_incident"), RCA_VARIABLES)
    assert rendered == {
        "short_description": "RCA Required: build-42",
        "description": "Job ID: 123\nSeverity: high\n\n...",
        "priority": "3",
    }


def test_seed_rca_incident_is_listed_with_its_sorted_variables(db):
    (info,) = list_templates("servicenow")
    assert (info.name, info.source, info.engine) == ("rca_incident", "file", "format")
    assert info.variables == ["details", "job_id", "job_name", "priority", "severity"]
    assert info.fields["short_description"] == "RCA Required: {job_name}"


def test_templates_are_listed_sorted_by_platform_and_name(db):
    TicketTemplate.objects.create(platform="jira", name="a_first", fields={"summary": "x"})
    assert [(i.platform, i.name) for i in list_templates()] == [
        ("jira", "a_first"),
        ("jira", "rca_issue"),
        ("servicenow", "rca_incident"),
    ]


def test_jira_rca_issue_uses_the_project_variable_when_given(db, jira_project_key):
    rendered = render(get_template("jira", "rca_issue"), {**RCA_VARIABLES, "project": "QA"})
    assert rendered["project"] == "QA"
    assert rendered["issue_type"] == "Task"
    assert rendered["summary"] == "RCA Required: build-42"


def test_jira_rca_issue_falls_back_to_jira_project_key(db, jira_project_key):
    info = get_template("jira", "rca_issue")
    assert "project" not in info.variables
    assert info.defaults == {"project": "OPS"}
    assert render(info, RCA_VARIABLES)["project"] == "OPS"


def test_jira_rca_issue_requires_project_without_jira_project_key(db, no_jira_project_key):
    info = get_template("jira", "rca_issue")
    assert "project" in required_variables(info)
    with pytest.raises(TemplateError) as caught:
        render(info, RCA_VARIABLES)
    assert caught.value.missing == ["project"]


def test_every_missing_variable_is_listed_in_one_error(db):
    with pytest.raises(TemplateError) as caught:
        render(get_template("servicenow", "rca_incident"), {"job_name": "build-42"})
    assert caught.value.missing == ["details", "job_id", "priority", "severity"]
    assert caught.value.message == "missing variables: details, job_id, priority, severity"
    assert caught.value.template_name == "rca_incident"


def test_a_none_value_counts_as_missing(db):
    with pytest.raises(TemplateError) as caught:
        render(get_template("servicenow", "rca_incident"), {**RCA_VARIABLES, "severity": None})
    assert caught.value.missing == ["severity"]


def test_extra_variables_are_ignored(db):
    info = get_template("servicenow", "rca_incident")
    assert render(info, {**RCA_VARIABLES, "unused": "x"}) == render(info, RCA_VARIABLES)


def test_an_unknown_template_is_a_template_error(db):
    with pytest.raises(TemplateError, match="unknown template servicenow/nope"):
        get_template("servicenow", "nope")


def test_a_failed_render_increments_the_template_counter(db):
    before = errors_for("rca_incident")
    with pytest.raises(TemplateError):
        render(get_template("servicenow", "rca_incident"), {})
    assert errors_for("rca_incident") == before + 1


# --- database rows --------------------------------------------------------------------------


def test_a_database_row_overrides_the_file_template_of_the_same_name(db):
    TicketTemplate.objects.create(
        platform="servicenow",
        name="rca_incident",
        description="Edited in the admin",
        fields={"short_description": "RCA: {job_name}"},
    )
    info = get_template("servicenow", "rca_incident")
    assert (info.source, info.description, info.variables) == (
        "database",
        "Edited in the admin",
        ["job_name"],
    )
    assert render(info, {"job_name": "build-42"}) == {"short_description": "RCA: build-42"}
    assert [i.source for i in list_templates("servicenow")] == ["database"]


def test_an_inactive_database_row_is_ignored(db):
    TicketTemplate.objects.create(
        platform="servicenow",
        name="rca_incident",
        fields={"short_description": "RCA: {job_name}"},
        is_active=False,
    )
    assert get_template("servicenow", "rca_incident").source == "file"
    assert [i.source for i in list_templates("servicenow")] == ["file"]


def test_an_invalid_stored_row_is_left_out_of_the_list_and_explained_by_get(db):
    TicketTemplate.objects.create(platform="jira", name="broken", fields={"summary": "{a.b}"})
    assert "broken" not in [i.name for i in list_templates("jira")]
    with pytest.raises(TemplateError, match="attribute or index access"):
        get_template("jira", "broken")


def test_listing_templates_costs_one_query(db, django_assert_num_queries):
    with django_assert_num_queries(1):
        list_templates()


# --- "format" placeholders ------------------------------------------------------------------


def test_double_braces_in_a_format_template_are_literal_braces():
    info = formatted({"description": "{{not a variable}} {job_name}"})
    assert info and render(info, {"job_name": "b"}) == {"description": "{not a variable} b"}


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("{a.b}", "attribute or index access"),
        ("{a[0]}", "attribute or index access"),
        ("{0}", "positional"),
        ("{}", "positional"),
        ("{a!r}", "conversion or format spec"),
        ("{a:>10}", "conversion or format spec"),
        ("{a", "expected '}'"),
    ],
)
def test_format_templates_allow_only_plain_names(text, problem):
    (message,) = check_template("servicenow", "format", {"short_description": text})
    assert message.startswith("short_description: ")
    assert problem in message


def test_a_format_template_with_attribute_access_does_not_render():
    with pytest.raises(TemplateError, match="attribute or index access"):
        render(formatted({"description": "{job.__class__}"}), {"job": "x"})


@pytest.mark.parametrize("value", ["{job_name}", "{{ 7*7 }}", "{0.__class__}", "{% include 'x' %}"])
def test_format_values_are_inserted_as_text_not_rendered_again(value):
    info = formatted({"description": "Details: {details}", "summary": "{job_name}"})
    rendered = render(info, {"details": value, "job_name": "build-42"})
    assert rendered["description"] == f"Details: {value}"


# --- "jinja" --------------------------------------------------------------------------------


def test_a_jinja_template_renders_loops_and_filters():
    info = jinja(
        {
            "summary": "{{ job_name | upper }} failed {{ steps | length }} steps",
            "description": "{% for step in steps %}- {{ step | title }}\n{% endfor %}",
        }
    )
    rendered = render(info, {"job_name": "build-42", "steps": ["lint", "unit tests"]})
    assert rendered == {
        "summary": "BUILD-42 failed 2 steps",
        "description": "- Lint\n- Unit Tests\n",
    }


def test_a_jinja_variable_with_a_default_may_be_left_out():
    info = jinja({"summary": "{{ job_name }} ({{ severity | default('unknown') }})"})
    assert render(info, {"job_name": "build-42"}) == {"summary": "build-42 (unknown)"}


def test_a_missing_jinja_variable_is_listed():
    with pytest.raises(TemplateError) as caught:
        render(jinja({"summary": "{{ job_name }} {{ severity }}"}), {"severity": "high"})
    assert caught.value.missing == ["job_name"]


def test_a_jinja_error_other_than_a_missing_variable_is_reported_as_itself():
    info = jinja({"summary": "{{ note | default('-') }} {{ 1 / 0 }}"})
    with pytest.raises(TemplateError, match="ZeroDivisionError") as caught:
        render(info, {})
    assert caught.value.missing == []


def test_jinja_values_are_inserted_as_text_not_rendered_again():
    rendered = render(jinja({"summary": "{{ details }}"}), {"details": "{{ 7*7 }} {x}"})
    assert rendered == {"summary": "{{ 7*7 }} {x}"}


@pytest.mark.parametrize(
    "text",
    [
        "{{ ''.__class__.__mro__ }}",
        "{{ job.__class__.__subclasses__() }}",
        "{{ cycler.__init__.__globals__ }}",
        "{{ job['__class__'] }}",
    ],
)
def test_jinja_attribute_escapes_are_refused_at_save_time(text):
    (message,) = check_template("jira", "jinja", {"summary": text})
    assert "access to private attributes is not allowed" in message


@pytest.mark.parametrize(
    "text",
    [
        "{% set n = '__cla' ~ 'ss__' %}{{ job[n] }}",
        "{% set n = '__glo' ~ 'bals__' %}{{ range[n] }}",
    ],
)
def test_the_sandbox_blocks_attribute_escapes_built_at_render_time(text):
    assert check_template("jira", "jinja", {"summary": text}) == []
    with pytest.raises(TemplateError, match="SecurityError"):
        render(jinja({"summary": text}), {"job": "build-42"})


def test_the_shared_environment_itself_refuses_dunder_attributes():
    from jinja2.sandbox import SecurityError

    with pytest.raises(SecurityError):
        JINJA_ENV.from_string("{{ ''.__class__.__mro__ }}").render()


@pytest.mark.parametrize(
    ("text", "word"),
    [
        ("{% include 'secrets.txt' %}", "include"),
        ("{% import 'macros.j2' as m %}", "import"),
        ("{% from 'macros.j2' import m %}", "import"),
        ("{% extends 'base.j2' %}", "extends"),
    ],
)
def test_jinja_templates_cannot_include_import_or_extend(text, word):
    (message,) = check_template("jira", "jinja", {"description": text})
    assert f"{{% {word} %}} is not allowed" in message
    with pytest.raises(TemplateError):
        render(jinja({"description": text}), {})


def test_jinja_filters_that_reach_into_objects_are_not_available():
    (message,) = check_template("jira", "jinja", {"summary": "{{ job | attr('__class__') }}"})
    assert "No filter named 'attr'" in message


def test_a_huge_repetition_is_stopped_by_the_sandbox():
    with pytest.raises(TemplateError, match="repetition longer than"):
        render(jinja({"summary": "{{ 'x' * 100000000 }}"}), {})


RUNAWAY_LOOPS = "{% for i in range(n|int) %}{% for j in range(n|int) %}{% endfor %}{% endfor %}"


def test_loops_that_must_outrun_the_render_budget_are_refused_before_rendering():
    problems = check_template("jira", "jinja", {"summary": "x", "description": RUNAWAY_LOOPS})

    assert problems == [
        "description: line 1: nested loops can run 10,000,000,000 times, above the render budget "
        "of 100,000 operations"
    ]


def test_a_render_that_outruns_its_budget_is_a_template_error():
    info = jinja(
        {"summary": "{% for c in details %}{% for i in range(10) %}{% endfor %}{% endfor %}"}
    )

    with pytest.raises(TemplateError) as raised:
        render(info, {"details": "x" * 32_000})

    assert "template exceeded its render budget: 100,000 operations" in raised.value.message
    assert raised.value.platform == "jira"


def test_a_jinja_runtime_error_is_a_template_error_and_is_counted():
    before = errors_for("divides")
    with pytest.raises(TemplateError, match="ZeroDivisionError"):
        render(jinja({"summary": "{{ 1 / 0 }}"}, name="divides"), {})
    assert errors_for("divides") == before + 1


def test_a_jinja_syntax_error_names_the_field_and_line():
    (message,) = check_template("jira", "jinja", {"description": "ok\n{% for x in %}"})
    assert message.startswith("description: syntax error on line 2")


# --- check_template -------------------------------------------------------------------------


def test_fields_must_be_an_object_of_texts():
    assert check_template("jira", "format", ["summary"]) == [
        'fields must be a JSON object of field names to template text, like {"summary": "..."}'
    ]
    assert check_template("jira", "format", {"summary": 3}) == [
        "summary: the template must be text, not int"
    ]


def test_an_unknown_engine_or_platform_is_refused():
    assert check_template("slack", "mustache", {"text": "x"}) == [
        "platform must be one of jira, servicenow",
        "engine must be one of format, jinja",
    ]


def test_a_good_template_has_no_problems():
    assert check_template("jira", "jinja", {"summary": "{{ a }}", "labels": "x"}) == []


# --- the admin ------------------------------------------------------------------------------


@pytest.fixture
def admin_client_logged_in(client, django_user_model):
    user = django_user_model.objects.create_superuser("root", "root@example.com", "pw")
    client.force_login(user)
    return client


def post_template(client, engine: str, fields: dict[str, str]):
    return client.post(
        reverse("admin:itsm_tickettemplate_add"),
        {
            "platform": "jira",
            "name": "from_admin",
            "description": "",
            "engine": engine,
            "fields": json.dumps(fields),
            "is_active": "on",
        },
    )


def test_the_admin_refuses_a_broken_jinja_template(admin_client_logged_in):
    response = post_template(admin_client_logged_in, "jinja", {"summary": "{% for x in %}"})
    assert response.status_code == 200
    assert "summary: syntax error on line 1" in response.content.decode()
    assert not TicketTemplate.objects.exists()


def test_the_admin_refuses_an_unsafe_jinja_template(admin_client_logged_in):
    response = post_template(admin_client_logged_in, "jinja", {"summary": "{{ x.__class__ }}"})
    assert "access to private attributes is not allowed" in response.content.decode()
    assert not TicketTemplate.objects.exists()


def test_the_admin_refuses_a_template_whose_loops_outrun_the_render_budget(
    admin_client_logged_in,
):
    response = post_template(
        admin_client_logged_in, "jinja", {"summary": "x", "description": RUNAWAY_LOOPS}
    )

    assert response.status_code == 200
    assert "above the render budget" in response.content.decode()
    assert not TicketTemplate.objects.exists()


def test_the_admin_saves_a_good_jinja_template(admin_client_logged_in):
    response = post_template(admin_client_logged_in, "jinja", {"summary": "{{ job_name | upper }}"})
    assert response.status_code == 302
    row = TicketTemplate.objects.get(name="from_admin")
    assert (row.engine, row.fields) == ("jinja", {"summary": "{{ job_name | upper }}"})


def test_the_admin_change_page_shows_the_variables(admin_client_logged_in):
    row = TicketTemplate.objects.create(
        platform="servicenow", name="x", fields={"short_description": "{b} {a}"}
    )
    response = admin_client_logged_in.get(
        reverse("admin:itsm_tickettemplate_change", args=[row.pk])
    )
    assert "a, b" in response.content.decode()


def test_the_admin_list_shows_templates(admin_client_logged_in):
    TicketTemplate.objects.create(platform="jira", name="listed", fields={"summary": "x"})
    response = admin_client_logged_in.get(reverse("admin:itsm_tickettemplate_changelist"))
    assert response.status_code == 200
    assert "listed" in response.content.decode()


def test_a_template_without_a_required_field_is_refused_when_saved():
    problems = check_template("servicenow", "format", {"description": "Job {job_id}"})
    assert any(problem.startswith("short_description:") for problem in problems)


def test_a_template_with_a_field_the_platform_does_not_know_is_refused_when_saved():
    problems = check_template(
        "servicenow", "format", {"short_description": "RCA {job_name}", "shortdesc": "x"}
    )
    assert any(problem.startswith("shortdesc:") for problem in problems)


def test_a_jira_template_may_leave_project_and_issue_type_to_the_defaults():
    assert check_template("jira", "format", {"summary": "RCA {job_name}"}) == []


@pytest.mark.django_db
def test_a_preview_of_a_broken_template_is_not_counted_as_a_rendering_failure():
    from itsm.services.tickets import preview

    TicketTemplate.objects.create(
        platform="servicenow", name="half_done", engine="jinja",
        fields={"short_description": "{{ job_name }}", "description": "{{ details | int // 0 }}"},
    )  # fmt: skip
    labels = {"template_name": "half_done"}
    before = REGISTRY.get_sample_value("itsm_template_rendering_errors_total", labels) or 0

    result = preview("servicenow", "half_done", {"job_name": "x", "details": "y"})

    assert result.errors
    assert (
        REGISTRY.get_sample_value("itsm_template_rendering_errors_total", labels) or 0
    ) == before
