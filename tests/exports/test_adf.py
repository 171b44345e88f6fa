"""exports.adf: what each HTML construct becomes, what degrades, and that every result is valid ADF."""

from __future__ import annotations

import inspect
import json
import sys

import pytest

from exports.adf import (
    MAX_DOM_DEPTH,
    MAX_LIST_DEPTH,
    MediaRef,
    adf_json,
    convert_html,
    html_to_adf,
)
from tests.exports.adf_support import assert_valid, nodes_of_type, texts


def doc(*content):
    return {"type": "doc", "version": 1, "content": list(content)}


def p(*content):
    return {"type": "paragraph", "content": list(content)}


def t(text, *marks):
    node = {"type": "text", "text": text}
    if marks:
        node["marks"] = [m if isinstance(m, dict) else {"type": m} for m in marks]
    return node


def link(href):
    return {"type": "link", "attrs": {"href": href}}


def convert(html, **kwargs):
    result = html_to_adf(html, **kwargs)
    assert_valid(result)
    return result


# ----- empty and plain input -------------------------------------------------------------------


@pytest.mark.parametrize("html", ["", "   \n\t ", "<!-- only a comment -->", "<p></p><div> </div>"])
def test_empty_input_is_a_valid_empty_document(html):
    assert convert(html) == doc()


def test_plain_text_becomes_a_paragraph():
    assert convert("hello world") == doc(p(t("hello world")))


def test_a_full_html_document_keeps_its_body_only():
    html = "<!DOCTYPE html><html><head><title>T</title><style>p{}</style></head><body><p>x</p></body></html>"
    assert convert(html) == doc(p(t("x")))


# ----- paragraphs and white space --------------------------------------------------------------


def test_white_space_collapses_as_in_html():
    html = "<p>  one\n\t two   <b> three </b>  four  </p>"
    assert convert(html) == doc(p(t("one two "), t("three ", "strong"), t("four")))


def test_blocks_split_paragraphs_and_empty_ones_are_dropped():
    html = "<div>a<p>b</p>c</div><p>&nbsp;</p><p>d</p>"
    assert convert(html) == doc(p(t("a")), p(t("b")), p(t("c")), p(t("d")))


def test_br_is_a_hard_break_without_spaces_around_it():
    html = "<p>line one <br> line two<br><br>three<br></p>"
    assert convert(html) == doc(
        p(t("line one"), {"type": "hardBreak"}, t("line two"), {"type": "hardBreak"},
          {"type": "hardBreak"}, t("three"))
    )  # fmt: skip


def test_control_characters_are_removed_and_lone_surrogates_replaced():
    result = convert_html("a\x00b\x01c\x7fd\x9fe\ud800f")
    assert result.doc == doc(p(t("abcde\ufffdf")))
    assert "invalid characters replaced with U+FFFD" in result.warnings
    adf_json(result.doc).encode("utf-8")  # encodable: nothing invalid survives


# ----- headings --------------------------------------------------------------------------------


@pytest.mark.parametrize("level", [1, 2, 3, 4, 5, 6])
def test_headings_keep_their_level(level):
    assert convert(f"<h{level}>Title <em>x</em></h{level}>") == doc(
        {"type": "heading", "attrs": {"level": level}, "content": [t("Title "), t("x", "em")]}
    )


def test_blocks_inside_a_heading_become_its_text():
    result = convert("<h2><div>a</div><ul><li>b</li></ul><br>c</h2>")
    assert result == doc(
        {"type": "heading", "attrs": {"level": 2},
         "content": [t("a b"), {"type": "hardBreak"}, t("c")]}
    )  # fmt: skip


def test_an_empty_heading_is_dropped():
    assert convert("<h1> </h1><h2><br></h2>") == doc()


# ----- marks -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("tag", "mark"),
    [
        ("strong", "strong"), ("b", "strong"), ("em", "em"), ("i", "em"), ("u", "underline"),
        ("ins", "underline"), ("s", "strike"), ("strike", "strike"), ("del", "strike"),
        ("code", "code"), ("kbd", "code"),
    ],
)  # fmt: skip
def test_inline_tags_become_marks(tag, mark):
    assert convert(f"<p>x<{tag}>y</{tag}></p>") == doc(p(t("x"), t("y", mark)))


@pytest.mark.parametrize("kind", ["sub", "sup"])
def test_sub_and_sup_become_subsup(kind):
    assert convert(f"<p>H<{kind}>2</{kind}>O</p>") == doc(
        p(t("H"), t("2", {"type": "subsup", "attrs": {"type": kind}}), t("O"))
    )


def test_nested_marks_combine():
    assert convert("<p><b><i><u><s>x</s></u></i></b></p>") == doc(
        p(t("x", "strong", "em", "underline", "strike"))
    )


def test_code_combines_with_link_only():
    html = '<p><a href="https://example.com"><b><code>run()</code></b></a></p>'
    assert convert(html) == doc(p(t("run()", "code", link("https://example.com"))))


def test_css_bold_italic_underline_and_google_docs_normal_weight_wrapper():
    html = (
        '<b style="font-weight:normal;" id="docs-internal-guid-1">'
        '<span style="font-weight:700">bold</span> plain '
        '<span style="font-style:italic;text-decoration:underline line-through">it</span>'
        '<span style="vertical-align:super">sup</span></b>'
    )
    assert convert(html) == doc(
        p(
            t("bold", "strong"),
            t(" plain "),
            t("it", "em", "underline", "strike"),
            t("sup", {"type": "subsup", "attrs": {"type": "sup"}}),
        )
    )


# ----- links -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "href", ["https://example.com/a?b=1#c", "http://example.com", "mailto:ops@example.com"]
)
def test_safe_links_keep_their_address(href):
    assert convert(f'<p><a href="{href}">go</a></p>') == doc(p(t("go", link(href))))


@pytest.mark.parametrize(
    "href",
    ["javascript:alert(1)", " JaVaScRiPt:alert(1)", "data:text/html,x", "/relative/path",
     "#anchor", "ftp://example.com/x", "https://", "http://[bad", "vbscript:x", ""],
)  # fmt: skip
def test_other_links_keep_only_their_text(href):
    assert convert(f'<p><a href="{href}">go</a></p>') == doc(p(t("go")))


def test_marks_are_not_shared_between_documents():
    first = html_to_adf('<a href="https://example.com">x</a>')
    first["content"][0]["content"][0]["marks"][0]["attrs"]["href"] = "https://changed.example"
    second = html_to_adf('<a href="https://example.com">x</a>')
    assert second == doc(p(t("x", link("https://example.com"))))


def test_spaces_in_an_address_are_encoded():
    assert convert('<a href="https://example.com/a b">x</a>') == doc(
        p(t("x", link("https://example.com/a%20b")))
    )


# ----- lists -----------------------------------------------------------------------------------


def item(*content):
    return {"type": "listItem", "content": list(content)}


def test_nested_bullet_and_ordered_lists():
    html = "<ul><li>a<ol><li>b</li><li>c</li></ol></li><li>d</li></ul>"
    assert convert(html) == doc(
        {
            "type": "bulletList",
            "content": [
                item(
                    p(t("a")),
                    {"type": "orderedList", "content": [item(p(t("b"))), item(p(t("c")))]},
                ),
                item(p(t("d"))),
            ],
        }
    )


@pytest.mark.parametrize(
    ("start", "attrs"),
    [("3", {"attrs": {"order": 3}}), ("0", {"attrs": {"order": 0}}), ("-2", {}), ("x", {}),
     ("99999999999999", {})],
)  # fmt: skip
def test_ordered_list_start(start, attrs):
    result = convert(f'<ol start="{start}"><li>x</li></ol>')
    assert result == doc({"type": "orderedList", **attrs, "content": [item(p(t("x")))]})


def test_an_empty_item_keeps_its_place_and_a_list_first_in_an_item_gets_a_paragraph():
    html = "<ul><li></li><ul><li>nested</li></ul></ul>"
    empty = {"type": "paragraph", "content": []}
    assert convert(html) == doc(
        {
            "type": "bulletList",
            "content": [
                item(empty, {"type": "bulletList", "content": [item(p(t("nested")))]}),
            ],
        }
    )


def test_a_list_directly_in_a_list_opens_an_item_starting_with_a_paragraph():
    result = convert("<ol><ol><li>x</li></ol></ol>")
    first = result["content"][0]["content"][0]
    assert first["content"][0] == {"type": "paragraph", "content": []}
    assert first["content"][1]["type"] == "orderedList"


def test_an_empty_list_is_dropped():
    assert convert("<ul> </ul><ol><!-- x --></ol>") == doc()


def test_lists_deeper_than_the_editor_allows_are_flattened_into_the_deepest_level():
    html = "<ul><li>" * (MAX_LIST_DEPTH + 4) + "bottom"
    result = convert_html(html)
    assert_valid(result.doc)
    assert len(nodes_of_type(result.doc, "bulletList")) == MAX_LIST_DEPTH
    assert texts(result.doc) == ["bottom"]
    assert any("lists nested deeper" in warning for warning in result.warnings)


def test_headings_quotes_rules_and_tables_in_a_list_item_degrade():
    html = (
        "<ul><li><h3>Title</h3><blockquote>quoted</blockquote><hr>"
        "<table><tr><td>c1</td><td>c2</td></tr></table></li></ul>"
    )
    result = convert(html)
    assert result == doc(
        {
            "type": "bulletList",
            "content": [item(p(t("Title", "strong")), p(t("quoted")), p(t("c1")), p(t("c2")))],
        }
    )


# ----- code blocks -----------------------------------------------------------------------------


def test_pre_code_with_a_language_keeps_white_space():
    html = '<pre><code class="language-Python">def f():\n    return  1\n\n</code></pre>'
    assert convert(html) == doc(
        {
            "type": "codeBlock",
            "attrs": {"language": "python"},
            "content": [t("def f():\n    return  1")],
        }
    )


def test_github_highlight_div_gives_the_language_and_markup_inside_pre_is_text():
    html = (
        '<div class="highlight highlight-source-shell"><pre>'
        '<span class="pl-c1">echo</span> <b>hi</b><br>ls</pre></div>'
    )
    assert convert(html) == doc(
        {"type": "codeBlock", "attrs": {"language": "shell"}, "content": [t("echo hi\nls")]}
    )


@pytest.mark.parametrize(
    ("html", "language"),
    [
        ('<pre class="lang-go">x</pre>', "go"),
        ('<pre class="code-java">x</pre>', "java"),  # Jira's rendered wiki markup
        ('<pre data-syntaxhighlighter-params="brush: bash; gutter: false">x</pre>', "bash"),
        ('<pre lang="rust">x</pre>', "rust"),
        ('<pre data-language="c++">x</pre>', "c++"),
        ('<pre class="language">x</pre>', None),
        ('<pre class="language-">x</pre>', None),
        ('<pre class="language-a&quot;b">x</pre>', None),
        ('<pre data-syntaxhighlighter-params="gutter: false">x</pre>', None),
    ],
)
def test_code_block_languages(html, language):
    block = convert(html)["content"][0]
    assert block.get("attrs", {}).get("language") == language


def test_an_empty_pre_is_an_empty_code_block_and_tabs_survive():
    assert convert("<pre></pre><pre>\ta\x01b</pre>") == doc(
        {"type": "codeBlock", "content": []}, {"type": "codeBlock", "content": [t("\tab")]}
    )


# ----- blockquotes, rules, tables ---------------------------------------------------------------


def test_blockquote_with_nested_quote_and_heading():
    html = (
        "<blockquote><p>a</p><blockquote>b</blockquote><h1>c</h1><ul><li>d</li></ul></blockquote>"
    )
    assert convert(html) == doc(
        {
            "type": "blockquote",
            "content": [
                p(t("a")),
                p(t("b")),
                p(t("c", "strong")),
                {"type": "bulletList", "content": [item(p(t("d")))]},
            ],
        }
    )


def test_hr_is_a_rule_and_an_empty_quote_is_dropped():
    assert convert("<p>a</p><hr><blockquote> </blockquote>") == doc(p(t("a")), {"type": "rule"})


def test_tables_with_headers_spans_and_block_content():
    html = (
        "<table><caption>Caption</caption><thead><tr><th colspan=2>H</th></tr></thead>"
        '<tbody><tr><td rowspan="2">a</td><td><h4>b</h4><ul><li>c</li></ul></td></tr>'
        "<tr><td colspan=0 rowspan=x></td></tr><tr></tr></tbody></table>"
    )
    assert convert(html) == doc(
        p(t("Caption")),
        {
            "type": "table",
            "content": [
                {
                    "type": "tableRow",
                    "content": [
                        {"type": "tableHeader", "attrs": {"colspan": 2}, "content": [p(t("H"))]}
                    ],
                },
                {
                    "type": "tableRow",
                    "content": [
                        {"type": "tableCell", "attrs": {"rowspan": 2}, "content": [p(t("a"))]},
                        {
                            "type": "tableCell",
                            "content": [
                                {"type": "heading", "attrs": {"level": 4}, "content": [t("b")]},
                                {"type": "bulletList", "content": [item(p(t("c")))]},
                            ],
                        },
                    ],
                },
                {
                    "type": "tableRow",
                    "content": [
                        {"type": "tableCell", "content": [{"type": "paragraph", "content": []}]}
                    ],
                },
            ],
        },
    )


def test_a_table_in_a_cell_is_flattened_into_the_cell():
    result = convert_html(
        "<table><tr><td>outer<table><tr><td>in1</td><td>in2</td></tr></table></td></tr></table>"
    )
    assert_valid(result.doc)
    assert len(nodes_of_type(result.doc, "table")) == 1
    cell = nodes_of_type(result.doc, "tableCell")[0]
    assert cell["content"] == [p(t("outer")), p(t("in1")), p(t("in2"))]
    assert "<table> inside a cell flattened" in result.warnings


def test_a_table_without_cells_is_dropped():
    assert convert("<table><tr></tr></table><table></table>") == doc()


# ----- images ----------------------------------------------------------------------------------


def test_an_uploaded_image_becomes_media_found_by_src_or_file_name():
    media = {
        "https://cdn.example.com/exact.png": MediaRef(id="id-1", collection="c1"),
        "shot 2.png": MediaRef(id="id-2", collection="c2", alt="Screenshot"),
    }
    html = (
        '<p>before <img src="https://cdn.example.com/exact.png" alt="Exact"> after</p>'
        '<img src="/uploads/shot%202.png?v=3">'
    )
    assert convert(html, media=media) == doc(
        p(t("before")),
        {
            "type": "mediaSingle",
            "attrs": {"layout": "center"},
            "content": [
                {
                    "type": "media",
                    "attrs": {"type": "file", "id": "id-1", "collection": "c1", "alt": "Exact"},
                }
            ],
        },
        p(t("after")),
        {
            "type": "mediaSingle",
            "attrs": {"layout": "center"},
            "content": [
                {
                    "type": "media",
                    "attrs": {
                        "type": "file",
                        "id": "id-2",
                        "collection": "c2",
                        "alt": "Screenshot",
                    },
                }
            ],
        },
    )


def test_an_uploaded_image_in_a_list_item_and_a_cell_is_media_there():
    media = {"a.png": MediaRef(id="m", collection="c")}
    result = convert(
        '<ul><li><img src="a.png"></li></ul><table><tr><td><img src="a.png"></td></tr></table>',
        media=media,
    )
    assert len(nodes_of_type(result, "mediaSingle")) == 2


def test_other_images_become_a_link_or_their_alt_text():
    html = (
        '<p><img src="https://example.com/x.png" alt="Diagram"> '
        '<img src="https://example.com/y.png"> <img src="data:image/png;base64,AAAA" alt="inline">'
        ' <img src="javascript:x"></p>'
    )
    result = convert_html(html)
    assert_valid(result.doc)
    assert result.doc == doc(
        p(
            t("Diagram", link("https://example.com/x.png")),
            t(" "),
            t("https://example.com/y.png", link("https://example.com/y.png")),
            t(" inline"),
        )
    )
    assert "image that is not an uploaded attachment made a link (4x)" in result.warnings


def test_an_uploaded_image_in_a_heading_is_its_alt_text():
    media = {"a.png": MediaRef(id="m", collection="c")}
    assert convert('<h1>Logo <img src="a.png" alt="ACME"></h1>', media=media) == doc(
        {"type": "heading", "attrs": {"level": 1}, "content": [t("Logo ACME")]}
    )


# ----- what is dropped or degraded -------------------------------------------------------------


def test_scripts_styles_and_embedded_documents_are_dropped():
    html = (
        "<p>keep</p><script>alert(1)</script><style>p{color:red}</style>"
        '<iframe src="https://evil.example"></iframe><noscript>enable js</noscript>'
        "<svg><text>drawing</text></svg><template><p>tpl</p></template><object>obj</object>"
    )
    result = convert_html(html)
    assert result.doc == doc(p(t("keep")))
    assert "<script> dropped" in result.warnings


def test_unknown_and_other_tags_degrade_to_their_text():
    html = "<custom-widget>alpha <o:p>beta</o:p></custom-widget><dl><dt>term</dt><dd>def</dd></dl><q>quote</q>"
    assert convert(html) == doc(p(t("alpha beta")), p(t("term")), p(t("def")), p(t("quote")))


def test_deeply_nested_html_is_read_as_text_beyond_the_depth_limit():
    html = "<div><span>" * (MAX_DOM_DEPTH * 3) + "deep <b>bold</b><br>end"
    result = convert_html(html)
    assert_valid(result.doc)
    assert "".join(texts(result.doc)) == "deep boldend"
    assert any("nested deeper" in warning for warning in result.warnings)


@pytest.mark.parametrize(
    "unit",
    ["<div>", "<ul><li>", "<table><tr><td><div><blockquote>", "<span><div>", "<b><p><ol><li>"],
)
def test_the_walk_needs_a_bounded_stack_whatever_the_nesting(unit):
    html = unit * 2000 + "x"
    base = len(inspect.stack(0))
    limit = sys.getrecursionlimit()
    sys.setrecursionlimit(base + 400)  # the converter alone: at most 400 frames
    try:
        result = convert_html(html)
    finally:
        sys.setrecursionlimit(limit)
    assert_valid(result.doc)
    assert texts(result.doc) == ["x"]


def test_beyond_the_depth_limit_scripts_and_styles_stay_dropped():
    html = (
        "<div>" * (MAX_DOM_DEPTH + 5)
        + "<p>a</p><script>evil()</script><style>p{}</style><div>b<i>c</i></div>"
    )
    result = convert_html(html)
    assert_valid(result.doc)
    assert texts(result.doc) == ["a bc"]
    assert "<script> dropped" in result.warnings


def test_block_elements_inside_inline_ones_keep_the_marks():
    assert convert("<b><p>one</p><p>two</p></b>") == doc(
        p(t("one", "strong")), p(t("two", "strong"))
    )


# ----- figures ---------------------------------------------------------------------------------


def test_figures_of_a_conversion():
    html = '<p class="x" style="margin:0" data-a="1">Hello <b>world</b></p>'
    result = convert_html(html)
    assert result.json == json.dumps(result.doc, ensure_ascii=False, separators=(",", ":"))
    assert result.size_bytes == len(result.json.encode("utf-8"))
    assert result.html_chars == len(html)
    assert result.character_reduction == round(1 - len(result.json) / len(html), 4)
    assert result.text_chars_in == result.text_chars_out == len("Helloworld")
    assert result.text_kept == 1.0
    assert result.warnings == ()


def test_a_verbose_html_document_reduces_and_a_terse_one_grows():
    verbose = (
        '<div class="wrapper" style="font-family:Arial;margin:0;padding:0">'
        '<span style="color:#000000;background:transparent;font-size:11pt">' + "x" * 40
        + "</span></div>"
    )  # fmt: skip
    assert convert_html(verbose).character_reduction > 0
    assert convert_html("<b>x</b>").character_reduction < 0


def test_empty_html_has_zero_reduction_and_full_text_kept():
    result = convert_html("")
    assert (result.character_reduction, result.text_kept, result.size_bytes) == (
        0.0,
        1.0,
        len(adf_json(doc())),
    )


def test_size_counts_utf8_bytes():
    result = convert_html("<p>héllo €</p>")
    assert result.size_bytes == len(result.json.encode("utf-8")) > len(result.json)


def test_a_one_megabyte_document_converts_and_validates():
    chunk = (
        '<h2>Section</h2><p>Some <b>bold</b> text and a <a href="https://example.com">link</a>.</p>'
        "<ul><li>one<ol><li>two</li></ol></li></ul><table><tr><th>A</th><td>1</td></tr></table>"
        '<pre class="language-sql">select 1;</pre><blockquote>q</blockquote><hr>\n'
    )
    html = chunk * (1_000_000 // len(chunk) + 1)
    result = convert_html(html)
    assert len(html) >= 1_000_000
    assert result.text_chars_out == result.text_chars_in
    assert len(nodes_of_type(result.doc, "table")) == html.count("<table>")
    # The whole document is valid; one section checked with the schema is enough per shape.
    assert_valid(html_to_adf(chunk * 3))


def test_html_must_be_a_string():
    with pytest.raises(TypeError):
        html_to_adf(b"<p>x</p>")  # type: ignore[arg-type]
