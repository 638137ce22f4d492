"""synthetic_gen.preflight / describe_preflight, endpoint failures mid-run (SDG stops, accepted rows kept),
vote columns of synthetic rows, and the dedup_against contract (every existing row, split column included)."""
from __future__ import annotations

import json
import threading

import pandas as pd
import pytest

import llm
import synthetic_gen as sg
from llm_server import read_log
from test_synthetic_gen import config, curate, dedup_against, grow, make_records

pytestmark = pytest.mark.timeout(60)


def test_preflight_learns_attributes_and_key_source(server, tmp_path):
    srv = server()
    cfg = config(srv, tmp_path)
    learned = sg.preflight(cfg)
    assert learned["reward_attributes"] == sorted(sg.ATTRIBUTES) and learned["calls"] == 2
    assert learned["model"] == "gen-model" and learned["reward_model"] == "test-reward"
    assert learned["key_source"] is None and learned["generation"]["parsed"] is True
    # auto against a server that ignores both constraints: one probe each (json-schema, grammar), then the 2 calls
    assert learned["structured_output"]["mode"] == "off" and len(learned["structured_output"]["probes"]) == 2
    assert len(read_log(srv.cfg.log_path)) == 4
    again = sg.preflight(cfg)                        # cached like any other call; the mode is chosen once
    assert again["cached"] == 2 and len(read_log(srv.cfg.log_path)) == 4


def test_preflight_single_reward_shape_and_judge(server, tmp_path):
    srv = server(reward_shape="single")
    with pytest.raises(sg.RewardAttributeMissing, match="--reward-min names helpfulness .* returned only reward"):
        sg.preflight(config(srv, tmp_path))
    learned = sg.preflight(config(srv, tmp_path, thresholds={"reward": -10.0}))
    assert learned["reward_attributes"] == ["reward"]
    judged = sg.preflight(config(srv, tmp_path, reward_mode="judge"))
    assert judged["reward_attributes"] == sorted(sg.ATTRIBUTES) and judged["reward_model"] is None


def test_preflight_not_a_reward_model(server, tmp_path):
    srv = server(reward_shape="none")
    with pytest.raises(sg.NotARewardModel, match="did not return reward scores: Thank you"):
        sg.preflight(config(srv, tmp_path))


def test_preflight_rejected_key(server, tmp_path):
    srv = server(api_key="right")
    with pytest.raises(llm.AuthError):
        sg.preflight(config(srv, tmp_path, api_key="sk-wrong-canary"))


def test_preflight_unreachable_endpoint_fails_fast(tmp_path):
    import socket
    with socket.socket() as s:          # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    cfg = sg.SdgConfig(endpoint=f"http://127.0.0.1:{port}/v1", model="m", reward_model="r",
                       cache_dir=str(tmp_path / "c"), progress=False)
    with pytest.raises(llm.EndpointUnreachable, match="connection") as ei:
        sg.preflight(cfg)
    assert "\n" not in str(ei.value)


def test_preflight_unknown_model_404(server, tmp_path):
    srv = server(error_models={"gen-model": 404})
    with pytest.raises(llm.ModelNotFound, match="404"):
        sg.preflight(config(srv, tmp_path))


def test_describe_preflight():
    cfg = sg.SdgConfig(endpoint="http://127.0.0.1:9/v1", model="g", reward_model="r")
    text = sg.describe_preflight(cfg)
    assert text.startswith("preflight: would call g once (generation) and r once (reward) at http://127.0.0.1:9/v1")
    assert "none (local endpoint)" in text
    assert "g once (judge)" in sg.describe_preflight(sg.SdgConfig(endpoint="http://127.0.0.1:9/v1", model="g",
                                                                   reward_mode="judge"))
    assert sg.describe_preflight(sg.SdgConfig(endpoint=None)).startswith("preflight: none (")
    assert "a probe call per mode tried (json-schema, grammar)" in text
    assert "probe" not in sg.describe_preflight(sg.SdgConfig(endpoint="http://127.0.0.1:9/v1", model="g",
                                                             structured_output="off"))


# ---- endpoint failures mid-run --------------------------------------------------------------------------------------
def _fast(cfg):
    c = llm.client_from_config(cfg)
    c.backoff_base, c.backoff_max, c.max_retries = 0.001, 0.002, 1
    return c


def test_key_revoked_mid_run_keeps_accepted_rows(server, tmp_path):
    srv = server()
    records = make_records(60)
    n_train = int((records["split"] == "train").sum())
    cfg = config(srv, tmp_path, target_size=n_train + 200, rounds=5, ratio=0.2, max_concurrency=1)
    client = _fast(cfg)
    answered = []

    def revoke(entry):     # after 40 answers the key is revoked: every later call gets 401
        answered.append(entry)
        if len(answered) == 40:
            srv.cfg.api_key = "revoked"
    srv.on_completed = revoke
    new, rep = grow(records, cfg, tmp_path, client=client)
    assert rep["stop_reason"] == "endpoint_error" and rep["stop_detail"] == "AuthError: the endpoint rejected the API key"
    assert len(new) > 0 and rep["added"] == len(new) and new["id"].is_unique
    assert (tmp_path / "sdg_failures.jsonl").exists()


def test_endpoint_gone_mid_run_stops_with_endpoint_error(server, tmp_path):
    srv = server()
    records = make_records(60)
    n_train = int((records["split"] == "train").sum())
    cfg = config(srv, tmp_path, target_size=n_train + 200, rounds=5, ratio=0.2, max_concurrency=2)
    client = _fast(cfg)
    count = []
    lock = threading.Lock()

    def storm(entry):      # then a 503 storm past the retries
        with lock:
            count.append(entry)
            if len(count) == 40:
                srv.cfg.fail_rate, srv.cfg.fail_status = 1.0, 503
    srv.on_completed = storm
    new, rep = grow(records, cfg, tmp_path, client=client)
    assert rep["stop_reason"] == "endpoint_error", rep["stop_detail"]
    assert rep["stop_detail"].startswith(("EndpointError: ", "EndpointFailing: ")) and "http 503" in rep["stop_detail"]
    assert len(new) > 0 and "\n" not in rep["stop_detail"]


# ---- semantics ------------------------------------------------------------------------------------------------------
def vote_filter_curate(df: pd.DataFrame):
    """curate plus the vote filters at their tutorial threshold (score >= 0)."""
    kept, drops = curate(df)
    low = (kept["question_score"] < 0) | (kept["answer_score"] < 0)
    if low.any():
        drops["low_score"] = int(low.sum())
    return kept[~low], drops


def test_negative_single_reward_is_not_dropped_by_the_vote_filter(server, tmp_path):
    srv = server(reward_shape="single")     # reward:-8..+6
    cfg = config(srv, tmp_path, rounds=1, ratio=0.3, thresholds={"reward": -10.0})
    new, rep = sg.grow_train(make_records(40), cfg, vote_filter_curate, dedup_against, tmp_path / "f.jsonl")
    rewards = [json.loads(r)["reward"] for r in new["reward"]]
    assert len(new) > 0 and min(rewards) < 0
    assert "low_score" not in rep["rounds"][0]["curate_dropped"]
    assert (new["question_score"] == 3).all() and (new["answer_score"] == 5).all()   # make_records' votes


def test_dedup_against_gets_every_split_and_leak_drops_are_counted(server, tmp_path):
    srv = server()
    records = make_records(40)
    seen = {}

    def leak_dedup(new, existing):
        seen["splits"] = set(existing["split"])
        seen["n"] = len(existing)
        drop = new.index[:2]
        return new.drop(drop), {"removed": {"exact": 0, "leak": len(drop)}}
    cfg = config(srv, tmp_path, rounds=1, ratio=0.3)
    new, rep = sg.grow_train(records, cfg, curate, leak_dedup, tmp_path / "f.jsonl")
    assert seen["splits"] == {"train", "val", "test"} and seen["n"] == len(records)
    rnd = rep["rounds"][0]
    assert rnd["leak_dropped"] == 2 and rnd["dedup_by_kind"] == {"exact": 0, "leak": 2} and rnd["dedup_dropped"] == 2
