"""Text helpers shared by every dedup kind: the normalized key text, the embedded document text, hashes, ids."""
from __future__ import annotations

import re
import unicodedata
from itertools import chain

import numpy as np
import pandas as pd
import xxhash

_DIGITS = re.compile(r"(\d+)")
# In UTF-8, the ASCII bytes that are not word characters ([A-Za-z0-9_]) become spaces and every other byte stays:
# once the non-ASCII characters that are not word characters ("€", "’", "\u2028") are spaces too, bytes.translate and bytes.split() give
# the regex's words at a fraction of its cost. \x1c-\x1f are whitespace to str.split but not to bytes.split, so
# they are mapped to spaces like the rest.
_ASCII_NONWORD_TO_SPACE = bytes(c if c >= 128 or chr(c).isalnum() or c == ord("_") else ord(" ") for c in range(256))
_NON_ASCII_RUN = re.compile(r"[^\x00-\x7f]+")


def fold(text: str) -> str:
    """NFKC, then case-folded: the form every text comparison starts from."""
    return unicodedata.normalize("NFKC", text or "").casefold()


def normalize_text(text: str) -> str:
    """NFKC, case-folded, whitespace collapsed (the exact-dedup key text)."""
    return collapse_space(fold(text))


def collapse_space(folded: str) -> str:
    """Runs of whitespace as one space, none at the ends: normalize_text of a text already folded."""
    # str.split() and the regex \s agree on whitespace (both Py_UNICODE_ISSPACE), and split/join is ~3x faster
    return " ".join(folded.split())


def words_of(text: str) -> list[bytes]:
    """The UTF-8 words (runs of word characters) of the folded text: punctuation and whitespace separate them."""
    return folded_words(fold(text))


def folded_words(folded: str) -> list[bytes]:
    """words_of a text already folded."""
    if not folded.isascii():
        # a post holds a handful of distinct non-ASCII characters: str.replace each that is not a word character
        # (\w outside ASCII is str.isalnum), which is cheaper than a regex over every character
        for ch in set("".join(_NON_ASCII_RUN.findall(folded))):
            if not ch.isalnum():
                folded = folded.replace(ch, " ")
    return folded.encode("utf-8").translate(_ASCII_NONWORD_TO_SPACE).split()


def word_hashes(docs: list[list[bytes]]) -> tuple[np.ndarray, np.ndarray]:
    """xxh64 of every word of every doc, concatenated (uint64), and each doc's word offsets (len n+1).
    A word's hash depends only on the word, so hashes agree across partitions, calls and runs."""
    lens = np.fromiter(map(len, docs), dtype=np.int64, count=len(docs))
    offsets = np.r_[0, np.cumsum(lens)].astype(np.int64)
    # one C call per word: cheaper than finding the distinct words first (a hash table of bytes objects)
    return np.fromiter(map(xxhash.xxh64_intdigest, chain.from_iterable(docs)), np.uint64, count=int(offsets[-1])), \
        offsets


def doc_text(title: str, question: str, answer: str) -> str:
    """The text every kind compares: title, question and answer, one per line."""
    return f"{title or ''}\n{question or ''}\n{answer or ''}"


def doc_texts(df: pd.DataFrame) -> list[str]:
    """doc_text of every row of a frame, in row order, from the visible text of question and answer (records.VISIBLE:
    the same words whatever --text-format wrote)."""
    from records import visible

    return [doc_text(t, q, a) for t, q, a in zip(df["title"], visible(df, "question"), visible(df, "answer"))]


def text_hashes(texts) -> list[str]:
    """xxh3-128 of each text as given (the embedding cache key)."""
    return [xxhash.xxh3_128_hexdigest(t.encode("utf-8")) for t in texts]


def exact_hashes(texts, folded: list[str] | None = None) -> list[str]:
    """xxh3-128 of each normalized text (the exact-dedup key); `folded`: the texts' fold, if made already."""
    return text_hashes(map(collapse_space, folded if folded is not None else map(fold, texts)))


def natural_key(s: str) -> tuple:
    """'law-stackexchange-qa-9' < 'law-stackexchange-qa-10': digit runs compare as numbers."""
    return tuple((0, int(p), "") if p.isdigit() else (1, 0, p) for p in _DIGITS.split(str(s)) if p != "")
