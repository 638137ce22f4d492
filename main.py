"""lawqa-curate: Law StackExchange -> clean, deduplicated, leak-free fine-tuning data (+ synthetic growth).

The flow, top to bottom, as in NeMo Curator's peft-curation-with-sdg tutorial:
download -> convert -> clean -> filter -> dedup -> split -> synthesize -> (leak check) -> write -> audit -> card
(the cluster starts while convert parses; the leak check runs in a thread while the files are written and
audited; the audit runs in a process of its own while a thread here draws the card's pictures).
Each stage below is a small class: `describe` says what it will do (`--dry-run` prints these), `run` does it and
returns its row accounting; `pipeline.run_stages` runs them in order, times them and checks the accounting.
"""
from __future__ import annotations

import time

STARTED = time.perf_counter()  # the report's timeline counts from here (start-up included)

import logging  # noqa: E402 - after STARTED, so the timeline includes every import
import os  # noqa: E402
import sys  # noqa: E402
from pathlib import Path  # noqa: E402

from pipeline import Context, StageResult, checkpoint, in_thread, run_stages

# Exit codes: distinct so scripts can tell bad input from a network or endpoint failure.
EXIT_OK = 0
EXIT_IO = 1  # an output could not be written (disk full, permissions)
EXIT_BAD_INPUT = 2
EXIT_DOWNLOAD = 3
EXIT_ENDPOINT = 4  # the preflight found the LLM endpoint unusable; nothing was done
EXIT_CLUSTER = 5  # the Dask cluster lost work it cannot recompute (a worker died holding data)
EXIT_SDG_INCOMPLETE = 6  # the dataset is written, but synthetic generation stopped on an endpoint error
EXIT_INTERRUPTED = 130

log = logging.getLogger("lawqa")


# ------------------------------------------------------------------------------------------------- the stages
class Download:
    """1. The dump: --input, the download (resumable, cached), or the bundled sample when offline."""

    name = "download"

    def describe(self, ctx: Context) -> str:
        from docbuilder import DATASET_FILE, DATASET_URL, SAMPLE_PATH
        from sedump import describe_dump, input_format

        cfg = ctx.cfg.input
        url = cfg.url or DATASET_URL
        if cfg.path and input_format(Path(cfg.path)) != "json":
            dump = describe_dump(Path(cfg.path), ctx.cfg.dump.site)
            return (f"skipped: --input {cfg.path}  [Stack Exchange dump of {dump['site']} ({dump['format']}): "
                    + ", ".join(dump["files"]) + "]")
        if cfg.path:
            local, where = Path(cfg.path), f"skipped: --input {cfg.path}"
        else:
            local = Path(cfg.raw_dir) / DATASET_FILE
            where = (f"{local} (already downloaded)" if local.is_file() else
                     f"{url} -> {local} (resumable)" + ("" if not cfg.fallback else f"; if offline: {SAMPLE_PATH}"))
            local = local if local.is_file() or not cfg.fallback else SAMPLE_PATH
        # the question count also sizes the synthesize stage's LLM-call estimate (describe runs in list order)
        ctx.data["elements"] = count_questions(local) if local.is_file() else None
        elements = ctx.data["elements"]
        return where + (f"  [{elements:,} questions]" if elements is not None else "")

    def run(self, ctx: Context) -> None:
        from docbuilder import DATASET_URL, resolve_input, sha256_of

        cfg = ctx.cfg.input
        source = resolve_input(cfg.path, cfg.url or DATASET_URL, Path(cfg.raw_dir), fallback=cfg.fallback,
                               warn=log.warning, progress=ctx.cfg.output.progress, site=ctx.cfg.dump.site)
        source["sha256"] = sha256_of(Path(source["path"]))
        ctx.report.source = ctx.data["source"] = source


class StartCluster:
    """The Dask cluster the record stages run on (started here so that no stage's time includes its start)."""

    name = "cluster"

    def describe(self, ctx: Context) -> str:
        cfg = ctx.cfg.cluster
        if cfg.scheduler_address:
            return f"existing Dask cluster at {cfg.scheduler_address}"
        return f"LocalCluster, {cfg.n_workers} worker(s), {cfg.partition_rows} records per partition"

    def run(self, ctx: Context) -> None:
        # in the background: convert parses its first partitions while the worker processes start
        ctx.start_client_soon()


class Convert:
    """2. Stream the JSON array, or a site's dump, into record partitions; each is cleaned on a worker as soon as
    it is parsed."""

    name = "convert"

    def describe(self, ctx: Context) -> str:
        return ("stream the JSON array (or a site's Posts.xml: an integer index, then the join) into records; "
                f"{ctx.cfg.dump.answer} answer per question")

    def run(self, ctx: Context) -> StageResult:
        from functools import partial
        from itertools import chain

        from card import partition_word_histograms
        from cluster import submit_bounded
        from dedup.features import kept_features, worker_embedding
        from docbuilder import InputError, iter_input_chunks, new_convert_stats
        from filters import clean_and_filter_partition, default_filters, image_answers
        from sedump import DumpStats, KeptPosts

        source, dedup = ctx.data["source"], ctx.cfg.dedup
        stats, filters = new_convert_stats(source), default_filters(ctx.cfg.filters)
        ctx.data["filters"] = filters
        # convert overlaps clean and filter: a worker cleans and filters each partition in one task as soon as it
        # is parsed, so the workers only ever hold the rows the filter keeps; the same task computes the kept
        # rows' dedup features (hashes, MinHash) while their text is in memory, so dedup makes no second pass
        chunks = iter_input_chunks(source, stats, ctx.cfg.cluster.partition_rows, ctx.cfg.output.progress,
                                   ctx.cfg.dump)
        # while the cluster starts, parse as many partitions as would wait for the workers anyway
        early = []
        while not ctx.client_ready and len(early) < 2 * ctx.cfg.cluster.n_workers:
            chunk = next(chunks, None)
            if chunk is None:
                break
            early.append(chunk)
        # the workers embed (static model) where they can read the model's files: on a local cluster
        local = not ctx.cfg.cluster.scheduler_address
        embed_cfg = ctx.data["worker_embedding"] = worker_embedding(dedup) if local else None
        features = partial(kept_features, shingle=dedup.fuzzy_shingle, num_perm=dedup.num_perm, seed=dedup.seed,
                           embed_cfg=embed_cfg)
        handed = (early.pop(0) for _ in range(len(early)))  # the list lets go of each once it is submitted
        clean = partial(clean_and_filter_partition, text_format=ctx.cfg.output.text_format, site=source.get("site"))
        futures = submit_bounded(ctx.client, clean, chain(handed, chunks), filters, partition_word_histograms, features,
                                 image_answers)
        if not futures:
            raise InputError(f"{source['path']}: no usable questions ({dict(stats.dropped) or 'empty array'})")
        ctx.data["curated"] = futures
        ctx.data["duplicate_links"] = []  # pairs of record ids the site closed as duplicates: one split family
        if isinstance(stats, DumpStats):
            ctx.data["duplicate_links"] = stats.duplicate_links
            ctx.report.sections["dump"] = stats.section()
            ctx.data["kept_posts"] = KeptPosts(stats)  # the written rows' inferred licences and period
        return StageResult(stats.elements, stats.records, dict(stats.dropped))


class Clean:
    """3. HTML -> structured plain text, Unicode repair, whitespace (started during convert)."""

    name = "clean"

    def describe(self, ctx: Context) -> str:
        if ctx.cfg.output.text_format == "plain":
            return "HTML -> plain text (paragraphs, lists, quotes, code kept), Unicode repair, whitespace"
        return ("HTML -> Markdown (code fences, inline code, links, emphasis, headings, lists, quotes, tables), "
                "Unicode repair, whitespace; filters and dedup read the visible text")

    def run(self, ctx: Context) -> StageResult:
        from cluster import dask_wait

        dask_wait(ctx.data["curated"], "clean + filter", ctx.cfg.output.progress)  # the rest of the work
        return StageResult(ctx.rows, ctx.rows)


class Filter:
    """4. Word counts and vote scores; every drop has a named reason."""

    name = "filter"

    def describe(self, ctx: Context) -> str:
        f = ctx.cfg.filters
        return (f"{f.min_words}-{f.max_words} words in question and answer; question score >= "
                f"{f.min_question_score}; answer score >= {f.min_answer_score}")

    def run(self, ctx: Context) -> StageResult:
        from collections import Counter

        from card import word_count_section
        from cluster import split_results
        from records import empty_frame

        # the clean tasks filtered each partition too: gather their drop counts, word-count histograms and the
        # kept rows' dedup features
        records, extras = split_results(ctx.client, ctx.data.pop("curated"), empty_frame())
        if ctx.data.pop("worker_embedding", None) is not None:  # the workers' embedding is done: free its model
            from dedup.embed import release_models

            ctx.client.run(release_models)
        start_audit_process(ctx)  # the workers are idle until dedup's first task, this process uses one core
        ctx.data["records"] = records
        ctx.data["features"] = [features for _, _, features, _ in extras]
        ctx.report.sections["word_counts"] = word_count_section([histograms for _, histograms, _, _ in extras])
        ctx.report.sections["clean"] = {"text_format": ctx.cfg.output.text_format,
                                        "answers_with_images": sum(images for *_, images in extras)}
        reasons = sum((Counter(dropped) for dropped, _, _, _ in extras), Counter())
        return StageResult(ctx.rows, ctx.rows - sum(reasons.values()), dict(reasons))


class Dedup:
    """5. Exact, fuzzy and semantic dedup over all rows; near-duplicate clusters become split families."""

    name = "dedup"

    def describe(self, ctx: Context) -> str:
        from dedup import KINDS

        cfg = ctx.cfg.dedup
        kinds = [k for k in KINDS if getattr(cfg, k)]
        if not kinds:
            return "skipped (--dedup none); families still group near-duplicates for the split"
        model = f" ({cfg.model}, cosine >= {1 - cfg.eps:g})" if cfg.semantic else ""
        return ", ".join(kinds) + model + f" on {cfg.device}"

    def run(self, ctx: Context) -> StageResult:
        from dedup import deduplicate
        from sedump import links_caught_by_dedup

        links = ctx.data["duplicate_links"]
        deduped = deduplicate(ctx.data["records"], ctx.cfg.dedup, ctx.client, extra_links=links,
                              features=ctx.data.pop("features"))
        # still partitioned in source order, and lazy: the split stage persists it with each row's split, one
        # pass of tasks over the partitions instead of two
        ctx.data["records"] = deduped.kept
        ctx.data["families"] = deduped.families.to_dict()
        # the leak check reads only ids and splits for these rows, and reuses their embeddings
        ctx.data["dedup_reuse"] = {"known_features": deduped.features, "embedder": deduped.embedder}
        ctx.data["removed"] = [deduped.removed]  # removed.jsonl, written with the dataset
        ctx.report.sections["dedup"] = deduped.stats
        if "dump" in ctx.report.sections:  # how many of the site's duplicate links dedup also caught
            ctx.report.sections["dump"]["duplicate_links"]["caught_by_dedup"] = links_caught_by_dedup(
                links, deduped.removed)
        removed = deduped.removed["kind"].value_counts().to_dict()
        return StageResult(ctx.rows, ctx.rows - len(deduped.removed), removed)


class Decontaminate:
    """Rows of any split that overlap the user's eval questions (exact, 13-gram overlap, embedding) removed."""

    name = "decontaminate"

    def describe(self, ctx: Context) -> str:
        cfg = ctx.cfg.decontam
        if not cfg.enabled:
            return "skipped (no --decontaminate FILE)"
        return (f"{len(cfg.files)} eval file(s): exact, {cfg.ngram}-gram overlap >= {cfg.ngram_overlap}"
                + (", embedding cosine" if cfg.embedding and ctx.cfg.dedup.semantic else ""))

    def run(self, ctx: Context) -> StageResult | None:
        decontaminator = ctx.data.get("decontaminator")
        if decontaminator is None:
            return None
        result = decontaminator.run(ctx.data["records"], ctx.client)
        ctx.data["records"] = result.kept.wait()
        ctx.data["removed"].append(result.removed)
        ctx.report.sections["decontamination"] = result.stats
        dropped = {f"decontaminated:{rule}": n for rule, n in result.stats["removed"].items() if rule != "total"}
        return StageResult(ctx.rows, ctx.rows - len(result.removed), dropped)


class Split:
    """6. train/val/test by a stable, seeded hash of the family key."""

    name = "split"

    def describe(self, ctx: Context) -> str:
        return (f"{ctx.cfg.split.ratios_text} train/val/test by family hash, seed {ctx.cfg.seed}; stops if a split "
                "is over 3 points off or a family holds over 1% of the rows"
                + (" (--allow-unbalanced-split: warns instead)" if ctx.cfg.split.allow_unbalanced else ""))

    def run(self, ctx: Context) -> StageResult:
        from cluster import count_values
        from records import empty_frame
        from split import assign_splits, check_split, family_keys, split_counts

        families = ctx.data["families"]  # sent to the workers once, not inside every partition's task
        records = ctx.data["records"].map_partitions(assign_splits, families, ctx.cfg.seed,
                                                     ctx.cfg.split.ratios, meta=empty_frame()).wait()
        ctx.data["records"] = records
        # a split that does not hold its ratios stops here (SplitError: one line, exit 2), before any file; the
        # family sizes, whose keys decide the splits, come from dedup's features where it made them (no pass)
        sizes = family_sizes(ctx)
        if sizes is None:
            sizes = count_values(records.map_partitions(family_keys, families, meta=("family", "object")))
        check = check_split(split_counts(sizes, ctx.cfg.seed, ctx.cfg.split.ratios), max(sizes.values(), default=0),
                            ctx.cfg.split, family_size_squares=sum(size * size for size in sizes.values()))
        ctx.report.sections["split"] = check
        if not check["ok"]:
            log.warning("WARNING: the split does not hold its ratios (--allow-unbalanced-split): "
                        + "; ".join(check["problems"]))
        return StageResult(ctx.rows, ctx.rows)


def family_sizes(ctx: Context) -> dict[str, int] | None:
    """Rows per family key of the rows the split stage splits, from the dedup features on this process (each
    kept row's source_id, mapped through the families as split.family_keys does); None without them."""
    from collections import Counter

    import pandas as pd

    feats = (ctx.data.get("dedup_reuse") or {}).get("known_features")
    if feats is None:
        return None
    gone = set(pd.concat(ctx.data["removed"], ignore_index=True)["id"].astype(str))
    source_ids = feats["source_id"].astype(str)[~feats["id"].astype(str).isin(gone)]
    if len(source_ids) != ctx.rows:  # not the rows being split: count them on the cluster instead
        return None
    families = ctx.data["families"]
    return dict(Counter(families.get(s, s) for s in source_ids))


class Synthesize:
    """7. Grow train with synthetic Q&A pairs, reward-scored, curated and deduplicated against everything."""

    name = "synthesize"

    def describe(self, ctx: Context) -> str:
        from synthetic_gen import describe_plan

        return describe_plan(ctx.cfg.sdg, ctx.data.get("elements"), ctx.cfg.split.ratios[0])

    def run(self, ctx: Context) -> StageResult | None:
        from records import empty_frame

        ctx.data["synthetic"] = empty_frame()
        if not ctx.data.get("sdg_on"):
            ctx.report.sections["sdg"] = {"ran": False, "skipped": ctx.data.get("sdg_skipped")}
            return None
        from dedup import dedup_against
        from filters import apply_filters
        from modifiers import clean_partition
        from synthetic_gen import grow_train, synthesis_accounting

        filters, dedup_cfg, decontaminator = ctx.data["filters"], ctx.cfg.dedup, ctx.data.get("decontaminator")

        text_format, site = ctx.cfg.output.text_format, ctx.data["source"].get("site")

        def curate(rows):
            kept, drops = apply_filters(clean_partition(rows, text_format, site), filters)
            if decontaminator is not None and len(kept):
                kept, more = decontaminator.check_new_rows(kept)
                drops = {**drops, **more}
            return kept, drops

        synthetic, section = grow_train(
            ctx.data["records"].compute(), ctx.cfg.sdg, curate=curate,
            dedup_against=lambda new, existing: dedup_against(new, existing, dedup_cfg),
            failures_path=ctx.cfg.output.final_dir / "sdg_failures.jsonl")
        ctx.data["synthetic"] = synthetic
        ctx.report.sections["sdg"] = section
        log.info(f"synthesize: +{len(synthetic)} train rows, stopped: {section.get('stop_reason')}")
        rows_in, rows_out, dropped = synthesis_accounting(section)
        return StageResult(rows_in, rows_out, dropped, adds=True)


class LeakCheck:
    """Pairs of rows in different splits above the leak thresholds: must be 0 after a family split. Started in a
    background thread, it runs while the files are written and audited (it only reads); the card waits for it."""

    name = "leak check"

    def describe(self, ctx: Context) -> str:
        return "cross-split pairs above the leak thresholds (must be 0), while the files are written and audited"

    def run(self, ctx: Context) -> None:
        from dedup import cross_split_leaks

        records, synthetic = ctx.data["records"], ctx.data["synthetic"]
        final_rows = records.with_frame(synthetic) if len(synthetic) else records
        ctx.report.sections["leaks"] = {}  # its place in report.json; filled by finish_leak_check
        ctx.data["leaks"] = in_thread("leak-check", cross_split_leaks, final_rows, ctx.cfg.dedup, client=ctx.client,
                                      **ctx.data.pop("dedup_reuse", {}))


def finish_leak_check(ctx: Context) -> None:
    """Wait for the leak check LeakCheck started and put its section in the report."""
    pending = ctx.data.pop("leaks", None)
    if pending is not None:
        ctx.report.sections["leaks"] = pending.result()


class Write:
    """8. The tutorial's law-qa-{split}.jsonl + the fine-tuning formats, in source order, all atomically."""

    name = "write"

    def describe(self, ctx: Context) -> str:
        from outputs import describe_files

        return f"{ctx.cfg.output.final_dir}/: " + describe_files(ctx.cfg.output.formats)

    def run(self, ctx: Context) -> StageResult:
        from functools import partial

        import pandas as pd

        from outputs import encode_partition, write_final, write_removed
        from split import SPLITS

        out = ctx.cfg.output
        kept = ctx.data.get("kept_posts")  # a site's dump: what its rows do not carry (dates, inferred licences)
        # each worker encodes the partitions it holds (JSON lines of every file), in parallel with the leak check
        # here; this process only writes the bytes, in partition order
        encode = partial(encode_partition, formats=out.formats, system_prompt=out.system_prompt)
        # the last use of the rows on the cluster (the leak check holds its own reference until it has read their
        # ids and splits): the workers free them while the audit reads the files back
        encoded = ctx.data.pop("records").map_partitions(encode)

        def partitions():
            for index, future in enumerate(encoded.futures):
                checkpoint(self.name, "partition", index)
                part = future.result()
                if kept is not None:
                    kept.add(part.keys)
                yield part
            synthetic = encode(ctx.data["synthetic"])
            if kept is not None:
                kept.add(synthetic.keys)
            yield synthetic

        written = ctx.data["written"] = write_final(out.final_dir, partitions(), out.formats, out.system_prompt)
        write_removed(out.final_dir / "removed.jsonl", pd.concat(ctx.data["removed"], ignore_index=True))
        ctx.report.splits = {s: written["rows"].get(s, 0) for s in SPLITS}
        ctx.report.sections["outputs"] = {"dir": str(out.final_dir), "files": written["files"],
                                          "licenses": written["licenses"],
                                          **(kept.section() if kept is not None else {"licenses_inferred": {},
                                                                                      "period": None}),
                                          "synthetic": written["synthetic"]}
        return StageResult(ctx.rows, sum(written["rows"].values()))


class Audit:
    """An independent audit of the files just written (audit.py shares no code with dedup.py), in a process of its
    own (`spare_process`): beside the leak check's and the card pictures' threads here and the cluster's shutdown.
    With MiniLM's embeddings (--audit full) here, where torch has every core."""

    name = "audit"

    def describe(self, ctx: Context) -> str:
        return {"off": "skipped (--audit off)", "fast": "exact and MinHash leaks, lineage, ids, filters, accounting",
                "full": "as fast, plus embedding cosine across splits"}[ctx.cfg.output.audit]

    def run(self, ctx: Context) -> None:
        from audit import AuditError, audit_dataset

        # the card's pictures need nothing the audit finds: a thread here draws them meanwhile. The cluster's work
        # ends with the leak check (which goes on beside the audit, which does not read it): it shuts down once that
        # is done, while the audit runs; the card waits for both
        ctx.data["pictures"] = draw_pictures_soon(ctx)
        ctx.close_soon(after=[ctx.data.get("leaks")])
        cfg = ctx.cfg
        if cfg.output.audit == "off":
            audit = {"verdict": "not run", "checks": {}}
        else:
            process = ctx.data.pop("audit_process", None)
            args = (cfg.output.final_dir, ctx.report.to_dict())
            try:
                if process is None:
                    audit = audit_dataset(*args, embeddings=audit_embeddings(cfg))
                else:
                    audit = process.run(audit_dataset, *args, embeddings=audit_embeddings(cfg))
            except AuditError as exc:
                audit = {"verdict": "error", "error": str(exc)}
        ctx.report.sections["audit"] = audit
        if audit["verdict"] not in ("pass", "not run"):
            failed = audit.get("error") or ", ".join(f"{k}={audit['checks'][k]['count']}" for k in audit["failed"])
            log.warning(f"AUDIT {audit['verdict'].upper()}: {failed} "
                        f"(python main.py audit {cfg.output.output_dir} for details)")


def audit_embeddings(cfg) -> str | None:
    """The model family of the audit's embedding check (--audit full with semantic dedup), else None."""
    return cfg.dedup.model_family if cfg.output.audit == "full" and cfg.dedup.semantic else None


def start_audit_process(ctx: Context) -> None:
    """Start the audit's own process now (its start-up and imports take a core the stages leave idle), unless
    the audit is off or embeds with MiniLM (which runs here)."""
    if ctx.cfg.output.audit != "off" and audit_embeddings(ctx.cfg) != "minilm":
        from spare_process import spare_process

        ctx.data["audit_process"] = ctx.hold(spare_process(("audit",)))


class Card:
    """The dataset card (README.md + PNGs) from the same dict as report.json, then report.json itself."""

    name = "card"

    def describe(self, ctx: Context) -> str:
        return "README.md (dataset card + PNGs), report.json"

    def run(self, ctx: Context) -> None:
        from card import write_card

        finish_leak_check(ctx)
        final_dir = ctx.cfg.output.final_dir
        pictures = ctx.data.pop("pictures", None)
        card = write_card(final_dir, ctx.report.to_dict(), accepted_rewards=ctx.data["written"]["synthetic_rewards"],
                          pictures=pictures.result() if pictures is not None else None)
        ctx.report.sections["outputs"]["card"] = card.pop("card")
        ctx.report.sections["outputs"]["plots"] = sorted(card.values())
        ctx.report.write(final_dir / "report.json")


def draw_pictures_soon(ctx: Context):
    """A concurrent.futures.Future of card.draw_pictures (PNG bytes), drawn in a thread of this process: it has
    nothing else to do while its own process audits (and the cluster's workers can shut down meanwhile)."""
    from card import draw_pictures

    # not a daemon: matplotlib's native code still drawing while an interrupted run's interpreter exits aborted it
    # (SIGABRT, "terminate called without an active exception")
    return in_thread("pictures", draw_pictures, ctx.report.to_dict(), ctx.data["written"]["synthetic_rewards"],
                     daemon=False)


STAGES = [Download(), StartCluster(), Convert(), Clean(), Filter(), Dedup(), Decontaminate(), Split(), Synthesize(),
          LeakCheck(), Write(), Audit(), Card()]


# ------------------------------------------------------------------------------------------------- the run
def preflight(ctx: Context) -> None:
    """Before any work: read the eval sets to decontaminate against (a bad file: exit 2), and if SDG is on, check
    its endpoint answers as it must (a rejected key, an unreachable endpoint or a model that is not a reward
    model: exit 4) — in seconds, with nothing written."""
    from decontam import Decontaminator
    from synthetic_gen import sdg_gate

    if ctx.cfg.decontam.enabled:
        ctx.data["decontaminator"] = Decontaminator.from_config(ctx.cfg.decontam, ctx.cfg.dedup)
    ctx.data["sdg_on"], ctx.data["sdg_skipped"] = sdg_gate(ctx.cfg.sdg)
    if ctx.data["sdg_on"]:
        from synthetic_gen import preflight as sdg_preflight

        ctx.report.sections["sdg_preflight"] = sdg_preflight(ctx.cfg.sdg)
        log.info(ctx.cfg.sdg.structured.line())
    else:
        log.info(ctx.data["sdg_skipped"])


def batch_cancel(cfg) -> int:
    """--batch-cancel: cancel the batches a --batch run left in flight (recorded in the cache dir), wait until they
    stop, keep what they completed in the response cache; no pipeline stage runs."""
    import llm

    client = llm.batch_client_from_config(cfg.sdg)
    try:
        stopped = client.run(client.cancel_recorded)
    finally:
        client.close()
    if not stopped:
        print(f"no batches in flight recorded in {cfg.sdg.cache_dir} for {cfg.sdg.endpoint}")
    for batch in stopped:
        print(f"batch {batch['id']}: {batch['status']}; {batch['answered']:,} answer(s) kept in the cache, "
              f"{batch['failed']:,} request(s) not answered (a --batch run asks them again)")
    return EXIT_OK


def run(cfg) -> int:
    """The pipeline, top to bottom (or, with --batch-cancel, only that)."""
    from cluster import dask_client
    from split import SPLITS
    from outputs import split_file_name

    if cfg.sdg.batch_cancel:
        return batch_cancel(cfg)
    ctx = Context(cfg, start_client=lambda: dask_client(cfg.cluster), started=STARTED)
    ctx.report.set_run(cfg)  # the command line, flags (scrubbed) and versions, for the audit, card and report
    preflight(ctx)
    try:
        run_stages(STAGES, ctx)
    finally:
        ctx.close()
    print(ctx.report.table())
    written = ctx.data["written"]
    print(f"wrote {cfg.output.final_dir}/: " + ", ".join(split_file_name(s) for s in SPLITS)
          + "".join(f", {fmt}/" for fmt in written["files"] if fmt != "jsonl") + ", README.md, report.json")
    if ctx.data["source"].get("sample"):
        log.warning("NOTE: this dataset was built from the bundled SAMPLE (generated data), not real posts of "
                    f"{ctx.data['source'].get('site_name', 'Law Stack Exchange')}.")
    sdg = ctx.report.sections.get("sdg") or {}
    if sdg.get("stop_reason") == "endpoint_error":
        log.error(f"error: synthetic generation stopped early ({sdg.get('stop_detail')}); the curated splits and "
                  f"{sdg.get('added', 0)} synthetic rows were written — run the same command again to continue "
                  "(LLM responses are cached)")
        return EXIT_SDG_INCOMPLETE
    return EXIT_OK


def dry_run(cfg) -> int:
    """Print the stages that would run (the same list `run` runs) and the estimated LLM calls; touch nothing."""
    ctx = Context(cfg)
    print("dry run: nothing is downloaded, read or written")
    if cfg.sdg.batch_cancel:
        from llm.batch_runner import BatchStore

        records = [r for r in BatchStore(cfg.sdg.cache_dir, cfg.sdg.endpoint).open_parts() if r.get("batch_id")]
        print(f"--batch-cancel: would cancel {len(records)} batch(es) recorded in flight in {cfg.sdg.cache_dir}"
              + "".join(f"\n  {r['batch_id']} ({r['requests']:,} requests, {r.get('label') or ''})" for r in records))
        return EXIT_OK
    print("stages:")
    for i, stage in enumerate(STAGES, 1):
        lines = stage.describe(ctx).splitlines() or [""]
        print(f"{i:>3}. {stage.name:<11}{lines[0]}")
        for line in lines[1:]:
            print(f"     {'':<11}{line}")
    return EXIT_OK


def count_questions(path: Path) -> int | None:
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


def configure_logging(cfg) -> None:
    """Console logging at the level the flags ask for."""
    level = logging.WARNING if cfg.quiet else logging.DEBUG if cfg.verbose else logging.INFO
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(name)s %(levelname)s: %(message)s" if cfg.verbose
                                           else "%(message)s"))
    log.handlers[:] = [handler]
    log.setLevel(level)
    log.propagate = False
    if not cfg.verbose:
        # model loading chatter ("Loading weights" bars, "Repo card metadata block was not found") is
        # not ours to show; environment variables so Dask workers inherit them too
        os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
        os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
        os.environ.setdefault("HF_HUB_VERBOSITY", "error")
        os.environ.setdefault("TRANSFORMERS_NO_ADVISORY_WARNINGS", "1")
        logging.getLogger("huggingface_hub").setLevel(logging.ERROR)


def install_interrupt_handlers() -> None:
    """Ctrl-C ends the run with one line: mute the Dask teardown's noise, and re-deliver a Ctrl-C that a
    finalizer swallowed."""
    import signal
    import threading

    def on_sigint(signum, frame):
        # the Dask teardown that follows logs worker/scheduler errors and tracebacks that tell the user
        # nothing; mute logging until the one "interrupted" line
        logging.disable(logging.CRITICAL)
        raise KeyboardInterrupt

    def on_unraisable(unraisable, default=sys.unraisablehook):
        # a Ctrl-C that lands inside a finalizer (weakref callback, __del__) is swallowed there with an "Exception
        # ignored" traceback: say nothing and deliver it again, to ordinary code
        if isinstance(unraisable.exc_value, KeyboardInterrupt):
            # not os.kill() here: the handler would run at once, inside this hook, and be swallowed again
            threading.Timer(0.05, os.kill, (os.getpid(), signal.SIGINT)).start()
            return
        if _from_dask_gc_diagnosis(unraisable):
            return
        default(unraisable)

    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGINT, on_sigint)
        sys.unraisablehook = on_unraisable


def _from_dask_gc_diagnosis(unraisable) -> bool:
    """An assertion of distributed's full-GC timer (distributed.gc, a log-only diagnosis the in-process scheduler
    registers as a gc callback): it fails when the scheduler, starting in its thread, registers the callback while
    this process's main thread is in the middle of a collection, which then ends without having started for it.
    Nothing is lost; the user would only see its traceback."""
    owner = getattr(unraisable.object, "__self__", None)
    return (isinstance(unraisable.exc_value, AssertionError)
            and type(owner).__module__ == "distributed.gc")


def exit_code_for(exc: BaseException, cfg) -> int | None:
    """One line and an exit code for the failures a user can act on; None for a bug (re-raised)."""
    from cluster import is_cluster_error
    from docbuilder import DownloadError, InputError
    from llm import EndpointError
    from split import SplitError
    from report import redact, secret_values
    from synthetic_gen import SdgError

    logging.disable(logging.NOTSET)
    if isinstance(exc, (EndpointError, SdgError)):
        log.error(f"error: LLM endpoint: {redact(str(exc), secret_values(cfg))}; nothing was done")
        return EXIT_ENDPOINT
    if isinstance(exc, (InputError, SplitError)):
        log.error(f"error: {exc}")
        return EXIT_BAD_INPUT
    if isinstance(exc, DownloadError):
        log.error(f"error: download failed: {exc}")
        return EXIT_DOWNLOAD
    if isinstance(exc, KeyboardInterrupt):
        log.error("interrupted: completed work is saved; run the same command again to continue")
        if getattr(exc, "resume_hint", None):   # --batch: the batches in flight keep running at the provider
            log.error(exc.resume_hint)
        return EXIT_INTERRUPTED
    if is_cluster_error(exc):
        reason = " ".join(str(exc).split())[:160]
        log.error(f"error: the Dask cluster lost work ({type(exc).__name__}: {reason}); nothing was written "
                  "and LLM responses are cached: run the same command again")
        return EXIT_CLUSTER
    if isinstance(exc, OSError):  # disk full, permission denied: outputs are atomic, none is half-done
        where = f"{exc.filename}: " if getattr(exc, "filename", None) else ""
        log.error(f"error: {where}{exc.strerror or exc} (files already in the output folder are left as they were)")
        return EXIT_IO
    return None


def main(argv: list[str] | None = None) -> int:
    """Entry point: validate every flag, then run the pipeline (or print its plan); known failures end with
    one line and an exit code."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["audit"]:  # python main.py audit <output-dir>
        from audit import main as audit_main

        return audit_main(argv[1:])
    from config import parse_args

    cfg = parse_args(argv)
    configure_logging(cfg.output)
    if cfg.dry_run:
        return dry_run(cfg)
    install_interrupt_handlers()
    code = None
    try:
        return run(cfg)
    except BaseException as exc:  # noqa: BLE001 - known kinds become one line, the rest is re-raised
        code = exit_code_for(exc, cfg)
        if code is None:
            raise
        return code
    finally:
        # after the "interrupted" line nothing more is said: a Dask process still closing as the interpreter
        # exits (its finalizers) would log its INFO lines otherwise
        logging.disable(logging.CRITICAL if code == EXIT_INTERRUPTED else logging.NOTSET)


if __name__ == "__main__":
    sys.exit(main())
