"""Clean stage: HTML to structured plain text, Unicode repair, whitespace."""
import pandas as pd
import pytest

from modifiers import BODY_CLEANER, TITLE_CLEANER, clean_partition, html_to_text, repair_unicode


@pytest.mark.parametrize("html, expected", [
    ("<p>One.</p><p>Two.</p>", "One.\n\nTwo."),
    ("<p>Tom &amp; Jerry &quot;quoted&quot; &#39;x&#39; &lt;tag&gt; caf&eacute;</p>", "Tom & Jerry \"quoted\" 'x' <tag> café"),
    ("<p>line one<br>line two<br/>line three</p>", "line one\nline two\nline three"),
    ("<ul><li>first</li><li>second</li></ul>", "- first\n- second"),
    ("<ol><li>a</li><li>b</li></ol>", "1. a\n2. b"),
    ("<ol start='4'><li>d</li></ol>", "4. d"),
    ("<ul><li><p>in a paragraph</p></li><li>x<ul><li>nested</li></ul></li></ul>", "- in a paragraph\n- x\n  - nested"),
    ("<blockquote><p>Quoted one.</p><p>Quoted two.</p></blockquote><p>Reply.</p>",
     "> Quoted one.\n>\n> Quoted two.\n\nReply."),
    ("<p>See <a href='https://example.org/statute'>the statute</a> here.</p>", "See the statute here."),
    ("<p>Use <code>git   log</code> now</p>", "Use git log now"),
    ("<pre><code>def f(x):\n    return  x\n</code></pre>", "def f(x):\n    return  x"),
    ("<script>alert('x')</script><style>p {color: red}</style><p>kept</p>", "kept"),
    ("<p>a</p><!-- comment --><p>b</p>", "a\n\nb"),
    ("<h2>Heading</h2><p>text</p><hr><p>more</p>", "Heading\n\ntext\n\nmore"),
    ("plain   text\n\n\nwith gaps", "plain text with gaps"),
    ("", ""),
])
def test_html_to_text_keeps_structure(html, expected):
    assert BODY_CLEANER.modify_document(html) == expected


def test_no_tags_survive_and_no_external_fetch():
    html = "<p>x<img src='http://127.0.0.1:9/x.png' alt='diagram'></p><iframe src='http://127.0.0.1:9'>y</iframe>"
    text = html_to_text(html)
    assert "<" not in text and "diagram" in text and "y" not in text.split()


def test_deep_nesting_keeps_text_without_recursion_error():
    html = "<div>" * 10_000 + "deep &amp; down" + "</div>" * 10_000
    assert html_to_text(html) == "deep & down"


def test_unicode_repair():
    assert repair_unicode("donâ€™t") == "don't"
    assert repair_unicode("a\u200bb\u00a0c\ufeff\x07") == "ab c"
    assert repair_unicode("lone \ud800 surrogate") == "lone  surrogate"


def test_title_cleaner_decodes_entities_and_keeps_one_line():
    assert TITLE_CLEANER.modify_document("Can my  landlord &quot;evict&quot;\nme?") == 'Can my landlord "evict" me?'


def test_clean_partition_touches_only_text_columns():
    df = pd.DataFrame({"title": ["T &amp; U"], "question": ["<p>q</p>"], "answer": ["<p>a</p><p>b</p>"],
                       "question_score": [3]})
    out = clean_partition(df)
    assert out.loc[0, "title"] == "T & U"
    assert out.loc[0, "question"] == "q"
    assert out.loc[0, "answer"] == "a\n\nb"
    assert out.loc[0, "question_score"] == 3
