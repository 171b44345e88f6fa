"""Property-based: whatever HTML comes in, exports.adf gives a document Atlassian's schema accepts.

The strategy builds random element trees (every tag the converter knows, tags it drops, unknown
and namespaced tags, table parts in the wrong places, void elements), random attributes (hostile
and odd link schemes, spans and starts that are not numbers, CSS, language classes, uploaded and
foreign image sources), text with control characters and lone surrogates, and serialises them
with end tags sometimes left out and markup characters sometimes left unescaped, so the parser's
error recovery is exercised too. A second strategy is plain garbage made of markup characters.
"""

from __future__ import annotations

import html as html_lib
from collections import Counter

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from exports.adf import MediaRef, adf_json, convert_html, html_to_adf
from tests.exports.adf_support import editor_problem, schema_validator, texts

BLOCK_TAGS = [
    "p", "div", "section", "article", "header", "footer", "h1", "h2", "h3", "h4", "h5", "h6",
    "ul", "ol", "li", "menu", "dl", "dt", "dd", "blockquote", "pre", "figure", "figcaption",
    "details", "summary", "center", "address", "table", "thead", "tbody", "tfoot", "tr", "td",
    "th", "caption", "colgroup", "listing", "form", "fieldset", "legend",
]  # fmt: skip
INLINE_TAGS = [
    "span", "a", "b", "strong", "i", "em", "u", "ins", "s", "strike", "del", "code", "kbd",
    "samp", "tt", "sub", "sup", "small", "big", "font", "mark", "abbr", "q", "cite", "var",
    "label", "ruby", "rt", "bdi", "nobr", "button",
]  # fmt: skip
ODD_TAGS = ["custom-widget", "o:p", "x", "w:sdt", "blink", "marquee", "math", "select", "option"]
DROPPED_TAGS = [
    "script", "style", "template", "iframe", "noscript", "object", "svg", "video", "textarea",
    "xmp", "title", "head", "html", "body", "plaintext",
]  # fmt: skip
VOID_TAGS = ["br", "hr", "img", "wbr", "input", "col", "embed"]

HREFS = [
    "https://example.com/a?b=c#d", "http://example.com", "mailto:ops@example.com",
    "javascript:alert(1)", "JAVASCRIPT:alert(1)", " https://example.com/ space ", "data:text/html,x",
    "/relative", "#frag", "", "https://", "http://[::1", "ftp://x", "https://\x01x.com",
    "mailto:", "https://exa mple.com/\u202e",
]  # fmt: skip
SRCS = ["uploaded.png", "/media/uploaded.png?x=1", "https://example.com/x.png", "data:image/png,x", "", "javascript:x", "photo%20one.jpg"]  # fmt: skip
MEDIA = {
    "uploaded.png": MediaRef(id="0b6f0e4c-1", collection="jira-12-collection"),
    "photo one.jpg": MediaRef(id="0b6f0e4c-2", collection=""),
}
NUMBERS = ["1", "2", "0", "-1", "3", "1000", "1001", "70000", "x", "", " 2 ", "1e3", "٣", "99999999999999999999"]  # fmt: skip
STYLES = [
    "font-weight:700", "font-weight:bold", "font-weight:normal", "font-weight: 400 !important",
    "font-style:italic", "text-decoration:underline", "text-decoration:line-through",
    "vertical-align:super", "vertical-align:sub", "color:red;;;", ":", "font-weight:",
]  # fmt: skip
CLASSES = ["language-python", "lang-js", "highlight-source-shell", "language-", "language-a b", "MsoNormal", ""]  # fmt: skip

any_text = st.text(
    alphabet=st.characters(exclude_categories=[]), max_size=12
)  # surrogates and controls included
tricky_text = st.sampled_from(
    ["&nbsp;", "&amp;", "&lt;b&gt;", "&#0;", "&#x1F600;", "&#xD800;", "\u00a0", "\r\n", "\t", " ", "<", ">", "&", "]]>", "<!--", "\x00", "\ud83d", "\u200b"]
)  # fmt: skip


def attribute_values(name: str) -> st.SearchStrategy[str]:
    samples = {
        "href": HREFS,
        "src": SRCS,
        "colspan": NUMBERS,
        "rowspan": NUMBERS,
        "start": NUMBERS,
        "style": STYLES,
        "class": CLASSES,
    }.get(name)
    if samples is None:
        return any_text
    return st.one_of(st.sampled_from(samples), any_text)


attributes = st.dictionaries(
    st.sampled_from(["href", "src", "alt", "colspan", "rowspan", "start", "style", "class", "title", "lang"]),
    st.just(None),
    max_size=3,
).flatmap(
    lambda names: st.fixed_dictionaries({name: attribute_values(name) for name in names})
)  # fmt: skip


def text_leaf(text_strategy: st.SearchStrategy[str]) -> st.SearchStrategy[tuple]:
    return st.tuples(st.just("text"), text_strategy, st.booleans())


some_attributes = st.one_of(st.just({}), attributes)


def element(tags: list[str], children: st.SearchStrategy) -> st.SearchStrategy[tuple]:
    """A random element, or one of the structures the converter must get right (lists, tables,
    code blocks, quotes, marks inside marks), so that they are common rather than lucky."""

    def make(tag: str, kids: st.SearchStrategy = children, size: int = 4) -> st.SearchStrategy:
        return st.tuples(
            st.just("element"),
            st.just(tag) if isinstance(tag, str) else tag,
            some_attributes,
            st.lists(kids, max_size=size),
            st.booleans(),  # write the end tag
        )

    item = make("li")
    cell = make(st.sampled_from(["td", "th"]))
    row = make("tr", cell)
    return st.one_of(
        make(st.sampled_from(tags)),
        make(st.sampled_from(["ul", "ol"]), st.one_of(item, children)),
        make("table", st.one_of(row, make(st.sampled_from(["tbody", "thead"]), row), children)),
        make("pre", st.one_of(make("code"), children)),
        make(st.sampled_from(["blockquote", "h1", "h3", "p"])),
        make(st.sampled_from(["b", "i", "code", "a", "sup", "u", "s"])),
    )


def tree(tags: list[str], text_strategy: st.SearchStrategy[str]) -> st.SearchStrategy[list]:
    leaves = st.one_of(
        text_leaf(text_strategy),
        st.tuples(st.just("void"), st.sampled_from(VOID_TAGS), attributes),
    )
    return st.lists(
        st.recursive(leaves, lambda children: element(tags, children), max_leaves=40), max_size=5
    )


def render(nodes: list) -> str:
    parts: list[str] = []
    for node in nodes:
        if node[0] == "text":
            _, text, escape = node
            parts.append(html_lib.escape(text, quote=False) if escape else text)
        elif node[0] == "void":
            parts.append(f"<{node[1]}{render_attributes(node[2])}>")
        else:
            _, tag, attrs, children, close = node
            parts.append(f"<{tag}{render_attributes(attrs)}>{render(children)}")
            if close:
                parts.append(f"</{tag}>")
    return "".join(parts)


def render_attributes(attrs: dict[str, str]) -> str:
    return "".join(f' {name}="{html_lib.escape(value)}"' for name, value in attrs.items())


ALL_TAGS = BLOCK_TAGS + INLINE_TAGS + ODD_TAGS + DROPPED_TAGS
GARBAGE_PIECES = [
    "<p>", "<li>", "<table>", "<td>", "<tr>", "<pre>", "<b>", "</b>", "<a href=https://x>",
    "<img src=uploaded.png>", "<h1>", "<br>", "<hr>", "<ul>", "<ol start=-1>", "<!--", "-->",
    "<script>", "</script>", "<blockquote>", "<![CDATA[", "<svg>", "<math>", "&nbsp;",
]  # fmt: skip
garbage = st.lists(
    st.one_of(
        st.sampled_from(list("<>/=\"' &;!-#abpilutdhr123\n\x00")), st.sampled_from(GARBAGE_PIECES)
    ),
    max_size=120,
).map("".join)


PROPERTY_SETTINGS = settings(
    max_examples=300,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


def assert_valid_for(html: str) -> None:
    doc = html_to_adf(html, media=MEDIA)
    problem = schema_validator().problem(doc) or editor_problem(doc)
    assert problem is None, f"{problem}\nHTML: {html!r}\nADF: {doc}"
    adf_json(doc).encode("utf-8")  # no lone surrogate survives: Jira receives UTF-8


@PROPERTY_SETTINGS
@given(tree(ALL_TAGS, st.one_of(any_text, tricky_text)))
def test_every_generated_html_tree_converts_to_schema_valid_adf(nodes):
    assert_valid_for(render(nodes))


@PROPERTY_SETTINGS
@given(garbage)
def test_every_garbage_string_converts_to_schema_valid_adf(html):
    assert_valid_for(html)


@PROPERTY_SETTINGS
@given(st.text(alphabet=st.characters(exclude_categories=[]), max_size=300))
def test_every_unicode_string_converts_to_schema_valid_adf(html):
    assert_valid_for(html)


# Tags whose text is content as it is: no raw-text elements (xmp, textarea), nothing dropped, no
# foreign content, no images (their alt text and address add text).
TEXT_TAGS = [tag for tag in BLOCK_TAGS + INLINE_TAGS + ["custom-widget", "o:p", "x"]]
letters = st.text(alphabet="abcdefghijklmnopqrstuvwxyz \n", min_size=1, max_size=10)


def text_of(nodes: list) -> str:
    found: list[str] = []
    for node in nodes:
        if node[0] == "text":
            found.append(node[1])
        elif node[0] == "element":
            found.append(text_of(node[3]))
    return "".join(found)


def no_images(nodes: list) -> list:
    kept = []
    for node in nodes:
        if node[0] == "void" and node[1] in ("img", "input", "embed"):
            continue
        if node[0] == "element":
            node = (*node[:3], no_images(node[3]), node[4])
        kept.append(node)
    return kept


@PROPERTY_SETTINGS
@given(tree(TEXT_TAGS, letters))
def test_the_text_of_generated_html_survives_the_conversion(nodes):
    nodes = no_images(nodes)
    html = render(nodes)
    result = convert_html(html)
    expected = Counter(text_of(nodes).replace(" ", "").replace("\n", ""))
    kept = Counter("".join(texts(result.doc)).replace(" ", "").replace("\n", ""))
    assert kept == expected, f"HTML: {html!r}"
    assert result.text_chars_in == result.text_chars_out == sum(expected.values())
