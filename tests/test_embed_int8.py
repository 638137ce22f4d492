"""The int8 MiniLM path (dedup/embed_int8.py): chosen on CPUs without bf16, cosine >= 0.99 to torch fp32,
deterministic and independent of batch-mates, kept apart from fp32 in the embedding cache. Fast: a few dozen
short texts."""
from __future__ import annotations

import argparse
import logging

import numpy as np
import pytest

import dedup
import dedup.embed as embed

_SUBJECTS = ["My landlord", "The employer", "A neighbour", "The police officer", "My business partner",
             "The seller of the car", "A debt collector", "The school"]
_ACTS = ["kept the security deposit after the lease ended early", "recorded our phone call without telling me",
         "refuses to pay the final invoice for the work", "searched the trunk without a warrant",
         "copied the photos from my website", "changed the locks while I was away"]
_ASKS = ["Is that legal in California?", "What can I do about it under UK law?", "Do I need a lawyer for this?",
         "Can I sue in small claims court?"]


def short_texts() -> list[str]:
    """36 short, natural questions of different lengths, plus two longer ones (multi-row int8 batches)."""
    texts = [f"{_SUBJECTS[i % 8]} {_ACTS[i % 6]} {i + 2} days ago. {_ASKS[i % 4]}"
             + (" I have the emails and the receipts." * (i % 3)) for i in range(36)]
    texts.append(" ".join(texts[:12]))
    texts.append("Question about a contract: " + " ".join(texts[12:20]))
    return texts


def needs_int8():
    if not embed.int8_supported():
        pytest.skip("no fbgemm int8 kernels on this CPU (not x86-64 with AVX2): the int8 path falls back to fp32")


def minilm(precision: str, **kw) -> dedup.Embedder:
    return dedup.Embedder(dedup.DedupConfig(embedding_model="minilm", precision=precision, embedding_cache=None,
                                            **kw))


@pytest.fixture
def no_bf16(monkeypatch):
    """A CPU without bf16 (the issue's AVX2-only target), simulated on any machine."""
    monkeypatch.setattr(embed, "bf16_supported", lambda: False)


# ------------------------------------------------------------------------------ which precision runs
def test_auto_picks_int8_where_bf16_is_absent(no_bf16, monkeypatch):
    monkeypatch.setattr(embed, "int8_supported", lambda: True)
    assert minilm("auto").mode == "int8"
    assert minilm("fp32").mode == "fp32"  # --embedding-precision fp32 stays torch fp32
    other = dict(embedding_model="/models/some-other-encoder", embedding_cache=None)
    assert dedup.Embedder(dedup.DedupConfig(precision="auto", **other)).mode == "fp32"  # int8 measured on MiniLM
    assert dedup.Embedder(dedup.DedupConfig(precision="int8", **other)).mode == "int8"
    assert dedup.Embedder(dedup.DedupConfig(embedding_model="static")).mode == "static"


def test_auto_keeps_bf16_where_native_and_fp16_on_gpu(monkeypatch):
    monkeypatch.setattr(embed, "bf16_supported", lambda: True)
    monkeypatch.setattr(embed, "int8_supported", lambda: True)
    assert minilm("auto").mode == "bf16"
    assert minilm("int8").mode == "int8"  # asked for explicitly: int8 even where bf16 runs
    assert minilm("auto", device="gpu").mode == "fp16"


def test_int8_without_avx2_falls_back_to_fp32_with_a_warning(no_bf16, monkeypatch, caplog):
    monkeypatch.setattr(embed, "int8_supported", lambda: False)
    assert minilm("auto").mode == "fp32"
    with caplog.at_level(logging.WARNING, logger="lawqa.dedup"):
        assert minilm("int8").mode == "fp32"
    assert "int8" in caplog.text and "fp32" in caplog.text


def test_int8_is_rejected_on_gpu():
    p = argparse.ArgumentParser()
    dedup.add_dedup_arguments(p)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--quiet", action="store_true")
    assert dedup.dedup_config_from_args(p.parse_args(["--embedding-precision", "int8"])).precision == "int8"
    with pytest.raises(ValueError, match="--embedding-precision int8"):
        dedup.dedup_config_from_args(p.parse_args(["--embedding-precision", "int8", "--device", "gpu"]))


def test_int8_embeddings_have_their_own_cache_key(no_bf16, monkeypatch, tmp_path):
    """An fp32 run never reads int8 embeddings from the cache (they are close to fp32, not equal)."""
    monkeypatch.setattr(embed, "int8_supported", lambda: True)
    calls = []

    def fake_encode(self, texts):
        calls.append(self.mode)
        return np.ones((len(texts), 4), np.float32) / 2

    monkeypatch.setattr(dedup.Embedder, "_encode", fake_encode)
    cfg = dict(embedding_model="minilm", embedding_cache=str(tmp_path))
    e8 = dedup.Embedder(dedup.DedupConfig(precision="auto", **cfg))
    e32 = dedup.Embedder(dedup.DedupConfig(precision="fp32", **cfg))
    assert e8.key == e32.key + "-int8"
    e8.embed(["a b c"])
    e32.embed(["a b c"])
    dedup.Embedder(dedup.DedupConfig(precision="auto", **cfg)).embed(["a b c"])  # a warm int8 cache
    assert calls == ["int8", "fp32"]


def test_token_batches_hold_about_the_budget():
    assert embed.token_batches([256, 256, 256, 256, 256], 1024) == [4, 1]
    assert embed.token_batches([600, 300, 12, 12, 12], 1024) == [1, 3, 1]
    assert embed.token_batches([2000, 5], 1024) == [1, 1]  # a row longer than the budget still runs
    assert embed.token_batches([], 1024) == []


# ------------------------------------------------------------------------------ the int8 layer itself
def test_row_int8_linear_matches_fp32_whatever_the_batch():
    needs_int8()
    import torch

    from dedup.embed_int8 import RowInt8Linear

    g = torch.Generator().manual_seed(0)
    lin = torch.nn.Linear(384, 96)
    x = torch.randn(2, 50, 384, generator=g)
    x[:, :, 7] *= 30.0  # an outlier channel, as BERT's LayerNorm outputs have
    x[1, 3, 200] = -25.0  # and a single outlying value
    x[0, 4] = 0.5  # a constant row
    before = x.clone()
    q = RowInt8Linear(lin)
    with torch.inference_mode():
        ref, got = lin(x), q(x)
        alone = q(x[1, 3:4])  # one row on its own: the same as inside the batch, up to fp32 rounding
    assert torch.equal(x, before)
    cos = torch.nn.functional.cosine_similarity(got.flatten(0, 1), ref.flatten(0, 1), dim=1)
    assert got.shape == ref.shape and cos.min() > 0.995, cos.min()
    assert torch.isfinite(got).all()  # the constant row (range 0) included
    assert (alone[0] - got[1, 3]).abs().max() < 1e-5


# ------------------------------------------------------------------------------ MiniLM end to end
def test_int8_embeddings_match_fp32(no_bf16):
    needs_int8()
    texts = short_texts()
    e8 = minilm("auto")
    emb8, stats = e8.embed(texts)
    emb32, _ = minilm("fp32").embed(texts)
    assert stats["precision"] == "int8"
    cos = np.einsum("ij,ij->i", emb8, emb32)
    assert cos.min() >= 0.99, cos.min()
    model = embed._MODELS[(e8.key, "cpu", e8.cfg.model, "int8")]
    kinds = {type(m).__name__ for m in model.modules()}
    assert "RowInt8Linear" in kinds and "Linear" not in kinds  # every Linear runs int8


def test_int8_is_deterministic_and_a_text_does_not_depend_on_its_batch(no_bf16):
    needs_int8()
    texts = short_texts()
    a, _ = minilm("int8", embedding_threads=2).embed(texts)
    b, _ = minilm("int8", embedding_threads=2).embed(texts)
    assert a.tobytes() == b.tobytes()
    # each text alone (no batch-mates, no padding) vs in its batch: the int8 layers see each row alone, so only
    # fp32 rounding in attention over padded batches differs
    alone = np.vstack([minilm("int8", embedding_threads=2, batch_size=1).embed([t])[0] for t in texts[::6]])
    assert np.einsum("ij,ij->i", alone, a[::6]).min() > 0.99999
