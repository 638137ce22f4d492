"""--text-format markdown: HTML -> CommonMark as the site renders it, and the visible text both formats judge.

The tricky-HTML cases of tests/test_modifiers.py in Markdown form, the escaping rules, links and images, and real
posts (tests/fixtures/real, ai.stackexchange.com): every <pre> becomes a fence, every external link keeps its URL,
no image placeholder survives, and mdtext.visible_text gives back the words the filters and dedup read.
"""
from __future__ import annotations

import io
import re

import pandas as pd
import pytest
from lxml import etree
from lxml import html as lxml_html

from mdtext import PLACEHOLDER, code_span, escape_text, pre_languages, resolve_url, visible_text
from modifiers import BODY_CLEANER, clean_partition
from records import VISIBLE
from sedump import _stream_7z

from conftest import REPO

FIXTURE = REPO / "tests" / "fixtures" / "real" / "ai.stackexchange.com.7z"
SITE = "ai.stackexchange.com"


def markdown(html: str, site: str = "law.stackexchange.com") -> str:
    frame = pd.DataFrame({"title": ["t"], "question": [html], "answer": [""]})
    return clean_partition(frame, "markdown", site).loc[0, "question"]


@pytest.mark.parametrize("html, expected", [
    ("<p>One.</p><p>Two.</p>", "One.\n\nTwo."),
    ("<p>Tom &amp; Jerry &quot;quoted&quot; &#39;x&#39; &lt;tag&gt; caf&eacute;</p>", "Tom & Jerry \"quoted\" 'x' \\<tag> café"),
    ("<p>line one<br>line two<br/>line three</p>", "line one\\\nline two\\\nline three"),
    ("<ul><li>first</li><li>second</li></ul>", "- first\n- second"),
    ("<ol><li>a</li><li>b</li></ol>", "1. a\n2. b"),
    ("<ol start='4'><li>d</li></ol>", "4. d"),
    ("<ul><li><p>in a paragraph</p></li><li>x<ul><li>nested</li></ul></li></ul>", "- in a paragraph\n- x\n  - nested"),
    ("<blockquote><p>Quoted one.</p><p>Quoted two.</p></blockquote><p>Reply.</p>",
     "> Quoted one.\n>\n> Quoted two.\n\nReply."),
    ("<p>See <a href='https://example.org/statute'>the statute</a> here.</p>",
     "See [the statute](https://example.org/statute) here."),
    ("<p>Use <code>git   log</code> now</p>", "Use `git log` now"),
    ("<pre><code>def f(x):\n    return  x\n</code></pre>", "```\ndef f(x):\n    return  x\n```"),
    ("<script>alert('x')</script><style>p {color: red}</style><p>kept</p>", "kept"),
    ("<p>a</p><!-- comment --><p>b</p>", "a\n\nb"),
    ("<h2>Heading</h2><p>text</p><hr><p>more</p>", "## Heading\n\ntext\n\n---\n\nmore"),
    ("plain   text\n\n\nwith gaps", "plain text with gaps"),
    ("", ""),
    ("<p><em>em</em>, <strong> strong </strong>and <i>i</i><b>b</b></p>", "*em*, **strong** and *i***b**"),
    ("<ol><li>step<pre class='lang-py prettyprint-override'><code>x = 1\n</code></pre></li></ol>",
     "1. step\n\n   ```py\n   x = 1\n   ```"),
    ("<blockquote><pre><code>quoted code\n\nsecond</code></pre></blockquote>",
     "> ```\n> quoted code\n>\n> second\n> ```"),
    ("<table><tr><th>a</th><th>b|c</th></tr><tr><td>1</td><td><em>2</em><br>3</td></tr></table>",
     "| a | b\\|c |\n| --- | --- |\n| 1 | *2* 3 |"),
])
def test_tricky_html_in_markdown_form(html, expected):
    assert markdown(html) == expected


@pytest.mark.parametrize("text, expected", [
    ("2 * 3 = 6", "2 * 3 = 6"),  # an asterisk between spaces emphasises nothing
    ("*not emphasis*", "\\*not emphasis\\*"),
    ("snake_case_name", "snake_case_name"),  # intraword underscores: no emphasis in CommonMark
    ("_leading", "\\_leading"),
    ("see [1] and [2](x)", "see [1] and [2\\](x)"),
    ("a `tick`", "a \\`tick\\`"),
    ("&copy; stays text, AT&T too", "\\&copy; stays text, AT&T too"),
    ("<div> is shown, 3 < 4", "\\<div> is shown, 3 < 4"),
    ("back\\slash\\* and \\n", "back\\slash\\\\\\* and \\n"),
    ("TeX $a*b_c$ and $$x_1 * y$$ stay", "TeX $a*b_c$ and $$x_1 * y$$ stay"),
    ("costs $5 and *$10*", "costs $5 and \\*$10\\*"),  # money, not math
])
def test_escaping_only_where_a_renderer_would_misread(text, expected):
    assert escape_text(text) == expected


@pytest.mark.parametrize("html, expected", [
    ("<p># not a heading</p>", "\\# not a heading"),
    ("<p>1. not a list</p>", "1\\. not a list"),
    ("<p>- not a bullet</p>", "\\- not a bullet"),
    ("<p>&gt; not a quote</p>", "\\> not a quote"),
    ("<p>===</p>", "\\==="),
    ("<p>#hashtag stays</p>", "#hashtag stays"),
])
def test_line_starts_escaped(html, expected):
    assert markdown(html) == expected


def test_code_span_outlasts_backticks_inside():
    assert code_span("a`b") == "``a`b``"
    assert code_span("`x`") == "`` `x` ``"
    assert markdown("<p><code>echo `date`</code></p>") == "`` echo `date` ``"  # one space each side is stripped
    assert markdown("<pre><code>```\nnested fence\n```</code></pre>") == "````\n```\nnested fence\n```\n````"


def test_links_absolute_bare_and_odd_urls():
    md = markdown("<p><a href='/questions/12/x'>q</a> <a href='//meta.law.stackexchange.com/a/1'>m</a> "
                  "<a href='https://e.org/a_(b)'>paren</a> <a href='https://e.org/x'>https://e.org/x</a> "
                  "Wow!<a href='https://e.org/y'>y</a> <a href='javascript:alert(1)'>js</a></p>")
    assert md == ("[q](https://law.stackexchange.com/questions/12/x) [m](https://meta.law.stackexchange.com/a/1) "
                  "[paren](<https://e.org/a_(b)>) <https://e.org/x> Wow\\![y](https://e.org/y) js")
    assert markdown("<p><a href='/q/1'>x</a></p>", site="cardano.stackexchange.com") == \
        "[x](https://cardano.stackexchange.com/q/1)"
    assert resolve_url("mailto:a@b.c", "https://s/") == "mailto:a@b.c"


def test_images_never_the_placeholder():
    md = markdown(f"<p><a href='https://i.stack.imgur.com/a.png'><img src='https://i.stack.imgur.com/a.png' "
                  f"alt='{PLACEHOLDER}'></a></p><p><img src='/img/b.png' alt='Figure 2: the circuit'></p>")
    assert PLACEHOLDER not in md.lower()
    assert md == ("[![](https://i.stack.imgur.com/a.png)](https://i.stack.imgur.com/a.png)\n\n"
                  "![Figure 2: the circuit](https://law.stackexchange.com/img/b.png)")


@pytest.mark.parametrize("html, expected", [
    ("<p>x</p><li>one</li><li>two</li>", "x\n\n- one\n- two"),
    ("<blockquote><li>quoted</li></blockquote>", "> - quoted"),
    ("<ol><li>a</li></ol><li>after</li>", "1. a\n\n- after"),
    ("<ul><li>a<blockquote><li>b</li></blockquote></li></ul>", "- a\n\n  > - b"),
])
def test_bare_list_item_is_a_bullet(html, expected):
    """A <li> outside any list (real posts have them) is a bullet, as in the plain text; it crashed the walk."""
    frame = pd.DataFrame({"title": ["t"], "question": [html], "answer": [""]})
    md, plain = clean_partition(frame, "markdown"), clean_partition(frame, "plain")
    assert md.loc[0, "question"] == expected
    assert md.loc[0, VISIBLE["question"]] == plain.loc[0, VISIBLE["question"]]
    assert visible_text(expected).split() == plain.loc[0, "question"].split()


@pytest.mark.parametrize("html, expected_markdown, expected_visible", [
    ("<p>as below:\n[![enter image description here][1]][1]\nHausra CLI</p>", "as below: Hausra CLI",
     "as below: Hausra CLI"),
    ("<p>see ![Enter Image Description Here](https://i.stack.imgur.com/x.png) and more</p>", "see and more",
     "see and more"),
    ("<p>![ENTER IMAGE DESCRIPTION HERE][2] first</p><p>kept ![a real alt](u)</p>",
     "first\n\nkept \\![a real alt\\](u)", "first\n\nkept ![a real alt](u)"),
    ("<p>a <img src='/x.png' alt='Enter image description here'> b</p>", "a ![](https://law.stackexchange.com/x.png) b",
     "a b"),
])
def test_unrendered_placeholder_markup_is_dropped(html, expected_markdown, expected_visible):
    """Stack Exchange's placeholder that reached the site as text (the author's Markdown unrendered) or as an alt
    text in any case: in neither the Markdown nor the visible text; the plain format keeps today's literal text."""
    frame = pd.DataFrame({"title": ["t"], "question": [html], "answer": [""]})
    md, plain = clean_partition(frame, "markdown"), clean_partition(frame, "plain")
    assert md.loc[0, "question"] == expected_markdown
    assert md.loc[0, VISIBLE["question"]] == plain.loc[0, VISIBLE["question"]] == expected_visible
    assert plain.loc[0, "question"] == BODY_CLEANER.modify_document(html)
    assert PLACEHOLDER in plain.loc[0, "question"].lower()


def test_language_from_class_and_comments():
    html = ("<!-- language-all: lang-js --><pre><code>a()</code></pre>"
            "<!-- language: lang-python --><pre><code>b()</code></pre><pre class='lang-sql'><code>c</code></pre>")
    assert pre_languages(html) == ["js", "python", "js"]
    assert markdown(html) == "```js\na()\n```\n\n```python\nb()\n```\n\n```sql\nc\n```"


def test_plain_format_is_todays_text_and_visible_text_is_shared():
    htmls = ["<p>a <a href='https://x.org'>link</a> and <code>code</code></p>",
             f"<p>see <img src='https://i/x.png' alt='{PLACEHOLDER}'> below</p>", "<pre>x\n y</pre>"]
    frame = pd.DataFrame({"title": ["t"] * 3, "question": htmls, "answer": htmls})
    plain, md = clean_partition(frame, "plain"), clean_partition(frame, "markdown")
    assert plain["question"].tolist() == [BODY_CLEANER.modify_document(h) for h in htmls]
    assert PLACEHOLDER in plain.loc[1, "question"]  # today's plain text, byte for byte
    for column in ("question", "answer"):
        assert plain[VISIBLE[column]].tolist() == md[VISIBLE[column]].tolist()
    assert md.loc[1, VISIBLE["question"]] == "see below"
    assert md.loc[0, "question"] == "a [link](https://x.org) and `code`"


def fixture_posts() -> list[str]:
    data = b"".join(block for _, block in _stream_7z(FIXTURE, {"Posts.xml": "Posts.xml"}))
    bodies = []
    for _, row in etree.iterparse(io.BytesIO(data), tag="row"):
        if row.get("PostTypeId") in ("1", "2") and row.get("Body"):
            bodies.append(row.get("Body"))
        row.clear()
    return bodies


def test_real_posts_keep_code_links_and_words():
    """ai.stackexchange.com's posts: every <pre> -> a fence holding its first line, every inline <code> in
    backticks, every external link's URL present, no placeholder, and visible_text(markdown) has the very words
    the filters and dedup read (the plain walk's visible text)."""
    bodies = fixture_posts()
    assert len(bodies) == 847
    frame = pd.DataFrame({"title": ["t"] * len(bodies), "question": bodies, "answer": [""] * len(bodies)})
    cleaned = clean_partition(frame, "markdown", SITE)
    pres = codes = links = 0
    for html, md, shown in zip(bodies, cleaned["question"], cleaned[VISIBLE["question"]]):
        root = lxml_html.fragment_fromstring(html, create_parent="div")
        for pre in root.iter("pre"):
            first = next((line.strip() for line in pre.text_content().split("\n") if line.strip()), None)
            if first:
                pres += 1
                assert re.search(r"(?m)^[> ]*```[\w+#.-]*\n(?:.*\n)*?[> ]*" + re.escape(first), md), (first, md)
        for code in root.iter("code"):
            if code.getparent().tag != "pre" and code.text_content().strip():
                codes += 1
                assert code_span(" ".join(code.text_content().split())) in md
        for a in root.iter("a"):
            url = resolve_url(a.get("href"), f"https://{SITE}/")
            if url and url.startswith("http") and SITE not in url:
                links += 1
                assert url in md, (url, md)
        assert PLACEHOLDER not in md.lower()
        assert visible_text(md).split() == shown.split()
    assert (pres, codes) == (21, 59) and links > 1000


def test_bad_text_format_is_one_line_and_exit_2(tmp_path):
    from conftest import run_main

    result = run_main("--text-format", "html", "--output-dir", str(tmp_path / "out"))
    assert result.returncode == 2
    assert result.stderr.strip().count("\n") == 0 and "--text-format" in result.stderr
    assert not (tmp_path / "out").exists()


def test_audit_reads_the_visible_words_of_either_format():
    from audit import check_filters, text_format, to_visible

    words = " ".join(f"w{i}" for i in range(48))
    md_rows = [{"id": "a", "_file": "train", "_line": 1, "title": "t", "question_score": 1, "answer_score": 1,
                "question": f"{words} [see this](https://example.org/a/very/long/path/with/many/words/in/it) `x`",
                "answer": f"{words} ![](https://i.stack.imgur.com/x.png) **bold** y"}]
    plain_rows = [{**md_rows[0], "question": f"{words} see this x",
                   "answer": f"{words} {PLACEHOLDER} bold y"}]
    thresholds = {"min_words": 50, "max_words": 51, "min_question_score": 0, "min_answer_score": 0}
    assert text_format({"run": {"args": {"text_format": "markdown"}}}) == "markdown"
    to_visible(md_rows, "markdown")
    to_visible(plain_rows, "plain")
    for rows in (md_rows, plain_rows):  # 48 + 2 words each: in range only if URLs and the placeholder are not words
        assert check_filters(rows, thresholds)["status"] == "PASS", rows


def test_plain_format_is_todays_cleaner_on_the_bundled_sample():
    """--text-format plain writes what BODY_CLEANER (today's clean) writes, for every post of the sample; the
    visible text differs from it only where an image's alt text is the placeholder (none in the sample)."""
    import json

    elements = json.loads((REPO / "data" / "sample" / "law-stackexchange-questions-answers.json").read_text())
    bodies = [e["question_body"] for e in elements] + [a["body"] for e in elements for a in e["answers"]]
    frame = pd.DataFrame({"title": ["t"] * len(bodies), "question": bodies, "answer": bodies})
    plain = clean_partition(frame, "plain")
    assert plain["question"].tolist() == [BODY_CLEANER.modify_document(b) for b in bodies]
    assert plain[VISIBLE["question"]].tolist() == plain["question"].tolist()
    assert clean_partition(frame, "markdown")[VISIBLE["answer"]].tolist() == plain["answer"].tolist()


def test_simple_posts_shortcut_is_the_general_walks():
    """modifiers._simple_post (one pass, each block whole) gives what the two builder walks give, on the real posts
    and the bundled sample's, and on the cases it must leave to them (None: a list, an image, a leading ">")."""
    import orjson

    from mdtext import walk_markdown
    from modifiers import _parse_fragment, _simple_post, _walk_text

    sample = orjson.loads((REPO / "data" / "sample" / "law-stackexchange-questions-answers.json").read_bytes())
    bodies = fixture_posts() + [q["question_body"] for q in sample] + [
        "<p>a <em>b</em> <a href='/q/1'>c</a></p><h2>*d*</h2>", "<p>  </p><p>1. x</p>\n<h3>- y <code>z</code></h3>",
        "<p>\u00a0x\u00a0</p><p>&gt; q</p>", "<blockquote><p>a</p></blockquote><blockquote><p>b</p><p>c</p></blockquote>",
        "<pre><code>&gt; x\n\n  y  \n</code></pre><blockquote><p>q</p></blockquote><hr><ol start='3'><li>- i</li></ol>",
        "<ul>\n<li> 1. a </li>\n<li>b\u00a0</li></ul><script>x</script><p>*e*</p>",
        "<p>a <br>\n# b<br/>c\u00a0</p><p>x\u00a0<em>y</em> <strong>\u00a0z</strong></p><blockquote><p>q<em>r</em></p></blockquote>",
        "<p>a<br><br>b</p>", "<p>x <em>y</em>\u00a0<strong>z</strong></p>",
        "<p>x</p><ul><li>y <em>z</em></li></ul>", "<p><img src='a.png' alt='b'></p>", "<p>&gt;</p>", "<div>x</div>"]
    taken = 0
    for html in bodies:
        root = _parse_fragment(html)
        pair = _simple_post(root, "https://law.stackexchange.com/", html)
        if pair is not None:
            taken += 1
            assert pair == (walk_markdown(root, "https://law.stackexchange.com/", None), _walk_text(root, True)), html
    assert taken > len(bodies) // 3
    for html in bodies[-4:]:
        assert _simple_post(_parse_fragment(html), "https://x/", html) is None, html


def test_markdown_only_for_kept_rows_is_the_full_clean():
    """clean_and_filter_partition makes the Markdown only for the rows filters.RowKeep keeps (modifiers'
    _markdown_of_kept_rows): on the real posts, with empty titles and scores below the minimum among them, its
    kept rows and drop counts are those of the full clean, and RowKeep decides as filter_partition does."""
    import filters
    from card import partition_word_histograms
    from filters import (DROP_REASON, FilterConfig, RowKeep, apply_filters, default_filters, filter_partition,
                         word_counts)
    from modifiers import WRITTEN

    bodies = fixture_posts()
    n = len(bodies) // 2
    frame = pd.DataFrame({"title": ["" if i % 37 == 0 else f"title {i}" for i in range(n)],
                          "question": bodies[:n], "answer": bodies[n:2 * n],
                          "question_score": [(i % 11) - 1 for i in range(n)],
                          "answer_score": [(i % 13) - 1 for i in range(n)]})
    chain = default_filters(FilterConfig(min_words=20, max_words=300))
    full = clean_partition(frame, "markdown", SITE)
    expected, expected_drops = apply_filters(full, chain)
    keep_row = RowKeep(chain)
    lazy = clean_partition(frame, "markdown", SITE, keep_row=keep_row)
    kept_by_filter = (filter_partition(full, chain)[DROP_REASON] == "").tolist()
    assert lazy[WRITTEN].tolist() == kept_by_filter and 0 < sum(kept_by_filter) < n
    for column in ("title", VISIBLE["question"], VISIBLE["answer"]):
        assert lazy[column].tolist() == full[column].tolist()
    assert lazy[full.columns][lazy[WRITTEN]].equals(full[lazy[WRITTEN]])
    kept, drops, histograms = filters.clean_and_filter_partition(frame, chain, partition_word_histograms,
                                                                 text_format="markdown", site=SITE)
    pd.testing.assert_frame_equal(kept, expected)
    assert drops == expected_drops and len(drops) >= 4
    reference = partition_word_histograms(filter_partition(full, chain), DROP_REASON, word_counts(full, chain))
    assert (histograms == reference).all()


def test_rows_row_keep_wrongly_drops_still_get_their_markdown(monkeypatch):
    """A RowKeep that calls every row dropped costs only time: the rows the filters keep are cleaned again."""
    import filters
    from filters import FilterConfig, apply_filters, default_filters

    class DropsAll(filters.RowKeep):
        def __call__(self, values: dict) -> bool:
            super().__call__(values)
            return False

    bodies = fixture_posts()[:40]
    frame = pd.DataFrame({"title": ["t"] * 20, "question": bodies[:20], "answer": bodies[20:],
                          "question_score": [1] * 20, "answer_score": [1] * 20})
    chain = default_filters(FilterConfig(min_words=5, max_words=2000))
    expected, _ = apply_filters(clean_partition(frame, "markdown", SITE), chain)
    monkeypatch.setattr(filters, "RowKeep", DropsAll)
    kept, _ = filters.clean_and_filter_partition(frame, chain, text_format="markdown", site=SITE)
    assert len(kept) >= 10
    pd.testing.assert_frame_equal(kept, expected)
