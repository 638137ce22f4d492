"""Text helpers shared by every dedup kind: the normalized key text, the embedded document text, hashes, ids."""
from __future__ import annotations

import re
import unicodedata

import pandas as pd
import xxhash

_WS = re.compile(r"\s+")
_DIGITS = re.compile(r"(\d+)")


def normalize_text(text: str) -> str:
    """NFKC, case-folded, whitespace collapsed (the exact-dedup key text)."""
    return _WS.sub(" ", unicodedata.normalize("NFKC", text or "").casefold()).strip()


def doc_text(title: str, question: str, answer: str) -> str:
    """The text every kind compares: title, question and answer, one per line."""
    return f"{title or ''}\n{question or ''}\n{answer or ''}"


def doc_texts(df: pd.DataFrame) -> list[str]:
    """doc_text of every row of a frame, in row order."""
    return [doc_text(t, q, a) for t, q, a in zip(df["title"], df["question"], df["answer"])]


def text_hashes(texts) -> list[str]:
    """xxh3-128 of each text as given (the embedding cache key)."""
    return [xxhash.xxh3_128_hexdigest(t.encode("utf-8")) for t in texts]


def exact_hashes(texts) -> list[str]:
    """xxh3-128 of each normalized text (the exact-dedup key)."""
    return text_hashes(normalize_text(t) for t in texts)


def natural_key(s: str) -> tuple:
    """'law-stackexchange-qa-9' < 'law-stackexchange-qa-10': digit runs compare as numbers."""
    return tuple((0, int(p), "") if p.isdigit() else (1, 0, p) for p in _DIGITS.split(str(s)) if p != "")
