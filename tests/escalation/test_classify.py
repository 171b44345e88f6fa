"""Classification of real CI logs (tests/escalation/logs) and the rules of precedence, redaction
and signatures that decide what an on-call engineer sees."""

from __future__ import annotations

import fnmatch
import importlib
import re
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from escalation.models import ClassificationRule
from escalation.services import classify as classify_module
from escalation.services.classify import (
    MAX_LINE_CHARS,
    CompiledRule,
    classify,
    clean_line,
    fingerprint_of,
    literals_of,
    load_rules,
    matching_rules,
)

LOGS = Path(__file__).parent / "logs"
TOKEN = "ghp_R8nQ2vX7kLp4Tz9wYb3Mc6Hd1Fj5Gs0Ae2Ku"  # the shape of a GitHub token, not a real one

seed_matrix = importlib.import_module("escalation.migrations.0002_seed_matrix")
real_world = importlib.import_module("escalation.migrations.0003_real_world_rules")


def migration_rules() -> list[ClassificationRule]:
    """The rules the migrations seed, as unsaved rows (the corpus needs no database)."""
    rows = [
        ClassificationRule(
            name=name, failure_type=kind, exit_code=code, log_pattern=pattern, position=position
        )
        for name, kind, code, pattern, position in seed_matrix.RULES
    ]
    rows += [
        ClassificationRule(
            name=name,
            failure_type=kind,
            exit_code=code,
            log_pattern=pattern,
            changed_file_glob=glob,
            position=position,
        )
        for name, kind, code, pattern, glob, position, _ in real_world.RULES
    ]
    for number, row in enumerate(rows, start=1):
        row.pk = number  # ids in migration order, as a fresh database gives them
    return sorted(rows, key=lambda row: (row.position, row.pk))


RULES = [CompiledRule.of(row) for row in migration_rules()]


@pytest.fixture
def seeded_rules(db):
    """The seeded rules in the database, put back if a transactional test flushed them."""
    for row in migration_rules():
        ClassificationRule.objects.get_or_create(
            name=row.name,
            defaults={
                "failure_type": row.failure_type,
                "exit_code": row.exit_code,
                "log_pattern": row.log_pattern,
                "changed_file_glob": row.changed_file_glob,
                "position": row.position,
            },
        )
    return load_rules()


def rule(name, failure_type, position, pattern=None, exit_code=None, glob=""):
    return CompiledRule(
        id=None,
        name=name,
        failure_type=failure_type,
        position=position,
        exit_code=exit_code,
        pattern=re.compile(pattern, re.IGNORECASE) if pattern else None,
        glob=glob,
    )


def raw_lines(path: Path) -> list[str]:
    # Lines as the classifier counts them: by newline only (GitLab's section markers carry \r).
    return path.read_bytes().decode("utf-8").split("\n")


# --- the corpus --------------------------------------------------------------------------------


@dataclass
class Case:
    log: str
    failure_type: str
    rule: str
    evidence: dict[int, str]  # line number -> text that line holds
    exit_code: int = 1
    changed_files: list[str] = field(default_factory=list)
    why: str = ""


CORPUS = [
    # security_secrets
    Case("gha_gitleaks_then_pytest.log", "security_secrets", "gitleaks: leaks found",
         {73: "Finding:     GITHUB_TOKEN", 87: "WRN leaks found: 1"},
         why="a failing test after the finding never downgrades it"),
    Case("gitlab_trufflehog_verified.log", "security_secrets", "trufflehog: result found",
         {26: "Found verified result"}, exit_code=183),
    Case("gha_push_protection.log", "security_secrets", "GitHub push protection",
         {65: "GITHUB PUSH PROTECTION", 69: "Push cannot contain secrets"}),
    # security_critical
    Case("gha_trivy_critical.log", "security_critical", "Trivy: critical",
         {75: "Total: 3 (HIGH: 1, CRITICAL: 2)"}),
    Case("jenkins_npm_audit_critical.log", "security_critical", "npm audit: critical advisory",
         {33: "Severity: critical"}, why="the high advisory before it does not win"),
    # security_high
    Case("gha_snyk_high.log", "security_high", "Snyk: high",
         {79: "✗ High severity vulnerability found in follow-redirects"}),
    Case("gitlab_pnpm_audit_high.log", "security_high", "yarn/pnpm audit: high",
         {43: "Severity: 1 low | 2 high"}),
    # security_advisory
    Case("gha_npm_audit_low.log", "security_advisory", "npm audit: low advisory",
         {66: "Severity: low"}),
    Case("gitlab_trivy_low.log", "security_advisory", "Trivy: low",
         {28: "Total: 1 (LOW: 1, MEDIUM: 0, HIGH: 0, CRITICAL: 0)"}),
    # dependency_vulnerability
    Case("gha_pip_audit.log", "dependency_vulnerability", "pip-audit: known vulnerabilities",
         {111: "Found 2 known vulnerabilities in 1 package"}),
    Case("gitlab_cargo_audit.log", "dependency_vulnerability", "cargo audit: vulnerabilities found",
         {38: "error: 1 vulnerability found!"}),
    # generator_drift
    Case("gha_exit2_with_failing_test.log", "generator_drift", "seed: exit 2 generator drift", {},
         exit_code=2, why="the seed's exit code 2 is zero tolerance: a failing test is no excuse"),
    Case("gha_openapi_drift.log", "generator_drift", "drift: generated files out of date",
         {86: "Generated files are out of date"},
         why="the step's echoed script says the same words, but it is no evidence"),
    Case("gitlab_buf_drift.log", "generator_drift", "drift: diff of a generated file",
         {23: "diff --git a/gen/go/acme/billing/v1/invoice.pb.go"}),
    # database_connectivity
    Case("gha_pytest_psycopg2_refused.log", "database_connectivity",
         "database: Python driver could not connect",
         {104: "psycopg2.OperationalError: connection to server", 110: "django.db.utils",
          112: "ERROR tests/integration/test_invoices.py::test_invoice_is_persisted",
          113: "ERROR tests/integration/test_invoices.py::test_invoice_is_listed"},
         why="the unreachable database explains the erroring tests"),
    Case("jenkins_laravel_sqlstate.log", "database_connectivity",
         "database: PDO SQLSTATE connection error", {27: "SQLSTATE[HY000] [2002] Connection refused"}),
    Case("gitlab_jest_econnrefused_5432.log", "database_connectivity",
         "database: connection refused on a database port", {49: "connect ECONNREFUSED 127.0.0.1:5432"}),
    # infrastructure_timeout
    Case("gha_runner_lost_communication.log", "infrastructure_timeout", "runner: lost or shut down",
         {263: "lost communication with the server"}),
    Case("gha_oom_killed.log", "infrastructure_timeout", "runner: out of memory",
         {149: "Killed                  npm run build", 150: "exit code 137"}, exit_code=137),
    Case("gha_max_execution_time.log", "infrastructure_timeout",
         "runner: exceeded the maximum execution time", {213: "exceeded the maximum execution time"}),
    Case("gitlab_docker_toomanyrequests.log", "infrastructure_timeout", "docker: pull rate limit",
         {8: "toomanyrequests: You have reached your pull rate limit",
          10: "ERROR: Job failed: failed to pull image"}),
    Case("gha_npm_econnreset.log", "infrastructure_timeout", "network: connection reset",
         {103: "npm ERR! code ECONNRESET", 105: "errno ECONNRESET", 106: "read ECONNRESET"}),
    Case("jenkins_go_tls_handshake_timeout.log", "infrastructure_timeout",
         "network: TLS handshake timeout", {26: "net/http: TLS handshake timeout"}),
    # test_failure
    Case("gha_jest_failure_after_npm_install.log", "test_failure", "Jest/Vitest: failed test",
         {117: "FAIL  src/lib/money.test.ts", 118: "● formatMoney \u203a rounds half to even"},
         why="npm install's '7 vulnerabilities (... 2 critical)' summary is not an audit"),
    Case("gha_go_test_failure.log", "test_failure", "Go test: failed test",
         {69: "--- FAIL: TestRouteMatchesPrefix (0.00s)", 70: "--- FAIL: TestRouteMatchesPrefix/",
          73: "FAIL\tgithub.com/acme/gateway/internal/router\t0.014s"}),
    Case("jenkins_maven_surefire_failure.log", "test_failure", "JUnit (Maven Surefire): failures",
         {79: "Failures: ", 80: "PostingTest.postsReversal -- Time elapsed", 90: "Tests run: 21, Failures: 1",
          96: "There are test failures."}, why="Maven's BUILD FAILURE is the generic echo of it"),
    # build_failure
    Case("gha_tsc_errors.log", "build_failure", "TypeScript: compiler error",
         {65: "TS2345", 70: "TS2322"}),
    Case("gitlab_rustc_mismatched_types.log", "build_failure", "Rust: compiler error",
         {31: "mismatched types", 38: "could not compile `billing`"}, exit_code=101),
    Case("gha_npm_eresolve.log", "build_failure", "npm: dependency resolution",
         {63: "npm ERR! code ERESOLVE", 64: "npm ERR! ERESOLVE could not resolve"}),
    Case("jenkins_javac_cannot_find_symbol.log", "build_failure", "Java/Kotlin: compiler error",
         {30: "[ERROR] COMPILATION ERROR", 32: "Posting.java:[57,24] cannot find symbol"}),
    # unknown
    Case("gha_jq_unknown.log", "unknown", "", {}, exit_code=5),
    Case("gitlab_eslint_warnings_unknown.log", "unknown", "", {}),
]  # fmt: skip


def test_the_corpus_has_every_log_and_two_of_each_type():
    assert sorted(case.log for case in CORPUS) == sorted(path.name for path in LOGS.glob("*.log"))
    counts: dict[str, int] = {}
    for case in CORPUS:
        counts[case.failure_type] = counts.get(case.failure_type, 0) + 1
    assert set(counts) == {choice for choice, _ in ClassificationRule._meta.get_field(
        "failure_type").choices}  # fmt: skip
    assert min(counts.values()) >= 2, counts


@pytest.mark.parametrize("case", CORPUS, ids=lambda case: case.log)
def test_real_logs_are_classified_with_evidence_on_the_right_lines(case):
    path = LOGS / case.log
    with path.open("rb") as log:
        result = classify(log, case.exit_code, case.changed_files, rules=RULES)

    assert (result.failure_type, result.rule_name) == (case.failure_type, case.rule), case.why
    assert [item.line for item in result.evidence] == sorted(case.evidence)
    lines = raw_lines(path)
    for item in result.evidence:
        # The number points at the line that holds the text, in the log as it came.
        assert case.evidence[item.line] in clean_line(lines[item.line - 1])
        assert case.evidence[item.line] in item.text
    assert result.log_lines == len(lines) - 1  # each log ends with a newline
    assert result.log_bytes == path.stat().st_size
    if case.evidence:
        assert f"{min(case.evidence):>6}  " in result.excerpt


@pytest.mark.parametrize("case", CORPUS, ids=lambda case: case.log)
def test_the_literal_prefilter_finds_every_line_a_rule_matches(case):
    """The prefilter (RE2 over whole blocks) against the plain way: every rule on every line."""
    path = LOGS / case.log
    with path.open("rb") as log:
        found = {
            match.rule_name: [item.line for item in match.evidence]
            for match in matching_rules(log, case.exit_code, case.changed_files, rules=RULES)
        }
    assert found == naive_matches(path, case.exit_code, case.changed_files)


def naive_matches(path: Path, exit_code: int | None, changed_files: list[str]) -> dict:
    lines = [clean_line(line)[:MAX_LINE_CHARS] for line in raw_lines(path)[:-1]]
    echo = set()  # the CI's echo of commands: closed "##[group]Run" blocks, "$ " and "+ " lines
    start = None
    for index, line in enumerate(lines):
        if line.startswith("##[group]Run "):
            if start is not None:  # not closed: only its first line was an echo
                echo.add(start)
            start = index
        elif start is not None and line.startswith("##[endgroup]"):
            echo.update(range(start, index + 1))
            start = None
        elif line.startswith(("$ ", "+ ")):
            echo.add(index)
    if start is not None:
        echo.add(start)
    found = {}
    for each in RULES:
        if each.exit_code is not None and each.exit_code != exit_code:
            continue
        if each.glob and not any(fnmatch.fnmatch(name, each.glob) for name in changed_files):
            continue
        if each.pattern is None:
            found[each.name] = []
            continue
        hits = [
            number
            for number, line in enumerate(lines, start=1)
            if number - 1 not in echo and each.pattern.search(line)
        ]
        if hits:
            found[each.name] = hits[:5]
    return found


def test_results_do_not_depend_on_where_the_blocks_end(monkeypatch):
    expected = {}
    for case in CORPUS:
        with (LOGS / case.log).open("rb") as log:
            expected[case.log] = classify(log, case.exit_code, rules=RULES)
    # Tiny blocks: every evidence line and its context straddle block boundaries.
    monkeypatch.setattr(classify_module, "CHUNK_BYTES", 97)
    for case in CORPUS:
        with (LOGS / case.log).open("rb") as log:
            assert classify(log, case.exit_code, rules=RULES) == expected[case.log], case.log


def test_the_database_holds_the_migrations_rules_and_classify_reads_them(seeded_rules):
    in_database = {
        (row.name, row.failure_type, row.exit_code, row.log_pattern, row.changed_file_glob)
        for row in ClassificationRule.objects.all()
    }
    wanted = {
        (row.name, row.failure_type, row.exit_code, row.log_pattern, row.changed_file_glob)
        for row in migration_rules()
    }
    assert wanted <= in_database
    with (LOGS / "gha_gitleaks_then_pytest.log").open("rb") as log:
        result = classify(log, 1)  # rules=None: from the database
    assert result.failure_type == "security_secrets"
    assert result.rule_id == ClassificationRule.objects.get(name="gitleaks: leaks found").pk


def test_a_disabled_rule_classifies_nothing(seeded_rules):
    ClassificationRule.objects.filter(name="Go test: failed test").update(enabled=False)
    with (LOGS / "gha_go_test_failure.log").open("rb") as log:
        result = classify(log, 1)
    assert result.rule_name != "Go test: failed test"


# --- precedence ----------------------------------------------------------------------------------

SECRET_THEN_TEST = [
    "2024-05-14T09:21:40.1000000Z 9:21AM WRN leaks found: 1\n",
    "2024-05-14T09:21:48.1000000Z FAILED tests/test_a.py::test_b - AssertionError\n",
]


def test_a_security_finding_is_never_downgraded_whatever_the_rule_order():
    rules = [
        rule("tests first", "test_failure", 1, r"^FAILED "),
        rule("secrets last", "security_secrets", 999, r"leaks found: [1-9]"),
    ]
    result = classify(SECRET_THEN_TEST, 1, rules=rules)
    assert (result.failure_type, result.rule_name) == ("security_secrets", "secrets last")
    assert [item.line for item in result.evidence] == [1]


def test_exit_code_11_stays_a_secret_where_the_seeds_script_let_test_failed_overwrite_it():
    log = [
        "Running the secret scan... done\n",
        "npm ERR! Test failed.  See above for more details.\n",
    ]
    result = classify(log, 11, rules=RULES)
    assert (result.failure_type, result.rule_name) == (
        "security_secrets",
        "seed: exit 11 security secrets",
    )


def test_the_gravest_protected_finding_wins():
    log = [
        "Total: 4 (HIGH: 1, CRITICAL: 3)\n",  # Trivy
        "Generated files are out of date\n",
        "WRN leaks found: 2\n",
    ]
    assert classify(log, 1, rules=RULES).failure_type == "security_secrets"
    assert classify(log[:2], 1, rules=RULES).failure_type == "security_critical"
    assert classify(log[1:2], 12, rules=RULES).failure_type == "generator_drift"  # 90 over 85
    assert classify(["all clean\n"], 12, rules=RULES).failure_type == "security_high"


def test_a_lower_severity_exit_code_does_not_downgrade_a_critical_finding():
    result = classify(["Severity: critical\n"], 13, rules=RULES)  # 13: the seed's advisory code
    assert (result.failure_type, result.rule_name) == (
        "security_critical",
        "npm audit: critical advisory",
    )


def test_among_unprotected_matches_the_first_rule_in_position_order_wins():
    log = ["FAILED tests/test_a.py::test_b - OperationalError: could not connect to server\n"]
    rules = [
        rule("tests", "test_failure", 70, r"^FAILED "),
        rule("database", "database_connectivity", 50, r"could not connect"),
    ]
    assert classify(log, 1, rules=rules).rule_name == "database"
    rules[0] = rule("tests", "test_failure", 10, r"^FAILED ")
    assert classify(log, 1, rules=rules).rule_name == "tests"


def test_log_patterns_come_before_bare_exit_codes_unless_the_exit_code_is_protected():
    killed = ["Killed\n"]
    assert classify(killed, 1, rules=RULES).rule_name == "runner: out of memory"
    assert classify(["nothing to see\n"], 137, rules=RULES).rule_name == (
        "exit 137: killed (out of memory)"
    )
    compile_error = ["src/main.c:10:5: error: 'x' undeclared\n"]
    assert classify(compile_error, 137, rules=RULES).rule_name == "C/C++: compiler error"


def test_nothing_matches_unknown_with_a_signature_from_the_first_error():
    result = classify(["deploying\n", "fatal: could not read Username\n", "done\n"], 128, rules=[])
    assert (result.failure_type, result.rule_id, result.evidence) == ("unknown", None, [])
    assert result.signature == "fatal: could not read Username"


def test_the_ci_echo_of_a_command_is_not_its_output():
    log = [
        "2024-05-14T09:21:33.0000000Z ##[group]Run npm audit --audit-level=high || echo 'npm audit failed'\n",
        "2024-05-14T09:21:33.0000000Z npm audit --audit-level=high || echo 'npm audit failed'\n",
        "2024-05-14T09:21:33.0000000Z shell: /usr/bin/bash -e {0}\n",
        "2024-05-14T09:21:33.0000000Z ##[endgroup]\n",
        "2024-05-14T09:21:35.0000000Z found 0 vulnerabilities\n",
        "$ pytest || echo 'test failed'\n",
        "+ make test || echo 'test failed'\n",
    ]  # fmt: skip
    assert classify(log, 1, rules=RULES).failure_type == "unknown"
    # An unclosed group (a log cut short) was no echo: its lines count.
    assert classify(log[:2], 1, rules=RULES).rule_name == "seed: npm audit failed"


# --- changed-file globs -------------------------------------------------------------------------

PLAIN_DIFF = [
    "2024-05-14T09:22:01.0000000Z diff --git a/docs/api.md b/docs/api.md\n",
    "2024-05-14T09:22:01.0000000Z +## Invoices\n",
    "2024-05-14T09:22:01.0000000Z ##[error]Process completed with exit code 1.\n",
]


@pytest.mark.parametrize(
    ("changed_files", "failure_type", "rule_name"),
    [
        (["proto/acme/billing/v1/invoice.proto"], "generator_drift", "drift: diff after a proto change"),
        (["api/openapi.yaml", "README.md"], "generator_drift", "drift: diff after an OpenAPI change"),
        (["src/invoice.py"], "unknown", ""),
        ([], "unknown", ""),
    ],
)  # fmt: skip
def test_a_diff_is_drift_only_when_the_change_touches_a_generator_input(
    changed_files, failure_type, rule_name
):
    result = classify(PLAIN_DIFF, 1, changed_files, rules=RULES)
    assert (result.failure_type, result.rule_name) == (failure_type, rule_name)
    if rule_name:
        assert [item.line for item in result.evidence] == [1]


def test_a_rule_with_only_a_glob_matches_on_the_changed_files_alone():
    rules = [rule("migrations", "database_connectivity", 5, glob="*/migrations/*.py")]
    assert classify([], 1, ["shop/migrations/0007_x.py"], rules=rules).rule_name == "migrations"
    assert classify([], 1, ["shop/models.py"], rules=rules).failure_type == "unknown"


# --- redaction ---------------------------------------------------------------------------------


def test_a_token_on_an_evidence_line_is_redacted_everywhere_it_is_kept():
    log = [
        f"2024-05-14T09:21:33.0000000Z export GITHUB_TOKEN={TOKEN}\n",
        f'2024-05-14T09:21:34.0000000Z Finding:     token = "{TOKEN}"\n',
        "2024-05-14T09:21:35.0000000Z WRN leaks found: 1\n",
    ]
    result = classify(log, 1, rules=RULES)
    assert result.failure_type == "security_secrets"
    assert [item.line for item in result.evidence] == [2, 3]
    assert "[REDACTED]" in result.evidence[0].text
    kept = " ".join([result.excerpt, result.signature, *(item.text for item in result.evidence)])
    assert TOKEN not in kept
    assert TOKEN[:12] not in kept


def test_a_token_cut_by_the_line_limit_is_still_redacted():
    line = "x" * (MAX_LINE_CHARS - 10) + " " + TOKEN + " FAILED tests/a.py::test_b\n"
    result = classify(["Finding: " + line], 1, rules=RULES)
    assert result.evidence and len(result.evidence[0].text) <= MAX_LINE_CHARS
    assert "ghp_" not in result.evidence[0].text + result.excerpt


def test_failing_test_ids_are_redacted_too():
    result = classify(
        [f"FAILED tests/test_a.py::test_b[{TOKEN}] - AssertionError\n"], 1, rules=RULES
    )
    assert TOKEN not in " ".join(result.failing_tests) + result.signature


# --- signatures --------------------------------------------------------------------------------


def pytest_run(stamp: str, workspace: str, test: str, seconds: str, passed: int) -> list[str]:
    return [
        f"{stamp} ##[group]Run python -m pytest\n",
        f"{stamp} python -m pytest\n",
        f"{stamp} ##[endgroup]\n",
        f"{stamp} rootdir: {workspace}\n",
        f"{stamp} {workspace}/tests/test_money.py:42: AssertionError\n",
        f"{stamp} \x1b[31mFAILED\x1b[0m tests/test_money.py::{test} - AssertionError: assert 3 == 4\n",
        f"{stamp} \x1b[31m=== 1 failed, {passed} passed in {seconds}s ===\x1b[0m\n",
    ]


def test_the_same_failure_in_two_runs_has_one_signature():
    first = classify(
        pytest_run(
            "2024-05-14T09:21:33.1234567Z", "/home/runner/work/a/a", "test_round", "3.21", 10
        ),
        1,
        rules=RULES,
    )
    second = classify(
        pytest_run("2024-06-02T17:03:11.7654321Z", "/builds/acme/a", "test_round", "12.80", 212),
        1,
        rules=RULES,
    )
    assert first.signature == second.signature == "tests: tests/test_money.py::test_round"
    assert fingerprint_of(first.failure_type, first.signature) == fingerprint_of(
        second.failure_type, second.signature
    )


def test_a_different_failing_test_has_another_signature():
    stamp, workspace = "2024-05-14T09:21:33.1234567Z", "/home/runner/work/a/a"
    first = classify(pytest_run(stamp, workspace, "test_round", "3.2", 10), 1, rules=RULES)
    other = classify(pytest_run(stamp, workspace, "test_floor", "3.2", 10), 1, rules=RULES)
    assert first.signature != other.signature
    assert fingerprint_of(first.failure_type, first.signature) != fingerprint_of(
        other.failure_type, other.signature
    )


def test_an_error_line_signature_ignores_paths_pids_uuids_and_times():
    def oom(pid: int, uuid: str, stamp: str) -> list[str]:
        return [
            f"{stamp} /home/runner/work/_temp/{uuid}.sh: line 1: {pid} Killed    npm run build\n"
        ]

    first = classify(oom(2291, "5a0b2c9e-0f3d-4a8e-b1d2-7c6e5f4a3b2c", "2024-05-14T09:21:33.1Z"), 1,
                     rules=RULES)  # fmt: skip
    second = classify(oom(87, "0b9c8d7e-6f5a-4b3c-9d2e-1f0a9b8c7d6e", "2024-06-01T23:59:59.9Z"), 1,
                      rules=RULES)  # fmt: skip
    assert first.rule_name == "runner: out of memory"
    assert first.signature == second.signature
    assert "Killed" in first.signature and "2291" not in first.signature


def test_a_build_error_signature_keeps_the_relative_file_but_not_the_line_numbers():
    first = classify(
        ["src/money.ts(14,23): error TS2345: Argument of type 'string'\n"], 1, rules=RULES
    )
    moved = classify(
        ["src/money.ts(15,3): error TS2345: Argument of type 'string'\n"], 1, rules=RULES
    )
    other = classify(
        ["src/cart.ts(14,23): error TS2345: Argument of type 'string'\n"], 1, rules=RULES
    )
    assert first.signature == moved.signature != other.signature
    assert "src/money.ts" in first.signature


def test_an_unknown_failure_without_error_words_signs_with_its_last_own_line():
    with (LOGS / "gitlab_eslint_warnings_unknown.log").open("rb") as log:
        result = classify(log, 1, rules=RULES)
    assert result.signature == "ESLint found too many warnings (maximum: <n>)."


# --- what the patterns see ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "seen"),
    [
        ("2024-05-14T09:21:33.4820345Z FAILED tests/a.py::t", "FAILED tests/a.py::t"),
        ("2024-05-21T10:11:12.345678Z 00O+ Killed", "Killed"),  # GitLab's timestamps
        ("[2024-05-14T09:21:33.482Z] BUILD FAILED in 3s", "BUILD FAILED in 3s"),  # Jenkins
        ("\x1b[1m\x1b[31m  ● \x1b[22mMoney \u203a rounds\x1b[39m", "  ● Money \u203a rounds"),
        ("section_start:1715678493:step_script\r\x1b[0K\x1b[36;1mStep\x1b[0;m", "Step"),
        ("Progress: 10%\rProgress: 100%\r", "Progress: 100%"),
        ("\x1b]8;;https://example.com\x1b\\link\x1b]8;;\x1b\\ text", "link text"),  # OSC 8
    ],
)  # fmt: skip
def test_a_pattern_sees_the_line_without_colours_timestamps_and_overwritten_text(raw, seen):
    assert clean_line(raw) == seen


@pytest.mark.parametrize(
    ("pattern", "literals"),
    [
        (r"^FAILED \S+::\S+", ("FAILED ",)),
        (r"leaks found: [1-9]|^Finding:\s", ("Finding:", "leaks found: ")),
        (r"\bECONNRESET\b", ("ECONNRESET",)),
        (r"(ECONNREFUSED|dial tcp) \S*:(5432|3306)\b", ("ECONNREFUSED", "dial tcp")),
        (r"error(ed)? (x+)?z", ("error",)),
        (r"(?:ab)+cdef", ("cdef",)),  # the longest certain word wins
        (r"\d+ (failed|errors?)\b", ("error", "failed")),
        (r"[a-z]+\s\d", ()),  # no word is certain: every line is a candidate
        (r"a|\d", ()),
    ],
)
def test_literals_of_a_pattern_are_words_every_match_contains(pattern, literals):
    assert literals_of(pattern) == literals


def test_a_rule_without_a_literal_still_finds_its_lines():
    rules = [rule("digits only", "build_failure", 1, r"^[0-9]+ [0-9]+$")]
    result = classify(["a\n", "12 34\n", "b\n"], 1, rules=rules)
    assert [item.line for item in result.evidence] == [2]


def test_a_rule_keeps_five_evidence_lines_and_the_log_is_still_read_to_the_end():
    log = [f"FAILED tests/test_a.py::test_{n} - AssertionError\n" for n in range(12)]
    result = classify(log, 1, rules=RULES)
    assert [item.line for item in result.evidence] == [1, 2, 3, 4, 5]
    assert len(result.failing_tests) == 12 and result.log_lines == 12


def test_a_literal_split_by_colour_codes_is_still_found():
    rules = [rule("gitleaks", "security_secrets", 10, r"leaks found: [1-9]")]
    log = ["fatal: first\n", "9:21AM \x1b[31mWRN\x1b[0m \x1b[1mleaks\x1b[0m found: 2\n"]
    result = classify(log, 1, rules=rules)
    assert [item.as_dict() for item in result.evidence] == [
        {"line": 2, "text": "9:21AM WRN leaks found: 2"}
    ]
