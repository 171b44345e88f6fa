"""Classification rules for the signatures real CI tools print (issue 9), next to the seed's own
table (0002). docs/escalation-classification.md explains each band and the precedence.

Patterns are searched case-insensitively in each log line after the CI's timestamp prefix and
colour codes are removed (escalation.services.classify). They are written in the common subset of
Python's ``re`` and GNU ``grep -E`` (``[0-9]`` rather than ``\\d``, plain groups) so that the
benchmark can hand the very same patterns to grep, and each carries a literal word that the
classifier's prefilter searches for. None has a nested quantifier.

Positions: the order only decides between findings that are not protected (a security finding or
a zero-tolerance type always wins, see the docs), and puts specific patterns before generic ones
and log patterns before bare exit codes:

     10-30  secret scanners, dependency auditors, generator drift (protected: position only
            orders rules of the same type)
        40  the runner itself failed: lost, shut down, out of time, out of memory
        50  the database could not be reached (it explains the failing tests that follow)
        60  container images could not be pulled
        65  compilers
        70  test runners
        80  network errors (after the tests: a test that fails on a reset connection is a test
            failure unless the runner itself says otherwise)
        90  dependency resolution
       100  other Docker daemon errors
   110-150  the seed's own log patterns (0002)
       160  generic build failures (Maven's BUILD FAILURE, make's Error n, docker build)
   900-940  the seed's exit codes (0002)
       950  exit codes of killed processes
"""

from django.db import migrations

SOURCE = "Real-world CI signature (issue 9)."

# name, failure type, exit code, log pattern, changed-file glob, position, description
RULES = [
    # --- secret scanners: security_secrets -------------------------------------------------------
    ("gitleaks: leaks found", "security_secrets", None,
     r"leaks found: [1-9]|^Finding:\s", "", 10,
     "gitleaks prints 'WRN leaks found: N' and a 'Finding:' block per secret."),
    ("trufflehog: result found", "security_secrets", None,
     r"Found (verified|unverified) result", "", 10,
     "trufflehog v3: 'Found verified result' (also unverified: the job failed on it)."),
    ("GitHub push protection", "security_secrets", None,
     r"GITHUB PUSH PROTECTION|Push cannot contain secrets", "", 10,
     "A push rejected by GitHub secret scanning (GH013)."),
    ("detect-secrets: potential secrets", "security_secrets", None,
     r"Potential secrets about to be committed", "", 10,
     "Yelp detect-secrets pre-commit hook."),
    ("ggshield: secret incident", "security_secrets", None,
     r">>> Incident [0-9]+\(Secrets detection\)", "", 10,
     "GitGuardian ggshield secret scan."),
    # --- dependency auditors by severity --------------------------------------------------------
    # critical -> security_critical, high -> security_high, moderate/medium and auditors that do
    # not tell a severity -> dependency_vulnerability, low only -> security_advisory. npm's bare
    # summary 'N vulnerabilities (...)' is not a rule: `npm install` prints it on every run.
    ("npm audit: critical advisory", "security_critical", None,
     r"^Severity: critical$", "", 20, "npm audit report (npm 7+), one line per advisory."),
    ("npm audit: critical (npm 6)", "security_critical", None,
     r"\b[1-9][0-9]* critical\b.* in [0-9]+ scanned packages", "", 20,
     "npm 6: 'found N vulnerabilities (... 1 critical) in M scanned packages'."),
    ("yarn/pnpm audit: critical", "security_critical", None,
     r"^Severity: .*\b[1-9][0-9]* critical\b", "", 20,
     "yarn audit / pnpm audit summary: 'Severity: 1 low | 2 critical'."),
    ("Trivy: critical", "security_critical", None,
     r"Total: [0-9]+ \(.*CRITICAL: [1-9]", "", 20,
     "Trivy: 'Total: N (UNKNOWN: 0, LOW: 1, MEDIUM: 0, HIGH: 2, CRITICAL: 1)'."),
    ("Snyk: critical", "security_critical", None,
     r"✗ (Critical severity vulnerability|\[Critical\])", "", 20,
     "snyk test: '✗ Critical severity vulnerability found in ...' or '✗ [Critical] ...'."),
    ("Grype or cargo audit: critical", "security_critical", None,
     r"\b(GHSA|CVE|RUSTSEC)-[0-9a-z-]+ +Critical\b|^Severity: +[0-9.]+ \(critical\)", "", 20,
     "Grype's table row ending in Critical; cargo audit's 'Severity: 9.8 (critical)'."),
    ("npm audit: high advisory", "security_high", None,
     r"^Severity: high$", "", 22, "npm audit report (npm 7+)."),
    ("npm audit: high (npm 6)", "security_high", None,
     r"\b[1-9][0-9]* high\b.* in [0-9]+ scanned packages", "", 22, "npm 6 audit summary."),
    ("yarn/pnpm audit: high", "security_high", None,
     r"^Severity: .*\b[1-9][0-9]* high\b", "", 22, "yarn audit / pnpm audit summary."),
    ("Trivy: high", "security_high", None,
     r"Total: [0-9]+ \(.*HIGH: [1-9]", "", 22, "Trivy summary with HIGH findings."),
    ("Snyk: high", "security_high", None,
     r"✗ (High severity vulnerability|\[High\])", "", 22, "snyk test, high severity."),
    ("Grype or cargo audit: high", "security_high", None,
     r"\b(GHSA|CVE|RUSTSEC)-[0-9a-z-]+ +High\b|^Severity: +[0-9.]+ \(high\)", "", 22,
     "Grype's table row ending in High; cargo audit's '(high)'."),
    ("npm audit: moderate advisory", "dependency_vulnerability", None,
     r"^Severity: moderate$", "", 24, "npm audit report (npm 7+)."),
    ("npm audit: moderate (npm 6)", "dependency_vulnerability", None,
     r"\b[1-9][0-9]* moderate\b.* in [0-9]+ scanned packages", "", 24, "npm 6 audit summary."),
    ("yarn/pnpm audit: moderate", "dependency_vulnerability", None,
     r"^Severity: .*\b[1-9][0-9]* moderate\b", "", 24, "yarn audit / pnpm audit summary."),
    ("Trivy: medium", "dependency_vulnerability", None,
     r"Total: [0-9]+ \(.*MEDIUM: [1-9]", "", 24, "Trivy summary with MEDIUM findings."),
    ("Snyk: medium", "dependency_vulnerability", None,
     r"✗ (Medium severity vulnerability|\[Medium\])", "", 24, "snyk test, medium severity."),
    ("pip-audit: known vulnerabilities", "dependency_vulnerability", None,
     r"Found [1-9][0-9]* known vulnerabilit(y|ies) in [0-9]+ packages?", "", 24,
     "pip-audit does not print a severity."),
    ("cargo audit: vulnerabilities found", "dependency_vulnerability", None,
     r"error: [1-9][0-9]* vulnerabilit(y|ies) found", "", 24,
     "cargo audit's closing line; its per-advisory severity has its own rules."),
    ("other auditors: vulnerabilities found", "dependency_vulnerability", None,
     r"^Vulnerabilities found!$|One or more dependencies were identified with vulnerabilities"
     r"|Your code is affected by [1-9][0-9]* vulnerabilit|[1-9][0-9]* vulnerabilit(y|ies) were"
     r" reported", "", 24,
     "bundler-audit, OWASP dependency-check, govulncheck, safety."),
    ("npm audit: low advisory", "security_advisory", None,
     r"^Severity: low$", "", 26, "npm audit report (npm 7+), low only."),
    ("Trivy: low", "security_advisory", None,
     r"Total: [0-9]+ \(.*LOW: [1-9]", "", 26, "Trivy summary with LOW findings only."),
    ("Snyk: low", "security_advisory", None,
     r"✗ (Low severity vulnerability|\[Low\])", "", 26, "snyk test, low severity."),
    # --- generator drift ------------------------------------------------------------------------
    ("drift: generated files out of date", "generator_drift", None,
     r"generated (files?|code|sources?|clients?|types|artifacts) (are|is) (out of date|outdated"
     r"|stale|not up.to.date)", "", 30,
     "A codegen check's own message: 'Generated files are out of date'."),
    ("drift: regenerate and commit", "generator_drift", None,
     r"(make|go|buf|npm run|yarn|pnpm) (generate|gen|codegen)\b.{0,40}\bcommit", "", 30,
     "'Please run `make generate` and commit the result.'"),
    ("drift: uncommitted changes after codegen", "generator_drift", None,
     r"(uncommitted|unexpected|unstaged) changes (after|from|in) (code ?gen|generat)", "", 30,
     "'Uncommitted changes after code generation'."),
    ("drift: diff of a generated file", "generator_drift", None,
     r"^diff --git a/\S*(\.pb\.go|_pb2\.pyi?|_pb\.[jt]s|\.gen\.[a-z]+|_gen\.go|_generated\."
     r"|\.generated\.|/generated/|/gen/)", "", 30,
     "`git diff --exit-code` after codegen shows a generated file (protoc, buf, openapi-"
     "generator, sqlc...)."),
    ("drift: diff after a proto change", "generator_drift", None,
     r"^diff --git a/", "*.proto", 32,
     "A diff in the log of a change that touches .proto files: `buf generate` drift."),
    ("drift: diff after an OpenAPI change", "generator_drift", None,
     r"^diff --git a/", "*openapi*", 32,
     "A diff in the log of a change that touches an OpenAPI document: openapi-generator drift."),
    # --- the runner itself: infrastructure_timeout ----------------------------------------------
    ("runner: exceeded the maximum execution time", "infrastructure_timeout", None,
     r"has exceeded the maximum execution time|execution took longer than|has timed out after"
     r" [0-9]+ minutes|Timeout has been exceeded", "", 40,
     "GitHub Actions job or step timeout, GitLab's job timeout, Jenkins' timeout step."),
    ("runner: lost or shut down", "infrastructure_timeout", None,
     r"lost communication with the server|runner has received a shutdown signal|runner"
     r" encountered an error while running your job|Job failed \(system failure\)"
     r"|Agent \S+ went offline|ChannelClosedException", "", 40,
     "The runner or agent went away: GitHub Actions, GitLab system failures, Jenkins agents."),
    ("runner: out of memory", "infrastructure_timeout", None,
     r"^Killed$|: line [0-9]+: +[0-9]+ Killed\b|OOMKilled|Out of memory: Killed process"
     r"|JavaScript heap out of memory|exit code:? 137\b|exited with code 137\b|signal: killed"
     r"|terminated by another process: signal=SIGKILL|build daemon disappeared unexpectedly",
     "", 40,
     "The OOM killer: bash's 'Killed', Kubernetes' OOMKilled, exit 137, Node's heap limit."),
    # --- database_connectivity ------------------------------------------------------------------
    ("database: Python driver could not connect", "database_connectivity", None,
     r"OperationalError.{0,40}(could not connect|connection to server|connection failed"
     r"|server closed the connection unexpectedly|Can't connect to (local )?MySQL server)",
     "", 50, "psycopg2, psycopg 3, Django, SQLAlchemy and MySQLdb connection errors."),
    ("database: connection refused on a database port", "database_connectivity", None,
     r"(ECONNREFUSED|dial tcp) \S*:(5432|5433|3306|27017|6379|1433|26257)\b", "", 50,
     "Node's 'connect ECONNREFUSED 127.0.0.1:5432', Go's 'dial tcp 127.0.0.1:5432: ...'."),
    ("database: PDO SQLSTATE connection error", "database_connectivity", None,
     r"SQLSTATE\[(HY000\] \[200[0-9]\]|08001\]|08006\])", "", 50,
     "PHP PDO / Laravel: 'SQLSTATE[HY000] [2002] Connection refused'."),
    ("database: JDBC connection error", "database_connectivity", None,
     r"PSQLException: Connection to \S+ refused|Communications link failure"
     r"|CannotGetJdbcConnectionException|HikariPool-[0-9]+ - Exception during pool initialization",
     "", 50, "PostgreSQL and MySQL JDBC drivers, HikariCP."),
    ("database: client library could not connect", "database_connectivity", None,
     r"PG::ConnectionBad|ActiveRecord::ConnectionNotEstablished|P1001: Can't reach database"
     r" server|MongoServerSelectionError|MongoNetworkError|Redis::CannotConnectError"
     r"|redis\.exceptions\.ConnectionError", "", 50, "Rails, Prisma, MongoDB and Redis clients."),
    ("database: server refuses connections", "database_connectivity", None,
     r"too many clients already|remaining connection slots are reserved|the database system is"
     r" (starting up|shutting down|in recovery mode)", "", 50,
     "PostgreSQL out of connection slots or not ready."),
    # --- container images: infrastructure_timeout -----------------------------------------------
    ("docker: pull rate limit", "infrastructure_timeout", None,
     r"toomanyrequests", "", 60, "Docker Hub: 'toomanyrequests: You have reached your pull rate"
     " limit'."),
    ("docker: image not found", "infrastructure_timeout", None,
     r"manifest unknown|manifest for \S+ not found|pull access denied for", "", 60,
     "A tag or repository the registry does not have (or will not show)."),
    ("docker: registry unreachable", "infrastructure_timeout", None,
     r'Error response from daemon: Get "?https?://'
     r"|failed to resolve source metadata"
     r"|failed to pull image", "", 60, "The daemon or BuildKit could not reach the registry."),
    # --- compilers: build_failure ---------------------------------------------------------------
    ("TypeScript: compiler error", "build_failure", None,
     r"error TS[0-9]+:", "", 65, "tsc: 'src/a.ts(3,7): error TS2345: ...'."),
    ("C/C++: compiler error", "build_failure", None,
     r"^\S+:[0-9]+:([0-9]+:)? (fatal )?error: ", "", 65,
     "gcc and clang: 'src/main.c:10:5: error: ...'."),
    ("Rust: compiler error", "build_failure", None,
     r"^error\[E[0-9]+\]|error: could not compile ", "", 65,
     "rustc: 'error[E0308]: mismatched types'."),
    ("Java/Kotlin: compiler error", "build_failure", None,
     r"^\S+\.java:[0-9]+: error: |\[ERROR\] COMPILATION ERROR|\.java:\[[0-9]+,[0-9]+\] "
     r"|Compilation failed; see the compiler error output|^e: file:///\S+\.kts?:|^e: /\S+\.kts?: "
     r"|> Task :\S*compile\S* FAILED", "", 65,
     "javac, Maven's compiler plugin, Gradle's compile tasks, kotlinc."),
    ("Go: build failed", "build_failure", None,
     r"\[build failed\]|^\S+\.go:[0-9]+:[0-9]+: ", "", 65,
     "go build / go vet: './main.go:12:2: undefined: x', 'FAIL pkg [build failed]'."),
    ("C#: compiler error", "build_failure", None,
     r"error CS[0-9]+:", "", 65, "dotnet build: 'error CS1002: ; expected'."),
    ("bundler: module not found", "build_failure", None,
     r"Module not found: Error: Can't resolve|failed to resolve import", "", 65,
     "webpack and Vite (Rollup)."),
    # --- test runners: test_failure -------------------------------------------------------------
    ("pytest: failed test", "test_failure", None,
     r"^(FAILED|ERROR) \S+::\S+", "", 70,
     "pytest's short summary: 'FAILED tests/x.py::test_y - AssertionError'."),
    ("pytest: summary", "test_failure", None,
     r"^=+ .*\b[0-9]+ (failed|errors?)\b.* in [0-9.]+s\b", "", 70,
     "'=== 2 failed, 10 passed in 3.21s ==='."),
    ("Jest/Vitest: failed test", "test_failure", None,
     r"^\s*● \S|^\s*FAIL +\S+\.(test|spec)\.[cm]?[jt]sx?\b", "", 70,
     "Jest's '● Suite › test' and the 'FAIL  src/a.test.ts' header (Vitest too)."),
    ("Jest/Vitest: summary", "test_failure", None,
     r"^Tests:? +[0-9]+ failed|^Test Suites: +[0-9]+ failed", "", 70,
     "'Tests:       1 failed, 12 passed, 13 total'; Vitest's 'Tests  1 failed | 3 passed'."),
    ("Mocha: failing", "test_failure", None,
     r"^\s*[1-9][0-9]* failing$", "", 70, "mocha's '  2 failing'."),
    ("Go test: failed test", "test_failure", None,
     r"^\s*--- FAIL: \S+|^FAIL\s+\S+\s+[0-9.]+s$|panic: test timed out after", "", 70,
     "go test: '--- FAIL: TestX (0.00s)', 'FAIL\tpkg\t0.01s'."),
    ("JUnit (Maven Surefire): failures", "test_failure", None,
     r"Tests run: [0-9]+, Failures: ([1-9]|[0-9]+, Errors: [1-9])|There are test failures"
     r"|<<< (FAILURE|ERROR)!", "", 70,
     "'[ERROR] Tests run: 12, Failures: 1, Errors: 0, Skipped: 0'."),
    ("Gradle: test task failed", "test_failure", None,
     r"> Task :\S*test\S* FAILED|^\S+ > \S.* FAILED$|[0-9]+ tests completed, [1-9][0-9]* failed",
     "", 70, "'> Task :app:test FAILED', 'FooTest > adds() FAILED'."),
    ("RSpec: failures", "test_failure", None,
     r"^[0-9]+ examples?, [1-9][0-9]* failures?|^rspec \./\S+:[0-9]+ #", "", 70,
     "'10 examples, 2 failures'."),
    ("PHPUnit: failures", "test_failure", None,
     r"^FAILURES!$|^Tests: [0-9]+, Assertions: [0-9]+, (Errors|Failures): [1-9]", "", 70,
     "PHPUnit's summary."),
    ("cargo test: failed", "test_failure", None,
     r"^test result: FAILED\.|^test \S+ \.\.\. FAILED$", "", 70,
     "'test result: FAILED. 10 passed; 1 failed'."),
    (".NET test: failed", "test_failure", None,
     r"^\s*Failed!\s+-\s+Failed:\s+[1-9]|^\s*Failed \S+ \[[0-9]", "", 70,
     "dotnet test: 'Failed!  - Failed:     1, Passed:    10'."),
    ("Playwright/Cypress/TAP: failed", "test_failure", None,
     r"^\s*[0-9]+\) \[\w+\] › |[0-9]+ of [0-9]+ failed \([0-9]+%\)|^not ok [0-9]+ |^# fail [1-9]",
     "", 70, "Playwright's '1) [chromium] › ...', Cypress' '1 of 3 failed (33%)', TAP."),
    # --- network: infrastructure_timeout --------------------------------------------------------
    ("network: connection reset", "infrastructure_timeout", None,
     r"\bECONNRESET\b|connection reset by peer", "", 80, "A peer dropped the connection."),
    ("network: name resolution", "infrastructure_timeout", None,
     r"Could not resolve host|Temporary failure (in name resolution|resolving)"
     r"|getaddrinfo (ENOTFOUND|EAI_AGAIN)|Name or service not known|: no such host", "", 80,
     "DNS failures: curl, git, apt, Node, Go."),
    ("network: TLS handshake timeout", "infrastructure_timeout", None,
     r"TLS handshake timeout", "", 80, "Go's net/http (docker, go mod download)."),
    ("network: timed out", "infrastructure_timeout", None,
     r"context deadline exceeded|i/o timeout|\bETIMEDOUT\b|Connection timed out"
     r"|(Read|Connect) timed out", "", 80, "Timeouts talking to another host."),
    ("network: remote hung up", "infrastructure_timeout", None,
     r"remote end hung up unexpectedly|RPC failed; curl|Failed to connect to \S+ port [0-9]+",
     "", 80, "git and curl transport errors."),
    # --- dependency resolution: build_failure ---------------------------------------------------
    ("npm: dependency resolution", "build_failure", None,
     r"\bERESOLVE\b|code ETARGET|No matching version found for", "", 90,
     "'npm ERR! code ERESOLVE', 'npm error code ETARGET'."),
    ("pip: dependency resolution", "build_failure", None,
     r"ResolutionImpossible|Could not find a version that satisfies the requirement"
     r"|No matching distribution found for", "", 90, "pip's resolver."),
    ("cargo: dependency resolution", "build_failure", None,
     r"failed to select a version for", "", 90, "'error: failed to select a version for ...'."),
    ("other package managers: dependency resolution", "build_failure", None,
     r"version solving failed|SolverProblemError|No candidates found|Couldn't find any versions"
     r" for|Could not resolve dependencies for project|Could not resolve all (files|dependencies)"
     r" for configuration|Could not find artifact \S+|missing go\.sum entry|Bundler could not find"
     r" compatible versions|could not be resolved to an installable set", "", 90,
     "Poetry, Yarn, Maven, Gradle, Go modules, Bundler, Composer."),
    # --- other docker errors ------------------------------------------------------------------
    ("docker: daemon error", "infrastructure_timeout", None,
     r"Error response from daemon", "", 100,
     "Any other Docker daemon error; after the tests (cleanup steps print it too)."),
    # --- generic build failures (after the seed's patterns) ---------------------------------------
    ("Maven/Gradle: build failed", "build_failure", None,
     r"\] BUILD FAILURE\b|^BUILD FAILED in [0-9]|^FAILURE: Build failed with an exception", "",
     160, "The closing line of a failed Maven or Gradle build."),
    ("make: target failed", "build_failure", None,
     r"^make(\[[0-9]+\])?: \*\*\* .*Error [0-9]+", "", 160, "'make: *** [Makefile:12: build] Error 1'."),
    ("docker build: step failed", "build_failure", None,
     r"failed to solve: |did not complete successfully: exit code|executor failed running", "",
     160, "BuildKit: 'ERROR: failed to solve: process ... did not complete successfully'."),
    # --- exit codes of killed processes -------------------------------------------------------
    ("exit 137: killed (out of memory)", "infrastructure_timeout", 137, "", "", 950,
     "128 + SIGKILL: almost always the OOM killer."),
    ("exit 124: timeout", "infrastructure_timeout", 124, "", "", 950,
     "GNU timeout's exit code."),
]  # fmt: skip


def add_rules(apps, schema_editor):
    ClassificationRule = apps.get_model("escalation", "ClassificationRule")
    for name, failure_type, exit_code, pattern, glob, position, description in RULES:
        # get_or_create: a rule an operator already made under the same name is left alone.
        ClassificationRule.objects.get_or_create(
            name=name,
            defaults={
                "failure_type": failure_type,
                "exit_code": exit_code,
                "log_pattern": pattern,
                "changed_file_glob": glob,
                "position": position,
                "description": f"{description} {SOURCE}"[:300],
            },
        )


def remove_rules(apps, schema_editor):
    apps.get_model("escalation", "ClassificationRule").objects.filter(
        name__in=[row[0] for row in RULES]
    ).delete()


class Migration(migrations.Migration):
    dependencies = [("escalation", "0002_seed_matrix")]
    operations = [migrations.RunPython(add_rules, remove_rules)]
