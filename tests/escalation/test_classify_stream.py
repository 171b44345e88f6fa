"""A log is read as a stream: any size in bounded memory, whatever shape it arrives in."""

from __future__ import annotations

import io
import os
import tracemalloc
from collections.abc import Iterator

from escalation.services.classify import MAX_LINE_CHARS, classify, lines_of
from tests.escalation.test_classify import LOGS, RULES

# 200 MB, made while it is read: about a second here (bench/classify_bench.py measures the speed
# next to grep). CLASSIFY_STREAM_MB=20 makes it smaller on a slow machine.
STREAM_MB = int(os.environ.get("CLASSIFY_STREAM_MB", "200"))

NOISE = [
    "2024-05-14T09:21:33.4820345Z tests/billing/test_invoices.py::test_case_{n} \x1b[32mPASSED\x1b[0m  [ 42%]\n",
    "2024-05-14T09:21:33.5120345Z    Compiling serde v1.0.{n} (/home/runner/.cargo/registry/src/index.crates.io-6f17d22bba15001f/serde)\n",
    "2024-05-14T09:21:33.6820345Z npm WARN deprecated inflight@1.0.{n}: This module is not supported, and leaks memory.\n",
    "2024-05-14T09:21:33.7020345Z [INFO] Downloaded from central: https://repo.maven.apache.org/maven2/org/junit/junit-bom/5.10.{n}/junit-bom.pom\n",
]  # fmt: skip
FAILED = "2024-05-14T09:31:02.0000000Z \x1b[31mFAILED\x1b[0m tests/test_money.py::test_round - AssertionError\n"


def generated_log(megabytes: int) -> tuple[Iterator[bytes], dict]:
    """About ``megabytes`` of CI noise in 1 MB blocks, then one failing test; made as it is read."""
    facts = {"lines": 0, "bytes": 0}
    block = "".join(NOISE[n % 4].format(n=n) for n in range(10_000)).encode()
    lines_per_block = block.count(b"\n")

    def blocks() -> Iterator[bytes]:
        while facts["bytes"] < megabytes << 20:
            facts["lines"] += lines_per_block
            facts["bytes"] += len(block)
            yield block
        facts["lines"] += 1
        facts["bytes"] += len(FAILED.encode())
        yield FAILED.encode()

    return blocks(), facts


def test_a_big_log_classifies_in_bounded_memory():
    blocks, facts = generated_log(STREAM_MB)
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        result = classify(blocks, 1, rules=RULES)
        peak_growth = tracemalloc.get_traced_memory()[1] - before
    finally:
        tracemalloc.stop()
    assert peak_growth < 50 << 20, f"peak grew by {peak_growth >> 20} MB"
    assert (result.failure_type, result.rule_name) == ("test_failure", "pytest: failed test")
    assert [item.line for item in result.evidence] == [facts["lines"]]
    assert result.log_lines == facts["lines"] and result.log_bytes == facts["bytes"]
    assert result.failing_tests == ["tests/test_money.py::test_round"]


def test_an_endless_line_is_cut_and_still_counts_as_one_line():
    head = b"npm WARN minified bundle: " + b"A" * (30 << 20)  # 30 MB without a newline

    def blocks() -> Iterator[bytes]:
        for start in range(0, len(head), 1 << 20):
            yield head[start : start + (1 << 20)]
        yield b"\nKilled\n"

    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        result = classify(blocks(), 137, rules=RULES)
        peak_growth = tracemalloc.get_traced_memory()[1] - before
    finally:
        tracemalloc.stop()
    assert peak_growth < 20 << 20
    assert (result.rule_name, [item.line for item in result.evidence]) == (
        "runner: out of memory",
        [2],
    )
    assert result.log_lines == 2 and result.log_bytes == len(head) + len(b"\nKilled\n")
    assert all(len(line) <= MAX_LINE_CHARS + 8 for line in result.excerpt.splitlines())


def test_every_shape_of_log_gives_the_same_result():
    path = LOGS / "gha_gitleaks_then_pytest.log"
    data = path.read_bytes()
    text = data.decode("utf-8")
    shapes = {
        "binary file": lambda: path.open("rb"),
        "text file": lambda: path.open(encoding="utf-8", newline=""),
        "bytes in odd pieces": lambda: (data[i : i + 333] for i in range(0, len(data), 333)),
        "str lines": lambda: io.StringIO(text, newline=""),
        "one bytes": lambda: [data],
        "a bare bytes": lambda: data,
        "a bare str": lambda: text,
    }
    results = {name: classify(make(), 1, rules=RULES) for name, make in shapes.items()}
    assert len({repr(result) for result in results.values()}) == 1, results
    assert results["one bytes"].failure_type == "security_secrets"


def test_a_log_without_a_final_newline_keeps_its_last_line():
    result = classify([b"compiling\n", b"src/a.c:3:1: error: expected ';'"], 1, rules=RULES)
    assert [item.line for item in result.evidence] == [2]
    assert result.log_lines == 2


def test_undecodable_bytes_do_not_stop_classification():
    result = classify([b"\xff\xfe garbage \xc3\x28\n", b"Killed\n"], 1, rules=RULES)
    assert [item.line for item in result.evidence] == [2]
    assert "\ufffd" in result.excerpt


def test_an_empty_log_is_unknown_with_nothing_kept():
    result = classify([], None, rules=RULES)
    assert (result.failure_type, result.log_lines, result.log_bytes, result.excerpt) == (
        "unknown",
        0,
        0,
        "",
    )


def test_lines_of_reads_lines_as_the_classifier_counts_them():
    data = b"one\r\ntwo\rstill two\nthree"
    assert list(lines_of(io.BytesIO(data))) == ["one", "two\rstill two", "three"]
    assert list(lines_of([b"a\nb", b"c\n"])) == ["a", "bc"]
