"""synthetic_gen.py: prompts, parsers, reward shapes, gating, and the SDG loop against tests/llm_server.py."""
from __future__ import annotations

import argparse
import json
import os
import random
import sys
from pathlib import Path

import pandas as pd
import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import llm  # noqa: E402
import synthetic_gen as sg  # noqa: E402
from llm_server import completed_twice, parse_generation_prompt, read_log  # noqa: E402
from records import COLUMNS, WORK_COLUMNS, conform, record_id  # noqa: E402

pytestmark = pytest.mark.timeout(60)

# ---- synthetic test corpus (generated text, never real Law.SE text) ------------------------------------------------
_SUBJECTS = ["my landlord", "the employer", "a neighbour", "the city council", "my former partner", "the seller",
             "a contractor", "the school", "an insurance company", "the police"]
_ACTS = ["kept the security deposit", "recorded a phone call", "refused to return my tools",
         "published my photograph", "cancelled the contract", "entered the property without notice",
         "withheld the final salary", "changed the locks", "sent debt collection letters", "copied my software"]
_FILLER = ("the agreement was signed two years ago and nothing in it mentions this situation, so I am unsure "
           "which rules apply here and whether a court would look at the written terms or at what we said "
           "before signing, because several emails suggest a different understanding of the obligations").split()
_ANS = ("in most jurisdictions the answer depends on the written terms, the conduct of both parties and any "
        "statute that overrides the contract; a court will usually read the agreement as a whole, look for "
        "implied terms, and consider whether notice was reasonable; keep copies of every letter, write down "
        "dates, and consider a short letter before action that sets out what you want and by when, because "
        "small claims procedures often expect that step before a claim is filed").split()


def make_records(n: int, splits=("train",) * 8 + ("val", "test")) -> pd.DataFrame:
    rows = []
    for i in range(n):
        rng = random.Random(i)
        subj, act = _SUBJECTS[i % 10], _ACTS[(i // 10) % 10]
        q = f"Case {i}: {subj} {act}. " + " ".join(rng.sample(_FILLER, len(_FILLER) - rng.randrange(5))) + \
            f". Is this allowed in situation {i}?"
        a = f"Regarding case {i} where {subj} {act}: " + " ".join(_ANS[: len(_ANS) - rng.randrange(8)]) + "."
        qid = 1000 + i
        rows.append({"id": record_id(qid), "source_id": record_id(qid), "title": f"Can {subj} lawfully say that they {act} in case {i}?",
                     "question": q, "answer": a, "question_score": 3, "answer_score": 5, "tags": "contract-law",
                     "link": f"https://law.stackexchange.com/questions/{qid}/x", "license": "CC BY-SA 4.0",
                     "file_name": "law-stackexchange-questions-answers.json", "split": splits[i % len(splits)],
                     "synthetic": False, "round": 0, "reward": ""})
    return conform(pd.DataFrame(rows, columns=COLUMNS))


def curate(df: pd.DataFrame):
    """A small real clean/filter stage: whitespace normalisation + 50-500 words on question and answer."""
    df = df.copy()
    for c in ("title", "question", "answer"):
        df[c] = df[c].str.replace(r"\s+", " ", regex=True).str.strip()
    drops = {}
    keep = pd.Series(True, index=df.index)
    for c in ("question", "answer"):
        n = df[c].str.split().str.len()
        for reason, bad in ((f"{c}_too_short", n < 50), (f"{c}_too_long", n > 500)):
            bad = bad & keep
            if bad.any():
                drops[reason] = int(bad.sum())
            keep &= ~bad
    return df[keep], drops


def dedup_against(new: pd.DataFrame, existing: pd.DataFrame):
    """Exact dedup of question+answer text against every existing row and within the new rows."""
    key = lambda d: (d["question"].str.lower() + "\x1f" + d["answer"].str.lower())  # noqa: E731
    seen = set(key(existing))
    k = key(new)
    keep = ~k.isin(seen) & ~k.duplicated()
    return new[keep], {"exact": int((~keep).sum())}


def config(srv, tmp_path, **kw) -> sg.SdgConfig:
    kw.setdefault("cache_dir", str(tmp_path / "cache"))
    kw.setdefault("progress", False)
    kw.setdefault("model", "gen-model")
    kw.setdefault("reward_model", "test-reward")
    return sg.SdgConfig(endpoint=srv.base_url, **kw)


def fast_client(cfg, **kw) -> llm.LLMClient:
    c = llm.client_from_config(cfg)
    c.backoff_base, c.backoff_max = kw.get("backoff_base", 0.01), 0.05
    return c


def grow(records, cfg, tmp_path, client=None, name="sdg_failures.jsonl"):
    return sg.grow_train(records, cfg, curate, dedup_against, tmp_path / name, client=client)


# ---- prompts ----------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("build,word,label", [(sg.title_prompt, "titles", "QUESTION"),
                                              (sg.question_prompt, "Rewrite the question", "QUESTION"),
                                              (sg.answer_prompt, "Rewrite the answer", "ANSWER")])
def test_prompt_shape(build, word, label):
    doc = "First paragraph.\n\nSecond paragraph of the document."
    msgs = build(doc, 4, words=(50, 80))
    assert [m["role"] for m in msgs] == ["user"]
    text = msgs[0]["content"]
    # the source text under its label, then one short instruction
    assert text.startswith(f"{label}:\nFirst paragraph.\n\nSecond paragraph of the document.\n\n")
    instruction = text.rsplit("\n\n", 1)[1]
    assert word in instruction and "exactly 4" in instruction and '"* "' in instruction
    assert parse_generation_prompt(text)[1:] == (doc, 4)
    if build is sg.title_prompt:
        assert '"?"' in instruction and "words" not in instruction
    else:       # the filters' least words are in the prompt
        assert "at least 50 words" in instruction


def test_item_words_and_token_budget_follow_the_range():
    assert sg.item_words("title", "a b c", (50, 500)) is None
    assert sg.item_words("question", " ".join(["w"] * 120), (50, 500)) == (50, 120)   # capped at the source
    assert sg.item_words("answer", " ".join(["w"] * 900), (50, 500)) == (50, 500)    # capped at --max-words
    assert sg.item_words("answer", "too short", (50, 500)) == (50, 50)               # never below the least
    assert sg.item_words("answer", "x", None) is None
    # room for every full item: a long range never cuts the last one off
    assert sg.list_max_tokens("answer", 3, (50, 500)) >= 3 * 500 * 1.5
    assert sg.list_max_tokens("answer", 3, (50, 500)) > sg.list_max_tokens("answer", 3, (50, 100))
    cfg = sg.SdgConfig()
    assert cfg.item_words == (50, 500)      # the filters' default range, written once in filters.FilterConfig
    a = sg._gen_params(cfg, 0, "answer", "off", 3, (50, 100))
    b = sg._gen_params(cfg, 0, "answer", "off", 3, (50, 120))
    assert a["max_tokens"] < b["max_tokens"]    # the range is in the cache key, through the budget and prompt


def test_reward_and_judge_messages():
    assert sg.reward_messages("T?", "Q", "A") == [{"role": "user", "content": "T?\n\nQ"},
                                                  {"role": "assistant", "content": "A"}]
    j = sg.judge_prompt("T?", "Q", "A")[0]["content"]
    assert "JSON" in j and all(a in j for a in sg.ATTRIBUTES)


# ---- the list parser (the strict parser's own tests: tests/test_sdg_parse.py and the corpus) ----------------------
@pytest.mark.parametrize("text,items", [
    ("* one\n* two\n* three", ["one", "two", "three"]),
    ("Here are 3 paraphrases:\n\n1. **one**\n2. **two**\n3. **three**\n\nLet me know if you need more.",
     ["one", "two", "three"]),
    ("* one is a long item that\n  wraps onto the next line\n* two\n* three",
     ["one is a long item that wraps onto the next line", "two", "three"]),
    ("Sure!\n* **Question 1:** Is it legal?\n* \"Can he do that?\"\n* Paraphrase 3: three", ["Is it legal?",
                                                                                           "Can he do that?", "three"]),
    ("one\ntwo\nthree", ["one", "two", "three"]),
])
def test_parse_items_is_reexported(text, items):
    r = sg.parse_items(text, 3)
    assert r.ok and r.items == items and r.raw == text


# ---- reward parsing -----------------------------------------------------------------------------------------------
def _choice(**kw):
    return {"choices": [{"index": 0, "message": {"role": "assistant", "content": kw.get("content", "")},
                         "logprobs": kw.get("logprobs")}]}


def test_reward_logprobs_shape():
    data = _choice(logprobs={"content": [{"token": "helpfulness", "logprob": 3.1},
                                         {"token": "correctness", "logprob": 3.2, "top_logprobs": []}]})
    assert sg.parse_reward_response(data) == {"helpfulness": 3.1, "correctness": 3.2}


def test_reward_content_shape_and_single_score():
    data = _choice(content="helpfulness:3.1,correctness:3.2,coherence:3.6,complexity:1.8,verbosity:1.9")
    assert sg.parse_reward_response(data) == {"helpfulness": 3.1, "correctness": 3.2, "coherence": 3.6,
                                              "complexity": 1.8, "verbosity": 1.9}
    assert sg.parse_reward_response(_choice(content="reward:-3.5")) == {"reward": -3.5}


@pytest.mark.parametrize("data", [_choice(content="This answer looks helpful to me! " * 30),
                                  _choice(content=""), {"error": "nope"}, {"choices": []}])
def test_not_a_reward_model(data):
    with pytest.raises(sg.NotARewardModel) as ei:
        sg.parse_reward_response(data)
    msg = str(ei.value)
    assert msg.startswith("the reward model endpoint did not return reward scores: ")
    assert len(msg) < 400 and "\n" not in msg


def test_judge_parser():
    assert sg.parse_judge('Sure: {"helpfulness": 3, "correctness": 4, "coherence": 4, "complexity": 1, '
                          '"verbosity": 2} done')["correctness"] == 4.0
    for bad in ("no json", '{"helpfulness": 9}', "{not json}"):
        with pytest.raises(ValueError):
            sg.parse_judge(bad)


def test_thresholds():
    assert sg.parse_thresholds(None) == {"helpfulness": 2.0}
    assert sg.parse_thresholds(["helpfulness=3", "correctness=2.5"]) == {"helpfulness": 3.0, "correctness": 2.5}
    for bad in (["helpfulness"], ["=2"], ["helpfulness=nan"], ["helpfulness=high"]):
        with pytest.raises(ValueError, match="^--reward-min: "):
            sg.parse_thresholds(bad)
    assert sg.passes({"helpfulness": 2.0}, {"helpfulness": 2.0})
    assert not sg.passes({"helpfulness": 1.99}, {"helpfulness": 2.0})
    with pytest.raises(sg.RewardAttributeMissing, match="reward=0"):
        sg.passes({"reward": 1.0}, {"helpfulness": 2.0})


# ---- gating, keys & CLI ------------------------------------------------------------------------------------------
def test_gating_keys_by_host():
    none: dict = {}
    ok, why = sg.sdg_gate(sg.SdgConfig(), none)
    assert not ok and "NVIDIA_API_KEY" in why
    ok, why = sg.sdg_gate(sg.SdgConfig(endpoint=None), none)
    assert not ok and "no --synth-gen-endpoint" in why
    assert sg.sdg_gate(sg.SdgConfig(endpoint="http://localhost:8000/v1"), none)[0]
    assert sg.sdg_gate(sg.SdgConfig(endpoint="http://127.0.0.1:8000/v1"), none)[0]
    ok, why = sg.sdg_gate(sg.SdgConfig(endpoint="https://api.example.com/v1"), none)
    assert not ok and "OPENAI_API_KEY" in why
    # an OpenAI key never goes to NVIDIA, an NVIDIA key never to anyone else
    assert not sg.sdg_gate(sg.SdgConfig(), {"OPENAI_API_KEY": "sk"})[0]
    assert sg.sdg_gate(sg.SdgConfig(), {"NVIDIA_API_KEY": "nv"})[0]
    assert not sg.sdg_gate(sg.SdgConfig(endpoint="https://api.example.com/v1"), {"NVIDIA_API_KEY": "nv"})[0]
    both = {"NVIDIA_API_KEY": "nv", "OPENAI_API_KEY": "sk"}
    assert sg.resolve_key(sg.SdgConfig(), both) == ("nv", "NVIDIA_API_KEY")
    assert sg.resolve_key(sg.SdgConfig(endpoint="https://api.example.com/v1"), both) == ("sk", "OPENAI_API_KEY")
    assert sg.resolve_key(sg.SdgConfig(api_key="flag"), both) == ("flag", "--api-key")
    assert sg.resolve_key(sg.SdgConfig(endpoint="https://evil-nvidia.com.example/v1"), {"NVIDIA_API_KEY": "nv"}) \
        == (None, None)
    ok, why = sg.sdg_gate(sg.SdgConfig(endpoint="http://localhost:1/v1", ratio=0.0), none)
    assert not ok and "--synth-gen-ratio 0" in why


def sdg_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--quiet", action="store_true")
    sg.add_sdg_arguments(ap.add_argument_group("sdg"))
    return ap


def test_cli_arguments():
    args = sdg_parser().parse_args(["--synth-gen-endpoint", "http://127.0.0.1:1/v1", "--synth-gen-model", "m",
                                    "--target-size", "100", "--reward-min", "helpfulness=3", "--reward-min",
                                    "coherence=1", "--max-concurrency", "8", "--synth-n-variants", "2",
                                    "--api-key", "secret"])
    cfg = sg.sdg_config_from_args(args)
    assert cfg.endpoint == "http://127.0.0.1:1/v1" and cfg.model == "m" and cfg.target_size == 100
    assert cfg.thresholds == {"helpfulness": 3.0, "coherence": 1.0} and cfg.max_concurrency == 8
    assert cfg.n_variants == 2 and cfg.max_rounds() == 20 and "secret" not in json.dumps(cfg.public())
    defaults = sg.sdg_config_from_args(sdg_parser().parse_args([]))
    assert defaults == sg.SdgConfig(), "argparse and the dataclass disagree on a default"


@pytest.mark.parametrize("argv,flag", [
    (["--synth-gen-ratio", "2"], "--synth-gen-ratio"), (["--synth-gen-ratio", "-0.1"], "--synth-gen-ratio"),
    (["--synth-gen-ratio", "nan"], "--synth-gen-ratio"),
    (["--synth-n-variants", "0"], "--synth-n-variants"), (["--target-size", "-5"], "--target-size"),
    (["--max-concurrency", "0"], "--max-concurrency"), (["--synth-gen-rounds", "0"], "--synth-gen-rounds"),
    (["--rpm", "0"], "--rpm"), (["--max-requests", "0"], "--max-requests"), (["--max-tokens", "0"], "--max-tokens"),
    (["--patience", "0"], "--patience"), (["--api-timeout", "0"], "--api-timeout"),
    (["--reward-min", "foo"], "--reward-min"), (["--reward-min", "helpfulness="], "--reward-min"),
    (["--reward-model", ""], "--reward-model"), (["--synth-gen-endpoint", "localhost:8000"], "--synth-gen-endpoint"),
    (["--reward-mode", "judge", "--reward-min", "reward=0"], "--reward-min"),
])
def test_config_rejects_bad_values_with_one_line(argv, flag):
    with pytest.raises(ValueError) as ei:
        sg.sdg_config_from_args(sdg_parser().parse_args(argv))
    assert str(ei.value).startswith(flag + ": ") and "\n" not in str(ei.value)


def test_reward_mode_typo_is_an_argparse_error():
    with pytest.raises(SystemExit):
        sdg_parser().parse_args(["--reward-mode", "typo"])
    with pytest.raises(ValueError, match="^--reward-mode: "):
        sg.validate_sdg_config(sg.SdgConfig(reward_mode="typo"))


def test_ratio_zero_disables_and_one_is_allowed():
    cfg = sg.sdg_config_from_args(sdg_parser().parse_args(["--synth-gen-ratio", "0"]))
    assert cfg.ratio == 0 and not sg.sdg_gate(cfg, {"NVIDIA_API_KEY": "k"})[0]
    assert sg.sdg_config_from_args(sdg_parser().parse_args(["--synth-gen-ratio", "1"])).ratio == 1


# ---- the loop -----------------------------------------------------------------------------------------------------
def test_full_run_reaches_target(server, tmp_path):
    srv = server()
    records = make_records(60)
    n_train = int((records["split"] == "train").sum())
    cfg = config(srv, tmp_path, target_size=n_train + 25)
    new, rep = grow(records, cfg, tmp_path)
    assert rep["stop_reason"] == "target_reached" and len(new) == 25
    assert rep["train_size_after"] == n_train + 25
    assert list(new.columns) == WORK_COLUMNS and new["id"].is_unique  # the record + its visible-text columns
    assert set(new["split"]) == {"train"} and new["synthetic"].all() and (new["round"] >= 1).all()
    assert set(new["source_id"]) <= set(records.loc[records["split"] == "train", "id"])
    for _, r in new.iterrows():
        assert r["id"].startswith(r["source_id"] + f"-synth-r{r['round']}-")
        scores = json.loads(r["reward"])
        src_votes = records.set_index("id").loc[r["source_id"], ["question_score", "answer_score"]].tolist()
        # vote columns keep the source's votes (the vote filters judge votes); the reward lives in `reward`
        assert scores["helpfulness"] >= 2.0 and [r["question_score"], r["answer_score"]] == src_votes
        assert r["title"].endswith("?")
        src = records.set_index("id").loc[r["source_id"]]
        assert len(r["question"]) < len(src["question"]) and len(r["answer"]) < len(src["answer"])
        assert (r["tags"], r["link"], r["license"]) == (src["tags"], src["link"], src["license"])
    rnd = rep["rounds"][0]
    assert rnd["below_threshold"] > 0    # the reward model did reject some pairs
    assert rep["llm"]["requests"] == len(read_log(srv.cfg.log_path))
    plot = rep["reward_scores"]          # every scored pair's helpfulness, for the card's reward plot
    assert plot["attribute"] == "helpfulness"
    assert len(plot["rejected"]) == sum(r["below_threshold"] for r in rep["rounds"])
    assert len(plot["accepted"]) + len(plot["rejected"]) == sum(r["scored"] for r in rep["rounds"])
    assert max(plot["rejected"]) < 2.0 <= min(plot["accepted"])


def test_content_shape_reward_model(server, tmp_path):
    srv = server(reward_shape="content")
    records = make_records(30)
    new, rep = grow(records, config(srv, tmp_path, rounds=1, ratio=0.2), tmp_path)
    assert len(new) > 0 and set(json.loads(new["reward"].iloc[0])) == set(sg.ATTRIBUTES)


def test_not_a_reward_model_stops_sdg_with_clear_reason(server, tmp_path):
    srv = server(reward_shape="none")
    new, rep = grow(make_records(20), config(srv, tmp_path, rounds=1, ratio=0.2), tmp_path)
    assert len(new) == 0 and rep["stop_reason"] == "endpoint_error"
    assert rep["stop_detail"].startswith("NotARewardModel: the reward model endpoint did not return reward scores: "
                                         "Thank you")


def test_judge_and_none_modes(server, tmp_path):
    srv = server()
    records = make_records(30)
    new_j, rep_j = grow(records, config(srv, tmp_path, rounds=1, ratio=0.2, reward_mode="judge"), tmp_path)
    assert len(new_j) > 0 and rep_j["reward"]["mode"] == "judge"
    assert all(json.loads(r)["helpfulness"] >= 2 for r in new_j["reward"])
    assert not any(e["model"] == "test-reward" for e in read_log(srv.cfg.log_path))
    new_n, rep_n = grow(records, config(srv, tmp_path, rounds=1, ratio=0.2, reward_mode="none"), tmp_path)
    assert rep_n["rounds"][0]["below_threshold"] == 0 and len(new_n) >= len(new_j)
    assert set(new_n["reward"]) == {"{}"}


def test_stop_max_rounds_and_ratio_cap(server, tmp_path):
    srv = server()
    records = make_records(60)
    n_real = int((records["split"] == "train").sum())
    new, rep = grow(records, config(srv, tmp_path, target_size=10_000, rounds=2, ratio=0.1), tmp_path)
    assert rep["stop_reason"] == "max_rounds" and len(rep["rounds"]) == 2
    assert all(r["sources"] <= -(-n_real // 10) for r in rep["rounds"])
    assert sorted(set(new["round"])) == [1, 2]


def test_stop_sources_exhausted_and_no_reuse(server, tmp_path):
    srv = server()
    records = make_records(20)
    new, rep = grow(records, config(srv, tmp_path, target_size=10_000, rounds=50, ratio=0.5), tmp_path)
    assert rep["stop_reason"] == "sources_exhausted"
    assert rep["sources_used"] == rep["sources_available"] == int((records["split"] == "train").sum())
    used_per_round = [set(new.loc[new["round"] == r, "source_id"]) for r in sorted(set(new["round"]))]
    for i, a in enumerate(used_per_round):
        for b in used_per_round[i + 1:]:
            assert not a & b     # sampling without replacement


def test_stop_no_progress_with_patience(server, tmp_path):
    srv = server(reward_high=1.0)   # every helpfulness below 2.0
    cfg = config(srv, tmp_path, target_size=10_000, rounds=10, ratio=0.1, patience=2)
    new, rep = grow(make_records(60), cfg, tmp_path)
    assert rep["stop_reason"] == "no_progress" and len(rep["rounds"]) == 2 and len(new) == 0


def test_stop_budget(server, tmp_path):
    srv = server()
    cfg = config(srv, tmp_path, target_size=10_000, rounds=10, max_requests=30, ratio=0.2)
    new, rep = grow(make_records(60), cfg, tmp_path)
    assert rep["stop_reason"] == "budget" and rep["llm"]["requests"] == 30
    assert len(read_log(srv.cfg.log_path)) == 30


def test_parse_failures_reasks_and_failures_file(server, tmp_path):
    srv = server(wrong_count_rate=0.3)
    cfg = config(srv, tmp_path, rounds=1, ratio=0.5, max_reasks=1)
    new, rep = grow(make_records(40), cfg, tmp_path)
    rnd = rep["rounds"][0]
    assert rnd["reasks"] > 0 and rnd["parse_failures"] > 0 and len(new) > 0
    lines = [json.loads(x) for x in (tmp_path / "sdg_failures.jsonl").read_text().splitlines()]
    gave_up = [f for f in lines if f["kind"] == "gave_up"]
    rejected = [f for f in lines if f["kind"] == "response"]
    assert len(gave_up) == rnd["parse_failures"] and {f["reason"] for f in gave_up} == {"wrong_count"}
    assert all(f["detail"] == "expected 3 items, got 2" and f["raw"].count("* ") == 2 for f in rejected)
    assert len(rejected) == rep["rejections"]["wrong_count"] == rnd["reasks"] + len(gave_up)
    seeds = {json.loads(json.dumps(e)).get("hash") for e in read_log(srv.cfg.log_path)}
    assert len(seeds) == len(read_log(srv.cfg.log_path))     # a re-ask is a new request (new seed), never a resend


def test_preamble_numbered_wrapped_outputs_still_parse(server, tmp_path):
    srv = server(preamble=True, wrap=60)
    new, rep = grow(make_records(30), config(srv, tmp_path, rounds=1, ratio=0.3), tmp_path)
    assert rep["rounds"][0]["parse_failures"] == 0 and rep["rounds"][0]["reasks"] == 0 and len(new) > 0


def test_garbage_counts_as_parse_failure(server, tmp_path):
    srv = server(garbage_rate=1.0)
    new, rep = grow(make_records(20), config(srv, tmp_path, rounds=1, ratio=0.2, patience=1), tmp_path)
    assert len(new) == 0 and rep["stop_reason"] == "no_progress"
    assert rep["failures"] == {"refusal": rep["rounds"][0]["parse_failures"]}
    assert rep["rejections"] == {"refusal": 3 * rep["rounds"][0]["parse_failures"]}   # every try of every prompt


def test_429_storm_still_completes(server, tmp_path):
    srv = server(capacity=3, latency=0.01, retry_after=0.02)
    records = make_records(40)
    n_train = int((records["split"] == "train").sum())
    cfg = config(srv, tmp_path, target_size=n_train + 20, max_concurrency=24)
    client = fast_client(cfg)
    client.max_retries = 100
    new, rep = grow(records, cfg, tmp_path, client=client)
    assert rep["stop_reason"] == "target_reached" and len(new) == 20
    assert rep["llm"]["rate_limited"] > 0 and rep["llm"]["failures"] == {}
    assert not completed_twice(read_log(srv.cfg.log_path))


def test_401_stops_sdg_without_raising(server, tmp_path):
    srv = server(api_key="right")
    new, rep = grow(make_records(20), config(srv, tmp_path, rounds=1, ratio=0.2, api_key="sk-wrong-canary"), tmp_path)
    assert len(new) == 0 and rep["stop_reason"] == "endpoint_error"
    assert rep["stop_detail"] == "AuthError: the endpoint rejected the API key" and rep["key_source"] == "--api-key"


def test_determinism_regardless_of_arrival_order_and_rerun_pays_nothing(server, tmp_path):
    records = make_records(60)
    n_train = int((records["split"] == "train").sum())
    a_srv = server(latency=0.0)
    cfg_a = config(a_srv, tmp_path, target_size=n_train + 30, cache_dir=str(tmp_path / "ca"), max_concurrency=1)
    new_a, _ = grow(records, cfg_a, tmp_path, name="fa.jsonl")
    b_srv = server(latency=0.02, fail_rate=0.2, wrong_count_rate=0.2)  # random delays, errors and arrival order
    cfg_b = config(b_srv, tmp_path, target_size=n_train + 30, cache_dir=str(tmp_path / "cb"), max_concurrency=16)
    b_client = fast_client(cfg_b)
    b_client.max_retries = 50
    new_b, _ = grow(records, cfg_b, tmp_path, client=b_client, name="fb.jsonl")
    # wrong-count answers depend on the request, so the two servers give different yields: compare like with like
    c_srv = server(latency=0.02, fail_rate=0.2)
    cfg_c = config(c_srv, tmp_path, target_size=n_train + 30, cache_dir=str(tmp_path / "cc"), max_concurrency=16)
    c_client = fast_client(cfg_c)
    c_client.max_retries = 50
    new_c, _ = grow(records, cfg_c, tmp_path, client=c_client, name="fc.jsonl")
    pd.testing.assert_frame_equal(new_a.reset_index(drop=True), new_c.reset_index(drop=True))
    assert len(new_b) == 30
    # rerun against the same cache: identical rows and not one HTTP request
    n_log = len(read_log(c_srv.cfg.log_path))
    again, rep = grow(records, cfg_c, tmp_path, name="fc2.jsonl")
    pd.testing.assert_frame_equal(again.reset_index(drop=True), new_c.reset_index(drop=True))
    assert len(read_log(c_srv.cfg.log_path)) == n_log and rep["llm"]["requests"] == 0
    assert (tmp_path / "fc.jsonl").read_text() == (tmp_path / "fc2.jsonl").read_text()


def test_skip_returns_reason_without_calls(tmp_path, monkeypatch):
    for var in llm.KEY_ENV_VARS:
        monkeypatch.delenv(var, raising=False)
    new, rep = sg.grow_train(make_records(10), sg.SdgConfig(cache_dir=str(tmp_path / "c")), curate, dedup_against,
                             tmp_path / "f.jsonl")
    assert len(new) == 0 and rep["ran"] is False and "NVIDIA_API_KEY" in rep["skipped"]
    assert not (tmp_path / "c").exists()
