"""Real-world HTML (tests/exports/html_corpus/): every file converts to valid ADF and keeps its text.

The corpus holds what users paste into a ticket: a Confluence export, a GitHub-rendered README,
a Google Docs and a Word paste, HTML e-mails (nested layout tables, Outlook), Jira's own rendered
HTML, a page with scripts, styles and iframes, editor and Markdown output, a Notion export, a Slack
message, broken markup, Unicode, complex tables. The visible text is computed independently of
the converter (Lexbor's own text of the body, with the elements that show no text removed) and
must come out in the same order (images may add their alt text or address around it).
"""

from __future__ import annotations

from pathlib import Path

import pytest
from selectolax.lexbor import LexborHTMLParser

from exports.adf import MediaRef, convert_html
from tests.exports.adf_support import assert_valid, nodes_of_type, texts

CORPUS = Path(__file__).parent / "html_corpus"
FILES = sorted(CORPUS.glob("*.html"))
MEDIA = {"screenshot-review.png": MediaRef(id="5e2b-review", collection="jira-10001")}
INVISIBLE = (
    "script, style, template, noscript, iframe, object, embed, svg, video, audio, head, title, "
    "input"
)


def visible_text(html: str) -> str:
    tree = LexborHTMLParser(html)
    for node in tree.css(INVISIBLE):
        node.decompose()
    return tree.body.text(separator=" ") if tree.body is not None else ""


def is_subsequence(needle: str, haystack: str) -> bool:
    found = iter(haystack)
    return all(char in found for char in needle)


def test_the_corpus_holds_the_kinds_of_html_users_paste():
    assert len(FILES) >= 15


@pytest.mark.parametrize("path", FILES, ids=lambda path: path.stem)
def test_corpus_file_converts_to_valid_adf_and_keeps_its_text(path):
    html = path.read_text(encoding="utf-8")
    result = convert_html(html, media=MEDIA)
    assert_valid(result.doc)
    expected = "".join(visible_text(html).split())
    converted = "".join("".join(texts(result.doc)).split())
    assert expected, "a corpus file without text tests nothing"
    assert is_subsequence(expected, converted), (
        f"text lost in {path.name}: {result.text_chars_in} characters in, "
        f"{result.text_chars_out} out"
    )
    assert result.text_chars_in == len(expected)
    assert result.text_chars_out >= result.text_chars_in


# What each file must become beyond valid ADF and its text (node types and counts).
EXPECTED_NODES = {
    "confluence_export": {"table": 1, "tableHeader": 2, "orderedList": 2, "codeBlock": 1},
    "github_readme": {"table": 1, "tableHeader": 3, "codeBlock": 2, "blockquote": 1},
    "google_docs_paste": {"heading": 1, "bulletList": 2, "table": 1},
    "word_paste": {"table": 1, "tableCell": 4},
    "email_nested_tables": {"table": 1, "tableHeader": 3},
    "jira_rendered": {"heading": 1, "bulletList": 2, "codeBlock": 1, "rule": 1, "table": 1},
    "rich_text_editor": {"orderedList": 2, "codeBlock": 1, "mediaSingle": 1, "blockquote": 1},
    "markdown_rendered": {"table": 1, "bulletList": 6, "rule": 1},
    "slack_export": {"bulletList": 1, "codeBlock": 1, "blockquote": 1},
    "tables_complex": {"table": 1, "tableHeader": 4},
    "scripts_and_iframes": {"heading": 1, "table": 0, "codeBlock": 0},
}


@pytest.mark.parametrize(("stem", "counts"), EXPECTED_NODES.items(), ids=list(EXPECTED_NODES))
def test_corpus_file_keeps_its_structure(stem, counts):
    doc = convert_html((CORPUS / f"{stem}.html").read_text(encoding="utf-8"), media=MEDIA).doc
    found = {node_type: len(nodes_of_type(doc, node_type)) for node_type in counts}
    assert found == counts


def test_scripts_styles_iframes_and_hostile_links_leave_nothing_behind():
    result = convert_html((CORPUS / "scripts_and_iframes.html").read_text(encoding="utf-8"))
    text = " ".join(texts(result.doc))
    for dropped in ("gtag", "display: none", "injected", "does not support", "Flash fallback",
                    "chart label", "template row", "alert"):  # fmt: skip
        assert dropped not in text
    hrefs = [
        mark["attrs"]["href"]
        for node in nodes_of_type(result.doc, "text")
        for mark in node.get("marks", [])
        if mark["type"] == "link"
    ]
    assert all(href.startswith(("https://", "http://", "mailto:")) for href in hrefs)
    assert "Fake link" in text and "Subscribe" in text


def test_google_docs_keeps_real_bold_and_italic_only():
    doc = convert_html((CORPUS / "google_docs_paste.html").read_text(encoding="utf-8")).doc
    marked = {
        node["text"]: sorted(mark["type"] for mark in node.get("marks", []))
        for node in nodes_of_type(doc, "text")
    }
    assert marked["export to Jira"] == ["strong"]
    assert marked[" with retries"] == ["em"]
    assert marked["The goal is to ship the "] == []
    assert marked["seed 001"] == ["link", "underline"]


def test_code_blocks_keep_their_language_and_lines():
    readme = convert_html((CORPUS / "github_readme.html").read_text(encoding="utf-8")).doc
    blocks = nodes_of_type(readme, "codeBlock")
    assert [block["attrs"]["language"] for block in blocks] == ["shell", "python"]
    assert blocks[0]["content"][0]["text"].splitlines() == [
        "pip install ops-portal",
        "python manage.py migrate",
        "# then start it",
        "make run",
    ]


def test_the_uploaded_screenshot_is_media_and_deep_lists_stop_at_six_levels():
    editor = convert_html(
        (CORPUS / "rich_text_editor.html").read_text(encoding="utf-8"), media=MEDIA
    )
    media = nodes_of_type(editor.doc, "media")
    assert media[0]["attrs"] == {
        "type": "file",
        "id": "5e2b-review",
        "collection": "jira-10001",
        "alt": "Review page",
    }
    assert nodes_of_type(editor.doc, "orderedList")[0]["attrs"] == {"order": 4}
    markdown = convert_html((CORPUS / "markdown_rendered.html").read_text(encoding="utf-8"))
    assert "lists nested deeper than 6 levels flattened" in markdown.warnings
    assert "Seventh (deeper than Jira allows)" in texts(markdown.doc)


@pytest.mark.parametrize(
    ("stem", "language"), [("confluence_export", "bash"), ("jira_rendered", "java")]
)
def test_confluence_and_jira_code_panels_keep_their_language(stem, language):
    doc = convert_html((CORPUS / f"{stem}.html").read_text(encoding="utf-8")).doc
    assert nodes_of_type(doc, "codeBlock")[0]["attrs"] == {"language": language}
