"""The clean stage's shortcuts around ftfy give exactly what ftfy.fix_text gives (bench/ speed-ups, issue 7), and
textrepair.finish_text exactly what repair_unicode then normalise_whitespace give (issue 18)."""
import itertools
import random

import ftfy

import textrepair as M

ALPHABET = [chr(c) for c in range(0x20, 0x7F)] + ["\t"] + list(M._FTFY_SIMPLE_EXTRA) + list(M._FTFY_LETTERS)
MIXED = ALPHABET + list("\r\x00\x1b\x85\x9d&<éÃ©â€™ÂœŠ§¶°²€£ﬁＡ\u200b\u00ad\u2028\ud800") + ["&amp;", "&#8217;", "â€œ",
                                                                                  "Ã©", "\n", "\n\n", "  "]


def reference_fix(text, unescape_html):
    return ftfy.fix_text(text, unescape_html=unescape_html, normalization="NFC")


def test_every_two_character_line_matches_ftfy():
    # Exhaustive over printable ASCII, tab and the punctuation the shortcut handles (length 3 was checked
    # exhaustively offline: 1.16M strings, no mismatch; every badness pattern these characters can reach is
    # at most three characters long).
    for pair in itertools.product(ALPHABET, repeat=2):
        s = "".join(pair)
        for unescape in (False, "auto"):
            for line in (s, s + "\n"):
                assert M._fix_line(line, unescape) == reference_fix(line, unescape), (line, unescape)


def test_random_texts_match_ftfy():
    rng = random.Random(7)
    for _ in range(4000):
        n = rng.randint(0, 60)
        pool = ALPHABET if rng.random() < 0.5 else MIXED
        text = "".join(rng.choice(pool) for _ in range(n))
        for unescape in (False, "auto", True):
            assert M._fix_text(text, unescape) == reference_fix(text, unescape), (text, unescape)


def test_auto_unescape_stops_at_first_tag_line_like_ftfy():
    cases = ["a &amp; b\n<p> &amp;\nc &amp; d", "x\ny &lt;\n<\n&amp;", "&amp;<\n&amp;", "\u2019 &amp;\n<b>\n\u2019&amp;"]
    for text in cases:
        assert M._fix_text(text, "auto") == reference_fix(text, "auto"), text


def test_accented_letters_beside_ascii_and_beside_other_non_ascii_match_ftfy():
    # the letter shortcut's edges: a letter next to another non-ASCII character (possible mojibake), next to a
    # space (ftfy's lost no-break space), next to "&" or ";" (entities). Three characters were checked
    # exhaustively offline over these pools (362,252 strings, no mismatch); here a fixed random sample.
    rng = random.Random(11)
    pool = list(M._FTFY_LETTERS) + list(M._FTFY_SIMPLE_EXTRA) + list(" \t'\"&;<>.,-_aAzZ0#!?()esn") + ["\u00c3", "\u00e2"]
    for _ in range(6000):
        text = "".join(rng.choice(pool) for _ in range(rng.randint(1, 5)))
        for unescape in (False, "auto"):
            assert M._fix_line(text, unescape) == reference_fix(text, unescape), (text, unescape)


def test_finish_text_is_repair_then_normalise():
    # every path of finish_text: printable ASCII (tidy or not), ASCII with a control character, simple non-ASCII
    # (quotes, no-break and zero-width spaces), text ftfy must fix; with and without a memo shared between texts
    rng = random.Random(13)
    pools = [ALPHABET + ["\n", "\n\n\n", " \n", "\t\n"], MIXED, ALPHABET + ["\u00a0", "\u200b", "\u2019", "\n", "  "]]
    memo = {}
    for i in range(6000):
        pool = pools[i % 3]
        text = "".join(rng.choice(pool) for _ in range(rng.randint(0, 40)))
        expected = M.normalise_whitespace(M.repair_unicode(text))
        assert M.finish_text(text) == expected, text
        assert M.finish_text(text, memo) == expected, text
    assert M.finish_text("caf\u00c3\u00a9 \u2019x\u2019\n\n\n b\u00a0") == "caf\u00e9 'x'\n\n b"
