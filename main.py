"""lawqa-curate: Law StackExchange -> clean, deduplicated, leak-free fine-tuning data (+ synthetic growth).

The flow, top to bottom, as in NeMo Curator's peft-curation-with-sdg tutorial:
download -> convert -> clean -> filter -> dedup -> split -> synthesize -> write.
"""
from __future__ import annotations

import argparse
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

log = logging.getLogger("lawqa")
HERE = Path(__file__).resolve().parent


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line flags, grouped as the flow runs."""
    parser = argparse.ArgumentParser(
        prog="python main.py",
        description="Curate the Law StackExchange Q&A dump into a clean, deduplicated, leak-free "
                    "fine-tuning dataset, optionally grown with synthetic Q&A from an OpenAI-compatible LLM.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    source = parser.add_argument_group("input")
    source.add_argument("--input", metavar="FILE", help="a local copy of the dump (skips the download)")
    source.add_argument("--url", default=None, help="where to download the dump from (default: Hugging Face)")
    source.add_argument("--no-fallback", action="store_true",
                        help="fail when the download fails instead of using the bundled sample")
    source.add_argument("--raw-dir", default="data/raw", help="download cache")

    curation = parser.add_argument_group("curation")
    curation.add_argument("--min-words", type=int, default=50, help="fewest words in question and in answer")
    curation.add_argument("--max-words", type=int, default=500, help="most words in question and in answer")
    curation.add_argument("--min-question-score", type=int, default=0, help="lowest question score kept")
    curation.add_argument("--min-answer-score", type=int, default=0, help="lowest best-answer score kept")
    curation.add_argument("--split-ratios", default="80/10/10", help="train/val/test proportions")
    curation.add_argument("--seed", type=int, default=42, help="seed for the split hash and all sampling")

    from dedup import add_dedup_arguments

    add_dedup_arguments(parser.add_argument_group("dedup"))

    cluster = parser.add_argument_group("cluster")
    cluster.add_argument("--n-workers", type=int, default=os.cpu_count() or 1,
                         help="Dask LocalCluster worker processes")
    cluster.add_argument("--scheduler-address", default=None,
                         help="use an existing Dask cluster (tcp://host:8786) instead of a LocalCluster")
    cluster.add_argument("--memory-limit", default="auto",
                         help="memory limit per LocalCluster worker (e.g. 4GiB); 'auto' shares RAM evenly")
    cluster.add_argument("--partition-rows", type=int, default=4096, help="records per Dask partition")

    output = parser.add_argument_group("output")
    output.add_argument("--output-dir", default="data/curated", help="writes <output-dir>/final/...")
    output.add_argument("--quiet", action="store_true", help="warnings and errors only, no progress bars")
    output.add_argument("--verbose", action="store_true", help="debug logging")
    args = parser.parse_args(argv)
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
    handler.setFormatter(logging.Formatter("%(message)s"))
    log.handlers[:] = [handler]
    log.setLevel(level)
    log.propagate = False


@contextmanager
def dask_client(args: argparse.Namespace):
    """A Dask client: on an existing cluster (our modules uploaded to it) or on a fresh LocalCluster."""
    from distributed import Client, LocalCluster

    if args.scheduler_address:
        client = Client(args.scheduler_address)
        for module in sorted(HERE.glob("*.py")):
            if module.name != "main.py":
                client.upload_file(str(module))
        log.info(f"dask: connected to {args.scheduler_address} (dashboard {client.dashboard_link})")
        try:
            yield client
        finally:
            client.close()
        return
    cluster = LocalCluster(n_workers=args.n_workers, threads_per_worker=1, processes=True,
                           memory_limit=args.memory_limit, dashboard_address=None,
                           silence_logs=logging.ERROR)
    client = Client(cluster)
    log.info(f"dask: LocalCluster with {args.n_workers} worker(s)")
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


def run(args: argparse.Namespace) -> int:
    """The pipeline, top to bottom."""
    import dask.dataframe as dd
    from distributed import wait

    from dedup import deduplicate, dedup_config_from_args
    from docbuilder import DATASET_URL, ConvertStats, iter_record_chunks, resolve_input, sha256_of
    from filters import DROP_REASON, FilterConfig, default_filters, filter_partition
    from modifiers import clean_partition
    from outputs import split_file_name, write_removed, write_split_files
    from records import drop_ids, empty_frame
    from report import RunReport, timed
    from split import SPLITS, assign_splits, parse_ratios

    progress = not args.quiet
    try:
        ratios = parse_ratios(args.split_ratios)
    except ValueError as exc:
        log.error(f"error: {exc}")
        return EXIT_BAD_INPUT
    final_dir = Path(args.output_dir) / "final"
    report = RunReport()

    # 1. download (or --input, or the bundled sample when offline)
    with timed() as t:
        source = resolve_input(args.input, args.url or DATASET_URL, Path(args.raw_dir),
                               fallback=not args.no_fallback, warn=log.warning, progress=progress)
        source["sha256"] = sha256_of(Path(source["path"]))
    report.source = source

    with dask_client(args) as client:
        # 2. convert: stream the JSON array into record partitions
        convert_stats = ConvertStats()
        with timed() as t:
            chunks = [client.scatter(chunk) for chunk in
                      iter_record_chunks(Path(source["path"]), convert_stats, args.partition_rows, progress)]
            if not chunks:
                log.error(f"error: {source['path']}: no usable questions "
                          f"({dict(convert_stats.dropped) or 'empty array'})")
                return EXIT_BAD_INPUT
            records = dd.from_delayed(chunks, meta=empty_frame(), verify_meta=False)
        report.add_stage("convert", convert_stats.elements, convert_stats.records, convert_stats.dropped,
                         t["seconds"])

        # 3. clean: HTML -> structured plain text, Unicode repair, whitespace
        with timed() as t:
            records = records.map_partitions(clean_partition, meta=empty_frame()).persist()
            wait(records)
        report.add_stage("clean", convert_stats.records, convert_stats.records, {}, t["seconds"])

        # 4. filter: word counts and scores, every drop with a named reason
        filters = default_filters(FilterConfig(args.min_words, args.max_words,
                                               args.min_question_score, args.min_answer_score))
        with timed() as t:
            marked_meta = empty_frame().assign(**{DROP_REASON: ""})
            marked = records.map_partitions(filter_partition, filters, meta=marked_meta).persist()
            reasons = count_values(marked[DROP_REASON])
            records = marked[marked[DROP_REASON] == ""].drop(columns=[DROP_REASON]).persist()
            wait(records)
        kept = int(reasons.pop("", 0))
        report.add_stage("filter", convert_stats.records, kept, reasons, t["seconds"])

        # 5. dedup: exact, fuzzy, semantic over all rows; near-duplicate clusters become split families
        with timed() as t:
            deduped = deduplicate(records, dedup_config_from_args(args), client)
            removed_ids = set(deduped.removed["id"])
            records = records.map_partitions(drop_ids, removed_ids, meta=empty_frame()).persist()
            wait(records)
        rows_after_dedup = kept - len(removed_ids)
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

        # 8. write: the tutorial's law-qa-{split}.jsonl, partition order = source order
        with timed() as t:
            partitions = (part.compute() for part in records.to_delayed())
            counts = write_split_files(final_dir, partitions)
        report.splits = {s: counts.get(s, 0) for s in SPLITS}
        report.add_stage("write", kept, sum(counts.values()), {}, t["seconds"])

    report.write(final_dir / "report.json")
    print(report.table())
    files = ", ".join(str(final_dir / split_file_name(s)) for s in SPLITS)
    print(f"wrote {files} and {final_dir / 'report.json'}")
    if source.get("sample"):
        log.warning("NOTE: this dataset was built from the bundled SAMPLE, not the real Law StackExchange dump.")
    return EXIT_OK


def main(argv: list[str] | None = None) -> int:
    """Entry point: run the pipeline and turn known failures into one line and an exit code."""
    args = parse_args(argv)
    configure_logging(args)
    from docbuilder import DownloadError, InputError

    try:
        return run(args)
    except InputError as exc:
        log.error(f"error: {exc}")
        return EXIT_BAD_INPUT
    except DownloadError as exc:
        log.error(f"error: download failed: {exc}")
        return EXIT_DOWNLOAD
    except KeyboardInterrupt:
        log.error("interrupted: completed work is saved; run the same command again to continue")
        return EXIT_INTERRUPTED


if __name__ == "__main__":
    sys.exit(main())
