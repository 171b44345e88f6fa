"""Classification benchmark (issue 9): a 200 MB CI log classified next to ``grep -E`` with the same
patterns, in the same run, with the classifier's peak memory.

Builds a log of realistic CI noise (GitHub Actions timestamps, colour codes, group markers, pytest,
npm, cargo, Maven, Docker lines, now and then a line that merely mentions "error" or "failed")
with a few real failure lines in it, in a temporary directory. Then, with the seeded rules (the
tables of migrations 0002 and 0003, no database needed):

1. memory: one classification of the file under ``tracemalloc`` (peak growth of Python's
   allocations) and with the process' peak RSS reset first (``/proc/self/clear_refs``), so the
   RSS figure includes what RE2 allocates in C++;
2. speed: ``grep -E -i -n -f patterns.txt log`` (its output to a file: GNU grep stops at the first
   match when it writes to /dev/null) and the classifier reading the same file, alternately,
   ``--repeat`` times each; the best run of each counts. Both CPU time (user+sys, what the machine
   spends; the fair figure on a shared machine) and wall time are printed.

Prints MB/s of both, the ratio classifier/grep (goal: at least 0.5) and the memory growth (goal:
under 50 MB). grep runs in the environment's locale and again with LC_ALL=C (its fastest).

    .venv/bin/python bench/classify_bench.py [--mb 200] [--repeat 3] [--keep]
"""

from __future__ import annotations

import argparse
import importlib
import os
import random
import re
import resource
import shutil
import subprocess
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings")

import django  # noqa: E402

django.setup()

from escalation.models import ClassificationRule  # noqa: E402
from escalation.services.classify import Classification, CompiledRule, classify  # noqa: E402

GREP = shutil.which("grep") or ""
GOAL_RATIO = 0.5
GOAL_GROWTH_MB = 50

E = "\x1b"
# (line, weight): what a long test job prints, and now and then a line that merely mentions
# "error" or "failed" (about 2% of lines) or a step boundary.
NOISE = [
    ("tests/billing/test_{word}.py::test_case_{n} {E}[32mPASSED{E}[0m{pad}[{pct:3d}%]", 30),
    ("   Compiling {word} v1.{n}.{m} (/home/runner/.cargo/registry/src/index.crates.io-6f17d22bba15001f/{word}-1.{n}.{m})", 10),
    ("npm WARN deprecated {word}@{n}.{m}.0: This module is not supported, and leaks memory.", 5),
    ("[INFO] Downloaded from central: https://repo.maven.apache.org/maven2/org/{word}/{word}-core/{n}.{m}/{word}-core-{n}.{m}.jar ({n} kB at {m} MB/s)", 10),
    ("#{n} [build {m}/9] RUN pip install --no-cache-dir -r requirements/{word}.txt", 3),
    ("#{n} sha256:{hash} {m}.{n}MB / {n}.{m}MB {m}.{n}s done", 5),
    ("ok  \tgithub.com/acme/gateway/internal/{word}\t0.{n}s", 5),
    ("  {E}[2m{word}.ts:{n}:{m}{E}[22m  {E}[33mwarning{E}[39m  Unexpected console statement  no-console", 5),
    ("Collecting {word}=={n}.{m}.0 (from -r requirements.txt (line {m}))", 5),
    ("  Downloading {word}-{n}.{m}.0-py3-none-any.whl.metadata ({n}.{m} kB)", 5),
    ("[{word}] handled request GET /api/v1/{word}/{n} in {m}ms status=200", 19),
    ("{E}[36m[{word}]{E}[0m webpack compiled with 0 errors and {m} warnings in {n} ms", 1),
    ("tests/billing/test_{word}.py::test_error_is_reported_{n} {E}[32mPASSED{E}[0m{pad}[{pct:3d}%]", 0.5),
    ("Retrying {word} download after a failed attempt ({m}/5)", 0.5),
    ("##[group]Run actions/cache@v4", 0.05),
    ("##[endgroup]", 0.05),
]  # fmt: skip
WORDS = ["invoices", "ledger", "serde", "tokio", "rimraf", "glob", "junit", "jackson", "auth",
         "router", "cart", "checkout", "money", "search", "profile", "metrics"]  # fmt: skip
# The failure the job is about, near the end of the log, as a pytest run prints it.
SIGNATURE = [
    "{E}[31m{E}[1m=================================== FAILURES ==================================={E}[0m",
    "E       AssertionError: assert Decimal('0.30') == Decimal('0.31')",
    "{E}[36m=========================== short test summary info ============================{E}[0m",
    "{E}[31mFAILED{E}[0m tests/billing/test_invoices.py::test_invoice_total - AssertionError: assert Decimal('0.30') == Decimal('0.31')",
    "{E}[31mFAILED{E}[0m tests/billing/test_rounding.py::test_half_even - AssertionError",
    "{E}[31m=================== {E}[1m2 failed{E}[0m, {E}[32m4120 passed{E}[0m{E}[31m in 312.08s ==================={E}[0m",
    "##[error]Process completed with exit code 1.",
]  # fmt: skip


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mb", type=int, default=200, help="size of the log (default 200)")
    parser.add_argument("--repeat", type=int, default=3, help="timed runs of each (best counts)")
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory")
    return parser.parse_args()


def seeded_rules() -> list[CompiledRule]:
    """The rules migrations 0002 and 0003 seed, in their order (no database needed)."""
    seed_matrix = importlib.import_module("escalation.migrations.0002_seed_matrix")
    real_world = importlib.import_module("escalation.migrations.0003_real_world_rules")
    rows = [
        ClassificationRule(name=name, failure_type=kind, exit_code=code, log_pattern=pattern,
                           position=position)
        for name, kind, code, pattern, position in seed_matrix.RULES
    ] + [
        ClassificationRule(name=name, failure_type=kind, exit_code=code, log_pattern=pattern,
                           changed_file_glob=glob, position=position)
        for name, kind, code, pattern, glob, position, _ in real_world.RULES
    ]  # fmt: skip
    for number, row in enumerate(rows, start=1):
        row.pk = number
    return [CompiledRule.of(row) for row in sorted(rows, key=lambda row: (row.position, row.pk))]


def as_ere(pattern: str) -> str:
    """A Python pattern in GNU ERE, for the few constructs the seeded ones do not use anyway."""
    pattern = pattern.replace("(?:", "(").replace("(?i)", "")
    return re.sub(r"\\d", "[0-9]", pattern)


def build_log(path: Path, megabytes: int) -> tuple[int, int]:
    """Writes the log; returns its size and the line number of the first FAILED line."""
    rng = random.Random(4)
    started = time.monotonic()
    target = megabytes << 20
    written = lines = 0
    signature_at = 0
    templates, weights = zip(*NOISE, strict=True)
    with path.open("w", encoding="utf-8", newline="\n") as log:
        second = 0
        while written < target:
            second += 1
            stamp = f"2024-05-14T{9 + second // 3600 % 12:02d}:{second // 60 % 60:02d}:{second % 60:02d}"
            block = []
            for template in rng.choices(templates, weights, k=20_000):
                line = template.format(
                    E=E, word=rng.choice(WORDS), n=rng.randrange(1000), m=rng.randrange(100),
                    pct=rng.randrange(100), pad=" " * rng.randrange(1, 20),
                    hash=f"{rng.getrandbits(64):016x}",
                )  # fmt: skip
                block.append(f"{stamp}.{rng.randrange(10**7):07d}Z {line}\n")
            if written + 5_000_000 >= target and not signature_at:
                signature_at = lines + len(block) + 4
                block += [f"{stamp}.5000000Z {line.format(E=E)}\n" for line in SIGNATURE]
            text = "".join(block)
            log.write(text)
            written += len(text.encode())
            lines += len(block)
    print(f"built {written / 1e6:.0f} MB, {lines:,} lines in {time.monotonic() - started:.1f}s")
    return written, signature_at


def rss_kb(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return 0


def measure_memory(path: Path, rules: list[CompiledRule]) -> tuple[float, float | None]:
    try:
        Path("/proc/self/clear_refs").write_text("5")  # resets VmHWM, the peak RSS
        rss_before = rss_kb("VmRSS")
    except OSError:
        rss_before = None
    tracemalloc.start()
    traced_before = tracemalloc.get_traced_memory()[0]
    with path.open("rb") as log:
        classify(log, 1, rules=rules)
    traced_growth = (tracemalloc.get_traced_memory()[1] - traced_before) / 2**20
    tracemalloc.stop()
    rss_growth = None if rss_before is None else (rss_kb("VmHWM") - rss_before) / 1024
    return traced_growth, rss_growth


def time_grep(path: Path, patterns: Path, out: Path, env: dict) -> tuple[float, float, int]:
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    with out.open("wb") as sink:
        done = subprocess.run(  # noqa: S603 (our own arguments)
            [GREP, "-E", "-i", "-n", "-f", str(patterns), str(path)],
            stdout=sink, stderr=subprocess.PIPE, env=env, check=False,
        )  # fmt: skip
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode > 1:
        raise SystemExit(f"grep failed: {done.stderr.decode()}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    with out.open("rb") as matched:
        return cpu, wall, sum(1 for _ in matched)


def time_classify(path: Path, rules: list[CompiledRule]) -> tuple[float, float, Classification]:
    started_cpu, started = time.process_time(), time.perf_counter()
    with path.open("rb") as log:
        result = classify(log, 1, rules=rules)
    return time.process_time() - started_cpu, time.perf_counter() - started, result


def main() -> int:
    args = parse_args()
    if not GREP:
        raise SystemExit("needs GNU grep")
    rules = seeded_rules()
    workdir = Path(tempfile.mkdtemp(prefix="classify-bench-"))
    try:
        log = workdir / "job.log"
        size, signature_at = build_log(log, args.mb)
        patterns = workdir / "patterns.txt"
        patterns.write_text("".join(as_ere(rule.pattern.pattern) + "\n" for rule in rules
                                    if rule.pattern is not None))  # fmt: skip
        megabytes = size / 1e6
        version = subprocess.run([GREP, "--version"], capture_output=True, text=True, check=True)  # noqa: S603
        print(
            f"{sum(1 for rule in rules if rule.pattern)} patterns; {version.stdout.splitlines()[0]}"
        )

        traced, rss = measure_memory(log, rules)

        locales = {
            f"grep ({os.environ.get('LC_ALL') or os.environ.get('LANG') or 'default locale'})": dict(
                os.environ
            ),
            "grep (LC_ALL=C)": {**os.environ, "LC_ALL": "C"},
        }
        grep_runs: dict[str, list[tuple[float, float, int]]] = {name: [] for name in locales}
        classify_runs = []
        for _ in range(args.repeat):
            for name, env in locales.items():
                grep_runs[name].append(time_grep(log, patterns, workdir / "grep.out", env))
            classify_runs.append(time_classify(log, rules))

        cpu, _, result = min(classify_runs, key=lambda run: run[0])
        print()
        print(f"classifier: {megabytes / cpu:7.1f} MB/s CPU ({cpu:.2f}s), "
              f"{megabytes / min(run[1] for run in classify_runs):7.1f} MB/s wall")  # fmt: skip
        print(f"  -> {result.failure_type} by {result.rule_name!r}, evidence lines "
              f"{[item.line for item in result.evidence]} (the FAILED line is {signature_at}), "
              f"{result.log_lines:,} lines")  # fmt: skip
        ratios = []
        for name, runs in grep_runs.items():
            grep_cpu = min(run[0] for run in runs)
            grep_wall = min(run[1] for run in runs)
            ratio = grep_cpu / cpu
            ratios.append(ratio)
            print(f"{name}: {megabytes / grep_cpu:7.1f} MB/s CPU ({grep_cpu:.2f}s), "
                  f"{megabytes / grep_wall:7.1f} MB/s wall, {runs[0][2]} matching lines; "
                  f"classifier/grep = {ratio:.2f} (wall {grep_wall / min(r[1] for r in classify_runs):.2f})")  # fmt: skip
        print()
        print(f"memory: tracemalloc peak growth {traced:.1f} MB"
              + ("" if rss is None else f", RSS peak growth {rss:.1f} MB"))  # fmt: skip
        speed_ok = min(ratios) >= GOAL_RATIO
        memory_ok = traced < GOAL_GROWTH_MB and (rss is None or rss < GOAL_GROWTH_MB)
        found_ok = result.failure_type == "test_failure" and result.evidence[0].line == signature_at
        print(
            f"goal speed >= {GOAL_RATIO} of grep (the faster grep): {'met' if speed_ok else 'MISSED'}"
        )
        print(f"goal memory growth < {GOAL_GROWTH_MB} MB: {'met' if memory_ok else 'MISSED'}")
        print(f"found the failure on its line: {'yes' if found_ok else 'NO'}")
        return 0 if speed_ok and memory_ok and found_ok else 1
    finally:
        if args.keep:
            print(f"kept {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
