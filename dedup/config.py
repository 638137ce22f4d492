"""Dedup configuration: the dataclass (every default written once), the CLI flags and their validation.

The default embedding model depends on the device: the static model (model2vec, distilled from MiniLM and
committed in models/minilm-l6-static) on CPU, MiniLM on GPU; each model has its own calibrated thresholds
(`MODEL_DEFAULTS`), and `THRESHOLD_NOTES` says, measured, what each default removes (bench/RESULTS.md holds
the figures; bench/dedup_bench.py regenerates them).
"""
from __future__ import annotations

import argparse
import math
from dataclasses import asdict, dataclass, fields
from pathlib import Path

# the dedup kinds, in cascade order; "leak" is an extra removal kind of dedup_against only
KINDS = ("exact", "fuzzy", "semantic")
REMOVAL_KINDS = KINDS + ("leak",)
REMOVED_COLUMNS = ["id", "kind", "duplicate_of", "similarity"]

MINILM = "sentence-transformers/all-MiniLM-L6-v2"
MINILM_NAMES = {"all-minilm-l6-v2", MINILM.lower(), "minilm"}
STATIC_NAME = "static"
STATIC_DIR = Path(__file__).resolve().parent.parent / "models" / "minilm-l6-static"
DEVICES = ("cpu", "gpu")
PRECISIONS = ("auto", "fp32", "int8")
BATCH_SIZE = {"cpu": 32, "gpu": 256}  # MiniLM batch per device (32: measured best with bf16 on 2 cores)
# the default model per device: the static model is ~50x faster than MiniLM on a CPU and catches
# paraphrases at its calibrated threshold; on a GPU MiniLM costs little (as the tutorial ran it)
DEFAULT_MODEL = {"cpu": STATIC_NAME, "gpu": MINILM}

# Calibrated per model family on the planted-duplicate corpus (bench/dedup_bench.py --calibrate).
# eps: semantic duplicates have cosine >= 1 - eps. leak_cosine: rows at or above it share a split family.
# nn_margin: a default threshold is raised to (the corpus's median nearest-neighbour cosine + nn_margin)
# where that is higher (a corpus whose rows are all close to each other); measured median nearest
# neighbour on the planted corpus: static 0.963, MiniLM 0.78.
MODEL_DEFAULTS = {
    "minilm": {"eps": 0.08, "leak_cosine": 0.92, "nn_margin": 0.1},
    "static": {"eps": 0.02, "leak_cosine": 0.98, "nn_margin": 0.01},
}
# What each default threshold removes, measured with bench/dedup_bench.py --calibrate on the generated corpus
# with planted duplicates (data/make_sample.py --questions 24370 --truth; 12,551 rows after filtering). The one
# place the report, the card and --help read it from; bench/RESULTS.md holds the full tables.
THRESHOLD_NOTES = {
    "static": "static (CPU default): cosine >= 0.98 catches paraphrases (planted: recall 0.999, precision 0.997); "
              "each row's nearest non-duplicate: median 0.963, max 0.98",
    "minilm": "MiniLM (GPU default): cosine >= 0.92 catches paraphrases (planted, 3k questions: recall 0.93, "
              "precision 1.0); "
              "nearest non-duplicate: median 0.78, max 0.90; the tutorial's eps 0.01 catches near-identical rows only",
}
# the nearest non-duplicate similarity measured at the default threshold, per model (the margin shown next
# to the threshold in the report and the card)
NEAREST_NONDUPLICATE = {"static": {"median": 0.963, "p99": 0.977, "max": 0.983},
                        "minilm": {"median": 0.78, "p999": 0.898, "max": 0.902}}


def parse_kinds(text: str) -> set[str]:
    """'exact,fuzzy' -> {'exact', 'fuzzy'}; 'all' -> every kind; 'none' or '' -> none.
    Raises ValueError("--dedup: ...") on an unknown kind."""
    kinds = {k.strip().lower() for k in str(text).split(",")} - {""}
    unknown = kinds - set(KINDS) - {"none", "all"}
    if unknown:
        raise ValueError(f"--dedup: unknown kind(s) {', '.join(sorted(unknown))}; use a comma-separated subset "
                         f"of {','.join(KINDS)}, 'all' or 'none'")
    if "all" in kinds:
        return set(KINDS)
    return kinds - {"none"}


def model_family(name: str) -> str:
    return "static" if name.strip().lower() == STATIC_NAME else "minilm"


@dataclass
class DedupConfig:
    exact: bool = True
    fuzzy: bool = True
    semantic: bool = True
    # fuzzy
    fuzzy_shingle: int = 5
    fuzzy_jaccard: float = 0.8
    num_perm: int = 128
    # semantic
    embedding_model: str | None = None  # None: DEFAULT_MODEL of the device; "static", MiniLM, or a path
    semdedup_eps: float | None = None  # None: the model's calibrated default (MODEL_DEFAULTS)
    semdedup_clusters: int = 20
    cluster_probe: int = 2  # each point is compared with the points of its nearest `cluster_probe` clusters
    max_neighbours: int = 32  # pairs are searched among each row's nearest `max_neighbours` rows
    max_seq_length: int = 256
    batch_size: int | None = None  # None: BATCH_SIZE of the device
    device: str = "cpu"  # cpu | gpu
    precision: str = "auto"  # auto (CPU: bf16 where native, else int8; CUDA: fp16) | fp32 | int8 (CPU)
    embedding_threads: int | None = None  # None: every core this process may run on
    embedding_cache: str | None = "data/cache/embeddings"  # None disables the cache
    # leak-free split
    leak_jaccard: float = 0.5
    leak_cosine: float | None = None  # None: the model's calibrated default
    family_max_share: float = 0.001  # similarity links that would grow a family past this share are cut
    family_min_cap: int = 5  # ... but a family may always reach this many rows
    seed: int = 0
    progress: bool = False  # a progress bar while embedding (the CLI turns it on unless --quiet)

    # derived -------------------------------------------------------------------------------------
    @property
    def model(self) -> str:
        return self.embedding_model or DEFAULT_MODEL[self.device]

    @property
    def model_family(self) -> str:
        return model_family(self.model)

    @property
    def eps(self) -> float:
        return self.semdedup_eps if self.semdedup_eps is not None else MODEL_DEFAULTS[self.model_family]["eps"]

    @property
    def leak_cos(self) -> float:
        if self.leak_cosine is not None:
            return self.leak_cosine
        return MODEL_DEFAULTS[self.model_family]["leak_cosine"]

    def family_cap(self, rows: int) -> int:
        return max(self.family_min_cap, math.ceil(self.family_max_share * rows))

    def describe(self) -> dict:
        """The config as run, with the resolved model and thresholds (report.json's dedup.config)."""
        d = asdict(self)
        d.update(embedding_model=self.model, eps=self.eps, leak_cos=self.leak_cos,
                 semantic_threshold=round(1.0 - self.eps, 6), model_family=self.model_family)
        return d


def _default(name: str):
    return next(f.default for f in fields(DedupConfig) if f.name == name)


def add_dedup_arguments(group: argparse._ActionsContainer) -> None:
    """Add the dedup flags to an argparse parser or argument group (defaults live in DedupConfig)."""
    g = group
    g.add_argument("--dedup", default="all",
                   help=f"comma-separated dedup kinds to run ({','.join(KINDS)}; 'all' (default) or 'none')")
    g.add_argument("--no-exact", action="store_true", help="skip exact dedup")
    g.add_argument("--no-fuzzy", action="store_true", help="skip fuzzy (MinHash-LSH) dedup")
    g.add_argument("--no-semantic", action="store_true", help="skip semantic (embedding) dedup")
    g.add_argument("--fuzzy-jaccard", type=float, default=None,
                   help=f"fuzzy duplicate Jaccard threshold, in (0, 1] (default {_default('fuzzy_jaccard')})")
    g.add_argument("--fuzzy-shingle", type=int, default=None,
                   help=f"words per shingle for MinHash (default {_default('fuzzy_shingle')})")
    g.add_argument("--fuzzy-num-perm", type=int, default=None,
                   help=f"MinHash permutations (default {_default('num_perm')})")
    g.add_argument("--semdedup-eps", type=float, default=None,
                   help="semantic duplicates have cosine >= 1-eps, eps in (0, 1) (default per model: "
                        + "; ".join(f"{m} {v['eps']}" for m, v in MODEL_DEFAULTS.items()) + ")")
    g.add_argument("--semdedup-clusters", type=int, default=None,
                   help=f"k-means clusters for semantic dedup (default {_default('semdedup_clusters')})")
    g.add_argument("--embedding-model", default=None,
                   help=f"'static' (model2vec distilled from MiniLM; default on cpu), '{MINILM}' or 'minilm' "
                        "(default on gpu), or a sentence-transformers path. Measured: "
                        + "; ".join(THRESHOLD_NOTES.values()))
    g.add_argument("--embedding-batch-size", type=int, default=None,
                   help="embedding batch size (default per device: "
                        + ", ".join(f"{d} {b}" for d, b in BATCH_SIZE.items()) + ")")
    g.add_argument("--embedding-precision", choices=PRECISIONS, default=None,
                   help="auto: on a CPU bf16 where it is native (AVX512-BF16/AMX), else for MiniLM int8 (fbgemm "
                        "int8 Linear layers, activations quantized per token; AVX2 is enough; cosine >= 0.99 "
                        "to fp32), "
                        "fp16 on CUDA; fp32: always torch fp32; int8: the int8 path on any x86 CPU with AVX2 "
                        "(default auto)")
    g.add_argument("--embedding-threads", type=int, default=None,
                   help="torch threads for embedding (default: every core this process may use)")
    g.add_argument("--max-seq-length", type=int, default=None,
                   help=f"embedding model max tokens (default {_default('max_seq_length')})")
    g.add_argument("--embedding-cache", default=None,
                   help=f"embedding cache directory, '' disables it (default {_default('embedding_cache')})")
    g.add_argument("--leak-jaccard", type=float, default=None,
                   help=f"rows with Jaccard >= this share a split family (default {_default('leak_jaccard')})")
    g.add_argument("--leak-cosine", type=float, default=None,
                   help="rows with cosine >= this share a split family (default per model: "
                        + "; ".join(f"{m} {v['leak_cosine']}" for m, v in MODEL_DEFAULTS.items()) + ")")
    g.add_argument("--family-max-share", type=float, default=None,
                   help="similarity links that would grow a split family past this share of the rows are cut, "
                        f"weakest first (default {_default('family_max_share')}; never below "
                        f"{_default('family_min_cap')} rows)")
    g.add_argument("--device", choices=DEVICES, default=None,
                   help="where embeddings and k-means run (gpu: CUDA + cuML, see requirements-gpu.txt; default cpu)")


def _check(value, flag: str, ok, why: str):
    if value is not None and not ok(value):
        raise ValueError(f"{flag}: {why}, got {value!r}")
    return value


def _given(args: argparse.Namespace, **flag_to_field) -> dict:
    """The DedupConfig fields whose flag was given (None means: the dataclass default)."""
    return {fld: getattr(args, attr) for attr, fld in flag_to_field.items() if getattr(args, attr) is not None}


def dedup_config_from_args(args: argparse.Namespace) -> DedupConfig:
    """A validated DedupConfig from parsed flags; raises ValueError("--flag: why") on a bad value."""
    kinds = parse_kinds(args.dedup)
    unit = (lambda v: 0 < v <= 1, "must be in (0, 1]")
    _check(args.fuzzy_jaccard, "--fuzzy-jaccard", *unit)
    _check(args.leak_jaccard, "--leak-jaccard", *unit)
    _check(args.leak_cosine, "--leak-cosine", *unit)
    _check(args.family_max_share, "--family-max-share", *unit)
    _check(args.semdedup_eps, "--semdedup-eps", lambda v: 0 < v < 1, "must be in (0, 1)")
    for flag in ("fuzzy_shingle", "fuzzy_num_perm", "semdedup_clusters", "embedding_batch_size",
                 "embedding_threads", "max_seq_length"):
        _check(getattr(args, flag), "--" + flag.replace("_", "-"), lambda v: v >= 1, "must be >= 1")
    if args.embedding_precision == "int8" and args.device == "gpu":
        raise ValueError("--embedding-precision int8: CPU only (fbgemm); use auto (fp16) or fp32 with --device gpu")
    if args.embedding_model is not None and not args.embedding_model.strip():
        raise ValueError("--embedding-model: must not be empty")
    fields_given = _given(args, fuzzy_jaccard="fuzzy_jaccard", fuzzy_shingle="fuzzy_shingle",
                          fuzzy_num_perm="num_perm", semdedup_eps="semdedup_eps",
                          semdedup_clusters="semdedup_clusters", embedding_model="embedding_model",
                          embedding_batch_size="batch_size", embedding_precision="precision",
                          embedding_threads="embedding_threads", max_seq_length="max_seq_length",
                          leak_jaccard="leak_jaccard", leak_cosine="leak_cosine",
                          family_max_share="family_max_share", device="device")
    if args.embedding_cache is not None:
        fields_given["embedding_cache"] = args.embedding_cache or None
    cfg = DedupConfig(exact="exact" in kinds and not args.no_exact, fuzzy="fuzzy" in kinds and not args.no_fuzzy,
                      semantic="semantic" in kinds and not args.no_semantic, seed=int(args.seed),
                      progress=not args.quiet, **fields_given)
    return cfg
