"""``manage.py classify_failure``: a log file or stdin in, JSON out, clear errors."""

from __future__ import annotations

import io
import json
import sys

import pytest
from django.core.management import CommandError, call_command

from tests.escalation.test_classify import LOGS, TOKEN, seeded_rules  # noqa: F401 (a fixture)

pytestmark = pytest.mark.usefixtures("seeded_rules")


def run(*args: str) -> dict:
    out = io.StringIO()
    call_command("classify_failure", *args, stdout=out)
    return json.loads(out.getvalue())


def test_a_log_file_is_classified_as_json_with_rule_and_evidence():
    output = run("--exit-code", "1", "--log", str(LOGS / "gha_gitleaks_then_pytest.log"))
    assert output["failure_type"] == "security_secrets"
    assert output["rule"] == "gitleaks: leaks found"
    assert [item["line"] for item in output["evidence"]] == [73, 87]
    assert TOKEN not in json.dumps(output)
    assert output["failing_tests"] == ["tests/billing/test_invoices.py::test_invoice_total"]
    assert len(output["fingerprint"]) == 64 and output["signature"]
    assert "excerpt" not in output


def test_the_log_is_read_from_stdin_with_a_dash(monkeypatch):
    log = (LOGS / "gha_go_test_failure.log").read_bytes()
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(log)))
    output = run("--exit-code", "1", "--log", "-")
    assert (output["failure_type"], output["rule"]) == ("test_failure", "Go test: failed test")
    assert output["log_bytes"] == len(log)


def test_changed_files_reach_the_glob_rules(tmp_path):
    log = tmp_path / "job.log"
    log.write_text("diff --git a/docs/api.md b/docs/api.md\n+## Invoices\n")
    plain = run("--log", str(log), "--exit-code", "1")
    assert plain["failure_type"] == "unknown" and plain["rule"] is None
    touched = run(
        "--log", str(log), "--changed-file", "README.md", "--changed-file", "proto/billing.proto"
    )
    assert (touched["failure_type"], touched["rule"]) == (
        "generator_drift",
        "drift: diff after a proto change",
    )


def test_all_matches_shows_why_the_chosen_rule_won():
    output = run("--log", str(LOGS / "gha_gitleaks_then_pytest.log"), "--all-matches", "--excerpt")
    matches = {match["rule"]: match for match in output["matches"]}
    assert set(matches) == {"gitleaks: leaks found", "pytest: failed test", "pytest: summary"}
    assert matches["pytest: failed test"]["evidence"][0]["line"] == 221
    assert "    73  Finding:" in output["excerpt"]


def test_all_matches_needs_a_file(monkeypatch):
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(b"Killed\n")))
    with pytest.raises(CommandError, match="needs a log file"):
        run("--log", "-", "--all-matches")


@pytest.mark.parametrize("make", ["missing", "directory"])
def test_an_unreadable_log_is_a_clear_error(tmp_path, make):
    path = tmp_path / "job.log"
    if make == "directory":
        path.mkdir()
    with pytest.raises(CommandError, match=r"cannot read the log '.*job\.log': (No such|Is a)"):
        run("--log", str(path))


def test_a_read_error_halfway_is_a_clear_error():
    # Opening /proc/self/mem succeeds; reading its first page fails with EIO, even for root.
    with pytest.raises(CommandError, match="cannot read the log '/proc/self/mem': Input/output"):
        run("--log", "/proc/self/mem")
