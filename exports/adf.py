"""HTML to Atlassian Document Format (ADF), the format Jira Cloud's v3 API takes for descriptions.

:func:`html_to_adf` turns a ticket's HTML into an ADF ``doc`` (version 1) that validates against
Atlassian's JSON schema (``@atlaskit/adf-schema``, ``dist/json-schema/v1/full.json``) for every
input: the HTML is parsed by Lexbor (``selectolax``), a WHATWG HTML5 parser, so any string gives
the tree a browser would build; the walk below then only ever emits nodes where the schema (and
the editor's stricter ProseMirror rules) allow them, degrading what does not fit to its text.
:func:`convert_html` also reports the figures the ADF test endpoint shows (size in bytes,
character reduction, text kept) and warnings about what was degraded. ``docs/exports-adf.md``
lists what maps to what.

This module is pure: no Django, no models, no I/O.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any
from urllib.parse import unquote, urlsplit

from selectolax.lexbor import LexborHTMLParser, LexborNode

__all__ = [
    "MAX_DOM_DEPTH",
    "MAX_LIST_DEPTH",
    "AdfConversion",
    "MediaRef",
    "adf_json",
    "convert_html",
    "html_to_adf",
]

# Elements nested deeper than this are read as plain text (no more structure): it bounds the
# recursion of the walk whatever the input (about 5 Python frames a level: some 330 frames at
# most, well inside the 1,000 limit when called from a deep request or task stack), and real
# documents nest far less.
MAX_DOM_DEPTH = 64
# Jira's editor indents lists six levels at most; deeper lists continue in the sixth level.
MAX_LIST_DEPTH = 6
MAX_COLSPAN = 1000  # the HTML standard's own limits for colspan and rowspan
MAX_ROWSPAN = 65534
MAX_LIST_START = 2**31 - 1
LINK_SCHEMES = frozenset({"http", "https", "mailto"})


@dataclass(frozen=True)
class MediaRef:
    """An image already uploaded to Jira's media store: ``media`` node ids for an ``<img>``."""

    id: str
    collection: str = ""
    alt: str = ""


@dataclass(frozen=True)
class AdfConversion:
    """One conversion: the document and what the ADF test endpoint reports about it.

    ``character_reduction`` is ``1 - len(ADF JSON) / len(HTML)`` in characters (the compact JSON
    Jira receives): positive when the ADF is smaller than the HTML (inline styles, classes and
    wrapper elements dropped), negative when it is larger (ADF spells every text run as a JSON
    object), 0.0 for empty HTML. ``text_chars_in``/``text_chars_out`` count the non-space
    characters of visible text in the HTML and in the ADF; ``text_kept`` is their ratio.
    """

    doc: dict[str, Any]
    json: str
    html_chars: int
    size_bytes: int
    character_reduction: float
    text_chars_in: int
    text_chars_out: int
    warnings: tuple[str, ...] = field(default=())

    @property
    def text_kept(self) -> float:
        if self.text_chars_in == 0:
            return 1.0
        return round(min(1.0, self.text_chars_out / self.text_chars_in), 4)


def html_to_adf(html: str, *, media: Mapping[str, MediaRef] | None = None) -> dict[str, Any]:
    """The ADF ``doc`` for ``html``; ``media`` maps an ``<img>`` src (or its file name) to an upload."""
    return _Converter(media or {}).convert(html)


def adf_json(doc: Mapping[str, Any]) -> str:
    """The compact JSON Jira receives (and whose size the test endpoint reports)."""
    return json.dumps(doc, ensure_ascii=False, separators=(",", ":"))


def convert_html(html: str, *, media: Mapping[str, MediaRef] | None = None) -> AdfConversion:
    """:func:`html_to_adf` with its figures and warnings."""
    converter = _Converter(media or {})
    doc = converter.convert(html)
    text = adf_json(doc)
    reduction = round(1 - len(text) / len(html), 4) if html else 0.0
    return AdfConversion(
        doc=doc,
        json=text,
        html_chars=len(html),
        size_bytes=len(text.encode("utf-8")),
        character_reduction=reduction,
        text_chars_in=converter.text_chars_in,
        text_chars_out=_text_chars(doc),
        warnings=converter.warning_messages(),
    )


# ----- text -----------------------------------------------------------------------------------

# HTML's collapsible white space (what CSS ``white-space: normal`` folds into one space).
_SPACES = re.compile("[ \t\n\r\f]+")
# Characters no ADF text should carry: C0 controls (tab and line feed survive in code blocks
# only), DEL, and C1 controls.
_CONTROLS = re.compile("[\x00-\x08\x0b\x0e-\x1f\x7f-\x9f]")
_CODE_CONTROLS = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")
_SURROGATES = re.compile("[\ud800-\udfff]")
# language-x, lang-x (Markdown renderers, editors), highlight-source-x (GitHub), code-x (Jira).
_LANGUAGE_CLASS = re.compile(r"^(?:language|lang|highlight-source|code)-([A-Za-z0-9_+#.-]{1,40})$")
# Confluence: data-syntaxhighlighter-params="brush: bash; gutter: false".
_CONFLUENCE_BRUSH = re.compile(r"(?:^|;)\s*brush:\s*([A-Za-z0-9_+#.-]{1,40})\s*(?:;|$)")
_LANGUAGE_NAME = re.compile(r"^[A-Za-z0-9_+#.-]{1,40}$")


def _inline_text(text: str) -> str:
    if _CONTROLS.search(text):
        text = _CONTROLS.sub("", text)
    return _SPACES.sub(" ", text)


def _code_text(text: str) -> str:
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    return _CODE_CONTROLS.sub("", text)


def _visible_chars(text: str) -> int:
    """Characters that are not white space (no-break spaces included: they show no text)."""
    return sum(len(word) for word in text.split())


def _text_chars(doc: dict[str, Any]) -> int:
    count = 0
    stack = [doc]
    while stack:
        node = stack.pop()
        if node.get("type") == "text":
            count += _visible_chars(node["text"])
        stack.extend(node.get("content", ()))
    return count


def _safe_href(raw: str | None) -> str | None:
    """``raw`` when it is an absolute http(s) or mailto address, else None (no javascript:, data:)."""
    if not raw:
        return None
    href = raw.strip(" \t\n\r\f").replace("\t", "").replace("\n", "").replace("\r", "")
    if not href or _CONTROLS.search(href) or len(href) > 4096:
        return None
    scheme, colon, rest = href.partition(":")
    if not colon or scheme.lower() not in LINK_SCHEMES or not rest.strip():
        return None
    href = href.replace(" ", "%20")
    if scheme.lower() != "mailto":
        try:
            parts = urlsplit(href)
        except ValueError:
            return None
        if not parts.netloc:
            return None
    return href


# ----- marks ----------------------------------------------------------------------------------

# A text run's style: (strong, em, underline, strike, code, subsup, link href). Immutable, so that
# every element derives its children's style from its own without undoing anything after.
_Style = tuple[bool, bool, bool, bool, bool, str, str | None]
_PLAIN: _Style = (False, False, False, False, False, "", None)
_STRONG, _EM, _UNDERLINE, _STRIKE, _CODE, _SUBSUP, _LINK = range(7)

_MARK_TAGS: dict[str, tuple[int, Any]] = {
    "strong": (_STRONG, True),
    "b": (_STRONG, True),
    "em": (_EM, True),
    "i": (_EM, True),
    "cite": (_EM, True),
    "var": (_EM, True),
    "dfn": (_EM, True),
    "u": (_UNDERLINE, True),
    "ins": (_UNDERLINE, True),
    "s": (_STRIKE, True),
    "strike": (_STRIKE, True),
    "del": (_STRIKE, True),
    "code": (_CODE, True),
    "kbd": (_CODE, True),
    "samp": (_CODE, True),
    "tt": (_CODE, True),
    "sub": (_SUBSUP, "sub"),
    "sup": (_SUBSUP, "sup"),
}
# Inline elements whose ``style`` attribute is read (Google Docs and Word say bold with CSS).
_STYLED_TAGS = frozenset({"span", "font", "b", "strong", "i", "em", "u", "s", "a", "sub", "sup"})


def _with(style: _Style, index: int, value: Any) -> _Style:
    if style[index] == value:
        return style
    changed = list(style)
    changed[index] = value
    return tuple(changed)  # type: ignore[return-value]


def _css_style(style: _Style, css: str) -> _Style:
    for declaration in css[:2000].split(";"):
        name, _, value = declaration.partition(":")
        name = name.strip().lower()
        value = value.strip().lower().removesuffix("!important").strip()
        if name == "font-weight":
            if value in ("bold", "bolder") or (value.isdigit() and int(value) >= 600):
                style = _with(style, _STRONG, True)
            elif value in ("normal", "lighter") or (value.isdigit() and int(value) < 600):
                style = _with(style, _STRONG, False)
        elif name == "font-style":
            if value in ("italic", "oblique"):
                style = _with(style, _EM, True)
            elif value == "normal":
                style = _with(style, _EM, False)
        elif name in ("text-decoration", "text-decoration-line"):
            if "underline" in value:
                style = _with(style, _UNDERLINE, True)
            if "line-through" in value:
                style = _with(style, _STRIKE, True)
            if value == "none":
                style = _with(_with(style, _UNDERLINE, False), _STRIKE, False)
        elif name == "vertical-align":
            if value in ("super", "sub"):
                style = _with(style, _SUBSUP, "sup" if value == "super" else "sub")
            elif value == "baseline":
                style = _with(style, _SUBSUP, "")
    return style


@lru_cache(maxsize=512)
def _marks(style: _Style) -> tuple[dict[str, Any], ...]:
    """The ADF marks of a style. ``code`` combines with ``link`` only (the schema's rule)."""
    strong, em, underline, strike, code, subsup, link = style
    marks: list[dict[str, Any]] = []
    if code:
        marks.append({"type": "code"})
    else:
        if strong:
            marks.append({"type": "strong"})
        if em:
            marks.append({"type": "em"})
        if underline:
            marks.append({"type": "underline"})
        if strike:
            marks.append({"type": "strike"})
        if subsup:
            marks.append({"type": "subsup", "attrs": {"type": subsup}})
    if link is not None:
        marks.append({"type": "link", "attrs": {"href": link}})
    return tuple(marks)


# ----- inline runs ----------------------------------------------------------------------------

# An inline buffer holds (text, style) runs with white space already folded to single spaces,
# and None for a hard break.
_Run = tuple[str, _Style] | None


def _inline_nodes(runs: list[_Run]) -> list[dict[str, Any]]:
    """ADF inline nodes for ``runs``: spaces collapsed across runs and trimmed at line ends."""
    merged: list[list[Any] | None] = []  # [parts, style] or None
    at_line_start = True
    for run in runs:
        if run is None:
            _trim_end(merged)
            if merged:  # a break before any text shows nothing worth keeping
                merged.append(None)
            at_line_start = True
            continue
        text, style = run
        if at_line_start and text.startswith(" "):
            text = text[1:]
        if not text:
            continue
        last = merged[-1] if merged else None
        if last is not None and last[1] == style:
            last[0].append(text)
        else:
            merged.append([[text], style])
        at_line_start = text.endswith(" ")
    _trim_end(merged)
    while merged and merged[-1] is None:
        merged.pop()
    nodes: list[dict[str, Any]] = []
    for item in merged:
        if item is None:
            nodes.append({"type": "hardBreak"})
            continue
        text = "".join(item[0])
        node: dict[str, Any] = {"type": "text", "text": text}
        marks = _marks(item[1])
        if marks:  # fresh dicts: the cached marks must not be shared with the caller
            node["marks"] = [
                {**mark, "attrs": dict(mark["attrs"])} if "attrs" in mark else dict(mark)
                for mark in marks
            ]
        nodes.append(node)
    return nodes


def _trim_end(merged: list[list[Any] | None]) -> None:
    while merged and merged[-1] is not None:
        parts = merged[-1][0]
        parts[-1] = parts[-1].rstrip(" ")
        if parts[-1]:
            return
        parts.pop()
        if parts:
            continue
        merged.pop()


def _has_text(nodes: list[dict[str, Any]]) -> bool:
    return any(node["type"] == "text" and node["text"].strip() for node in nodes)


# ----- containers -----------------------------------------------------------------------------

# Which block nodes each container may hold (the schema's content expressions, narrowed to the
# nodes this converter makes).
_ALLOWED = {
    "doc": frozenset(
        {
            "paragraph",
            "heading",
            "bulletList",
            "orderedList",
            "blockquote",
            "codeBlock",
            "rule",
            "table",
            "mediaSingle",
        }
    ),
    "listItem": frozenset({"paragraph", "bulletList", "orderedList", "codeBlock", "mediaSingle"}),
    "blockquote": frozenset({"paragraph", "bulletList", "orderedList", "codeBlock", "mediaSingle"}),
    "cell": frozenset(
        {
            "paragraph",
            "heading",
            "bulletList",
            "orderedList",
            "blockquote",
            "codeBlock",
            "rule",
            "mediaSingle",
        }
    ),
}
# A list item must open with one of these (ProseMirror's listItem content expression).
_LIST_ITEM_FIRST = frozenset({"paragraph", "codeBlock", "mediaSingle"})


class _Container:
    __slots__ = ("allowed", "inline", "kind", "list_depth", "nodes")

    def __init__(self, kind: str, list_depth: int = 0) -> None:
        self.kind = kind
        self.allowed = _ALLOWED[kind]
        self.nodes: list[dict[str, Any]] = []
        self.inline: list[_Run] = []
        self.list_depth = list_depth

    def flush(self) -> None:
        if not self.inline:
            return
        content = _inline_nodes(self.inline)
        self.inline.clear()  # in place: the walk holds this list while it descends
        if _has_text(content):
            self.nodes.append({"type": "paragraph", "content": content})

    def add(self, node: dict[str, Any]) -> None:
        self.flush()
        self.nodes.append(node)

    def finish(self) -> list[dict[str, Any]]:
        self.flush()
        if self.kind in ("listItem", "cell") and not self.nodes:
            self.nodes.append(_empty_paragraph())
        if self.kind == "listItem" and self.nodes[0]["type"] not in _LIST_ITEM_FIRST:
            self.nodes.insert(0, _empty_paragraph())
        return self.nodes


def _empty_paragraph() -> dict[str, Any]:
    return {"type": "paragraph", "content": []}


# ----- the walk -------------------------------------------------------------------------------

# Dropped with everything inside: not content (scripts, styles, embedded documents, media players,
# form controls without text, drawings).
_DROPPED = frozenset(
    {"script", "style", "template", "noscript", "iframe", "frame", "frameset", "noframes",
     "object", "embed", "applet", "head", "meta", "link", "title", "base", "canvas", "svg",
     "audio", "video", "source", "track", "param", "area", "input", "datalist"}
)  # fmt: skip
# Blocks with no ADF counterpart: their content continues as blocks of the container.
_GENERIC_BLOCKS = frozenset(
    {"p", "div", "section", "article", "aside", "header", "footer", "main", "nav", "address",
     "figure", "figcaption", "details", "summary", "dl", "dt", "dd", "center", "form", "fieldset",
     "legend", "hgroup", "li", "body", "html", "search", "dialog", "caption", "thead", "tbody",
     "tfoot", "tr", "td", "th", "colgroup", "col", "optgroup", "option", "select", "textarea",
     "blockquote", "table", "ul", "ol", "menu", "dir", "pre", "listing", "xmp", "plaintext",
     "h1", "h2", "h3", "h4", "h5", "h6", "hr"}
)  # fmt: skip
_HEADINGS = {"h1": 1, "h2": 2, "h3": 3, "h4": 4, "h5": 5, "h6": 6}
_LISTS = {"ul": "bulletList", "menu": "bulletList", "dir": "bulletList", "ol": "orderedList"}
_PREFORMATTED = frozenset({"pre", "listing", "xmp", "plaintext"})
_SPACE_RUN: _Run = (" ", _PLAIN)


class _Converter:
    def __init__(self, media: Mapping[str, MediaRef]) -> None:
        self.media = media
        self.text_chars_in = 0
        self.warnings: Counter[str] = Counter()

    def warning_messages(self) -> tuple[str, ...]:
        return tuple(
            f"{message} ({count}x)" if count > 1 else message
            for message, count in sorted(self.warnings.items())
        )

    def convert(self, html: str) -> dict[str, Any]:
        if not isinstance(html, str):
            raise TypeError(f"html_to_adf takes a str, not {type(html).__name__}")
        doc = _Container("doc")
        if html.strip():
            # A lone surrogate cannot be encoded for the parser; say it was there.
            if _SURROGATES.search(html):
                html = _SURROGATES.sub("\ufffd", html)
                self.warnings["invalid characters replaced with U+FFFD"] += 1
            body = LexborHTMLParser(html).body
            if body is not None:
                self.children(body, _PLAIN, doc, doc.inline, 0)
        return {"type": "doc", "version": 1, "content": doc.finish()}

    # The walk: ``container`` receives blocks, or is None inside a heading (inline only);
    # ``runs`` receives inline content.
    def children(
        self,
        node: LexborNode,
        style: _Style,
        container: _Container | None,
        runs: list[_Run],
        depth: int,
    ) -> None:
        child = node.child
        while child is not None:
            self.visit(child, style, container, runs, depth + 1)
            child = child.next

    def visit(
        self,
        node: LexborNode,
        style: _Style,
        container: _Container | None,
        runs: list[_Run],
        depth: int,
    ) -> None:
        tag = node.tag
        if tag == "-text":
            self.text(node.text_content or "", style, runs)
            return
        if tag is None or tag.startswith("-") or tag.startswith("!"):
            return  # comments, doctypes
        if tag in _DROPPED:
            self.warnings[f"<{tag}> dropped"] += 1
            return
        if depth > MAX_DOM_DEPTH:
            self.warnings[f"HTML nested deeper than {MAX_DOM_DEPTH} levels read as text"] += 1
            self.flat_text(node, style, runs)
            return
        if tag == "br":
            runs.append(None)
            return
        if tag == "img":
            self.image(node, style, container, runs)
            return
        if tag in _GENERIC_BLOCKS:
            if container is None:  # inside a heading: blocks become spaces between their text
                runs.append(_SPACE_RUN)
                self.children(node, style, None, runs, depth)
                runs.append(_SPACE_RUN)
            else:
                self.block(node, tag, style, container, depth)
            return
        self.inline(node, tag, style, container, runs, depth)

    def text(self, raw: str, style: _Style, runs: list[_Run]) -> None:
        text = _inline_text(raw)
        if text:
            runs.append((text, style))
            self.text_chars_in += _visible_chars(text)

    def inline(
        self,
        node: LexborNode,
        tag: str,
        style: _Style,
        container: _Container | None,
        runs: list[_Run],
        depth: int,
    ) -> None:
        mark = _MARK_TAGS.get(tag)
        if mark is not None:
            style = _with(style, mark[0], mark[1])
        if tag in _STYLED_TAGS:
            attributes = node.attributes
            css = attributes.get("style")
            if css:
                style = _css_style(style, css)
            if tag == "a" and "href" in attributes:
                href = _safe_href(attributes.get("href"))
                if href is None and attributes.get("href"):
                    self.warnings[
                        "link with an address other than http, https or mailto kept as text"
                    ] += 1
                # An unsafe or relative link inside a safe one keeps the outer link.
                if href is not None:
                    style = _with(style, _LINK, href)
        self.children(node, style, container, runs, depth)

    def block(
        self, node: LexborNode, tag: str, style: _Style, container: _Container, depth: int
    ) -> None:
        allowed = container.allowed
        if tag in _HEADINGS:
            self.heading(node, _HEADINGS[tag], style, container, depth)
        elif tag in _LISTS:
            if container.list_depth < MAX_LIST_DEPTH:
                self.list(node, _LISTS[tag], style, container, depth)
            else:
                self.warnings[f"lists nested deeper than {MAX_LIST_DEPTH} levels flattened"] += 1
                self.generic(node, style, container, depth)
        elif tag == "blockquote" and "blockquote" in allowed:
            quote = _Container("blockquote")
            self.children(node, style, quote, quote.inline, depth)
            content = quote.finish()
            if content:
                container.add({"type": "blockquote", "content": content})
            else:
                container.flush()
        elif tag == "table" and node.attributes.get("role") in ("presentation", "none"):
            self.generic(node, style, container, depth)  # a layout table (e-mails): no table
        elif tag == "table" and "table" in allowed:
            self.table(node, style, container, depth)
        elif tag in _PREFORMATTED:
            self.code_block(node, container)
        elif tag == "hr":
            if "rule" in allowed:
                container.add({"type": "rule"})
            else:
                self.warnings[f"horizontal rule inside a {container.kind} dropped"] += 1
                container.flush()
        else:
            if tag in ("table", "blockquote"):
                self.warnings[f"<{tag}> inside a {container.kind} flattened"] += 1
            self.generic(node, style, container, depth)

    def generic(self, node: LexborNode, style: _Style, container: _Container, depth: int) -> None:
        container.flush()
        self.children(node, style, container, container.inline, depth)
        container.flush()

    def heading(
        self, node: LexborNode, level: int, style: _Style, container: _Container, depth: int
    ) -> None:
        runs: list[_Run] = []
        self.children(node, style, None, runs, depth)
        if "heading" in container.allowed:
            content = _inline_nodes(runs)
            if _has_text(content):
                container.add({"type": "heading", "attrs": {"level": level}, "content": content})
            else:
                container.flush()
            return
        # No headings in list items and quotes: a bold paragraph instead.
        self.warnings[f"heading inside a {container.kind} made a bold paragraph"] += 1
        bold = [None if run is None else (run[0], _with(run[1], _STRONG, True)) for run in runs]
        container.flush()
        container.inline.extend(bold)
        container.flush()

    def list(
        self, node: LexborNode, kind: str, style: _Style, container: _Container, depth: int
    ) -> None:
        items: list[_Container] = []
        current: _Container | None = None
        child = node.child
        while child is not None:
            tag = child.tag
            if tag == "li":
                current = _Container("listItem", container.list_depth + 1)
                items.append(current)
                self.children(child, style, current, current.inline, depth + 1)
            elif tag is None or (tag.startswith("-") and tag != "-text"):
                pass  # comments
            elif tag in _DROPPED:
                self.warnings[f"<{tag}> dropped"] += 1
            elif current is not None:
                self.visit(child, style, current, current.inline, depth + 1)
            elif tag != "-text" or (child.text_content or "").strip(" \t\n\r\f"):
                # Content before the first <li> (or a list directly in a list) opens an item.
                current = _Container("listItem", container.list_depth + 1)
                items.append(current)
                self.visit(child, style, current, current.inline, depth + 1)
            child = child.next
        container.flush()
        if not items:
            return
        list_node: dict[str, Any] = {
            "type": kind,
            "content": [{"type": "listItem", "content": item.finish()} for item in items],
        }
        if kind == "orderedList":
            start = _integer(node.attributes.get("start"), 0, MAX_LIST_START)
            if start is not None:
                list_node["attrs"] = {"order": start}
        container.add(list_node)

    def table(self, node: LexborNode, style: _Style, container: _Container, depth: int) -> None:
        rows: list[dict[str, Any]] = []
        container.flush()
        for row in _table_rows(node):
            if row.tag == "caption":
                self.generic(row, style, container, depth + 1)
                continue
            cells = []
            cell_node = row.child
            while cell_node is not None:
                if cell_node.tag in ("td", "th"):
                    cells.append(self.cell(cell_node, style, depth + 2))
                cell_node = cell_node.next
            if cells:
                rows.append({"type": "tableRow", "content": cells})
        if rows:
            container.add({"type": "table", "content": rows})

    def cell(self, node: LexborNode, style: _Style, depth: int) -> dict[str, Any]:
        cell = _Container("cell")
        self.children(node, style, cell, cell.inline, depth)
        result: dict[str, Any] = {
            "type": "tableHeader" if node.tag == "th" else "tableCell",
            "content": cell.finish(),
        }
        attributes = node.attributes
        attrs = {}
        colspan = _integer(attributes.get("colspan"), 1, MAX_COLSPAN)
        if colspan is not None and colspan > 1:
            attrs["colspan"] = colspan
        rowspan = _integer(attributes.get("rowspan"), 1, MAX_ROWSPAN)
        if rowspan is not None and rowspan > 1:
            attrs["rowspan"] = rowspan
        if attrs:
            result["attrs"] = attrs
        return result

    def code_block(self, node: LexborNode, container: _Container) -> None:
        text = _code_text(self.raw_text(node)).rstrip("\n")
        self.text_chars_in += _visible_chars(text)
        block: dict[str, Any] = {"type": "codeBlock"}
        language = _code_language(node)
        if language:
            block["attrs"] = {"language": language}
        block["content"] = [{"type": "text", "text": text}] if text else []
        container.add(block)

    def image(
        self,
        node: LexborNode,
        style: _Style,
        container: _Container | None,
        runs: list[_Run],
    ) -> None:
        attributes = node.attributes
        src = (attributes.get("src") or "").strip()
        alt = _inline_text(attributes.get("alt") or "").strip()
        upload = _media_for(self.media, src)
        if upload is not None and container is not None:
            media_attrs: dict[str, Any] = {
                "type": "file",
                "id": upload.id,
                "collection": upload.collection,
            }
            if upload.alt or alt:
                media_attrs["alt"] = upload.alt or alt
            container.add(
                {
                    "type": "mediaSingle",
                    "attrs": {"layout": "center"},
                    "content": [{"type": "media", "attrs": media_attrs}],
                }
            )
            return
        href = _safe_href(src)
        if upload is None and src:
            self.warnings["image that is not an uploaded attachment made a link"] += 1
        if href is not None and style[_LINK] is None:
            runs.append((alt or href, _with(style, _LINK, href)))
        elif alt or href:
            runs.append((alt or href or "", style))

    def raw_text(self, node: LexborNode) -> str:
        """The text of a preformatted element as it is, <br> as a line feed, iteratively."""
        parts: list[str] = []
        stack = [node.child] if node.child is not None else []
        while stack:
            current = stack.pop()
            if current.next is not None:
                stack.append(current.next)
            tag = current.tag
            if tag == "-text":
                parts.append(current.text_content or "")
            elif tag == "br":
                parts.append("\n")
            elif (
                current.child is not None
                and tag is not None
                and not tag.startswith("-")
                and tag not in _DROPPED
            ):
                stack.append(current.child)
        return "".join(parts)

    def flat_text(self, node: LexborNode, style: _Style, runs: list[_Run]) -> None:
        """``node`` and everything below it as inline text in ``style`` (no recursion, any
        depth); dropped elements stay dropped, blocks are spaces, ``br`` a hard break."""
        stack = [node]
        while stack:
            current = stack.pop()
            if current is not node and current.next is not None:
                stack.append(current.next)
            tag = current.tag
            if tag == "-text":
                self.text(current.text_content or "", style, runs)
            elif tag == "br":
                runs.append(None)
            elif tag is None or tag.startswith("-") or tag.startswith("!"):
                continue
            elif tag in _DROPPED:
                self.warnings[f"<{tag}> dropped"] += 1
            else:
                if tag in _GENERIC_BLOCKS:
                    runs.append(_SPACE_RUN)
                if current.child is not None:
                    stack.append(current.child)


def _table_rows(table: LexborNode) -> list[LexborNode]:
    """The table's rows (and captions) in order: its own and those of its row groups."""
    rows: list[LexborNode] = []
    child = table.child
    while child is not None:
        tag = child.tag
        if tag in ("tr", "caption"):
            rows.append(child)
        elif tag in ("thead", "tbody", "tfoot"):
            row = child.child
            while row is not None:
                if row.tag == "tr":
                    rows.append(row)
                row = row.next
        child = child.next
    return rows


def _integer(raw: str | None, low: int, high: int) -> int | None:
    if raw is None:
        return None
    raw = raw.strip()
    if not raw or len(raw) > 12 or not raw.lstrip("+-").isdigit() or not raw.isascii():
        return None
    value = int(raw)
    return value if low <= value <= high else None


def _classes(node: LexborNode | None) -> list[str]:
    if node is None or node.tag is None or node.tag.startswith("-"):
        return []
    return (node.attributes.get("class") or "").split()


def _code_language(pre: LexborNode) -> str | None:
    """``language-x``/``lang-x`` on the <pre>, its <code>, or GitHub's ``highlight-source-x`` div."""
    candidates = [pre]
    child = pre.child
    while child is not None:
        if child.tag == "code":
            candidates.append(child)
            break
        child = child.next
    candidates.append(pre.parent)
    for candidate in candidates:
        for name in _classes(candidate):
            match = _LANGUAGE_CLASS.match(name)
            if match:
                return match.group(1).lower()
        if candidate is not None and candidate.tag in ("pre", "code"):
            attributes = candidate.attributes
            language = attributes.get("data-language") or attributes.get("lang")
            if language and _LANGUAGE_NAME.match(language):
                return language.lower()
            brush = _CONFLUENCE_BRUSH.search(attributes.get("data-syntaxhighlighter-params") or "")
            if brush:
                return brush.group(1).lower()
    return None


def _media_for(media: Mapping[str, MediaRef], src: str) -> MediaRef | None:
    if not media or not src:
        return None
    found = media.get(src)
    if found is not None:
        return found
    path = src.split("?", 1)[0].split("#", 1)[0]
    name = unquote(path.rsplit("/", 1)[-1])
    return media.get(name) if name else None
