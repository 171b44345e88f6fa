"""The seeded rules themselves: valid in the admin, safe to run on any line, fast to prefilter,
ordered as the precedence needs, readable by grep (the benchmark's baseline)."""

from __future__ import annotations

import shutil
import subprocess
import time

import pytest
from django.apps import apps

from escalation.models import PROTECTED_SEVERITY, SEVERITY, ClassificationRule, FailureType
from escalation.services.classify import pattern_problems
from tests.escalation.test_classify import RULES, migration_rules, real_world

LOG_RULES = [rule for rule in RULES if rule.pattern is not None]


@pytest.mark.parametrize("row", migration_rules(), ids=lambda row: row.name)
def test_each_seeded_rule_is_valid_as_the_admin_checks_it(row):
    row.clean_fields()
    row.clean()


@pytest.mark.parametrize("rule", LOG_RULES, ids=lambda rule: rule.name)
def test_no_seeded_pattern_has_a_problem(rule):
    # No nested quantifier, and a literal word of 4 bytes ("● " of Jest counts: it is rare).
    assert pattern_problems(rule.pattern.pattern) == []


@pytest.mark.parametrize(
    ("pattern", "problem"),
    [
        (r"(a+)+b", "repeated group holds another repetition"),
        (r"(\w+\s?)*$", "repeated group holds another repetition"),
        (r"(?:leaks|y+)*found", "repeated group holds another repetition"),
        (r"[0-9]+ [0-9]+", "no literal word"),
        (r"ab|cd", "no literal word"),
        (r"leaks found: (", "not a valid regular expression"),
    ],
)
def test_pattern_problems_name_the_classic_mistakes(pattern, problem):
    assert any(problem in found for found in pattern_problems(pattern))


def test_a_good_pattern_has_no_problem():
    assert pattern_problems(r"(ab)?c+d*(ERESOLVE|ETARGET){2}") == []


PATHOLOGICAL = [
    "a" * 2000,
    " " * 2000,
    "=" * 1000 + " 1 failed" * 110,
    "1 " * 1000,
    ("error: " * 300)[:2000],
    "Total: 1 (" + "CRITICAL: 0, " * 150,
    "OperationalError" + " " * 1984,
    "::" * 1000,
    "x/" * 1000,
    "> Task :" + "test" * 480,
    "Severity: " + "1 critical | " * 150,
    "diff --git a/" + "gen/" * 490,
]


def test_every_pattern_is_fast_on_pathological_lines():
    started = time.process_time()
    for rule in LOG_RULES:
        for line in PATHOLOGICAL:
            rule.pattern.search(line)
    # Measured at a few milliseconds in all; a backtracking blow-up takes seconds.
    assert time.process_time() - started < 1.0


def test_every_failure_type_has_log_rules():
    covered = {rule.failure_type for rule in LOG_RULES}
    assert covered == set(FailureType.values) - {FailureType.UNKNOWN}


def test_specific_patterns_come_before_generic_ones_and_bare_exit_codes_last():
    unprotected = [rule for rule in RULES if SEVERITY[rule.failure_type] < PROTECTED_SEVERITY]
    exit_codes_only = [rule for rule in unprotected if rule.pattern is None and rule.glob == ""]
    assert exit_codes_only
    assert min(rule.position for rule in exit_codes_only) > max(
        rule.position for rule in unprotected if rule.pattern is not None
    )
    position = {rule.name: rule.position for rule in RULES}
    tests = [
        rule.position
        for rule in RULES
        if rule.failure_type == "test_failure" and not rule.name.startswith("seed: ")
    ]
    for generic in ("Maven/Gradle: build failed", "make: target failed", "docker: daemon error",
                    "network: connection reset", "network: timed out"):  # fmt: skip
        assert position[generic] > max(tests), generic
    for explains_tests in ("runner: out of memory", "database: Python driver could not connect",
                           "docker: pull rate limit", "TypeScript: compiler error"):  # fmt: skip
        assert position[explains_tests] < min(tests), explains_tests


@pytest.mark.skipif(not shutil.which("grep"), reason="GNU grep is the benchmark's baseline")
def test_grep_reads_every_pattern_as_the_benchmark_hands_them(tmp_path):
    patterns = tmp_path / "patterns.txt"
    patterns.write_text("".join(rule.pattern.pattern + "\n" for rule in LOG_RULES))
    done = subprocess.run(
        ["grep", "-E", "-i", "-c", "-f", str(patterns), "-"],
        input="Killed\nnothing\n[ERROR] Tests run: 3, Failures: 1, Errors: 0\n",
        capture_output=True,
        text=True,
        check=False,
    )
    assert (done.stdout, done.stderr) == ("2\n", "")


def test_the_migration_adds_its_rules_once_and_leaves_an_edited_rule_alone(db):
    real_world.add_rules(apps, None)  # (again, if a transactional test flushed the seeded rows)
    ClassificationRule.objects.filter(name="gitleaks: leaks found").update(position=3)
    ClassificationRule.objects.create(name="operator: flaky proxy", failure_type="unknown",
                                      log_pattern=r"proxy\.acme\.internal")  # fmt: skip
    real_world.add_rules(apps, None)
    names = [row[0] for row in real_world.RULES]
    assert ClassificationRule.objects.filter(name__in=names).count() == len(names)
    assert ClassificationRule.objects.get(name="gitleaks: leaks found").position == 3
    real_world.remove_rules(apps, None)
    assert not ClassificationRule.objects.filter(name__in=names).exists()
    assert ClassificationRule.objects.filter(name="operator: flaky proxy").exists()
