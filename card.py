"""The dataset card: `<output-dir>/final/README.md` (a Hugging Face dataset card) and the PNGs beside it.

Everything on the card comes from the run report (the same dict that is written to report.json), so
the card's numbers are the report's numbers. Pictures are drawn with matplotlib's headless Agg backend
and are byte-for-byte reproducible (fixed size and dpi, no timestamp or software tag in the PNG):
- funnel.png       rows after each stage;
- word_counts.png  question/answer word-count histograms before and after filtering;
- rewards.png      reward scores of accepted vs rejected synthetic pairs (only when synthesis ran and the
                   "sdg" section carries the scores).

`partition_word_histograms` runs in each partition's clean + filter task: a histogram of cleaned word counts,
summed on the driver by `word_count_section`, so the full text is never gathered.
"""
from __future__ import annotations

import re
from pathlib import Path

from decontam import decontam_summary
from outputs import FORMATS, atomic_write
from sites import HF_DATASET, LAW_SITE, describe_site

# Word-count histogram bins: [0,20), [20,40), ... [980,1000), then everything >= 1000 in the last bin.
BIN_WIDTH = 20
BIN_LIMIT = 1000
N_BINS = BIN_LIMIT // BIN_WIDTH + 1
HIST_FIELDS = ("question", "answer")

ADDING_STAGES = ("synthesize",)  # stages whose rows_out are added to the dataset rather than what is left of it
FUNNEL_PNG = "funnel.png"
WORDS_PNG = "word_counts.png"
REWARDS_PNG = "rewards.png"
SPLIT_NAMES = {"train": "train", "val": "validation", "test": "test"}  # our file names -> HF split names


# --------------------------------------------------------------------------- word-count histograms

def partition_word_histograms(df, drop_col: str = "drop_reason", counts: dict | None = None):
    """Histogram counts for one partition: array [before/after, question/answer, bin] (int64).

    "before" counts every row the filter saw; "after" only those it kept (`drop_col == ""`). `counts`: word
    counts by column already made for the filter (filters.word_counts), used where they cover a field.
    """
    import numpy as np

    from filters import count_words

    out = np.zeros((2, len(HIST_FIELDS), N_BINS), dtype="int64")
    if not len(df):
        return out
    kept = (df[drop_col] == "").to_numpy() if drop_col in df.columns else np.ones(len(df), dtype=bool)
    for j, column in enumerate(HIST_FIELDS):
        words = counts[column] if counts and column in counts else count_words(df[column].fillna(""))
        bins = np.minimum(words.to_numpy() // BIN_WIDTH, N_BINS - 1)
        out[0, j] = np.bincount(bins, minlength=N_BINS)
        out[1, j] = np.bincount(bins[kept], minlength=N_BINS)
    return out


def word_count_section(per_partition: list) -> dict:
    """The report's "word_counts" section from each partition's `partition_word_histograms` array."""
    import numpy as np

    total = np.sum(per_partition, axis=0) if per_partition else np.zeros((2, len(HIST_FIELDS), N_BINS), "int64")
    return {
        "bin_width": BIN_WIDTH,
        "last_bin_from": BIN_LIMIT,
        "before": {f: [int(x) for x in total[0, j]] for j, f in enumerate(HIST_FIELDS)},
        "after": {f: [int(x) for x in total[1, j]] for j, f in enumerate(HIST_FIELDS)},
    }


# --------------------------------------------------------------------------- pictures

def _pyplot():
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    plt.rcParams.update({"svg.hashsalt": "lawqa-curate", "figure.dpi": 100, "savefig.dpi": 100,
                         "font.size": 9, "path.simplify": True})
    return plt


def _png(fig) -> bytes:
    """A figure as PNG bytes, with no metadata that changes between runs."""
    import io

    plt = _pyplot()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", metadata={"Software": None})
    plt.close(fig)
    return buffer.getvalue()


def plot_funnel(stages: list[dict]) -> bytes:
    """Horizontal bars: rows entering the first stage, then rows out of every stage."""
    plt = _pyplot()
    labels = ["input"]
    values = [stages[0]["rows_in"] if stages else 0]
    for s in stages:
        if s["name"] in ADDING_STAGES:  # rows_in/out count generated pairs; the dataset grows by rows_out
            labels.append(f"{s['name']} (+{s['rows_out']:,})")
            values.append(values[-1] + s["rows_out"])
        else:
            labels.append(s["name"])
            values.append(s["rows_out"])
    fig, ax = plt.subplots(figsize=(7, 0.45 * len(labels) + 1.2))
    y = list(range(len(labels)))[::-1]
    ax.barh(y, values, color="#4C72B0")
    top = max(values) if values and max(values) > 0 else 1
    for yi, v in zip(y, values):
        ax.text(v + top * 0.01, yi, f"{v:,}", va="center")
    ax.set_yticks(y, labels)
    ax.set_xlim(0, top * 1.15)
    ax.set_xlabel("rows")
    ax.set_title("Rows after each stage")
    fig.tight_layout()
    return _png(fig)


def plot_word_counts(word_counts: dict, min_words: int | None = None, max_words: int | None = None) -> bytes:
    """Question and answer word-count histograms, before vs after filtering, with the thresholds marked."""
    plt = _pyplot()
    width = word_counts.get("bin_width", BIN_WIDTH)
    fig, axes = plt.subplots(1, len(HIST_FIELDS), figsize=(10, 3.6), sharey=False)
    for ax, field in zip(axes, HIST_FIELDS):
        before = word_counts["before"][field]
        after = word_counts["after"][field]
        lefts = [i * width for i in range(len(before))]
        ax.bar(lefts, before, width=width, align="edge", color="#BBBBBB", label="before filtering")
        ax.bar(lefts, after, width=width, align="edge", color="#4C72B0", label="after filtering")
        for x in (min_words, max_words):
            if x is not None:
                ax.axvline(x, color="#C44E52", linestyle="--", linewidth=1)
        used = [i for i, n in enumerate(before) if n]
        right = max((used[-1] + 1) * width if used else width, (max_words or 0) + width)
        ax.set_xlim(0, min(right, len(before) * width) * 1.02)
        ax.set_title(f"{field} words (last bin: {word_counts.get('last_bin_from', BIN_LIMIT)}+)")
        ax.set_xlabel("words")
        ax.set_ylabel("rows")
        ax.legend(loc="upper right")
    fig.tight_layout()
    return _png(fig)


def plot_rewards(accepted: list[float], rejected: list[float], threshold: float | None = None,
                 attribute: str = "reward") -> bytes | None:
    """Histogram of reward scores, accepted vs rejected synthetic pairs (PNG); None when there are none."""
    accepted = [float(x) for x in accepted or [] if x is not None]
    rejected = [float(x) for x in rejected or [] if x is not None]
    if not accepted and not rejected:
        return None
    plt = _pyplot()
    import numpy as np

    values = accepted + rejected
    lo, hi = min(values), max(values)
    edges = np.linspace(lo, hi if hi > lo else lo + 1.0, 31)
    fig, ax = plt.subplots(figsize=(7, 3.6))
    if rejected:
        ax.hist([rejected, accepted], bins=edges, stacked=True, color=["#C44E52", "#55A868"],
                label=[f"rejected ({len(rejected)})", f"accepted ({len(accepted)})"])
    else:
        ax.hist(accepted, bins=edges, color="#55A868",
                label=f"accepted ({len(accepted)}; rejected scores not reported)")
    if threshold is not None:
        ax.axvline(threshold, color="black", linestyle="--", linewidth=1, label=f"threshold {threshold:g}")
    ax.set_xlabel(attribute)
    ax.set_ylabel("synthetic pairs")
    ax.set_title("Reward scores of synthetic pairs")
    ax.legend()
    fig.tight_layout()
    return _png(fig)


def reward_scores(sdg: dict, accepted_rewards: list[dict] | None = None
                  ) -> tuple[list[float], list[float], float | None, str]:
    """(accepted, rejected, threshold, attribute) for the reward plot.

    The attribute is the first thresholded one (sdg["reward"]["thresholds"], e.g. helpfulness >= 2.0).
    Scores come from sdg["reward_scores"] = {"accepted": [...], "rejected": [...]} when the SDG step
    reports them; otherwise the accepted scores are read from the written synthetic rows
    (`accepted_rewards`: their reward dicts) and rejected ones are not shown.
    """
    reward = sdg.get("reward") if isinstance(sdg.get("reward"), dict) else {}
    thresholds = reward.get("thresholds") or {}
    attribute, threshold = next(iter(thresholds.items()), (None, None))
    scores = sdg.get("reward_scores") if isinstance(sdg.get("reward_scores"), dict) else {}
    attribute = scores.get("attribute", attribute)
    accepted = list(scores.get("accepted") or [])
    rejected = list(scores.get("rejected") or [])
    if not accepted and accepted_rewards:
        if attribute is None:
            attribute = next((k for r in accepted_rewards for k in r), None)
        accepted = [r[attribute] for r in accepted_rewards if attribute in r]
    return accepted, rejected, threshold, str(attribute or "reward")


# --------------------------------------------------------------------------- the card

def size_category(n: int) -> str:
    """Hugging Face size_categories bucket."""
    for limit, name in ((1_000, "n<1K"), (10_000, "1K<n<10K"), (100_000, "10K<n<100K"),
                        (1_000_000, "100K<n<1M"), (10_000_000, "1M<n<10M")):
        if n < limit:
            return name
    return "10M<n<100M"


def _yaml_str(text: str) -> str:
    return '"' + str(text).replace("\\", "\\\\").replace('"', '\\"') + '"'


HF_LICENSE_IDS = {"3.0": "cc-by-sa-3.0", "4.0": "cc-by-sa-4.0"}   # the Hub's ids; CC BY-SA 2.5 has none


def hub_licenses(report: dict) -> list[str]:
    """The Hub's licence ids of the written rows' licences (every CC BY-SA version a row names, "other" for 2.5),
    sorted; CC BY-SA 4.0 for a report that does not say (older reports)."""
    licenses = (report.get("outputs") or {}).get("licenses") or {}
    versions = {v for text in licenses for v in re.findall(r"CC BY-SA (\d\.\d)", text)}
    return sorted({HF_LICENSE_IDS.get(v, "other") for v in versions}) or ["cc-by-sa-4.0"]


def yaml_header(report: dict) -> str:
    """The card's YAML front matter: license, tasks, size, and one config per format with its splits."""
    files = (report.get("outputs") or {}).get("files") or {"jsonl": {s: f"law-qa-{s}.jsonl" for s in SPLIT_NAMES}}
    total = sum((report.get("splits") or {}).values())
    synthetic = bool(_synthetic_rows(report))
    site = card_site(report)
    topic = ["- legal"] if site["site"] == LAW_SITE else []
    source = ["source_datasets:", f"- {site['dataset']}"] if site.get("dataset") else []
    hub = hub_licenses(report)
    license_lines = [f"license: {hub[0]}"] if len(hub) == 1 else ["license:", *(f"- {h}" for h in hub)]
    lines = ["---", *license_lines, "language:", "- en", f"pretty_name: {site['dataset_name']}",
             "task_categories:", "- question-answering", "- text-generation",
             "tags:", *topic, "- stackexchange", f"- {site['tag']}", "- sft", *(["- synthetic"] if synthetic else []),
             "size_categories:", f"- {size_category(total)}", *source, "configs:"]
    config_names = {"jsonl": "default", "chat": "chat", "nemo": "nemo"}
    for fmt, by_split in files.items():
        lines.append(f"- config_name: {config_names.get(fmt, fmt)}")
        lines.append("  data_files:")
        for split, rel in by_split.items():
            lines += [f"  - split: {SPLIT_NAMES.get(split, split)}", f"    path: {_yaml_str(rel)}"]
    lines.append("---")
    return "\n".join(lines)


def card_site(report: dict) -> dict:
    """The site the report's input is from (host, name, address, dataset name, tag; `dataset`: the Hugging Face
    dump when the input is the JSON dump); Law Stack Exchange's for a report that does not say (older reports)."""
    source = report.get("source") or {}
    site = str(source.get("site") or LAW_SITE)
    out = describe_site(site)
    out["tag"] = out["dataset_name"].removesuffix("-qa")  # ai-stackexchange, law-stackexchange, stackoverflow
    if source.get("format", "json") == "json":
        out["dataset"] = source.get("dataset") or HF_DATASET
    return out


def _synthetic_rows(report: dict) -> int:
    """Synthetic rows in the written dataset (what the writer counted; else what SDG says it added)."""
    written = ((report.get("outputs") or {}).get("synthetic") or {}).get("rows")
    if isinstance(written, int):
        return written
    sdg = report.get("sdg") or {}
    return int(sdg.get("added") or 0) if isinstance(sdg, dict) else 0


def _cell(value) -> str:
    if isinstance(value, float):
        return f"{value:,.4g}"
    if isinstance(value, int) and not isinstance(value, bool):
        return f"{value:,}"
    if isinstance(value, dict):
        return ", ".join(f"{k}: {_cell(v)}" for k, v in value.items())
    if isinstance(value, list):
        return ", ".join(_cell(v) for v in value[:8]) + (f" … ({len(value)} values)" if len(value) > 8 else "")
    return str(value).replace("|", "\\|").replace("\n", " ")


def render_mapping(data, depth: int = 0) -> list[str]:
    """A report section as Markdown: scalars as bullets, nested dicts indented, a list of dicts as a table,
    long lists of numbers summarised (count, min, max)."""
    lines: list[str] = []
    pad = "  " * depth
    if not isinstance(data, dict):
        return [f"{pad}- {_cell(data)}"]
    for key, value in data.items():
        if isinstance(value, dict) and value and all(isinstance(v, list) for v in value.values()):
            lines.append(f"{pad}- **{key}**: " + ", ".join(f"{k}: {len(v):,} values" for k, v in value.items()))
        elif isinstance(value, dict) and value and any(isinstance(v, (dict, list)) for v in value.values()):
            lines.append(f"{pad}- **{key}**:")
            lines += render_mapping(value, depth + 1)
        elif isinstance(value, list) and value and all(isinstance(v, dict) for v in value):
            columns = list(dict.fromkeys(k for row in value for k in row))
            lines += [f"{pad}- **{key}**:", "", "  | " + " | ".join(columns) + " |",
                      "  |" + "---|" * len(columns)]
            lines += ["  | " + " | ".join(_cell(row.get(c, "")) for c in columns) + " |" for row in value]
            lines.append("")
        elif isinstance(value, list) and len(value) > 8 and all(isinstance(v, (int, float)) for v in value):
            lines.append(f"{pad}- **{key}**: {len(value):,} values, min {_cell(min(value))}, "
                         f"max {_cell(max(value))}")
        else:
            lines.append(f"{pad}- **{key}**: {_cell(value)}")
    return lines


def render_card(report: dict, images: dict[str, str]) -> str:
    """The dataset card's Markdown (YAML header first) from the report dict and the images drawn."""
    splits = report.get("splits") or {}
    files = (report.get("outputs") or {}).get("files") or {"jsonl": {s: f"law-qa-{s}.jsonl" for s in splits}}
    out = [yaml_header(report), ""]
    for part in (_summary_lines(report), _files_lines(splits, files), _load_lines(files), _source_lines(report),
                 _stage_lines(report, images), _section_lines(report, images), _reproduce_lines(report)):
        out += part
    return "\n".join(out)


def _text_format_phrase(report: dict) -> str:
    """How the clean stage wrote the text (report's `clean.text_format`; runs before --text-format: plain)."""
    if ((report.get("clean") or {}).get("text_format")) == "markdown":
        return "converted to Markdown as the site renders it (code fences, links with their URLs)"
    return "cleaned to plain text"


def _split_ratios(report: dict) -> str | None:
    """The train/val/test ratios the run used: from its resolved config, else from its flags (older reports)."""
    run = report.get("run") or {}
    split = (run.get("config") or {}).get("split") or {}
    return split.get("ratios_text") or (run.get("args") or {}).get("split_ratios")


def _summary_lines(report: dict) -> list[str]:
    source, splits = report.get("source") or {}, report.get("splits") or {}
    ratios, site = _split_ratios(report), card_site(report)
    out = [f"# {site['site_name']} Q&A (`{site['dataset_name']}`), curated for fine-tuning", ""]
    if source.get("sample"):
        out += [f"> **Built from the bundled generated SAMPLE, not real {site['site_name']} posts.** "
                "The text is synthetic test data; do not train on it.", ""]
    n_synth = _synthetic_rows(report)
    split_text = " / ".join(f"{splits.get(s, 0):,} {SPLIT_NAMES[s]}" for s in SPLIT_NAMES)
    return out + [
        f"**{sum(splits.values()):,}** question–answer pairs ({split_text})"
        + (f", of which **{n_synth:,}** are synthetic" if n_synth else "")
        + ", curated by lawqa-curate (a re-creation of NVIDIA NeMo Curator's `peft-curation-with-sdg` tutorial): "
        f"HTML {_text_format_phrase(report)}, filtered by length and score, deduplicated, split "
        + (f"{ratios} " if ratios else "") + "(train/val/test) by family "
        "so that no question (or its near-duplicates and synthetic descendants) is in two splits.", ""]


def _files_lines(splits: dict, files: dict) -> list[str]:
    out = ["## Files", "", "| split | rows | " + " | ".join(files) + " |", "|---|---|" + "---|" * len(files)]
    for split in SPLIT_NAMES:
        out.append(f"| {SPLIT_NAMES[split]} | {splits.get(split, 0):,} | "
                   + " | ".join(f"`{files[f].get(split, '')}`" for f in files) + " |")
    out += ["", "- `jsonl` (the tutorial's files): one record per line — `id`, `source_id`, `title`, `question`, "
            "`answer`, `question_score`, `answer_score`, `tags`, `link`, `license`, `file_name`, `split`, "
            "`synthetic`, `round`, `reward`."]
    out += [f"- `{fmt.name}`: `{fmt.schema}` — {fmt.used_by}." for fmt in FORMATS.values() if fmt.name in files]
    return out + [""]


def _load_lines(files: dict) -> list[str]:
    data_files = ", ".join(f'"{SPLIT_NAMES[s]}": "{files["jsonl"][s]}"' for s in SPLIT_NAMES if s in files["jsonl"])
    out = ["## How to load", "", "```python", "from datasets import load_dataset", "",
           f'ds = load_dataset("json", data_files={{{data_files}}})']
    for fmt in FORMATS:
        if fmt in files:
            fmt_files = ", ".join(f'"{SPLIT_NAMES[s]}": "{files[fmt][s]}"' for s in SPLIT_NAMES)
            out.append(f'{fmt} = load_dataset("json", data_files={{{fmt_files}}})')
    return out + ["# once pushed to the Hub: load_dataset(\"<user>/<repo>\", \"chat\")  (configs: "
                  + ", ".join({"jsonl": "default"}.get(f, f) for f in files) + ")", "```", ""]


def _source_lines(report: dict) -> list[str]:
    """Where the rows come from (the site, the input file, the period of its posts), their licences, attribution."""
    source, outputs = report.get("source") or {}, report.get("outputs") or {}
    site, period = card_site(report), outputs.get("period") or {}
    row_license = ("each row's `license` is its question's, as the dump gives it" if site.get("dataset") else
                   "each row's `license` names its posts' licence (both, labelled, when its question and answer "
                   "differ)")
    about = _origin_sentence(source, site) + " " + LICENSE_TEXT.format(row_license)
    out = ["## Source and license", "", about, "",
           # the file's name, never its path: the card is published, the user's folders are not
           f"- site: {site['site_name']} ({site['site_url']})",
           f"- input: `{Path(str(source.get('path', ''))).name}` ({source.get('origin', '?')}"
           + (", **sample**" if source.get("sample") else "") + ")"
           + (f": {', '.join(source['files'])}" if source.get("files") else ""),
           f"- url: {source.get('url') or '—'}",
           f"- sha256: `{source.get('sha256', '')}`"]
    if period:
        out.append(f"- posts from {str(period.get('first'))[:10]} to {str(period.get('last'))[:10]} (UTC; the "
                   "earliest question and the latest answer of the rows written)")
    out += _license_lines(outputs, report.get("dump") or {})
    if source.get("download_error"):
        out.append(f"- download error (why the sample was used): {source['download_error']}")
    return out + [""]


LICENSE_TEXT = ("Stack Exchange content is user-contributed and licensed under CC BY-SA (2.5, 3.0 or 4.0, by the "
                "date of the post: https://stackoverflow.com/help/licensing); {}, and this derived dataset is shared "
                "under **CC BY-SA 4.0** (2.5 and 3.0 allow adaptations under a later version with the same licence "
                "elements). Attribution: every real row keeps the `link` to its question (which names its authors) "
                "and its `license`; synthetic rows keep the `source_id` of the row they were generated from.")


def _origin_sentence(source: dict, site: dict) -> str:
    """The input as a sentence: the Hugging Face dump (or the generated sample in its schema), or a site's dump."""
    site_link = f"[{site['site_name']}]({site['site_url']})"
    dataset = site.get("dataset")
    if dataset:
        hf = f"[{dataset}](https://huggingface.co/datasets/{dataset})"
        if source.get("sample"):
            return (f"A generated sample in the schema of the {hf} dump of {site_link} (not real posts), bundled "
                    "with lawqa-curate for offline runs.")
        return f"Questions and answers from {site_link}, as published in the {hf} dump."
    if source.get("sample"):
        return (f"A generated sample in the layout of {site_link}'s data dump (not real posts), bundled with "
                "lawqa-curate for offline runs.")
    return f"Questions and answers from {site_link}, read from the site's Stack Exchange data dump."


def _license_lines(outputs: dict, dump: dict) -> list[str]:
    """Rows per licence and how many inferred from the post's date (the dump had no ContentLicense for them)."""
    licenses, inferred = outputs.get("licenses") or {}, outputs.get("licenses_inferred") or {}
    if not licenses:
        return []
    out = ["- rows per license: " + ", ".join(
        f"{k or '(none)'}: {v:,}" + (f" ({inferred[k]:,} inferred)" if inferred.get(k) else "")
        for k, v in licenses.items())]
    if sum(inferred.values()):
        out.append(f"- licence inferred for {sum(inferred.values()):,} of {sum(licenses.values()):,} rows: the dump "
                   "gives their posts no ContentLicense, so each post takes Stack Exchange's licence for its date — "
                   + (dump.get("license_rule") or "CC BY-SA 2.5 / 3.0 / 4.0 by date"))
    return out


def _stage_lines(report: dict, images: dict[str, str]) -> list[str]:
    out = ["## What happened to the data", ""]
    if images.get("funnel"):
        out += [f"![rows after each stage]({images['funnel']})", ""]
    out += ["| stage | rows in | rows out | dropped | seconds | drops by reason |", "|---|---:|---:|---:|---:|---|"]
    for s in report.get("stages") or []:
        reasons = ", ".join(f"{k}: {v:,}" for k, v in s["dropped"].items()) or "—"
        out.append(f"| {s['name']} | {s['rows_in']:,} | {s['rows_out']:,} | {sum(s['dropped'].values()):,} | "
                   f"{s['seconds']:.2f} | {reasons} |")
    out.append("")
    args = (report.get("run") or {}).get("args") or {}
    if args:
        keys = ("min_words", "max_words", "min_question_score", "min_answer_score")
        settings = {k: args[k] for k in keys if k in args}
        settings.update({"split_ratios": _split_ratios(report), "seed": args.get("seed")})
        out += ["### Filtering", "", "Thresholds: " + ", ".join(f"`{k}` = {v}" for k, v in settings.items()
                                                                if v is not None)
                + ". Word counts are whitespace-separated words of the cleaned text.", ""]
    if images.get("words"):
        out += [f"![word counts before and after filtering]({images['words']})", ""]
    return out


def _leak_lines(section: dict) -> list[str]:
    limits = section.get("thresholds") or {}
    return [f"**{section['total']:,}** pairs of rows in different splits at or above the leak thresholds "
            f"(exact copies: {section.get('exact_pairs', 0):,}, Jaccard >= {limits.get('jaccard')}: "
            f"{section.get('jaccard_pairs', 0):,}, cosine >= {limits.get('cosine')}: "
            f"{section.get('cosine_pairs', 0):,}) over {section.get('rows', 0):,} rows"
            + (" — none: no question, near-duplicate or synthetic variant crosses a split."
               if section["total"] == 0 else "."), ""]


def _section_lines(report: dict, images: dict[str, str]) -> list[str]:
    """Dedup, synthetic data, leak check and audit: a summary each, then every number folded away."""
    by_round = ((report.get("outputs") or {}).get("synthetic") or {}).get("by_round") or {}
    summaries = {"dump": lambda sec: dump_summary(sec) + [""],
                 "dedup": lambda sec: dedup_summary(sec) + [""],
                 "sdg": lambda sec: sdg_summary(sec, by_round) + [""]
                 + ([f"![reward scores of synthetic pairs]({images['rewards']})", ""] if images.get("rewards") else []),
                 "leaks": lambda sec: _leak_lines(sec) if "total" in sec else [],
                 "decontamination": lambda sec: decontam_summary(sec) + [""],
                 "audit": lambda sec: audit_summary(sec) + [""]}
    out: list[str] = []
    for key, title in (("dump", "Stack Exchange data dump"), ("dedup", "Deduplication"),
                       ("decontamination", "Decontamination against evaluation sets"),
                       ("sdg", "Synthetic data"), ("leaks", "Leak check across splits"), ("audit", "Audit")):
        section = report.get(key)
        if not section:
            continue
        out += [f"### {title}", ""]
        if isinstance(section, dict):
            out += summaries[key](section)
        if key == "audit" and not isinstance(section.get("checks"), dict):
            out += render_mapping(section) + [""]
        elif key != "audit":
            out += ["<details><summary>all numbers</summary>", ""] + render_mapping(section) + ["", "</details>", ""]
    return out


def _reproduce_lines(report: dict) -> list[str]:
    run = report.get("run") or {}
    out = ["## Reproduce", ""]
    if run.get("command"):
        out += ["```", " ".join(_shell_quote(t) for t in run["command"]), "```", ""]
    if run.get("seed") is not None:
        out.append(f"- seed: {run['seed']}")
    if run.get("versions"):
        out.append("- versions: " + ", ".join(f"{k} {v}" for k, v in run["versions"].items()))
    return out + ["- the full accounting is in `report.json` beside this card.", ""]


def audit_summary(audit: dict) -> list[str]:
    """The independent audit's verdict and one table row per check."""
    out = [f"**Verdict: {str(audit.get('verdict', '?')).upper()}**"
           + (f" — {audit['error']}" if audit.get("error") else "")
           + (" (an independent re-check of the written files: leaks, lineage, ids, filters, accounting)"
              if audit.get("checks") else "")]
    checks = audit.get("checks")
    if isinstance(checks, dict) and checks:
        out += ["", "| check | status | count | detail |", "|---|---|---:|---|"]
        out += [f"| {name} | {c.get('status', '')} | {_cell(c.get('count', ''))} | {_cell(c.get('detail', ''))} |"
                for name, c in checks.items() if isinstance(c, dict)]
    return out


def dedup_summary(dedup: dict) -> list[str]:
    """Rows removed by kind, the semantic model and threshold with this run's margin, and the family sizes."""
    kinds = [f"{kind}: {dedup[kind].get('removed', 0):,}" for kind in ("exact", "fuzzy", "semantic")
             if isinstance(dedup.get(kind), dict)]
    config = dedup.get("config") if isinstance(dedup.get("config"), dict) else {}
    ran = [k for k in ("exact", "fuzzy", "semantic") if config.get(k)]
    lines = []
    if kinds:
        lines.append("Rows removed by kind — " + ", ".join(kinds)
                     + (f" (kinds run: {', '.join(ran) or 'none'})" if config else "") + ".")
    if config:
        lines.append(f"Fuzzy: MinHash Jaccard >= {config.get('fuzzy_jaccard')}. Families at Jaccard >= "
                     f"{config.get('leak_jaccard')}, cosine >= {config.get('leak_cos', config.get('leak_cosine'))}.")
    lines += _semantic_model_lines(dedup.get("model"))
    out = [" ".join(lines)] if lines else []
    return out + _family_lines(dedup.get("families"))


def dump_summary(dump: dict) -> list[str]:
    """A site's dump: what was read, what was skipped, and its duplicate links."""
    links = dump.get("duplicate_links") if isinstance(dump.get("duplicate_links"), dict) else {}
    caught = links.get("caught_by_dedup") if isinstance(links.get("caught_by_dedup"), dict) else {}
    skipped = ", ".join(f"{k}: {v:,}" for k, v in (dump.get("skipped") or {}).items()) or "none"
    out = [f"`{dump.get('site')}`: {dump.get('posts', 0):,} posts, {dump.get('questions', 0):,} questions, "
           f"{dump.get('answers', 0):,} answers; answer kept: {dump.get('answer')}; other rows skipped — {skipped}."]
    if links:
        out.append(f"Questions closed as duplicates (PostLinks, LinkTypeId 3): {links.get('seen', 0):,} links, "
                   f"{links.get('pairs', 0):,} with both questions in the data, each pair kept in one split family"
                   + (f"; dedup also removed one side of {caught.get('caught', 0):,} of them "
                      f"({', '.join(f'{k}: {v:,}' for k, v in (caught.get('by_kind') or {}).items()) or 'none'})"
                      if caught else "") + ".")
    return [" ".join(out)]


def _semantic_model_lines(model) -> list[str]:
    if not isinstance(model, dict):
        return []
    line = f"Semantic: `{model.get('name')}`, cosine >= {model.get('threshold')}"
    if model.get("measured"):
        line += f" ({model['measured']})"
    nearest = model.get("nearest_nonduplicate_this_run") or {}
    if nearest.get("max") is not None:
        line += (f". Nearest non-duplicate in this run: median {nearest.get('median')}, max {nearest.get('max')} "
                 f"(margin to the threshold {nearest.get('margin')})")
    return [line + "."]


def _family_lines(families) -> list[str]:
    """The family-size distribution of the rows kept: a split moves whole families, so giants skew it."""
    if not isinstance(families, dict) or "count" not in families:
        return []
    kept = families.get("kept_rows") if isinstance(families.get("kept_rows"), dict) else {}
    by_size = kept.get("by_size") or families.get("by_size") or {}
    out = ["", f"Split families (a row, its near-duplicates, its synthetic descendants and the questions closed as "
                f"its duplicates): **{families['count']:,}**, the largest holding "
                f"{int(kept.get('largest', families.get('largest', 0)) or 0):,} rows"
           + (f"; {families['links_cut']:,} weak near-duplicate links cut to keep families small"
              if families.get("links_cut") else "") + "."]
    if by_size:
        out += ["", "| family size | " + " | ".join(by_size) + " |", "|---|" + "---:|" * len(by_size),
                "| families | " + " | ".join(f"{n:,}" for n in by_size.values()) + " |"]
    return out


def sdg_summary(sdg: dict, by_round: dict) -> list[str]:
    """Synthetic rows by round, models, reward thresholds, stop reason and LLM accounting."""
    if not sdg.get("ran"):
        return [f"Not run: {sdg.get('skipped') or 'no endpoint configured'}."]
    config = sdg.get("config") if isinstance(sdg.get("config"), dict) else {}
    reward = sdg.get("reward") if isinstance(sdg.get("reward"), dict) else {}
    thresholds = ", ".join(f"{k} >= {v:g}" if isinstance(v, (int, float)) else f"{k} >= {v}"
                           for k, v in (reward.get("thresholds") or {}).items()) or "none"
    rounds = sdg.get("rounds") or []
    lines = [f"- synthetic rows added: **{int(sdg.get('added') or 0):,}** in {len(rounds)} round(s); "
             f"stop reason: **{sdg.get('stop_reason')}**"
             + (f" — {sdg['stop_detail']}" if sdg.get("stop_detail") else "")
             + (f" (target {sdg['target_size']:,} train rows)" if sdg.get("target_size") else ""),
             "- rows in the dataset by round: "
             + (", ".join(f"round {r}: {n:,}" for r, n in by_round.items()) or "none"),
             f"- generation model: `{config.get('model')}` at {config.get('endpoint')}",
             f"- reward: {reward.get('mode', '?')}" + (f" with `{reward['model']}`" if reward.get("model") else "")
             + f"; kept pairs with {thresholds}"]
    chosen = sdg.get("structured_output") if isinstance(sdg.get("structured_output"), dict) else {}
    if chosen:
        lines.append(f"- structured output: **{chosen.get('mode')}** ({chosen.get('why')})")
    llm = sdg.get("llm") if isinstance(sdg.get("llm"), dict) else {}
    if llm:
        lines.append(f"- LLM: {llm.get('requests', 0):,} requests, {llm.get('cache_hits', 0):,} cache hits, "
                     f"{llm.get('retries', 0):,} retries, {llm.get('total_tokens', 0):,} tokens"
                     + (", failures: " + ", ".join(f"{k}: {v:,}" for k, v in llm["failures"].items())
                        if llm.get("failures") else ""))
    lines += batch_summary(sdg.get("batch"))
    if sdg.get("rejections"):
        lines.append("- rejected answers and items by reason: "
                     + ", ".join(f"{k}: {v:,}" for k, v in sdg["rejections"].items()))
    if sdg.get("failures"):
        lines.append("- failed prompts by reason: " + ", ".join(f"{k}: {v:,}" for k, v in sdg["failures"].items()))
    lines.append(f"- API key from: {sdg.get('key_source') or 'none (local endpoint or no key)'}")
    return lines


def batch_summary(batch) -> list[str]:
    """The --batch line of the synthetic-data section: batches, requests, waves, and the price basis."""
    if not isinstance(batch, dict):
        return []
    batches = batch.get("batches") or []
    statuses: dict[str, int] = {}
    for b in batches:
        statuses[str(b.get("status"))] = statuses.get(str(b.get("status")), 0) + 1
    return [f"- Batch API (`--batch`): {len(batches):,} batch(es) in {len(batch.get('waves') or []):,} wave(s), "
            f"{int(batch.get('requests') or 0):,} requests ({int(batch.get('answered') or 0):,} answered, "
            f"{int(batch.get('failed') or 0):,} not); "
            + ", ".join(f"{s}: {n:,}" for s, n in sorted(statuses.items()))
            + "; billed at the provider's batch price (batch ids, times and counts in report.json)"]


def _shell_quote(token: str) -> str:
    import shlex

    return shlex.quote(str(token))


def draw_pictures(report: dict, accepted_rewards: list[dict] | None = None) -> dict[str, tuple[str, bytes]]:
    """The card's PNGs: {picture: (file name, PNG bytes)} for the funnel, the word counts and the rewards where there
    are any. Pure: they depend on the row stages, word counts and SDG section only, so they can be drawn anywhere
    (a Dask worker, while the audit runs).

    `accepted_rewards`: reward dicts of the synthetic rows written (for the reward plot when the "sdg"
    section does not carry the scores itself)."""
    pictures: dict[str, tuple[str, bytes]] = {}
    stages = report.get("stages") or []
    if stages:
        pictures["funnel"] = (FUNNEL_PNG, plot_funnel(stages))
    word_counts = report.get("word_counts")
    args = (report.get("run") or {}).get("args") or {}
    if word_counts:
        pictures["words"] = (WORDS_PNG, plot_word_counts(word_counts, args.get("min_words"), args.get("max_words")))
    sdg = report.get("sdg")
    if isinstance(sdg, dict):
        accepted, rejected, threshold, attribute = reward_scores(sdg, accepted_rewards)
        drawn = plot_rewards(accepted, rejected, threshold, attribute)
        if drawn:
            pictures["rewards"] = (REWARDS_PNG, drawn)
    return pictures


def save_pictures(final_dir: Path, pictures: dict[str, tuple[str, bytes]]) -> dict[str, str]:
    """Write `draw_pictures`' PNGs into `final_dir` atomically and remove a picture an earlier run left that this
    one did not draw; returns {picture: file name}."""
    final_dir = Path(final_dir)
    for name, data in pictures.values():
        with atomic_write(final_dir / name, "wb") as f:
            f.write(data)
    for key, stale in (("words", WORDS_PNG), ("rewards", REWARDS_PNG)):
        if key not in pictures and (final_dir / stale).exists():
            (final_dir / stale).unlink()  # a picture from an earlier run would not match this card
    return {key: name for key, (name, _) in pictures.items()}


def write_card(final_dir: Path, report: dict, accepted_rewards: list[dict] | None = None,
               pictures: dict[str, tuple[str, bytes]] | None = None) -> dict[str, str]:
    """Write the PNGs (`pictures` from `draw_pictures`; drawn here when None) and README.md into `final_dir`;
    returns {"card": name, picture: name, ...}."""
    final_dir = Path(final_dir)
    if pictures is None:
        pictures = draw_pictures(report, accepted_rewards)
    images = save_pictures(final_dir, pictures)
    with atomic_write(final_dir / "README.md", "w") as f:
        f.write(render_card(report, images))
    return {"card": "README.md", **images}
