"""``manage.py html_to_adf``: a file or stdin in, the ADF JSON out; clear errors otherwise."""

from __future__ import annotations

import io
import json
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command

from exports.adf import html_to_adf
from tests.exports.adf_support import assert_valid

REPO_ROOT = Path(__file__).resolve().parents[2]
HTML = "<h1>Plan</h1><p>Ship the <b>export</b> &amp; retry</p><ul><li>one</li></ul>"


def run(*args, stdin=None) -> str:
    out = io.StringIO()
    call_command("html_to_adf", *args, stdout=out, stdin=stdin)
    return out.getvalue()


def test_a_file_prints_its_adf_as_compact_json(tmp_path):
    source = tmp_path / "ticket.html"
    source.write_text(HTML, encoding="utf-8")
    output = run(str(source))
    assert json.loads(output) == html_to_adf(HTML)
    assert_valid(json.loads(output))
    assert output.startswith('{"type":"doc","version":1,')


@pytest.mark.parametrize(
    "stdin",
    [io.StringIO(HTML), io.TextIOWrapper(io.BytesIO(HTML.encode("utf-8")), encoding="utf-8")],
    ids=["text", "bytes"],
)
def test_dash_reads_standard_input(stdin):
    assert json.loads(run("-", stdin=stdin)) == html_to_adf(HTML)


def test_a_byte_order_mark_is_accepted(tmp_path):
    source = tmp_path / "bom.html"
    source.write_bytes(b"\xef\xbb\xbf<p>caf\xc3\xa9</p>")
    doc = json.loads(run(str(source)))
    assert doc["content"][0]["content"][0]["text"] == "café"


def test_indent_and_report(tmp_path):
    source = tmp_path / "ticket.html"
    source.write_text('<p>see <img src="shot.png" alt="Shot"></p>', encoding="utf-8")
    pretty = run(str(source), "--indent", "2")
    assert pretty.startswith('{\n  "type": "doc"')
    report = json.loads(run(str(source), "--report", "--media", "shot.png=abc-123:col-1"))
    assert report["doc"]["content"][1]["content"][0]["attrs"] == {
        "type": "file",
        "id": "abc-123",
        "collection": "col-1",
        "alt": "Shot",
    }
    assert report["size_bytes"] == len(json.dumps(report["doc"], separators=(",", ":")).encode())
    assert report["html_chars"] == len(source.read_text())
    assert set(report) >= {"character_reduction", "text_chars_in", "text_chars_out", "warnings"}


def test_a_missing_file_is_a_clear_error(tmp_path):
    with pytest.raises(CommandError, match=r"cannot read '.*nope\.html': No such file"):
        run(str(tmp_path / "nope.html"))


def test_a_directory_is_a_clear_error(tmp_path):
    with pytest.raises(CommandError, match="cannot read"):
        run(str(tmp_path))


def test_undecodable_input_is_a_clear_error(tmp_path):
    source = tmp_path / "latin1.html"
    source.write_bytes("<p>caf\xe9</p>".encode("latin-1"))
    with pytest.raises(CommandError, match=r"is not UTF-8 text: byte 0xe9 at offset 6"):
        run(str(source))


def test_undecodable_standard_input_is_a_clear_error():
    stdin = io.TextIOWrapper(io.BytesIO(b"<p>\xff</p>"), encoding="utf-8")
    with pytest.raises(CommandError, match="standard input is not UTF-8 text"):
        run("-", stdin=stdin)


def test_a_malformed_media_option_is_a_clear_error(tmp_path):
    source = tmp_path / "t.html"
    source.write_text("<p>x</p>")
    with pytest.raises(CommandError, match="--media takes SRC=ID"):
        run(str(source), "--media", "shot.png")


def test_the_command_line_exits_non_zero_with_the_message_on_stderr(tmp_path):
    bad = tmp_path / "bad.html"
    bad.write_bytes(b"\xff\xfe<p>")
    manage = [sys.executable, str(REPO_ROOT / "manage.py"), "html_to_adf"]
    failed = subprocess.run([*manage, str(bad)], capture_output=True, text=True, cwd=REPO_ROOT)
    assert failed.returncode != 0
    assert "is not UTF-8 text" in failed.stderr
    assert failed.stdout == ""
    piped = subprocess.run(
        [*manage, "-"], input=HTML, capture_output=True, text=True, cwd=REPO_ROOT, check=True
    )
    assert json.loads(piped.stdout) == html_to_adf(HTML)
