"""The command line and the one validated `RunConfig` every stage reads.

Each module that owns flags adds them (`add_<x>_arguments`) and turns them into its own config
(`<x>_config_from_args`, which raises ValueError naming the flag). `parse_args` builds every config before
any work starts, so a bad value ends the run with one line and exit 2, and creates no file or folder.
Defaults live in the config dataclasses; the parser shows them.
"""
from __future__ import annotations

import argparse
import os
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

EPILOG = """\
examples:
  python main.py                                   download (or, offline, the bundled sample), curate, write
  python main.py --input law-stackexchange-questions-answers.json --output-dir out
  python main.py --dry-run --target-size 20000     show the plan and the LLM calls it would make
  NVIDIA_API_KEY=... python main.py --target-size 20000
  python main.py --synth-gen-endpoint http://127.0.0.1:8000/v1 --synth-gen-model my-model --reward-mode judge
  OPENAI_API_KEY=... python main.py --synth-gen-endpoint https://api.openai.com/v1 --synth-gen-model gpt-4o-mini \
      --reward-mode judge --target-size 20000 --batch       the Batch API: half price, results within 24 h

exit codes:
  0    success
  1    an output could not be written (disk full, permission denied); finished files are left as they were
  2    bad input or arguments (unreadable / truncated dump, bad flag value)
  3    download failed and --no-fallback was given
  4    LLM endpoint error found by the preflight, before any work (key rejected, unreachable, not a reward model,
       no Batch API with --batch)
  5    the Dask cluster lost work (a worker died); LLM responses are kept, rerun to continue
  6    the dataset was written, but synthetic generation stopped early on an endpoint error (see report.json);
       run the same command again to continue from the LLM cache
  130  interrupted (Ctrl-C); completed work and LLM responses are kept, rerun to continue

The API key comes from --api-key (sent to the endpoint named), $NVIDIA_API_KEY (NVIDIA hosts only) or
$OPENAI_API_KEY (other hosts only), and is never written anywhere.
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


class _OneLineParser(argparse.ArgumentParser):
    """A bad flag is one line on stderr (`error: --flag: why`) and exit 2: no usage block to scroll past."""

    def error(self, message: str):
        self.exit(2, f"error: {message} (python main.py --help lists every flag)\n")


# ------------------------------------------------------------------------------------------------ the configs
@dataclass(frozen=True)
class InputConfig:
    """Where the dump comes from: a local file, or a download cached in `raw_dir`, or the bundled sample."""

    path: str | None = None
    url: str | None = None  # None: the dataset's default URL (docbuilder.DATASET_URL)
    fallback: bool = True
    raw_dir: str = "data/raw"


@dataclass(frozen=True)
class ClusterConfig:
    """Where the Dask stages run."""

    n_workers: int = os.cpu_count() or 1
    scheduler_address: str | None = None
    memory_limit: str = "auto"
    partition_rows: int = 4096
    dashboard: bool = False  # a LocalCluster's Bokeh dashboard: its imports cost about a second of the start-up


@dataclass(frozen=True)
class OutputConfig:
    """What is written, where, and how much is said."""

    output_dir: str = "data/curated"
    audit: str = "fast"  # fast | full | off
    formats: tuple[str, ...] = ()
    text_format: str = "markdown"  # markdown | plain (modifiers.TEXT_FORMATS)
    system_prompt: str | None = None
    quiet: bool = False
    verbose: bool = False

    @property
    def final_dir(self) -> Path:
        return Path(self.output_dir) / "final"

    @property
    def progress(self) -> bool:
        return not self.quiet


AUDIT_MODES = ("fast", "full", "off")


@dataclass(frozen=True)
class RunConfig:
    """Everything a run reads: built once by `parse_args`, never changed."""

    input: InputConfig
    dump: "object"  # sedump.DumpConfig (a Stack Exchange site's dump as --input)
    filters: "object"  # filters.FilterConfig
    split: "object"  # split.SplitConfig
    dedup: "object"  # dedup.DedupConfig
    decontam: "object"  # decontam.DecontamConfig
    sdg: "object"  # synthetic_gen.SdgConfig
    cluster: ClusterConfig
    output: OutputConfig
    seed: int = 42
    dry_run: bool = False
    argv: list[str] = field(default_factory=list)
    namespace: dict = field(default_factory=dict)  # the parsed flags, for the report (scrubbed there)

    def describe(self) -> dict:
        """The resolved settings, JSON-safe (no key: SdgConfig.public drops it)."""
        out = {}
        for name in ("input", "dump", "cluster", "output", "filters", "split"):
            out[name] = asdict(getattr(self, name))
        out["dedup"] = self.dedup.describe()
        out["decontam"] = asdict(self.decontam)
        out["sdg"] = self.sdg.public()
        return out


# ------------------------------------------------------------------------------------------------ the parser
def build_parser() -> argparse.ArgumentParser:
    """Command-line flags, grouped as the flow runs (input, curation, dedup, synthetic generation, cluster, output)."""
    parser = _OneLineParser(
        prog="python main.py", usage="%(prog)s [options]",
        description="Curate the Law StackExchange Q&A dump into a clean, deduplicated, leak-free fine-tuning\n"
                    "dataset, optionally grown with synthetic Q&A from an OpenAI-compatible LLM.\n"
                    "Flow: download -> convert -> clean -> filter -> dedup -> split -> synthesize -> write.",
        epilog=EPILOG, formatter_class=_HelpFormatter)
    _add_input_arguments(parser.add_argument_group("input", "where the Law StackExchange dump comes from"))
    _add_curation_arguments(parser.add_argument_group("curation", "filters applied to every record, and the split"))

    from decontam import add_decontam_arguments
    from dedup import add_dedup_arguments
    from synthetic_gen import add_sdg_arguments

    add_dedup_arguments(parser.add_argument_group(
        "dedup", "exact, fuzzy (MinHash-LSH) and semantic (embedding) dedup over all rows of all splits"))
    add_decontam_arguments(parser.add_argument_group(
        "decontamination", "remove rows that overlap your evaluation questions, before the split"))
    sdg_group = parser.add_argument_group(
        "synthetic generation",
        "grow train with synthetic Q&A from an OpenAI-compatible endpoint, scored by a reward model")
    add_sdg_arguments(sdg_group)
    sdg_group.add_argument("--domain", metavar="TEXT", default=None,
                           help="what the site's questions are, as the judge and generation prompts name them "
                                '(default: "legal questions" for Law Stack Exchange, "questions on <site name>" for '
                                "another site)")
    _add_cluster_arguments(parser.add_argument_group("cluster", "where the Dask stages run"))
    _add_output_arguments(parser.add_argument_group("output", "what is written, and how much is said"))
    return parser


def _add_input_arguments(group) -> None:
    from sedump import add_dump_arguments

    defaults = InputConfig()
    group.add_argument("--input", metavar="PATH",
                       help="a local copy of the JSON dump, or a Stack Exchange site's data dump: the .7z "
                            "(e.g. law.stackexchange.com.7z), its extracted folder, or its Posts.xml (skips the "
                            "download)")
    group.add_argument("--url", default=None, help="where to download the dump from (default: Hugging Face)")
    group.add_argument("--no-fallback", action="store_true",
                       help="fail when the download fails instead of using the bundled sample")
    group.add_argument("--raw-dir", default=defaults.raw_dir, help="download cache")
    add_dump_arguments(group)


def _add_curation_arguments(group) -> None:
    from filters import FilterConfig
    from split import add_split_arguments

    defaults = FilterConfig()
    group.add_argument("--min-words", type=int, default=defaults.min_words,
                       help="fewest words in question and in answer")
    group.add_argument("--max-words", type=int, default=defaults.max_words,
                       help="most words in question and in answer")
    group.add_argument("--min-question-score", type=int, default=defaults.min_question_score,
                       help="lowest question score kept")
    group.add_argument("--min-answer-score", type=int, default=defaults.min_answer_score,
                       help="lowest best-answer score kept")
    add_split_arguments(group)
    group.add_argument("--seed", type=int, default=RunConfig.seed, help="seed for the split hash and all sampling")


def _add_cluster_arguments(group) -> None:
    defaults = ClusterConfig()
    group.add_argument("--n-workers", type=int, default=defaults.n_workers, help="Dask LocalCluster worker processes")
    group.add_argument("--scheduler-address", default=None,
                       help="use an existing Dask cluster (tcp://host:8786) instead of a LocalCluster")
    group.add_argument("--memory-limit", default=defaults.memory_limit,
                       help="memory limit per LocalCluster worker (e.g. 4GiB); 'auto' shares RAM evenly")
    group.add_argument("--partition-rows", type=int, default=defaults.partition_rows,
                       help="records per Dask partition")
    group.add_argument("--dashboard", action="store_true", default=defaults.dashboard,
                       help="serve the LocalCluster's Dask dashboard on 127.0.0.1 (its link is printed)")


def _add_output_arguments(group) -> None:
    defaults = OutputConfig()
    group.add_argument("--output-dir", default=defaults.output_dir, help="writes <output-dir>/final/...")
    group.add_argument("--audit", default=defaults.audit, metavar="|".join(AUDIT_MODES),
                       help="the independent audit at the end: fast = exact and MinHash leaks, lineage, ids, "
                            "filters, accounting; full = also MiniLM cosine across splits (re-embeds every row, "
                            "about as long as semantic dedup); `python main.py audit DIR` runs it later")
    group.add_argument("--formats", default="all",
                       help="fine-tuning formats besides the tutorial's law-qa-{split}.jsonl (always written): "
                            "chat (chat/{split}.jsonl, messages), nemo (nemo/{split}.jsonl, input/output); "
                            "comma-separated, 'all' or 'none'")
    group.add_argument("--text-format", default=defaults.text_format, metavar="markdown|plain",
                       help="question and answer text: markdown = CommonMark as the site renders the post (code "
                            "fences, inline code, links with their URL, emphasis, headings, lists, quotes, tables, "
                            "images); plain = readable text without markup. Filters and dedup read the same "
                            "visible words either way")
    group.add_argument("--system-prompt", default=None, metavar="TEXT",
                       help="system message at the start of every chat-format example (none if unset)")
    group.add_argument("--dry-run", action="store_true",
                       help="print the stages, the input and the estimated LLM calls, then exit without writing")
    loudness = group.add_mutually_exclusive_group()
    loudness.add_argument("--quiet", action="store_true", help="warnings and errors only, no progress bars")
    loudness.add_argument("--verbose", action="store_true", help="debug logging")


# ------------------------------------------------------------------------------------------------ validation
def _input_config(args) -> InputConfig:
    if args.input is not None and not Path(args.input).exists():
        raise ValueError(f"--input: {args.input}: no such file or folder")
    return InputConfig(path=args.input, url=args.url or None, fallback=not args.no_fallback, raw_dir=args.raw_dir)


DOMAIN_MAX_CHARS = 200


def _domain(args) -> str:
    """--domain, else the subject of the input's site (sites.site_subject); ValueError on an unusable value."""
    from sites import input_site, site_subject

    if args.domain is None:
        site = input_site(args.input, (args.site or "").strip().lower() or None)
        return site_subject(site) if site else "questions on a Stack Exchange site"
    domain = " ".join(args.domain.split())
    if not domain or "\n" in args.domain.strip() or len(domain) > DOMAIN_MAX_CHARS:
        raise ValueError(f"--domain: {args.domain!r} must be one line of 1 to {DOMAIN_MAX_CHARS} characters "
                         "(e.g. --domain 'questions on quantum computing')")
    return domain


def _filter_config(args):
    from filters import FilterConfig

    if args.min_words < 0:
        raise ValueError("--min-words: must be 0 or more")
    if args.min_words > args.max_words:
        raise ValueError("--min-words: must not exceed --max-words")
    return FilterConfig(args.min_words, args.max_words, args.min_question_score, args.min_answer_score)


def _cluster_config(args) -> ClusterConfig:
    if args.n_workers < 1:
        raise ValueError("--n-workers: must be at least 1")
    if args.partition_rows < 1:
        raise ValueError("--partition-rows: must be at least 1")
    return ClusterConfig(args.n_workers, args.scheduler_address, args.memory_limit, args.partition_rows,
                         args.dashboard)


def _output_config(args) -> OutputConfig:
    from outputs import parse_formats

    from modifiers import TEXT_FORMATS

    if args.audit not in AUDIT_MODES:
        raise ValueError(f"--audit: {args.audit!r} is not one of {', '.join(AUDIT_MODES)}")
    if args.text_format not in TEXT_FORMATS:
        raise ValueError(f"--text-format: {args.text_format!r} is not one of {', '.join(TEXT_FORMATS)}")
    return OutputConfig(output_dir=args.output_dir, audit=args.audit, formats=parse_formats(args.formats),
                        text_format=args.text_format, system_prompt=args.system_prompt, quiet=args.quiet,
                        verbose=args.verbose)


def config_from_args(args: argparse.Namespace, argv: list[str]) -> RunConfig:
    """Every module's config from the parsed flags; raises ValueError("--flag: why") on the first bad value."""
    from decontam import decontam_config_from_args
    from dedup import dedup_config_from_args
    from sedump import dump_config_from_args
    from split import split_config_from_args
    from synthetic_gen import sdg_config_from_args

    filters = _filter_config(args)
    return RunConfig(input=_input_config(args), dump=dump_config_from_args(args), filters=filters, split=split_config_from_args(args),
                     dedup=dedup_config_from_args(args), decontam=decontam_config_from_args(args),
                     # SDG asks its items for the filters' word range: each synthetic row passes the filters too
                     sdg=replace(sdg_config_from_args(args), domain=_domain(args), item_words=filters.word_range()),
                     cluster=_cluster_config(args), output=_output_config(args), seed=args.seed,
                     dry_run=args.dry_run, argv=list(argv), namespace=vars(args).copy())


def parse_args(argv: list[str]) -> RunConfig:
    """Parse and validate the flags: a bad value exits 2 with one line, before any work or any file."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return config_from_args(args, argv)
    except ValueError as exc:
        parser.error(str(exc))
