"""The static model2vec model's embeddings, computed the way model2vec's `StaticModel.encode` computes them (the same
float16 bytes), without its per-row Python work.

model2vec tokenizes each text, then, per batch and per token count, gathers a (rows, tokens, dim) array of the
embedding table's rows and takes its mean over the tokens. `StaticEncoder` tokenizes each distinct
whitespace-separated chunk once (`ChunkTokenizer`), takes every text's ids as one flat array, and sums the means one
token position at a time over the rows still that long (`static_means`): the same float32 additions in the same
order (numpy's reduction over the token axis adds the tokens of each row one after another, from +0.0), without the
gathered array that model2vec reads back from memory. tests/test_dedup.py compares the bytes with model2vec's own.
"""
from __future__ import annotations

import re
from itertools import chain

import numpy as np
import pandas as pd

# The characters the static model's tokenizer (BertNormalizer + BertPreTokenizer) treats as whitespace: tab, LF, CR,
# the Unicode space separators (Zs) and the line/paragraph separators. Other control characters it deletes, so they
# never separate words there and must not here.
_TOKENIZER_SPACE = re.compile("[\t\n\r \u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]+")
# What str.split() also splits at but the tokenizer does not: where the texts have none of them, str.split() (several
# times faster than the regex) gives the same chunks, less the empty ones (which have no tokens)
_SPLIT_ONLY_SPACE = "\x0b\x0c\x1c\x1d\x1e\x1f\x85"
# Texts tokenized and averaged together: a partition's chunks and token arrays at once peaked ~95 MiB above the
# model (2,289 posts), 1,024 texts a batch ~47 MiB, 512 ~24 MiB, at the same speed
TEXT_BATCH = 512
ROW_BLOCK = 256  # rows summed together: their float32 sums (256 KiB) stay in a core's cache across the positions


class ChunkTokenizer:
    """model2vec's `StaticModel.tokenize`, with each distinct whitespace-separated chunk tokenized once.

    The static model's tokenizer works character by character up to whitespace: its normaliser (lowercase,
    accents stripped, control characters dropped, CJK characters spaced) and its pre-tokenizer (whitespace, then
    punctuation) never look across a whitespace character, so a text's token ids are the concatenation of its
    chunks' ids. A corpus repeats its words: tokenizing the distinct chunks (cached across calls) and joining
    their ids costs a fraction of tokenizing every text, with the same ids (tests/test_dedup.py compares them).
    As the model's own: ids cut at the tokenizer's truncation length, then unknown-token ids removed."""

    MAX_CACHED = 400_000  # distinct chunks kept between calls (a bound on memory for a large corpus)

    def __init__(self, model):
        self.model = model
        self._clear()

    def _clear(self) -> None:
        self.slot: dict[str, int] = {}  # chunk -> its position in the store below
        self.starts = np.zeros(0, np.int64)  # per stored chunk: where its ids start in `tokens`, and how many
        self.lens = np.zeros(0, np.int64)
        self.tokens = np.zeros(0, np.int64)

    def __call__(self, sentences) -> list[list[int]]:
        ids, offsets = self.flat_ids(sentences)
        flat = ids.tolist()
        return [flat[a:b] for a, b in zip(offsets[:-1].tolist(), offsets[1:].tolist())]

    def flat_ids(self, sentences) -> tuple[np.ndarray, np.ndarray]:
        """Every sentence's token ids, concatenated (int64), and each sentence's offsets into them (len n+1)."""
        sentences = list(sentences)
        joined = "".join(sentences)  # a substring search per character is a fast scan; a regex class is not
        split = _TOKENIZER_SPACE.split if any(ch in joined for ch in _SPLIT_ONLY_SPACE) else str.split
        chunked = [split(s) for s in sentences]
        chunks_per_row = np.fromiter(map(len, chunked), np.int64, count=len(chunked))
        flat = list(chain.from_iterable(chunked))
        if not flat:
            return np.zeros(0, np.int64), np.zeros(len(chunked) + 1, np.int64)
        codes, distinct = pd.factorize(np.array(flat, dtype=object), sort=False)
        slots = self._slots(distinct)[codes]
        lens, starts = self.lens[slots], self.starts[slots]
        ends = np.cumsum(lens)
        ids = self.tokens[np.repeat(starts - (ends - lens), lens) + np.arange(int(ends[-1]) if len(ends) else 0)]
        # each row's tokens: cut at the truncation length, then the unknown-token ids dropped (as the model does)
        row_ends = np.r_[0, ends][np.r_[0, np.cumsum(chunks_per_row)]]
        row_counts = np.diff(row_ends)
        position = np.arange(len(ids)) - np.repeat(row_ends[:-1], row_counts)
        limit = (self.model.tokenizer.truncation or {}).get("max_length")
        keep = np.ones(len(ids), bool) if limit is None else position < limit
        if self.model.unk_token_id is not None:
            keep &= ids != self.model.unk_token_id
        kept_before = np.r_[0, np.cumsum(keep)]
        return ids[keep], kept_before[row_ends]

    def _slots(self, distinct) -> np.ndarray:
        """Each distinct chunk's position in the store, tokenizing (and storing) those not yet in it."""
        get = self.slot.get
        slots = np.fromiter((get(c, -1) for c in distinct), np.int64, count=len(distinct))
        missing = np.nonzero(slots < 0)[0]
        if not len(missing):
            return slots
        if len(self.slot) + len(missing) > self.MAX_CACHED:
            self._clear()
            slots[:] = -1
            missing = np.arange(len(distinct))
        new = [distinct[i] for i in missing]
        encoded = [e.ids for e in self.model.tokenizer.encode_batch_fast(new, add_special_tokens=False)]
        new_lens = np.fromiter(map(len, encoded), np.int64, count=len(encoded))
        first = len(self.lens)
        self.starts = np.r_[self.starts, len(self.tokens) + np.cumsum(new_lens) - new_lens]
        self.lens = np.r_[self.lens, new_lens]
        self.tokens = np.r_[self.tokens, np.fromiter(chain.from_iterable(encoded), np.int64, count=int(new_lens.sum()))]
        slots[missing] = np.arange(first, first + len(new))
        self.slot.update(zip(new, range(first, first + len(new))))
        return slots


def static_means(table: np.ndarray, ids: np.ndarray, offsets: np.ndarray, dtype=np.float16) -> np.ndarray:
    """Each row's mean embedding of its tokens (`ids[offsets[i]:offsets[i + 1]]`) in `dtype`, as numpy's
    `embedding[id_matrix].mean(axis=1)` gives it in model2vec for an embedding table of `dtype`: float32 sums (of
    `table`, the table in float32: exact for float16), divided in float64, then `dtype`; rows without tokens are
    zeros. Rows are summed longest first, a block of rows at a time, one token position per step, over the rows of
    the block that have that position."""
    n, dim = len(offsets) - 1, table.shape[1]
    out = np.zeros((n, dim), dtype)
    lens = np.diff(offsets)
    order = np.argsort(-lens, kind="stable")
    order = order[lens[order] > 0]
    acc = np.empty((ROW_BLOCK, dim), np.float32)
    gathered = np.empty((ROW_BLOCK, dim), np.float32)
    for lo in range(0, len(order), ROW_BLOCK):
        rows = order[lo: lo + ROW_BLOCK]
        row_lens, starts = lens[rows], offsets[rows]
        # rows with more than `p` tokens: a prefix of the block (sorted by decreasing length)
        longer = np.searchsorted(-row_lens, -np.arange(int(row_lens[0])), side="left")
        acc[: len(rows)] = 0.0  # numpy's sum starts from +0.0 (a sum of -0.0s is +0.0 there too)
        for p, k in enumerate(longer.tolist()):
            np.take(table, ids[starts[:k] + p], axis=0, out=gathered[:k])
            np.add(acc[:k], gathered[:k], out=acc[:k])
        # numpy's mean divides by the count as an intp: float32 / int64 runs in float64
        mean = np.true_divide(acc[: len(rows)], row_lens[:, None]).astype(np.float32)
        out[rows] = mean.astype(dtype)
    return out


class StaticEncoder:
    """model2vec's `StaticModel.encode(texts)` (its default truncation and normalization; the model's dtype) for a
    static model with a float16 or float32 table and neither token weights nor a token mapping: the same bytes."""

    def __init__(self, model):
        if model.weights is not None or model.token_mapping is not None or \
                model.embedding.dtype not in (np.float16, np.float32):
            raise ValueError("StaticEncoder: a model with token weights, a token mapping or an integer table")
        self.model = model
        self.tokenize = ChunkTokenizer(model)
        self.table = model.embedding.astype(np.float32)  # float32 sums of float16 rows add 4x faster from float32

    def encode(self, texts: list[str]) -> np.ndarray:
        model = self.model
        if model.max_length is not None:  # model2vec cuts each text's characters before tokenizing
            chars = model.max_length * model.median_token_length
            texts = [t[:chars] for t in texts]
        out = np.zeros((len(texts), self.table.shape[1]), model.embedding.dtype)
        for lo in range(0, len(texts), TEXT_BATCH):  # each row's mean is its own: any batch gives the same bytes
            ids, offsets = self.tokenize.flat_ids(texts[lo: lo + TEXT_BATCH])
            out[lo: lo + TEXT_BATCH] = static_means(self.table, ids, offsets, model.embedding.dtype)
        if not model.normalize:
            return out
        out32 = out.astype(np.float32)
        norm = np.linalg.norm(out32, axis=1, keepdims=True) + 1e-32
        return (out32 / norm).astype(out.dtype)
