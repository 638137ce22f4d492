"""Dataset card, plots and the run report: numbers from the report, valid deterministic PNGs, no secrets."""
from __future__ import annotations

import argparse
import json
import re

import pandas as pd
import pytest
import yaml
from PIL import Image

import card
from report import (REDACTED, RunReport, redact, run_info, scrub_args, scrub_argv, secret_values,
                    section_brief)

CANARY = "sk-canary-0123456789abcdef"


def make_report(with_sdg: bool = True) -> RunReport:
    r = RunReport()
    r.source = {"path": "data/sample/dump.json", "origin": "file", "url": None, "sample": True, "sha256": "ab" * 32}
    r.add_stage("convert", 1000, 950, {"no_answer": 40, "malformed:score": 10}, 1.5)
    r.add_stage("clean", 950, 950, {}, 2.25)
    r.add_stage("filter", 950, 600, {"question_too_short": 200, "answer_too_long": 150}, 0.5)
    r.add_stage("dedup", 600, 580, {"exact": 12, "fuzzy": 8}, 3.0)
    r.add_stage("split", 580, 580, {}, 0.1)
    r.add_stage("write", 580, 580, {}, 0.2)
    r.splits = {"train": 464, "val": 58, "test": 58}
    r.sections["word_counts"] = {"bin_width": card.BIN_WIDTH, "last_bin_from": card.BIN_LIMIT,
                                 "before": {"question": [5] * card.N_BINS, "answer": [7] * card.N_BINS},
                                 "after": {"question": [0, 0, 3, 4] + [2] * (card.N_BINS - 4),
                                           "answer": [0, 0, 5] + [1] * (card.N_BINS - 3)}}
    r.sections["dedup"] = {"config": {"exact": True, "fuzzy": True, "semantic": False, "fuzzy_jaccard": 0.8},
                           "exact": {"removed": 12}, "fuzzy": {"removed": 8}, "semantic": {"removed": 0},
                           "families": {"count": 570}, "removed_total": 20}
    if with_sdg:
        r.sections["sdg"] = {
            "ran": True, "config": {"model": "gen-model", "endpoint": "http://127.0.0.1:1/v1", "n_variants": 3},
            "target_size": 600, "rounds": [{"round": 1, "sources": 10, "accepted": 20, "dedup": {"removed": 1}},
                                           {"round": 2, "sources": 5, "accepted": 6}],
            "reward": {"mode": "reward", "model": "reward-model", "thresholds": {"helpfulness": 2.0}},
            "stop_reason": "target_reached", "added": 26, "failures": {"wrong_count": 2},
            "llm": {"requests": 90, "cache_hits": 3, "retries": 1, "total_tokens": 12345,
                    "failures": {"http_500": 1}},
            "reward_scores": {"accepted": [2.5, 3.0, 3.5, 2.1], "rejected": [0.5, 1.9, 1.0]}}
        r.sections["audit"] = {"verdict": "pass", "leaks": 0, "failed": [],
                               "checks": {"exact_across_splits": {"status": "PASS", "count": 0, "detail": "none"},
                                          "near_dup_cosine": {"status": "SKIP", "count": 0, "detail": "off"}}}
    ns = argparse.Namespace(input="dump.json", api_key=CANARY, seed=7, min_words=50, max_words=500,
                            max_tokens=1000, split_ratios="80/10/10")
    ns.namespace, ns.argv = vars(ns).copy(), ["--input", "dump.json", "--api-key", CANARY, "--seed", "7"]
    r.set_run(ns)  # a RunConfig carries the parsed flags as `namespace` and the command line as `argv`
    r.sections["outputs"] = {"dir": "out/final",
                             "files": {"jsonl": {s: f"law-qa-{s}.jsonl" for s in ("train", "val", "test")},
                                       "chat": {s: f"chat/{s}.jsonl" for s in ("train", "val", "test")}},
                             "licenses": {"CC BY-SA 4.0": 580}, "synthetic": {"rows": 26 if with_sdg else 0,
                                                                                  "by_round": {"1": 20, "2": 6}
                                                                                  if with_sdg else {}}}
    return r


def front_matter(text: str) -> dict:
    assert text.startswith("---\n")
    return yaml.safe_load(text.split("---\n")[1])


def test_card_has_the_hf_yaml_header(tmp_path):
    report = make_report().to_dict()
    card.write_card(tmp_path, report)
    header = front_matter((tmp_path / "README.md").read_text())
    assert header["license"] == "cc-by-sa-4.0"
    assert {"question-answering", "text-generation"} <= set(header["task_categories"])
    assert header["size_categories"] == ["n<1K"]
    configs = {c["config_name"]: c["data_files"] for c in header["configs"]}
    assert set(configs) == {"default", "chat"}
    assert configs["default"] == [{"split": "train", "path": "law-qa-train.jsonl"},
                                  {"split": "validation", "path": "law-qa-val.jsonl"},
                                  {"split": "test", "path": "law-qa-test.jsonl"}]
    assert configs["chat"][0] == {"split": "train", "path": "chat/train.jsonl"}
    assert "synthetic" in header["tags"]


def test_card_numbers_are_the_reports(tmp_path):
    report = make_report().to_dict()
    card.write_card(tmp_path, report)
    text = (tmp_path / "README.md").read_text()
    for stage in report["stages"]:
        row = re.search(rf"^\| {stage['name']} \| ([\d,]+) \| ([\d,]+) \| ([\d,]+) \|", text, re.M)
        assert row, stage["name"]
        assert [int(x.replace(",", "")) for x in row.groups()] == [
            stage["rows_in"], stage["rows_out"], sum(stage["dropped"].values())]
        for reason, n in stage["dropped"].items():
            assert f"{reason}: {n:,}" in text
    for split, name in (("train", "train"), ("val", "validation"), ("test", "test")):
        assert re.search(rf"^\| {name} \| {report['splits'][split]:,} \|", text, re.M)
    assert f"**{sum(report['splits'].values()):,}** question–answer pairs" in text
    assert "stop reason: **target_reached**" in text and "round 1: 20, round 2: 6" in text
    assert "helpfulness >= 2" in text and "`gen-model`" in text and "`reward-model`" in text
    assert "exact: 12, fuzzy: 8, semantic: 0" in text and "570" in text
    assert "**Verdict: PASS**" in text and "| exact_across_splits | PASS | 0 | none |" in text
    assert "SAMPLE" in text and report["source"]["sha256"] in text
    assert "CC BY-SA 4.0: 580" in text and "load_dataset(" in text


def test_plots_exist_are_valid_and_deterministic(tmp_path):
    report = make_report().to_dict()
    images = card.write_card(tmp_path / "a", report)
    card.write_card(tmp_path / "b", report)
    assert set(images) == {"card", "funnel", "words", "rewards"}
    for key in ("funnel", "words", "rewards"):
        a, b = tmp_path / "a" / images[key], tmp_path / "b" / images[key]
        with Image.open(a) as img:
            img.verify()
        with Image.open(a) as img:
            assert img.format == "PNG" and img.size[0] > 300 and img.size[1] > 150
        assert a.read_bytes() == b.read_bytes(), key
        assert f"]({images[key]})" in (tmp_path / "a" / "README.md").read_text()


def test_no_reward_plot_without_sdg_and_stale_plot_removed(tmp_path):
    card.write_card(tmp_path, make_report().to_dict())
    assert (tmp_path / card.REWARDS_PNG).exists()
    images = card.write_card(tmp_path, make_report(with_sdg=False).to_dict())
    assert "rewards" not in images and not (tmp_path / card.REWARDS_PNG).exists()
    text = (tmp_path / "README.md").read_text()
    assert "Synthetic data" not in text and "synthetic" not in front_matter(text)["tags"]


def test_reward_plot_from_written_rows_when_sdg_has_no_scores(tmp_path):
    report = make_report().to_dict()
    del report["sdg"]["reward_scores"]
    assert card.reward_scores(report["sdg"], [{"helpfulness": 3.2}, {"helpfulness": 2.4}]) == (
        [3.2, 2.4], [], 2.0, "helpfulness")
    images = card.write_card(tmp_path, report, accepted_rewards=[{"helpfulness": 3.2}, {"helpfulness": 2.4}])
    assert "rewards" in images
    assert card.plot_rewards([], []) is None


def test_word_count_histograms_per_partition():
    df = pd.DataFrame({"question": ["a " * 10, "b " * 45, "c " * 2000, ""],
                       "answer": ["x " * 60, "y " * 19, "z " * 20, "w"],
                       "drop_reason": ["", "question_too_short", "", "answer_too_short"]})
    hist = card.partition_word_histograms(df)
    assert hist.shape == (2, 2, card.N_BINS)
    q_before, a_before = hist[0]
    assert q_before[0] == 2 and q_before[2] == 1 and q_before[-1] == 1  # 10 and 0 words; 45; 2000 -> last bin
    assert a_before[3] == 1 and a_before[0] == 2 and a_before[1] == 1
    q_after, a_after = hist[1]
    assert q_after.sum() == 2 and q_after[0] == 1 and q_after[-1] == 1
    assert a_after[3] == 1 and a_after[1] == 1 and a_after.sum() == 2


def test_word_count_section_is_the_same_for_any_partitioning():
    df = pd.DataFrame({"question": [f"{'w ' * (i * 7)}" for i in range(100)],
                       "answer": [f"{'v ' * (i * 3)}" for i in range(100)],
                       "drop_reason": ["" if i % 3 else "x" for i in range(100)]})
    whole = card.word_count_section([card.partition_word_histograms(df)])
    parts = card.word_count_section([card.partition_word_histograms(df.iloc[i:i + 15]) for i in range(0, 100, 15)])
    assert whole == parts
    assert sum(whole["before"]["question"]) == 100 and sum(whole["after"]["answer"]) == 66


def test_report_scrubs_secrets_everywhere(tmp_path, monkeypatch):
    monkeypatch.setenv("NVIDIA_API_KEY", CANARY + "-env")
    r = make_report()
    r.sections["sdg"]["note"] = f"an error mentioning {CANARY} and {CANARY}-env"
    r.sections["sdg"]["endpoint_url"] = "https://user:pw@example.com/v1"
    r.write(tmp_path / "report.json")
    card.write_card(tmp_path, r.to_dict())
    for name in ("report.json", "README.md"):
        text = (tmp_path / name).read_text()
        assert CANARY not in text, name
        assert "user:pw" not in text
    data = json.loads((tmp_path / "report.json").read_text())
    assert data["run"]["args"]["api_key"] == REDACTED
    assert data["run"]["args"]["max_tokens"] == 1000  # a number is not a secret
    assert data["run"]["command"] == ["python", "main.py", "--input", "dump.json", "--api-key", REDACTED,
                                      "--seed", "7"]
    assert data["run"]["seed"] == 7
    assert {"python", "pandas", "dask", "matplotlib"} <= set(data["run"]["versions"])
    assert CANARY not in r.table()


def test_only_credential_variables_are_treated_as_secrets():
    env = {"NVIDIA_API_KEY": "nvapi-0123456789", "HF_TOKEN": "hf_abcdefghij", "TOKENIZERS_PARALLELISM": "false-ish",
           "AWS_SECRET_ACCESS_KEY": "abcdefghijkl", "PATH": "/usr/bin:/bin", "SHORT_KEY": "abc"}
    assert secret_values(None, environ=env) == {"nvapi-0123456789", "hf_abcdefghij", "abcdefghijkl"}


def test_scrub_helpers():
    ns = argparse.Namespace(api_key=CANARY, hf_token=None, max_tokens=5, client_secret="s3cr3t-value-1", url="x")
    assert scrub_args(ns) == {"api_key": REDACTED, "client_secret": REDACTED, "hf_token": None, "max_tokens": 5,
                              "url": "x"}
    secrets = secret_values(ns, environ={})
    assert secrets == {CANARY, "s3cr3t-value-1"}
    assert scrub_argv(["--api-key=" + CANARY, "--max-tokens", "5", "--api-k", CANARY, "--x", "y"], secrets) == [
        f"--api-key={REDACTED}", "--max-tokens", "5", "--api-k", REDACTED, "--x", "y"]
    assert redact({"a": [f"pre {CANARY} post"], "api_key": "zzz", "prompt_tokens": 3}, secrets) == {
        "a": [f"pre {REDACTED} post"], "api_key": REDACTED, "prompt_tokens": 3}
    info = run_info(ns, ["--api-key", CANARY])
    assert CANARY not in json.dumps(info)


def test_console_table_summarises_every_section():
    table = make_report().table()
    for needle in ("convert", "filter", "question_too_short=200", "total", "splits: train=464, val=58, test=58",
                   "formats: jsonl, chat", "dedup: exact=12, fuzzy=8, families=570",
                   "sdg: added=26, rounds=2, stop=target_reached, requests=90, cache_hits=3",
                   "audit: PASS, leaks=0, checks: PASS=1 SKIP=1", "seed: 7", "BUNDLED SAMPLE"):
        assert needle in table, needle
    assert section_brief("sdg", {"ran": False, "skipped": "no key"}) == "skipped (no key)"


def test_render_mapping_handles_nested_sections():
    lines = card.render_mapping({"a": 1, "b": {"c": {"d": 2}}, "rows": [{"x": 1, "y": {"z": 2}}, {"x": 3}],
                                 "scores": list(range(20)), "by": {"k": [1, 2]}})
    text = "\n".join(lines)
    assert "- **a**: 1" in text and "| x | y |" in text and "20 values, min 0, max 19" in text
    assert "k: 2 values" in text


@pytest.mark.parametrize("n,expected", [(0, "n<1K"), (999, "n<1K"), (1000, "1K<n<10K"), (24_000, "10K<n<100K"),
                                        (250_000, "100K<n<1M")])
def test_size_category(n, expected):
    assert card.size_category(n) == expected


def test_card_takes_the_split_ratios_from_the_resolved_config():
    """A run that left --split-ratios at its default has no ratio among its flags: the card reads the resolved
    config, and never prints a None."""
    report = make_report().to_dict()
    report["run"] = {"args": {"min_words": 50, "split_ratios": None, "seed": 7},
                     "config": {"split": {"ratios_text": "70/20/10"}}}
    text = card.render_card(report, {})
    assert "split 70/20/10 (train/val/test)" in text and "`split_ratios` = 70/20/10" in text
    assert "None" not in text.split("### Filtering", 1)[1].split("\n\n", 2)[1]


@pytest.mark.parametrize("licenses, expected", [
    ({"CC BY-SA 3.0": 153}, "cc-by-sa-3.0"),
    ({"CC BY-SA 4.0": 10, "CC BY-SA 3.0 (question), CC BY-SA 4.0 (answer)": 2, "CC BY-SA 3.0": 5},
     ["cc-by-sa-3.0", "cc-by-sa-4.0"]),
    ({"CC BY-SA 2.5": 1, "CC BY-SA 3.0": 1}, ["cc-by-sa-3.0", "other"]),
])
def test_card_yaml_licence_is_the_rows(tmp_path, licenses, expected):
    report = make_report().to_dict()
    report.setdefault("outputs", {})["licenses"] = licenses
    card.write_card(tmp_path, report)
    assert front_matter((tmp_path / "README.md").read_text())["license"] == expected
