"""Deduplication: exact (normalized-text hash), fuzzy (MinHash-LSH) and semantic (embeddings), one cascade
(engine.py) behind the pipeline's dedup stage, synthetic generation's dedup-against and the leak check.

Modules: config (flags, defaults, validation), text (normal form, words, hashes), minhash, embed (cache +
Embedder), embed_int8 (MiniLM's int8 Linear layers for CPUs without bf16), search (k-means + neighbour search),
features (per-partition features, made in the clean + filter task), engine (the cascade), families (bounded
split families), stages (deduplicate, dedup_against, cross_split_leaks). Heavy libraries (torch,
sentence_transformers, sklearn, model2vec, cuml) are imported inside functions (embed_int8 only when chosen).
"""
from .config import (DEFAULT_MODEL, KINDS, MODEL_DEFAULTS, NEAREST_NONDUPLICATE, REMOVAL_KINDS, REMOVED_COLUMNS,
                     THRESHOLD_NOTES, DedupConfig, add_dedup_arguments, dedup_config_from_args, parse_kinds)
from .embed import Embedder, EmbeddingCache, available_cores, bf16_supported, minilm_path, set_torch_threads
from .engine import survivor_order
from .minhash import lsh_bands_rows, minhash_signatures
from .search import semantic_pairs
from .stages import DedupResult, cross_split_leaks, dedup_against, deduplicate
from .text import doc_text, doc_texts, normalize_text, natural_key

__all__ = ["DEFAULT_MODEL", "KINDS", "MODEL_DEFAULTS", "NEAREST_NONDUPLICATE", "REMOVAL_KINDS", "REMOVED_COLUMNS",
           "THRESHOLD_NOTES", "DedupConfig", "DedupResult", "Embedder", "EmbeddingCache", "add_dedup_arguments",
           "available_cores", "bf16_supported", "cross_split_leaks", "dedup_against", "dedup_config_from_args",
           "deduplicate", "doc_text", "doc_texts", "lsh_bands_rows", "minhash_signatures", "minilm_path",
           "natural_key", "normalize_text", "parse_kinds", "semantic_pairs", "set_torch_threads",
           "survivor_order"]
