"""Classification of a failed CI job (seed 004's ``analyze_failure``), by rules from the database.

A rule sets any of an exit code, a log pattern (a regular expression searched in each line,
case-insensitive) and a changed-file glob; it matches when every criterion it sets matches.

Precedence (docs/escalation-classification.md): every enabled rule is evaluated, then

1. if any match is *protected* (a security finding or a zero-tolerance type, ``SEVERITY`` at or
   above ``PROTECTED_SEVERITY``), the gravest protected match wins, ties to the lower position:
   a later, milder pattern (a "test failed" line after a gitleaks finding) never downgrades it,
   and neither does the order of the rules;
2. otherwise the first match in rule order (``position``) wins; the seeded order puts specific
   patterns before generic ones and log patterns before bare exit codes, as the seed's script
   lets a log pattern overwrite an exit-code type;
3. no match: ``unknown``.

What a pattern sees: one line of the log (lines end at a newline, as ``grep -n`` counts them)
with the colour codes (ANSI escapes) and the CI's timestamp prefix removed (GitHub Actions'
``2024-05-01T12:00:00.1234567Z``, GitLab's ``... 00O``, Jenkins timestamper's ``[...Z]``), and of
a line that a carriage return rewrote (progress bars, GitLab's section markers) only what a
terminal shows: the text after the last carriage return. So ``^FAILED`` means what a reader of
the log expects. Lines are cut at ``MAX_LINE_CHARS``. Evidence and the excerpt keep these cleaned
lines, redacted (a secret is masked before the line is cut, so a cut never leaves half a token).

What no pattern sees: the CI's echo of the commands it runs, which is not their output (a step
``pytest || echo "tests failed"`` must not match "test.*failed" before anything ran): GitHub
Actions' ``##[group]Run ...`` block up to its ``##[endgroup]`` (a block never closed was no echo:
its lines are examined after all), GitLab's ``$ command`` lines and Jenkins' ``+ command`` lines.

Signatures (what grouping compares): the failing test ids of a test failure (pytest, Go, Jest,
Gradle, Maven, cargo, RSpec, Playwright, dotnet, PHPUnit), else the first evidence line, else the
first error line, else the job's last own line, normalised (times, UUIDs, absolute paths, hashes
and numbers replaced; relative paths such as ``src/money.ts`` kept).

How a big log stays fast and small: the log is read in blocks of ``CHUNK_BYTES`` and never held
whole. From each pattern the classifier derives the words every matching line must contain
(:func:`literal_groups`: a run of literal characters, one of a branch's words...). One RE2 search
(a DFA: linear time, one pass) over each block finds the lines holding the best word of any rule
still looking; colour codes may sit inside a word where tools put them, between a letter and
anything else (Maven's ``[ESC[1;31mERROR ESC[m]``). Only those lines are decoded, cleaned, checked
for every word group of a rule (an RE2 set) and tried against the Python patterns. A rule whose
pattern has no certain word makes every line a candidate: correct, slower. A rule stops being
looked for once it has ``MAX_EVIDENCE`` lines. Line numbers come from counting newlines.
"""

from __future__ import annotations

import copy
import fnmatch
import functools
import hashlib
import re
import re._constants as _sre
import re._parser as _sre_parser  # the stdlib's own parser of ``re`` patterns (literal words)
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any, BinaryIO

import re2

from escalation.models import PROTECTED_SEVERITY, SEVERITY, ClassificationRule, FailureType
from portal.redaction import redact_text

MAX_LINE_CHARS = 2_000  # longer lines are cut before matching (minified bundles, base64 blobs)
EXCERPT_LINES = 40  # the log's tail kept as the excerpt when no line is evidence
CONTEXT_LINES = 3  # lines kept before and after each evidence line
MAX_CONTEXT_LINES = 200  # the excerpt around evidence, at most
MAX_EVIDENCE = 5  # evidence lines kept per matching rule
MAX_FAILING_TESTS = 50
REBUILD_AFTER = 256  # candidate lines seen after a rule retired, before the search drops it
MAX_ECHO_LINES = 500  # a "##[group]Run" block longer than this is taken for output
CHUNK_BYTES = 4 << 20  # a block of the log: large enough for RE2 to run at full speed
# A line longer than this is kept by its head only; the rest is skipped up to its newline. The
# slack beyond MAX_LINE_CHARS lets redaction see a token that straddles the cut.
MAX_LINE_BYTES = 4 * MAX_LINE_CHARS + 1024


@dataclass(frozen=True)
class Evidence:
    line: int  # 1-based line number in the log
    text: str  # redacted

    def as_dict(self) -> dict[str, int | str]:
        return {"line": self.line, "text": self.text}


@dataclass(frozen=True)
class Classification:
    failure_type: str
    rule_id: int | None = None
    rule_name: str = ""
    evidence: list[Evidence] = field(default_factory=list)
    excerpt: str = ""
    signature: str = ""
    failing_tests: list[str] = field(default_factory=list)
    log_bytes: int = 0
    log_lines: int = 0

    def as_dict(self) -> dict:
        return {
            "failure_type": self.failure_type,
            "rule": self.rule_name or None,
            "rule_id": self.rule_id,
            "evidence": [item.as_dict() for item in self.evidence],
            "signature": self.signature,
            "failing_tests": self.failing_tests,
            "log_bytes": self.log_bytes,
            "log_lines": self.log_lines,
        }


# --- literal words of a pattern: what the prefilter searches for ----------------------------------

_ZERO_WIDTH = {_sre.AT, _sre.ASSERT, _sre.ASSERT_NOT}
_REPEATS = {_sre.MAX_REPEAT, _sre.MIN_REPEAT, _sre.POSSESSIVE_REPEAT}


def literals_of(pattern: str) -> tuple[str, ...]:
    """Words one of which every line that ``pattern`` matches contains (compared ignoring case);
    ``()`` when the pattern has none, and then every line must be tried.

    Read from the pattern's parse tree: a run of literal characters is required, so is one of
    the alternatives' words when each alternative has one, and the content of a group repeated
    at least once. Of the required sets the one whose shortest word is longest wins: the block
    search looks for it. Colour codes between words do not hide a word (see ``_spaced``).
    """
    groups = literal_groups(pattern)
    return groups[0] if groups else ()


@functools.lru_cache(maxsize=1024)
def literal_groups(pattern: str) -> tuple[tuple[str, ...], ...]:
    """Every set of words that ``pattern`` requires (one word of each), the best first: a
    candidate line that lacks one of them cannot match, and its pattern is not tried."""
    try:
        parsed = _sre_parser.parse(pattern, re.IGNORECASE)
    except (re.error, RecursionError, OverflowError):
        return ()
    groups = sorted(_groups(list(parsed)), key=_score, reverse=True)
    return tuple(tuple(words) for words in groups)


def _score(words: list[str] | None) -> tuple[int, int]:
    if not words:
        return (-1, 0)
    return (min(len(word) for word in words), -len(words))


def _words(candidates: list[str]) -> list[str] | None:
    """A required set as searched: None when a blank literal (no use) is among them, and a word
    that contains another dropped (the shorter one finds it)."""
    if not candidates or any(not candidate.strip() for candidate in candidates):
        return None
    lowered = {candidate.lower(): candidate for candidate in candidates}
    return sorted(
        word
        for key, word in lowered.items()
        if not any(other != key and other in key for other in lowered)
    )


def _required(items: list) -> list[str] | None:
    return max(_groups(items), key=_score, default=None)


def _groups(items: list) -> list[list[str]]:
    groups: list[list[str]] = []
    run: list[str] = []

    def add(candidates: list[str] | None) -> None:
        if candidates and (words := _words(candidates)):
            groups.append(words)

    def end_run() -> None:
        if run:
            add(["".join(run)])
            run.clear()

    for op, av in items:
        if op is _sre.LITERAL:
            run.append(chr(av))
            continue
        if op is _sre.IN and len(av) == 1 and av[0][0] is _sre.LITERAL:
            run.append(chr(av[0][1]))
            continue
        if op in _ZERO_WIDTH:  # anchors and lookarounds consume nothing: the run goes on
            continue
        end_run()
        if op is _sre.SUBPATTERN:
            add(_required(list(av[3])))
        elif op is _sre.ATOMIC_GROUP:
            add(_required(list(av)))
        elif op is _sre.BRANCH:
            alternatives = [_required(list(branch)) for branch in av[1]]
            if all(alternatives):
                add([word for words in alternatives for word in words])
        elif op in _REPEATS and av[0] >= 1:
            add(_required(list(av[2])))
    end_run()
    return groups


def pattern_problems(pattern: str) -> list[str]:
    """What is wrong with a rule's pattern, for whoever writes one (the admin, a review): it does
    not compile; it nests quantifiers (catastrophic backtracking on a long line); it has no
    literal word of 4 bytes that the block search can look for (every line will be tried)."""
    try:
        parsed = _sre_parser.parse(pattern, re.IGNORECASE)
    except (re.error, RecursionError, OverflowError) as exc:
        return [f"not a valid regular expression: {exc}"]
    problems = []
    if _nested_repeat(list(parsed)):
        problems.append(
            "a repeated group holds another repetition, e.g. (\\w+\\s?)*: it can take seconds "
            "on one long line"
        )
    words = literals_of(pattern)
    if not words or min(len(word.encode()) for word in words) < 4:
        problems.append(
            "no literal word of 4 or more characters that every match contains: every line of "
            "every log will be tried against it"
        )
    return problems


def _nested_repeat(items: list, inside: bool = False) -> bool:
    for op, av in items:
        if op in _REPEATS:
            repeats = av[1] > 1
            if (repeats and inside) or _nested_repeat(list(av[2]), inside or repeats):
                return True
            continue
        if op is _sre.SUBPATTERN:
            children = [av[3]]
        elif op is _sre.ATOMIC_GROUP:
            children = [av]
        elif op is _sre.BRANCH:
            children = av[1]
        elif op in (_sre.ASSERT, _sre.ASSERT_NOT):
            children = [av[1]]
        else:
            children = []
        if any(_nested_repeat(list(child), inside) for child in children):
            return True
    return False


# --- rules ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class CompiledRule:
    id: int | None
    name: str
    failure_type: str
    position: int
    exit_code: int | None
    pattern: re.Pattern[str] | None
    glob: str
    literals: tuple[str, ...] | None = None  # None: derived from the pattern (literals_of)

    def __post_init__(self) -> None:
        if self.literals is None:
            words = literals_of(self.pattern.pattern) if self.pattern is not None else ()
            object.__setattr__(self, "literals", words)

    @classmethod
    def of(cls, rule: ClassificationRule) -> CompiledRule:
        return cls(
            id=rule.pk,
            name=rule.name,
            failure_type=rule.failure_type,
            position=rule.position,
            exit_code=rule.exit_code,
            pattern=re.compile(rule.log_pattern, re.IGNORECASE) if rule.log_pattern else None,
            glob=rule.changed_file_glob,
        )


def load_rules() -> list[CompiledRule]:
    return [CompiledRule.of(rule) for rule in ClassificationRule.objects.filter(enabled=True)]


# --- reading the log ------------------------------------------------------------------------------


def lines_of(stream: BinaryIO | Iterable[bytes] | Iterable[str]) -> Iterator[str]:
    """Decoded lines of a byte stream (a file, an upload, chunks), a few MB in memory at most."""
    for data, end in _line_blocks(_Blocks(stream)):
        position = 0
        while position < end:
            stop = data.find(b"\n", position, end)
            yield data[position:stop].decode("utf-8", errors="replace").rstrip("\r")
            position = stop + 1


class _Blocks:
    """The log as byte blocks, whatever it came as; counts the bytes read."""

    def __init__(self, source: BinaryIO | Iterable[bytes] | Iterable[str]) -> None:
        self.source = source
        self.bytes_read = 0

    def __iter__(self) -> Iterator[bytes]:
        source = self.source
        if isinstance(source, str | bytes):  # a whole log in one piece, not an iterable of them
            source = [source]
        if hasattr(source, "read"):
            reader = source

            def reads() -> Iterator[bytes | str]:
                while block := reader.read(CHUNK_BYTES):
                    yield block

            items: Iterable[bytes | str] = reads()
        else:
            items = source
        gathered: list[bytes] = []
        size = 0
        for item in items:
            block = (
                item.encode("utf-8", errors="surrogateescape") if isinstance(item, str) else item
            )
            self.bytes_read += len(block)
            # Many small items (lines of a text file) are gathered into one block.
            gathered.append(block)
            size += len(block)
            if size >= CHUNK_BYTES:
                yield gathered[0] if len(gathered) == 1 else b"".join(gathered)
                gathered, size = [], 0
        if gathered:
            yield b"".join(gathered)


def _line_blocks(blocks: Iterable[bytes]) -> Iterator[tuple[bytes, int]]:
    """``(data, end)``: ``data[:end]`` holds whole lines, each ending with a newline; the last
    pair may carry a final line without one after ``end``. A line longer than ``MAX_LINE_BYTES``
    keeps its head only (it still counts as one line)."""
    pending = b""
    skipping = False  # inside an over-long line whose head is in ``pending``
    for block in blocks:
        if skipping:
            newline = block.find(b"\n")
            if newline < 0:
                continue
            block = block[newline:]
            skipping = False
        data = pending + block if pending else block
        end = data.rfind(b"\n") + 1
        if end == 0:
            pending = data
            if len(pending) > MAX_LINE_BYTES:
                pending, skipping = pending[:MAX_LINE_BYTES], True
            continue
        yield data, end
        pending = data[end:]
        if len(pending) > MAX_LINE_BYTES:
            pending, skipping = pending[:MAX_LINE_BYTES], True
    if pending:
        yield pending + b"\n", len(pending) + 1


# --- cleaning a line -------------------------------------------------------------------------

# CSI sequences (colours, erase line), OSC sequences (hyperlinks, titles), two-byte escapes;
# the same for text and for the raw blocks the prefilter searches, and never across a line.
_ANSI_PATTERN = r"\x1b(?:\[[0-9;?]*[ -/]*[@-~]|\][^\x07\x1b\n]*(?:\x07|\x1b\\)?|[@-Z\\-_])"
_ANSI = re.compile(_ANSI_PATTERN)
_CI_PREFIX = re.compile(
    r"^(?:\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d+)?Z (?:\d\d[OE]\+? )?"  # GitHub Actions, GitLab
    r"|\[\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d+)?Z\] )"  # Jenkins timestamper
)


def clean_line(line: str) -> str:
    """The line a pattern sees: colour codes and the CI's timestamp removed, and of a line a
    carriage return rewrote only its last state."""
    if "\x1b" in line:
        line = _ANSI.sub("", line)
    if "\r" in line:
        line = line.rstrip("\r").rsplit("\r", 1)[-1]
    prefix = _CI_PREFIX.match(line)
    return line[prefix.end() :] if prefix else line


# --- signatures: what makes two failures "the same" ------------------------------------------

_FAILING_TEST = [
    re.compile(r"^(?:FAILED|ERROR) (\S+::\S+)"),  # pytest short summary
    re.compile(r"^\s*--- FAIL: (\S+)"),  # go test
    re.compile(r"^\s*● (?!Test suite failed to run)(.+?)\s*$"),  # Jest
    re.compile(r"^(\S+ > \S.*?) FAILED$"),  # Gradle
    re.compile(r"^\[ERROR\]\s+([\w$.]+\.[\w$]+):[0-9]+\b"),  # Maven Surefire's summary
    re.compile(r"^test (\S+) \.\.\. FAILED$"),  # cargo test
    re.compile(r"^rspec \./\S+ # (.+?)\s*$"),  # RSpec
    re.compile(r"^\s*[0-9]+\) (\[\w+\] › .+?)[\s─]*$"),  # Playwright  # noqa: RUF001
    re.compile(r"^\s*Failed (\S+) \["),  # dotnet test
    re.compile(r"^[0-9]+\) (\S+::\S+)$"),  # PHPUnit
]
# A CI's echo of the commands it runs is not their output: a step `pytest || echo "tests
# failed"` must not match "test.*failed" before it ran. GitHub Actions prints a step's script
# between "##[group]Run ..." and "##[endgroup]"; GitLab prefixes commands with "$ ", Jenkins'
# `sh` (set -x) with "+ ".
_ECHO_START = re.compile(r"^##\[group\]Run ")
_ECHO_END = re.compile(r"^##\[endgroup\]")
_ECHO_PREFIXES = ("$ ", "+ ")
# What the CI says about the job rather than what the job said: neither an error line of its
# own nor a signature (every failure of a repository would share it).
_EXIT_TRAILER = re.compile(
    r"^(?:##\[error\]Process completed with exit code|ERROR: Job failed|"
    r"ERROR: script returned exit code)"
)
_CI_BOOKKEEPING = re.compile(r"^(?:##\[(?:end)?group\]|\[Pipeline\]|Finished: FAILURE)")
_ERROR_LINE = re.compile(r"\b(error|failed|failure|fatal|exception|panic)\b", re.IGNORECASE)
_NOISE = [
    (_ANSI, ""),  # colours
    (re.compile(r"^\d{4}-\d\d-\d\dT[\d:.]+Z?\s*"), ""),  # GitHub Actions line timestamps
    (re.compile(r"\b\d{4}-\d\d-\d\d[T ][\d:.]+(?:Z|[+-]\d\d:?\d\d)?\b"), "<time>"),
    (re.compile(r"\b\d\d:\d\d:\d\d(?:\.\d+)?\b"), "<time>"),
    (re.compile(r"\b[0-9a-fA-F]{8}-(?:[0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}\b"), "<uuid>"),
    # Absolute paths (workspaces, temp dirs, caches differ between runners); a relative path
    # such as src/money.ts names the failing place and stays.
    (re.compile(r"(?<![\w.])(?:[A-Za-z]:)?(?:[\\/][\w.@+-]+){2,}"), "<path>"),
    (re.compile(r"\b[0-9a-f]{7,64}\b"), "<hash>"),
    (re.compile(r"0x[0-9a-fA-F]+"), "<hex>"),
    (re.compile(r"\d+"), "<n>"),
    (re.compile(r"\s+"), " "),
]


def normalise(line: str) -> str:
    """A line with what varies between runs (numbers, paths, hashes, times) replaced."""
    for pattern, replacement in _NOISE:
        line = pattern.sub(replacement, line)
    return line.strip()[:300]


def fingerprint_of(failure_type: str, signature: str) -> str:
    return hashlib.sha256(f"{failure_type}\x1f{signature}".encode()).hexdigest()


# --- the classifier ------------------------------------------------------------------------------


def _matches_files(glob: str, changed_files: list[str]) -> bool:
    return any(fnmatch.fnmatch(path, glob) for path in changed_files)


@dataclass
class _Watcher:
    """Something looked for in candidate lines: a rule, a failing-test id, the first error."""

    pattern: re.Pattern[str]
    rule_index: int | None = None  # into the eligible rules
    kind: str = "rule"  # rule | test | error | echo
    active: bool = True
    groups: tuple[tuple[str, ...], ...] = ()  # literal_groups(pattern), the searched one first
    needs: tuple[frozenset[int], ...] = ()  # the groups as indices into the word set

    def __post_init__(self) -> None:
        self.groups = literal_groups(self.pattern.pattern)


@dataclass(frozen=True)
class _Prototype:
    """A rule set's built search (:meth:`_Scan._build`), by watcher index."""

    watchers: tuple[_Watcher, ...]
    every_line: tuple[int, ...]
    watching: tuple[int, ...]
    search: Any
    word_set: Any


# Built searches by rule set (the tuple of eligible patterns): a few sets in practice, one per
# exit code that has rules of its own.
_PROTOTYPES: dict[tuple[Any, ...], _Prototype] = {}
MAX_PROTOTYPES = 32


class _Scan:
    """One pass over the log's blocks: candidate lines by literal search, then the patterns."""

    def __init__(self, rules: list[CompiledRule]) -> None:
        # The first scan of a rule set builds the search (seconds' worth of work for ~100 rules
        # over many logs); later scans of the same set start from copies of its watchers.
        key = tuple((index, rule.pattern) for index, rule in enumerate(rules) if rule.pattern)
        prototype = _PROTOTYPES.get(key)
        if prototype is None:
            self.watchers = [
                _Watcher(rule.pattern, index) for index, rule in enumerate(rules) if rule.pattern
            ]
            self.watchers += [_Watcher(pattern, kind="test") for pattern in _FAILING_TEST]
            self.watchers.append(_Watcher(_ERROR_LINE, kind="error"))
            # The boundaries of GitHub Actions' echo of a step's script must be seen to skip it.
            self.watchers += [
                _Watcher(pattern, kind="echo") for pattern in (_ECHO_START, _ECHO_END)
            ]
        # Candidate lines inside an open "##[group]Run" block wait here: an echo if the block
        # closes, the job's output if it does not (a log cut short, a hand-written one).
        self.echo_from: int | None = None
        self.echo_pending: list[tuple[int, str]] = []
        self.matched: dict[int, list[Evidence]] = {}
        self.failing_tests: list[str] = []
        self.first_error = ""
        self.lines = 0  # lines before the current block
        self.context: dict[int, str] = {}
        self.after = 0  # context lines still to take after the last evidence line
        self.tail: list[tuple[int, bytes]] = []  # the last lines read, numbered
        if prototype is None:
            self._build()
            if len(_PROTOTYPES) >= MAX_PROTOTYPES:
                _PROTOTYPES.pop(next(iter(_PROTOTYPES)))
            _PROTOTYPES[key] = self._prototype()
        else:
            self._start_from(prototype)

    def _prototype(self) -> _Prototype:
        """The freshly built state, before any line was read, to start later scans from."""
        index = {id(watcher): number for number, watcher in enumerate(self.watchers)}
        return _Prototype(
            tuple(copy.copy(watcher) for watcher in self.watchers),
            tuple(index[id(watcher)] for watcher in self.every_line),
            tuple(index[id(watcher)] for watcher in self.watching),
            self.search,
            self.word_set,
        )

    def _start_from(self, prototype: _Prototype) -> None:
        self.watchers = [copy.copy(watcher) for watcher in prototype.watchers]
        self.every_line = [self.watchers[number] for number in prototype.every_line]
        self.watching = [self.watchers[number] for number in prototype.watching]
        self.search, self.word_set = prototype.search, prototype.word_set
        self.plans = {}
        self.dirty, self.wasted = False, 0

    def _build(self) -> None:
        """Points the search at the literals of the watchers still active."""
        active = [watcher for watcher in self.watchers if watcher.active]
        self.every_line = [watcher for watcher in active if not watcher.groups]
        searched: dict[str, None] = {}  # each watcher's best group: what the block search finds
        known: dict[str, int] = {}  # and every group worth checking on a candidate line
        for watcher in active:
            for number, group in enumerate(watcher.groups):
                if number == 0 or min(len(word) for word in group) >= 3:
                    for word in group:
                        known.setdefault(word.lower(), len(known))
                        if number == 0:
                            searched.setdefault(word.lower())
        for watcher in active:
            watcher.needs = tuple(
                frozenset(known[word.lower()] for word in group)
                for group in watcher.groups
                if all(word.lower() in known for word in group)
            )
        self.watching = [watcher for watcher in active if watcher.kind != "echo"]
        finder, self.word_set = _searches(tuple(searched), tuple(known), bool(self.every_line))
        self.search = None if finder is None else finder._regexp.Match
        self.plans: dict[frozenset[int], list[_Watcher]] = {}
        self.dirty, self.wasted = False, 0

    def _plan(self, present: frozenset[int]) -> list[_Watcher]:
        """The watchers worth trying on a line that holds these words: all their groups found."""
        plan = self.plans.get(present)
        if plan is None:
            plan = [
                watcher
                for watcher in self.watching
                if not watcher.groups or all(group & present for group in watcher.needs)
            ]
            self.plans[present] = plan
        return plan

    def feed(self, data: bytes, end: int) -> None:
        if self.after:  # context lines after an evidence line at the end of the last block
            self._take_after(data, 0, end, self.lines + 1)
        counted, lines = 0, self.lines  # the newlines in data[:counted] are counted in ``lines``
        position = 0
        while self.search is not None and position < end:
            # RE2's own call (the wrapper's search builds a match object per call): the span of
            # the first word found, or (-1, -1).
            hit = self.search(_UNANCHORED, data, position, end)[0][0]
            if hit < 0:
                break
            start = data.rfind(b"\n", 0, hit) + 1
            stop = data.find(b"\n", hit, end)
            lines += data.count(b"\n", counted, start)
            counted = start
            number = lines + 1
            if self._look_at(number, data[start : min(stop, start + MAX_LINE_BYTES)]):
                self._take_before(data, start, number)
                self.after = CONTEXT_LINES
                self._take_after(data, stop + 1, end, number + 1)
            position = stop + 1
            if self.dirty and self.wasted > REBUILD_AFTER:
                self._build()
        lines += data.count(b"\n", counted, end)
        self._keep_tail(data, end, lines)
        self.lines = lines

    def _look_at(self, number: int, raw: bytes) -> bool:
        """Tries the watchers on one candidate line; True when it is evidence of a rule."""
        text = clean_line(raw.decode("utf-8", errors="replace"))
        if self.dirty:
            self.wasted += 1
        if self.echo_from is not None:
            if _ECHO_END.match(text):
                self.echo_from, self.echo_pending = None, []
                return False
            if number - self.echo_from > MAX_ECHO_LINES or _ECHO_START.match(text):
                self.end_echo()
            else:
                if len(self.echo_pending) < MAX_ECHO_LINES:
                    self.echo_pending.append((number, text))
                return False
        if _ECHO_START.match(text):
            self.echo_from = number
            return False
        if text.startswith(_ECHO_PREFIXES):
            return False
        return self._examine(number, text)

    def end_echo(self) -> None:
        """An unclosed "##[group]Run" block was no echo: its lines are examined after all."""
        pending, self.echo_from, self.echo_pending = self.echo_pending, None, []
        for number, text in pending:
            self._examine(number, text)

    def _examine(self, number: int, text: str) -> bool:
        line = text[:MAX_LINE_CHARS]
        present = frozenset(self.word_set.Match(line) or ()) if self.word_set else frozenset()
        evidence = False
        for watcher in self._plan(present):
            if not watcher.active:
                continue
            found = watcher.pattern.search(line)
            if found is None:
                continue
            if watcher.kind == "rule":
                kept = self.matched.setdefault(watcher.rule_index, [])
                kept.append(Evidence(number, _redacted(text)))
                evidence = True
                if len(kept) >= MAX_EVIDENCE:
                    watcher.active, self.dirty = False, True
            elif watcher.kind == "test":
                test = found.group(1)
                if test not in self.failing_tests:
                    self.failing_tests.append(test)
                if len(self.failing_tests) >= MAX_FAILING_TESTS:
                    for other in self.watchers:
                        if other.kind == "test":
                            other.active, self.dirty = False, True
            elif not _EXIT_TRAILER.match(line):
                self.first_error = line
                watcher.active, self.dirty = False, True
        if evidence:
            self._keep(number, _redacted(text))
        return evidence

    def _keep(self, number: int, shown: str) -> None:
        if len(self.context) < MAX_CONTEXT_LINES:
            self.context.setdefault(number, shown)

    def _take_before(self, data: bytes, start: int, number: int) -> None:
        previous: list[tuple[int, bytes]] = []
        stop = start
        while len(previous) < CONTEXT_LINES and stop > 0:
            begin = data.rfind(b"\n", 0, stop - 1) + 1
            previous.append((number - len(previous) - 1, data[begin : stop - 1]))
            stop = begin
        if len(previous) < CONTEXT_LINES and stop == 0:  # the lines before are in the last block
            wanted = CONTEXT_LINES - len(previous)
            previous += [item for item in reversed(self.tail)][:wanted]
        for line_number, raw in reversed(previous):
            if line_number > 0:
                self._keep(line_number, _shown(raw))

    def _take_after(self, data: bytes, position: int, end: int, number: int) -> None:
        """Keeps up to ``self.after`` lines from ``position`` (line ``number``); what the block
        does not hold is taken from the next one."""
        while self.after and position < end:
            stop = data.find(b"\n", position, end)
            self._keep(number, _shown(data[position : min(stop, position + MAX_LINE_BYTES)]))
            position, number = stop + 1, number + 1
            self.after -= 1

    def _keep_tail(self, data: bytes, end: int, lines: int) -> None:
        tail: list[tuple[int, bytes]] = []
        stop = end
        while len(tail) < EXCERPT_LINES and stop > 0:
            begin = data.rfind(b"\n", 0, stop - 1) + 1
            tail.append((lines - len(tail), data[begin : stop - 1][:MAX_LINE_BYTES]))
            stop = begin
        tail.reverse()
        if len(tail) < EXCERPT_LINES:
            tail = self.tail[max(0, len(self.tail) - (EXCERPT_LINES - len(tail))) :] + tail
        self.tail = tail


def _redacted(text: str) -> str:
    """Redacted, then cut: a token that straddles the cut is still recognised whole."""
    return redact_text(text)[:MAX_LINE_CHARS]


def _shown(raw: bytes) -> str:
    return _redacted(clean_line(raw.decode("utf-8", errors="replace")))


_RE2_OPTIONS = re2.Options()
_RE2_OPTIONS.case_sensitive = False
# The DFA's budget: below it RE2 falls back to a far slower NFA on colour-heavy logs.
_RE2_OPTIONS.max_mem = 32 << 20


@functools.lru_cache(maxsize=8)
def _searches(
    searched: tuple[str, ...], known: tuple[str, ...], every_line: bool
) -> tuple[re2._Regexp | None, re2.Set | None]:
    """The block search for ``searched`` (RE2, compiled once per set of words: the rules change
    rarely) and the set that tells which of ``known`` a candidate line holds."""
    finder = word_set = None
    if every_line:
        finder = re2.compile(r"(?m)^", _RE2_OPTIONS)
    elif searched:
        finder = re2.compile("|".join(_spaced(word) for word in searched), _RE2_OPTIONS)
    if known:
        word_set = re2.Set.SearchSet(_RE2_OPTIONS)
        for word in known:
            word_set.Add(re2.escape(word))
        word_set.Compile()
    return finder, word_set


_UNANCHORED = re2._Anchor.UNANCHORED


def _spaced(word: str) -> str:
    """``word`` for RE2, with colour codes allowed where tools put them: between a letter or
    digit and anything else ("\\x1b[31mFAILED\\x1b[0m tests", "[\\x1b[1;31mERROR\\x1b[m]")."""
    pieces = []
    for index, char in enumerate(word):
        if index and not (word[index - 1].isalnum() and char.isalnum()):
            pieces.append(_ANSI_GAP)
        pieces.append(re2.escape(char))
    return "".join(pieces)


_ANSI_GAP = f"(?:{_ANSI_PATTERN})*"


def classify(
    log: BinaryIO | Iterable[bytes] | Iterable[str],
    exit_code: int | None = None,
    changed_files: list[str] | None = None,
    *,
    rules: list[CompiledRule] | None = None,
) -> Classification:
    """Classifies one failed job from its log stream, exit code and changed files."""
    eligible, scan, blocks = _scan(log, exit_code, changed_files, rules)
    matched = _matched(eligible, scan)
    chosen_index = _choose(eligible, matched)
    if chosen_index is None:
        failure_type, rule, evidence = FailureType.UNKNOWN.value, None, []
    else:
        rule = eligible[chosen_index]
        failure_type, evidence = rule.failure_type, matched[chosen_index]
    if scan.context:
        excerpt_lines = sorted(scan.context.items())
    else:
        excerpt_lines = [(number, _shown(raw)) for number, raw in scan.tail]
    excerpt = "\n".join(f"{number:>6}  {text}" for number, text in excerpt_lines)
    return Classification(
        failure_type=failure_type,
        rule_id=rule.id if rule else None,
        rule_name=rule.name if rule else "",
        evidence=evidence,
        excerpt=redact_text(excerpt),
        signature=redact_text(
            _signature(
                failure_type,
                evidence,
                scan.failing_tests,
                scan.first_error or _last_words(scan.tail),
            )
        )[:500],
        failing_tests=[redact_text(test) for test in scan.failing_tests],
        log_bytes=blocks.bytes_read,
        log_lines=scan.lines,
    )


@dataclass(frozen=True)
class RuleMatch:
    rule_id: int | None
    rule_name: str
    failure_type: str
    position: int
    evidence: list[Evidence]


def matching_rules(
    log: BinaryIO | Iterable[bytes] | Iterable[str],
    exit_code: int | None = None,
    changed_files: list[str] | None = None,
    *,
    rules: list[CompiledRule] | None = None,
) -> list[RuleMatch]:
    """Every rule that matches, in rule order, with its evidence: what :func:`classify` chose
    from (for whoever writes a rule and wants to see why another one won)."""
    eligible, scan, _ = _scan(log, exit_code, changed_files, rules)
    return [
        RuleMatch(rule.id, rule.name, rule.failure_type, rule.position, evidence)
        for index, evidence in sorted(_matched(eligible, scan).items())
        for rule in [eligible[index]]
    ]


def _scan(
    log: BinaryIO | Iterable[bytes] | Iterable[str],
    exit_code: int | None,
    changed_files: list[str] | None,
    rules: list[CompiledRule] | None,
) -> tuple[list[CompiledRule], _Scan, _Blocks]:
    rules = load_rules() if rules is None else rules
    changed_files = changed_files or []
    # Rules whose other criteria already fail need not look at the log at all.
    eligible = [
        rule
        for rule in rules
        if (rule.exit_code is None or rule.exit_code == exit_code)
        and (not rule.glob or _matches_files(rule.glob, changed_files))
    ]
    scan = _Scan(eligible)
    blocks = _Blocks(log)
    for data, end in _line_blocks(blocks):
        scan.feed(data, end)
    scan.end_echo()
    return eligible, scan, blocks


def _matched(eligible: list[CompiledRule], scan: _Scan) -> dict[int, list[Evidence]]:
    matched = dict(scan.matched)
    for index, rule in enumerate(eligible):
        if rule.pattern is None:  # exit code and/or glob only: matched already
            matched[index] = []
    return matched


def _signature(
    failure_type: str, evidence: list[Evidence], failing_tests: list[str], first_error: str
) -> str:
    """What stays the same when the same failure happens again: the failing test ids of a test
    failure, else the first evidence line, else the first error line, normalised."""
    if failing_tests and (failure_type == FailureType.TEST_FAILURE or not evidence):
        return "tests: " + ", ".join(sorted(failing_tests)[:20])
    if evidence:
        return normalise(evidence[0].text)
    return normalise(first_error)


def _last_words(tail: list[tuple[int, bytes]]) -> str:
    """The job's own last line: before the CI's closing "exit code" line, skipping the CI's
    bookkeeping (groups, GitLab's sections, Jenkins' [Pipeline] lines) and blank lines."""
    # Lines are redacted only once chosen: redacting the whole tail cost more than the search.
    lines = [(raw, clean_line(raw.decode("utf-8", errors="replace"))) for _, raw in tail]
    closing = [index for index, (_, text) in enumerate(lines) if _EXIT_TRAILER.match(text)]
    if closing:
        lines = lines[: closing[-1]]
    for raw, text in reversed(lines):
        if text.strip() and not raw.startswith(b"section_") and not _CI_BOOKKEEPING.match(text):
            return _redacted(text)
    return ""


def _choose(rules: list[CompiledRule], matched: dict[int, list[Evidence]]) -> int | None:
    if not matched:
        return None
    protected = [
        index
        for index in matched
        if SEVERITY.get(rules[index].failure_type, 0) >= PROTECTED_SEVERITY
    ]
    if protected:
        return max(
            protected,
            key=lambda index: (SEVERITY[rules[index].failure_type], -rules[index].position, -index),
        )
    return min(matched, key=lambda index: (rules[index].position, index))
