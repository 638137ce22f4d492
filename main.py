"""lawqa-curate: Law StackExchange -> clean, deduplicated, leak-free fine-tuning data (+ synthetic growth).

The flow, top to bottom, as in NeMo Curator's peft-curation-with-sdg tutorial:
download -> convert -> clean -> filter -> dedup -> split -> synthesize -> write.
"""
from __future__ import annotations

import argparse
import itertools
import logging
import os
import sys
from contextlib import contextmanager
from pathlib import Path

# Exit codes: distinct so scripts can tell bad input from a network or endpoint failure.
EXIT_OK = 0
EXIT_BAD_INPUT = 2
EXIT_DOWNLOAD = 3
EXIT_ENDPOINT = 4
EXIT_INTERRUPTED = 130
EXIT_IO = 1  # an output could not be written (disk full, permissions)
EXIT_CLUSTER = 5  # the Dask cluster lost work it cannot recompute (a worker died holding data)

log = logging.getLogger("lawqa")
HERE = Path(__file__).resolve().parent

EPILOG = """\
examples:
  python main.py                                   download (or, offline, the bundled sample), curate, write
  python main.py --input law-stackexchange-questions-answers.json --output-dir out
  python main.py --dry-run --target-size 20000     show the plan and the LLM calls it would make
  NVIDIA_API_KEY=... python main.py --target-size 20000
  python main.py --synth-gen-endpoint http://127.0.0.1:8000/v1 --synth-gen-model my-model --reward-mode judge

exit codes:
  0    success
  1    an output could not be written (disk full, permission denied); finished files are left as they were
  2    bad input or arguments (unreadable / truncated dump, bad flag value)
  3    download failed and --no-fallback was given
  4    LLM endpoint error (authentication, not a reward model, unreachable)
  5    the Dask cluster lost work (a worker died); LLM responses are kept, rerun to continue
  130  interrupted (Ctrl-C); completed work and LLM responses are kept, rerun to continue

The API key comes from --api-key, $NVIDIA_API_KEY or $OPENAI_API_KEY and is never written anywhere.
Outputs: <output-dir>/final/ holds law-qa-{train,val,test}.jsonl, chat/ and nemo/ formats,
README.md (dataset card) with PNG plots, and report.json. See README.md for details.
"""


class _HelpFormatter(argparse.RawDescriptionHelpFormatter):
    """Defaults shown after each flag (unless None/False); the description's and epilog's layout kept."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        if ("%(default)" not in text and action.option_strings and action.default is not argparse.SUPPRESS
                and action.default is not None and action.default is not False):
            text += " (default: %(default)s)"
        return text


def build_parser() -> argparse.ArgumentParser:
    """Command-line flags, grouped as the flow runs (input, curation, dedup, synthetic generation, cluster, output)."""
    parser = argparse.ArgumentParser(
        prog="python main.py", usage="%(prog)s [options]",
        description="Curate the Law StackExchange Q&A dump into a clean, deduplicated, leak-free fine-tuning\n"
                    "dataset, optionally grown with synthetic Q&A from an OpenAI-compatible LLM.\n"
                    "Flow: download -> convert -> clean -> filter -> dedup -> split -> synthesize -> write.",
        epilog=EPILOG, formatter_class=_HelpFormatter)
    source = parser.add_argument_group("input", "where the Law StackExchange dump comes from")
    source.add_argument("--input", metavar="FILE", help="a local copy of the dump (skips the download)")
    source.add_argument("--url", default=None, help="where to download the dump from (default: Hugging Face)")
    source.add_argument("--no-fallback", action="store_true",
                        help="fail when the download fails instead of using the bundled sample")
    source.add_argument("--raw-dir", default="data/raw", help="download cache")

    curation = parser.add_argument_group("curation", "filters applied to every record, and the split")
    curation.add_argument("--min-words", type=int, default=50, help="fewest words in question and in answer")
    curation.add_argument("--max-words", type=int, default=500, help="most words in question and in answer")
    curation.add_argument("--min-question-score", type=int, default=0, help="lowest question score kept")
    curation.add_argument("--min-answer-score", type=int, default=0, help="lowest best-answer score kept")
    curation.add_argument("--split-ratios", default="80/10/10", help="train/val/test proportions")
    curation.add_argument("--seed", type=int, default=42, help="seed for the split hash and all sampling")

    from dedup import add_dedup_arguments

    add_dedup_arguments(parser.add_argument_group(
        "dedup", "exact, fuzzy (MinHash-LSH) and semantic (embedding) dedup over all rows of all splits"))

    from synthetic_gen import add_sdg_arguments

    add_sdg_arguments(parser.add_argument_group(
        "synthetic generation",
        "grow train with synthetic Q&A from an OpenAI-compatible endpoint, scored by a reward model"))

    cluster = parser.add_argument_group("cluster", "where the Dask stages run")
    cluster.add_argument("--n-workers", type=int, default=os.cpu_count() or 1,
                         help="Dask LocalCluster worker processes")
    cluster.add_argument("--scheduler-address", default=None,
                         help="use an existing Dask cluster (tcp://host:8786) instead of a LocalCluster")
    cluster.add_argument("--memory-limit", default="auto",
                         help="memory limit per LocalCluster worker (e.g. 4GiB); 'auto' shares RAM evenly")
    cluster.add_argument("--partition-rows", type=int, default=4096, help="records per Dask partition")

    output = parser.add_argument_group("output", "what is written, and how much is said")
    output.add_argument("--output-dir", default="data/curated", help="writes <output-dir>/final/...")
    output.add_argument("--audit", choices=["fast", "full", "off"], default="fast",
                        help="the independent audit at the end: fast = exact and MinHash leaks, lineage, ids, "
                             "filters, accounting; full = also MiniLM cosine across splits (re-embeds every row, "
                             "about as long as semantic dedup); `python main.py audit DIR` runs it later")
    output.add_argument("--formats", default="all",
                        help="fine-tuning formats besides the tutorial's law-qa-{split}.jsonl (always written): "
                             "chat (chat/{split}.jsonl, messages), nemo (nemo/{split}.jsonl, input/output); "
                             "comma-separated, 'all' or 'none'")
    output.add_argument("--system-prompt", default=None, metavar="TEXT",
                        help="system message at the start of every chat-format example (none if unset)")
    output.add_argument("--dry-run", action="store_true",
                        help="print the stages, the input and the estimated LLM calls, then exit without writing")
    loudness = output.add_mutually_exclusive_group()
    loudness.add_argument("--quiet", action="store_true", help="warnings and errors only, no progress bars")
    loudness.add_argument("--verbose", action="store_true", help="debug logging")
    return parser


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Parse and check the flags (a bad value exits 2 with argparse's one-line message)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    from outputs import parse_formats

    try:
        parse_formats(args.formats)
    except ValueError as exc:
        parser.error(str(exc))
    if args.min_words > args.max_words:
        parser.error("--min-words must not exceed --max-words")
    if args.n_workers < 1:
        parser.error("--n-workers must be at least 1")
    if args.partition_rows < 1:
        parser.error("--partition-rows must be at least 1")
    return args


def configure_logging(args: argparse.Namespace) -> None:
    """Console logging at the level the flags ask for."""
    level = logging.WARNING if args.quiet else logging.DEBUG if args.verbose else logging.INFO
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(name)s %(levelname)s: %(message)s" if args.verbose
                                           else "%(message)s"))
    log.handlers[:] = [handler]
    log.setLevel(level)
    log.propagate = False
    if not args.verbose:
        # model loading chatter ("Loading weights" bars, "Repo card metadata block was not found") is
        # not ours to show; environment variables so Dask workers inherit them too
        os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
        os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
        os.environ.setdefault("HF_HUB_VERBOSITY", "error")
        os.environ.setdefault("TRANSFORMERS_NO_ADVISORY_WARNINGS", "1")
        logging.getLogger("huggingface_hub").setLevel(logging.ERROR)


def dask_wait(collection, desc: str, progress: bool) -> None:
    """`distributed.wait` on a persisted collection, with a tqdm bar over its partitions."""
    from distributed import as_completed, futures_of, wait

    futures = futures_of(collection)
    if progress and futures:
        from tqdm import tqdm

        with tqdm(total=len(futures), desc=desc, unit="part") as bar:
            for _ in as_completed(futures):
                bar.update(1)
    wait(collection)


@contextmanager
def dask_client(args: argparse.Namespace):
    """A Dask client: on an existing cluster (our modules uploaded to it) or on a fresh LocalCluster."""
    from distributed import Client, LocalCluster

    if args.scheduler_address:
        client = Client(args.scheduler_address)
        # Workers of another cluster cannot import our modules: ship them, unloaded (they import each
        # other, so loading one before its dependency has arrived would fail).
        for module in sorted(HERE.glob("*.py")):
            if module.name != "main.py":
                client.upload_file(str(module), load=False)
        log.info(f"dask: connected to {args.scheduler_address} (dashboard {client.dashboard_link})")
        try:
            yield client
        finally:
            client.close()
        return
    cluster = LocalCluster(n_workers=args.n_workers, threads_per_worker=1, processes=True,
                           memory_limit=args.memory_limit, dashboard_address="127.0.0.1:0",
                           silence_logs=logging.ERROR)
    client = Client(cluster)
    log.info(f"dask: LocalCluster with {args.n_workers} worker(s), dashboard {client.dashboard_link}")
    try:
        yield client
    finally:
        client.close()
        cluster.close()


def count_values(column) -> dict[str, int]:
    """Value counts of a Dask column, summed per partition (no shuffle)."""
    per_partition = column.map_partitions(lambda s: s.value_counts().to_frame("n").reset_index(),
                                          meta={column.name: "object", "n": "int64"}).compute()
    return {str(k): int(v) for k, v in per_partition.groupby(column.name)["n"].sum().items()}


def synthesis_accounting(sdg: dict) -> tuple[int, int, dict[str, int]]:
    """The synthesize stage as rows in/out/dropped: generated pairs -> accepted rows, every loss named."""
    dropped: dict[str, int] = {}
    generated = 0
    for rnd in sdg.get("rounds", []):
        generated += rnd.get("pairs_generated", 0)
        losses = {"reward_call_failed": rnd.get("pairs_generated", 0) - rnd.get("scored", 0),
                  "below_reward_threshold": rnd.get("below_threshold", 0),
                  "duplicate": rnd.get("dedup_dropped", 0), "over_target": rnd.get("trimmed", 0),
                  **{f"filter:{k}": v for k, v in rnd.get("curate_dropped", {}).items()}}
        for reason, n in losses.items():
            dropped[reason] = dropped.get(reason, 0) + int(n)
    return generated, int(sdg.get("added", 0)), dropped


def run(args: argparse.Namespace) -> int:
    """The pipeline, top to bottom."""
    import dask.dataframe as dd
    from distributed import wait

    from dedup import cross_split_leaks, dedup_against, dedup_config_from_args, deduplicate
    from docbuilder import DATASET_URL, ConvertStats, iter_record_chunks, resolve_input, sha256_of
    from filters import DROP_REASON, FilterConfig, apply_filters, default_filters, filter_partition
    from modifiers import clean_partition
    from outputs import split_file_name, write_removed
    from records import empty_frame
    from report import RunReport, timed
    from split import SPLITS, assign_splits, parse_ratios
    from synthetic_gen import grow_train, sdg_config_from_args, sdg_gate

    progress = not args.quiet
    try:
        ratios = parse_ratios(args.split_ratios)
    except ValueError as exc:
        log.error(f"error: {exc}")
        return EXIT_BAD_INPUT
    final_dir = Path(args.output_dir) / "final"
    report = RunReport()

    # 1. download (or --input, or the bundled sample when offline)
    source = resolve_input(args.input, args.url or DATASET_URL, Path(args.raw_dir),
                           fallback=not args.no_fallback, warn=log.warning, progress=progress)
    source["sha256"] = sha256_of(Path(source["path"]))
    report.source = source

    with dask_client(args) as client:
        # 2. convert: stream the JSON array into record partitions
        convert_stats = ConvertStats()
        with timed() as t:
            # each partition is cleaned on a worker as soon as it is parsed (convert overlaps clean), and its
            # raw HTML is released once cleaned
            chunks = [client.submit(clean_partition, client.scatter(chunk), pure=False) for chunk in
                      iter_record_chunks(Path(source["path"]), convert_stats, args.partition_rows, progress)]
            if not chunks:
                log.error(f"error: {source['path']}: no usable questions "
                          f"({dict(convert_stats.dropped) or 'empty array'})")
                return EXIT_BAD_INPUT
            records = dd.from_delayed(chunks, meta=empty_frame(), verify_meta=False)
            del chunks
        report.add_stage("convert", convert_stats.elements, convert_stats.records, convert_stats.dropped,
                         t["seconds"])

        # 3. clean: HTML -> structured plain text, Unicode repair, whitespace
        with timed() as t:  # the rest of the clean work (started during convert)
            dask_wait(records, "clean", progress)
        report.add_stage("clean", convert_stats.records, convert_stats.records, {}, t["seconds"])

        # 4. filter: word counts and scores, every drop with a named reason
        filters = default_filters(FilterConfig(args.min_words, args.max_words,
                                               args.min_question_score, args.min_answer_score))
        with timed() as t:
            marked_meta = empty_frame().assign(**{DROP_REASON: ""})
            marked = records.map_partitions(filter_partition, filters, meta=marked_meta).persist()
            dask_wait(marked, "filter", progress)
            from card import word_count_histograms  # per-partition word-count histograms for the card

            report.sections["word_counts"] = word_count_histograms(marked, DROP_REASON)
            reasons = count_values(marked[DROP_REASON])
            records = marked[marked[DROP_REASON] == ""].drop(columns=[DROP_REASON]).persist()
            wait(records)
            del marked  # only the kept rows stay on the workers
        kept = int(reasons.pop("", 0))
        report.add_stage("filter", convert_stats.records, kept, reasons, t["seconds"])

        # 5. dedup: exact, fuzzy, semantic over all rows; near-duplicate clusters become split families
        with timed() as t:
            dedup_cfg = dedup_config_from_args(args)
            deduped = deduplicate(records, dedup_cfg, client)
            records = deduped.kept.persist()  # the kept rows, still partitioned in source order
            wait(records)
        rows_after_dedup = kept - len(deduped.removed)
        report.add_stage("dedup", kept, rows_after_dedup, deduped.removed["kind"].value_counts().to_dict(),
                         t["seconds"])
        report.sections["dedup"] = deduped.stats
        write_removed(final_dir / "removed.jsonl", deduped.removed)
        kept = rows_after_dedup

        # 6. split: by a stable, seeded hash of the family key
        families = deduped.families.to_dict()
        with timed() as t:
            records = records.map_partitions(assign_splits, families, args.seed, ratios,
                                             meta=empty_frame()).persist()
            wait(records)
        report.add_stage("split", kept, kept, {}, t["seconds"])

        # 7. synthesize: grow train with synthetic Q&A pairs, reward-scored, curated and deduplicated
        sdg_cfg = sdg_config_from_args(args)
        synthetic = empty_frame()
        run_sdg, why_not = sdg_gate(sdg_cfg)
        if run_sdg:
            with timed() as t:
                synthetic, sdg_section = grow_train(
                    records.compute(), sdg_cfg, curate=lambda rows: apply_filters(clean_partition(rows), filters),
                    dedup_against=lambda new, existing: dedup_against(new, existing, dedup_cfg),
                    failures_path=final_dir / "sdg_failures.jsonl")
            report.sections["sdg"] = sdg_section
            rows_in, rows_out, dropped = synthesis_accounting(sdg_section)
            report.add_stage("synthesize", rows_in, rows_out, dropped, t["seconds"])
            log.info(f"synthesize: +{rows_out} train rows, stopped: {sdg_section.get('stop_reason')}")
        else:
            report.sections["sdg"] = {"ran": False, "skipped": why_not}
            log.info(why_not)

        # leak check over the final rows: pairs in different splits above the leak thresholds (must be 0)
        final_rows = dd.concat([records, dd.from_pandas(synthetic, npartitions=1)]) if len(synthetic) else records
        report.sections["leaks"] = cross_split_leaks(final_rows, dedup_cfg, client=client)  # times itself

        # 8. write: the tutorial's law-qa-{split}.jsonl + chat/ and nemo/ formats, partition order = source order
        from outputs import parse_formats, write_final

        with timed() as t:
            partitions = itertools.chain((part.compute() for part in records.to_delayed()), [synthetic])
            written = write_final(final_dir, partitions, parse_formats(args.formats), args.system_prompt)
        kept += len(synthetic)
        counts = written["rows"]
        report.splits = {s: counts.get(s, 0) for s in SPLITS}
        report.add_stage("write", kept, sum(counts.values()), {}, t["seconds"])

    # the dataset card (README.md + PNGs) from the same dict as report.json, then report.json
    from card import write_card

    report.set_run(args, getattr(args, "_argv", None))
    # an independent audit of the files just written (audit.py shares no code with dedup.py); the verdict goes
    # into report.json and the card, and a leak is said loudly
    from audit import AuditError, audit_dataset, embeddings_for_run

    if args.audit == "off":
        audit = {"verdict": "not run", "checks": {}}
    else:
        try:
            audit = audit_dataset(final_dir, report.to_dict(),
                                  embeddings=embeddings_for_run(args) if args.audit == "full" else None)
        except AuditError as exc:
            audit = {"verdict": "error", "error": str(exc)}
    report.sections["audit"] = audit
    if audit["verdict"] not in ("pass", "not run"):
        log.warning(f"AUDIT {audit['verdict'].upper()}: "
                    + (audit.get("error") or ", ".join(f"{k}={audit['checks'][k]['count']}"
                                                       for k in audit.get("failed", [])))
                    + f" (python main.py audit {args.output_dir} for details)")
    report.sections["outputs"] = {"dir": str(final_dir), "files": written["files"],
                                  "licenses": written["licenses"], "synthetic": written["synthetic"]}
    card = write_card(final_dir, report.to_dict(), accepted_rewards=written["synthetic_rewards"])
    report.sections["outputs"]["card"] = card.pop("card")
    report.sections["outputs"]["plots"] = sorted(card.values())
    report.write(final_dir / "report.json")
    print(report.table())
    print(f"wrote {final_dir}/: " + ", ".join(split_file_name(s) for s in SPLITS)
          + "".join(f", {fmt}/" for fmt in written["files"] if fmt != "jsonl") + ", README.md, report.json")
    if source.get("sample"):
        log.warning("NOTE: this dataset was built from the bundled SAMPLE, not the real Law StackExchange dump.")
    return EXIT_OK


def _count_elements(path: Path) -> int | None:
    """Questions in a dump file, counted cheaply (occurrences of the "question_id" key); None if unreadable."""
    try:
        count, tail = 0, b""
        with open(path, "rb") as f:
            for block in iter(lambda: f.read(1 << 22), b""):
                count += (tail + block).count(b'"question_id"')
                tail = block[-12:]
        return count
    except OSError:
        return None


def dry_run(args: argparse.Namespace) -> int:
    """Print the stages that would run, the input and the estimated LLM calls; read and write nothing."""
    import math

    from split import parse_ratios

    say = print
    try:
        ratios = parse_ratios(args.split_ratios)
    except ValueError as exc:
        log.error(f"error: {exc}")
        return EXIT_BAD_INPUT
    sample = HERE / "data" / "sample" / "law-stackexchange-questions-answers.json"
    url = args.url or "https://huggingface.co/datasets/ymoslem/Law-StackExchange/resolve/main/" \
                      "law-stackexchange-questions-answers.json"
    if args.input:
        local = Path(args.input)
        where = f"--input {local}" + ("" if local.is_file() else "  (MISSING: the run would exit 2)")
    else:
        local = Path(args.raw_dir) / "law-stackexchange-questions-answers.json"
        where = (f"{local} (already downloaded)" if local.is_file() else
                 f"download {url} -> {local}" + ("" if args.no_fallback else f"; if offline: {sample}"))
        if not local.is_file() and not args.no_fallback:
            local = sample
    elements = _count_elements(local) if local.is_file() else None
    say("dry run: nothing is downloaded, read or written")
    say(f"input:   {where}" + (f"  [{elements:,} questions]" if elements is not None else ""))
    cluster = (f"existing Dask cluster at {args.scheduler_address}" if args.scheduler_address
               else f"LocalCluster, {args.n_workers} worker(s), {args.partition_rows} records per partition")
    dedup_kinds = str(getattr(args, "dedup", "none"))
    dedup_on = [k for k in ("exact", "fuzzy", "semantic")
                if k in dedup_kinds.replace("all", "exact,fuzzy,semantic") and not getattr(args, f"no_{k}", False)]
    stages = [
        ("download", "skipped (--input)" if args.input else f"{url} (resumable, cached in {args.raw_dir})"),
        ("convert", "stream the JSON array into records; best-scored answer per question"),
        ("clean", "HTML -> plain text, Unicode repair, whitespace"),
        ("filter", f"{args.min_words}-{args.max_words} words in question and answer; "
                   f"question score >= {args.min_question_score}; answer score >= {args.min_answer_score}"),
        ("dedup", (", ".join(dedup_on) + f" on {getattr(args, 'device', 'cpu')}") if dedup_on else "skipped"),
        ("split", f"{args.split_ratios} train/val/test by family hash, seed {args.seed}"),
    ]
    sdg_lines: list[str] = []
    if hasattr(args, "synth_gen_endpoint"):
        from synthetic_gen import sdg_config_from_args, sdg_gate

        cfg = sdg_config_from_args(args)
        will_run, why = sdg_gate(cfg)
        n = max(1, cfg.n_variants)
        reward_calls = 0 if cfg.reward_mode == "none" else n
        per_source = 3 + reward_calls
        if not will_run:
            stages.append(("synthesize", why or "skipped"))
        else:
            stages.append(("synthesize", f"{cfg.model} at {cfg.endpoint}; reward: {cfg.reward_mode}"
                           + (f" ({cfg.reward_model})" if cfg.reward_mode == "reward" else "")
                           + f"; up to {cfg.max_rounds()} round(s)"))
            sdg_lines.append(f"LLM calls: 3 generation + {reward_calls} reward call(s) per source row per round; "
                             f"each source row yields up to {n} pair(s)")
            train_max = math.floor(elements * ratios[0]) if elements is not None else None
            if cfg.target_size:
                needed = cfg.target_size - (train_max or 0)
                if needed <= 0:
                    sdg_lines.append(f"target {cfg.target_size:,} train rows: may already be met by the "
                                     f"~{train_max:,} real train rows (known after curation)")
                else:
                    best = math.ceil(needed / n) * per_source
                    likely = math.ceil(needed / (n * 0.5)) * per_source
                    sdg_lines.append(f"target {cfg.target_size:,} train rows: at least {needed:,} synthetic rows"
                                     + (f" (if all ~{train_max:,} real train rows survive curation)"
                                        if train_max is not None else "")
                                     + f" -> about {best:,} LLM calls if every pair is accepted, "
                                       f"{likely:,} if half are")
            elif train_max is not None:
                per_round = max(1, math.ceil((cfg.ratio or 0.001) * train_max))
                calls = per_round * per_source * cfg.max_rounds()
                sdg_lines.append(f"no --target-size: {per_round:,} source row(s) per round -> about {calls:,} "
                                 f"LLM calls in {cfg.max_rounds()} round(s)")
            if cfg.max_requests:
                sdg_lines.append(f"budget: stops after {cfg.max_requests:,} HTTP requests (--max-requests)")
            sdg_lines.append(f"responses are cached in {cfg.cache_dir}: a rerun pays only for new calls")
    final = Path(args.output_dir) / "final"
    formats = [f for f in ("chat", "nemo") if args.formats in ("all", "") or f in args.formats.split(",")]
    stages.append(("write", f"{final}/: law-qa-{{train,val,test}}.jsonl"
                   + "".join(f", {f}/{{split}}.jsonl" for f in formats) + ", README.md (card + PNGs), report.json"))
    say(f"cluster: {cluster}")
    say("stages:")
    for i, (name, what) in enumerate(stages, 1):
        say(f"  {i}. {name:<11}{what}")
    for line in sdg_lines:
        say(line)
    return EXIT_OK


def _is_cluster_error(exc: BaseException) -> bool:
    """A failure of the Dask cluster itself (a worker died, data lost), not of our code."""
    return (type(exc).__module__.split(".")[0] == "distributed"
            or type(exc).__name__ in ("KilledWorker", "FuturesCancelledError", "CommClosedError"))


def main(argv: list[str] | None = None) -> int:
    """Entry point: run the pipeline and turn known failures into one line and an exit code."""
    if (sys.argv[1:] if argv is None else argv)[:1] == ["audit"]:  # python main.py audit <output-dir>
        from audit import main as audit_main

        return audit_main(list(sys.argv[2:] if argv is None else argv[1:]))
    args = parse_args(argv)
    args._argv = list(sys.argv[1:] if argv is None else argv)  # for the report (scrubbed there)
    configure_logging(args)
    if args.dry_run:
        return dry_run(args)
    from docbuilder import DownloadError, InputError
    from llm import AuthError
    from report import redact, secret_values
    from synthetic_gen import SdgError

    import signal
    import threading

    def on_sigint(signum, frame):
        # Ctrl-C: the Dask teardown that follows logs worker/scheduler errors and tracebacks that tell the user
        # nothing; mute logging until the one "interrupted" line below
        logging.disable(logging.CRITICAL)
        raise KeyboardInterrupt

    def on_unraisable(unraisable, default=sys.unraisablehook):
        # a Ctrl-C that lands inside a finalizer (weakref callback, __del__) is swallowed there with an "Exception
        # ignored" traceback: say nothing and deliver it again, to ordinary code
        if isinstance(unraisable.exc_value, KeyboardInterrupt):
            # not os.kill() here: the handler would run at once, inside this hook, and be swallowed again
            threading.Timer(0.05, os.kill, (os.getpid(), signal.SIGINT)).start()
            return
        default(unraisable)

    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGINT, on_sigint)
        sys.unraisablehook = on_unraisable
    try:
        return run(args)
    except (AuthError, SdgError) as exc:
        log.error(f"error: LLM endpoint: {redact(str(exc), secret_values(args))}")
        return EXIT_ENDPOINT
    except InputError as exc:
        log.error(f"error: {exc}")
        return EXIT_BAD_INPUT
    except DownloadError as exc:
        log.error(f"error: download failed: {exc}")
        return EXIT_DOWNLOAD
    except KeyboardInterrupt:
        logging.disable(logging.NOTSET)
        log.error("interrupted: completed work is saved; run the same command again to continue")
        return EXIT_INTERRUPTED
    except Exception as exc:  # noqa: BLE001 - two kinds are turned into one line, the rest re-raised
        logging.disable(logging.NOTSET)
        if _is_cluster_error(exc):
            reason = " ".join(str(exc).split())[:160]
            log.error(f"error: the Dask cluster lost work ({type(exc).__name__}: {reason}); nothing was written "
                      "and LLM responses are cached: run the same command again")
            return EXIT_CLUSTER
        if isinstance(exc, OSError):  # disk full, permission denied: outputs are atomic, none is half-done
            where = f"{exc.filename}: " if getattr(exc, "filename", None) else ""
            log.error(f"error: {where}{exc.strerror or exc} (files already in the output folder are left as they were)")
            return EXIT_IO
        raise
    finally:
        logging.disable(logging.NOTSET)


if __name__ == "__main__":
    sys.exit(main())
