"""The Embedder uses every core even after a LocalCluster set OMP_NUM_THREADS=1 in the driver's environment."""
from __future__ import annotations

import os

import numpy as np

import dedup


class FakeMiniLM:
    """Stands in for the sentence-transformers model: records torch's thread count inside the call."""

    def __init__(self):
        self.threads_seen = []

    def tokenizer(self, texts, **kw):
        return {"input_ids": [t.split() for t in texts]}

    def encode(self, texts, **kw):
        import torch

        self.threads_seen.append(torch.get_num_threads())
        return np.ones((len(texts), 4), np.float32)


def test_embedding_runs_on_every_core_after_a_local_cluster(tmp_path, monkeypatch):
    import torch
    from distributed import LocalCluster

    cores = dedup.available_cores()
    with LocalCluster(n_workers=1, threads_per_worker=1, dashboard_address=None):
        assert os.environ.get("OMP_NUM_THREADS") == "1"  # what the cluster does to the driver
        torch.set_num_threads(1)  # what a torch imported after the cluster starts with
        fake = FakeMiniLM()
        monkeypatch.setattr(dedup.Embedder, "_model", lambda self: fake)
        cfg = dedup.DedupConfig(embedding_model="minilm", precision="fp32", embedding_cache=str(tmp_path))
        emb, stats = dedup.Embedder(cfg).embed(["a b c", "d e"])
    assert emb.shape == (2, 4)
    assert fake.threads_seen == [cores] and stats["threads"] == cores


def test_embedding_threads_flag_wins(tmp_path, monkeypatch):
    fake = FakeMiniLM()
    monkeypatch.setattr(dedup.Embedder, "_model", lambda self: fake)
    cfg = dedup.DedupConfig(embedding_model="minilm", precision="fp32", embedding_cache=None, embedding_threads=1)
    dedup.Embedder(cfg).embed(["x y"])
    assert fake.threads_seen == [1]
