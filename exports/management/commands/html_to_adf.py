"""``manage.py html_to_adf``: converts an HTML file to Atlassian Document Format and prints the JSON.

    python manage.py html_to_adf description.html
    pbpaste | python manage.py html_to_adf - --indent 2
    python manage.py html_to_adf page.html --media screenshot.png=3f1c...:my-collection --report

The input must be UTF-8 (a byte order mark is allowed). Nothing is stored or sent; the output is
what the export sends to Jira as a ticket's description (``exports.adf``, docs/exports-adf.md).
"""

from __future__ import annotations

import json
import sys
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from exports.adf import MediaRef, convert_html


class Command(BaseCommand):
    help = "Converts HTML (a file, or - for stdin) to an ADF document and prints it as JSON."
    # call_command(..., stdin=stream) reads from that stream instead of sys.stdin (tests).
    stealth_options = ("stdin",)
    # Pure conversion: no database, no settings beyond Django's own; it runs anywhere.
    requires_system_checks: list[str] = []

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("file", metavar="FILE", help="the HTML file; - for stdin")
        parser.add_argument(
            "--indent", type=int, default=None, metavar="N", help="pretty-print with N spaces"
        )
        parser.add_argument(
            "--media",
            action="append",
            default=[],
            metavar="SRC=ID[:COLLECTION]",
            help="an <img> src (or file name) already uploaded to Jira's media store (repeatable)",
        )
        parser.add_argument(
            "--report",
            action="store_true",
            help="print the figures of the ADF test (size, character reduction, warnings) too",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        path: str = options["file"]
        media = dict(_media_option(value) for value in options["media"])
        html = _decode(_read(path, options.get("stdin")), path)
        result = convert_html(html, media=media)
        if options["report"]:
            output: dict[str, Any] = {
                "doc": result.doc,
                "size_bytes": result.size_bytes,
                "html_chars": result.html_chars,
                "character_reduction": result.character_reduction,
                "text_chars_in": result.text_chars_in,
                "text_chars_out": result.text_chars_out,
                "text_kept": result.text_kept,
                "warnings": list(result.warnings),
            }
        else:
            output = result.doc
        if options["indent"] is None and not options["report"]:
            self.stdout.write(result.json)
        else:
            self.stdout.write(json.dumps(output, ensure_ascii=False, indent=options["indent"]))


def _read(path: str, stdin: Any) -> bytes | str:
    if path == "-":
        stream = stdin if stdin is not None else sys.stdin
        source = getattr(stream, "buffer", stream)
        try:
            return source.read()
        except UnicodeDecodeError as exc:  # a text stream that decodes as it reads
            raise CommandError(f"standard input is not UTF-8 text: {exc.reason}") from exc
    try:
        with open(path, "rb") as html_file:
            return html_file.read()
    except OSError as exc:
        reason = exc.strerror or exc.__class__.__name__
        raise CommandError(f"cannot read {path!r}: {reason}") from exc


def _decode(data: bytes | str, path: str) -> str:
    if isinstance(data, str):
        return data
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        where = "standard input" if path == "-" else repr(path)
        raise CommandError(
            f"{where} is not UTF-8 text: byte 0x{data[exc.start]:02x} at offset {exc.start}"
        ) from exc


def _media_option(value: str) -> tuple[str, MediaRef]:
    src, equals, target = value.partition("=")
    media_id, _, collection = target.partition(":")
    if not equals or not src or not media_id:
        raise CommandError(f"--media takes SRC=ID[:COLLECTION], not {value!r}")
    return src, MediaRef(id=media_id, collection=collection)
