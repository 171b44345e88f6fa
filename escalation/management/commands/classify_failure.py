"""``manage.py classify_failure``: classifies one failed job's log with the rules in the database
and prints the result as JSON (the seed's ``classify-ci-failure.sh``, as a CLI).

    python manage.py classify_failure --exit-code 1 --log job.log
    gh run view 123 --log-failed | python manage.py classify_failure --exit-code 1 --log -
    python manage.py classify_failure --log job.log --changed-file api/openapi.yaml --all-matches

The log is read as a stream (any size, bounded memory). Nothing is stored; what is printed is
redacted like what the portal stores.
"""

from __future__ import annotations

import json
import sys
from typing import Any, BinaryIO

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import DatabaseError

from escalation.services.classify import (
    Classification,
    RuleMatch,
    classify,
    fingerprint_of,
    load_rules,
    matching_rules,
)


class Command(BaseCommand):
    help = "Classifies a failed CI job from its log, exit code and changed files; prints JSON."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--log", required=True, metavar="FILE", help="the job's log; - for stdin"
        )
        parser.add_argument("--exit-code", type=int, default=None, metavar="N")
        parser.add_argument(
            "--changed-file",
            action="append",
            default=[],
            metavar="PATH",
            help="a file the change touched (repeatable), for rules with a changed-file glob",
        )
        parser.add_argument(
            "--excerpt", action="store_true", help="include the log excerpt kept as evidence"
        )
        parser.add_argument(
            "--all-matches",
            action="store_true",
            help="also list every matching rule with its evidence (why the chosen one won)",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        path: str = options["log"]
        if path == "-" and options["all_matches"]:
            # A second pass over the log: stdin cannot be read twice.
            raise CommandError("--all-matches needs a log file, not stdin")
        try:
            if path == "-":
                result, matches = self._run(sys.stdin.buffer, options)
            else:
                with open(path, "rb") as log:
                    result, matches = self._run(log, options)
        except OSError as exc:
            # A missing file, a directory, no permission, a read error halfway: say which.
            reason = exc.strerror or exc.__class__.__name__
            raise CommandError(f"cannot read the log {path!r}: {reason}") from exc
        output = result.as_dict()
        output["fingerprint"] = fingerprint_of(result.failure_type, result.signature)
        if options["excerpt"]:
            output["excerpt"] = result.excerpt
        if matches is not None:
            output["matches"] = [
                {
                    "rule": match.rule_name,
                    "rule_id": match.rule_id,
                    "failure_type": match.failure_type,
                    "position": match.position,
                    "evidence": [item.as_dict() for item in match.evidence],
                }
                for match in matches
            ]
        self.stdout.write(json.dumps(output, indent=2, ensure_ascii=False))

    @staticmethod
    def _run(
        log: BinaryIO, options: dict[str, Any]
    ) -> tuple[Classification, list[RuleMatch] | None]:
        exit_code, changed = options["exit_code"], options["changed_file"]
        try:
            rules = load_rules()
        except DatabaseError as exc:
            raise CommandError(
                f"cannot read the classification rules ({exc}): run `manage.py migrate` first"
            ) from exc
        result = classify(log, exit_code, changed, rules=rules)
        if not options["all_matches"]:
            return result, None
        log.seek(0)
        return result, matching_rules(log, exit_code, changed, rules=rules)
