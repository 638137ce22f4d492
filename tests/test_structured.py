"""--structured-output (issue 19): the constraint of each mode as request parameters (in the cache key), strict
parsing of schema answers through the same gates, the auto preflight's fallback order against a test server that
honours, rejects (400/422/500) or ignores a json_schema and honours or ignores a grammar, the loop reaching its
target with no junk in each case, and the limiter learning a one-slot server's parallelism (no retries, no queue
timeouts)."""
from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

import llm
import sdg_parse as sp
import structured as st
import synthetic_gen as sg
from llm_server import read_log
from test_sdg_junk import assert_rows_are_clean_items, clean_items
from test_synthetic_gen import config, grow, make_records

pytestmark = pytest.mark.timeout(120)
JUNK_MARKS = ("junk", "<think", "I hope", "let me know", "Let me know", "I'm sorry", "as an AI", "Here are", "\n")


# ---- pure: parameters, conformance, strict schema parsing -----------------------------------------------------------
def test_constraint_params_per_mode_and_kind():
    assert st.constraint_params("off", "title", 3) == {}
    schema = st.constraint_params("json-schema", "question", 4)["response_format"]
    assert schema["type"] == "json_schema"
    items = schema["json_schema"]["schema"]["properties"]["items"]
    assert items["minItems"] == items["maxItems"] == 4 and items["items"]["minLength"] == 1
    judge = st.constraint_params("json-schema", "judge")["response_format"]["json_schema"]["schema"]
    assert judge["required"] == list(sg.ATTRIBUTES)
    assert all(p == {"type": "integer", "minimum": 0, "maximum": 4} for p in judge["properties"].values())
    grammar = st.constraint_params("grammar", "title", 3)["grammar"]
    assert grammar.splitlines()[0] == "root ::= item item item" and '"?\\n"' in grammar and '"What"' in grammar
    assert "?" not in st.constraint_params("grammar", "answer", 2)["grammar"]
    assert "[0-4]" in st.constraint_params("grammar", "judge")["grammar"]
    for bad in (("grammar", "title", 0), ("json-schema", "summary", 3), ("xml", "title", 3)):
        with pytest.raises(ValueError):
            st.constraint_params(*bad)


def test_the_cache_key_covers_the_constraint():
    cfg = sg.SdgConfig()
    msgs = sg.title_prompt("Some answer text.", 3)
    keys = {mode: llm.cache_key(cfg.model, msgs, sg._gen_params(cfg, 0, "title", mode)) for mode in st.MODES}
    assert len(set(keys.values())) == 3       # a cached free-text answer is never served to a constrained call
    # and the json-schema prompt asks for the object instead of "* " lines, with the same count
    text = sg.list_messages("title", "Some answer text.", 3, "json-schema")[-1]["content"]
    assert '"items"' in text and "exactly 3 strings" in text and 'starting with "* "' not in text
    assert sg.list_messages("title", "Some answer text.", 3, "grammar") == msgs


@pytest.mark.parametrize("mode,kind,n,text,ok", [
    ("json-schema", "title", 2, '{"items": ["A?", "B?"]}', True),
    ("json-schema", "title", 2, '{"items": ["A?", "B?", "C?"]}', False),     # the prompt's count, not the schema's
    ("json-schema", "title", 2, "* A?\n* B?", False),
    ("json-schema", "title", 2, '{"items": ["A?", ""]}', False),
    ("grammar", "title", 2, "* Is it A?\n* Is it B?\n", True),
    ("grammar", "title", 2, "* Is it A?\n* Is it B?\n* Is it C?", False),
    ("grammar", "title", 2, "Sure:\n* Is it A?\n* Is it B?", False),
    ("grammar", "title", 2, "* Is it A?\n* It is B.", False),
    ("grammar", "answer", 2, "* It is A.\n* It is B.", True),
    ("grammar", "judge", None, '{"helpfulness": 3, "correctness": 2, "coherence": 4, "complexity": 1, '
                               '"verbosity": 0}', True),
    ("json-schema", "judge", None, '{"helpfulness": 5, "correctness": 2, "coherence": 4, "complexity": 1, '
                                   '"verbosity": 0}', False),
    ("json-schema", "judge", None, 'Scores: {"helpfulness": 3}', False),
])
def test_conforms(mode, kind, n, text, ok):
    assert st.conforms(mode, kind, n, text)[0] is ok


@pytest.mark.parametrize("text,finish,reason", [
    ('{"items": ["Can a landlord keep the deposit?", "Is wear and tear dam', "length", "truncated"),
    ('{"items": ["Can a landlord keep the deposit?", "Is wear and tear dam', "stop", "invalid_json"),
    ('["Can a landlord keep the deposit?"]', "stop", "not_an_object"),
    ('{"questions": ["Can a landlord keep the deposit?"]}', "stop", "no_items"),
    ('{"items": ["Can a landlord keep the deposit?", 7, "Why?"]}', "stop", "not_a_string"),
    ('{"items": ["Can a landlord keep the deposit?", "Must the landlord list deductions?"]}', "stop", "wrong_count"),
    ('{"items": ["I\'m sorry, I can\'t help with that.", "As an AI language model I cannot.", '
     '"I am unable to do that."]}', "stop", "refusal"),
    ("", "stop", "empty"),
])
def test_schema_answers_fail_by_name(text, finish, reason):
    r = sp.parse_schema_items(text, 3, "title", finish)
    assert not r.ok and r.reason == reason


def test_schema_items_pass_the_same_item_gates():
    source = "Usually not. A landlord may deduct from a deposit only for damage beyond normal wear and tear."
    text = json.dumps({"items": [
        "* Can a landlord keep a deposit for wear and tear?",        # a list marker inside the string: removed
        "**Question 2:** Must a landlord list the deductions? I hope these help!",  # markup, label, glued remark
        source,                                                       # an echo of its source
        "The landlord and the deposit.",                              # a title that is not a question
        "Can a landlord keep a deposit for wear and tear?",           # repeated
    ]})
    r = sp.parse_schema_items("```json\n" + text + "\n```", 5, "title", "stop", [source])
    assert r.ok
    assert r.items[:2] == ["Can a landlord keep a deposit for wear and tear?", "Must a landlord list the deductions?"]
    assert [(slot, why) for slot, why, _ in r.rejected] == [(2, "not_a_question"), (3, "not_a_question"),
                                                             (4, "repeated")]
    para = sp.parse_schema_items(json.dumps({"items": [source, "A landlord may deduct only for real damage."]}), 2,
                                 "answer", "stop", [source])
    assert para.ok and para.items == [None, "A landlord may deduct only for real damage."]
    assert para.rejected[0][1] == "echo"


def test_the_flag_is_parsed_once_and_validated():
    from config import build_parser

    args = build_parser().parse_args(["--structured-output", "grammar"])
    assert sg.sdg_config_from_args(args).structured_output == "grammar"
    assert sg.sdg_config_from_args(build_parser().parse_args([])).structured_output == "auto"
    with pytest.raises(SystemExit):
        build_parser().parse_args(["--structured-output", "xml"])


# ---- the auto preflight's fallback order ------------------------------------------------------------------------------
# requests in all: the probes, then the preflight's generation and judge calls; the judge probe of the mode kept is
# the preflight's own judge call (same prompt, same parameters), answered from the cache
@pytest.mark.parametrize("json_schema,grammar,chosen,requests", [
    ("honour", "honour", "json-schema", 3),       # title + judge probe under the schema, + the generation call
    ("400", "honour", "grammar", 4),              # rejected: one request (400 is not retried), then grammar
    ("422", "honour", "grammar", 4),
    ("500", "honour", "grammar", 4),              # llama-cpp-python's answer; probes are sent without retries
    ("ignore", "honour", "grammar", 4),           # accepted and ignored: the probe's count gives it away
    ("ignore", "ignore", "off", 4),               # one title probe each, then both calls unconstrained
    ("500", "ignore", "off", 4),
])
def test_auto_fallback_order(server, tmp_path, json_schema, grammar, chosen, requests):
    srv = server(json_schema=json_schema, grammar=grammar)
    cfg = config(srv, tmp_path, reward_mode="judge")
    learned = sg.preflight(cfg)
    got = learned["structured_output"]
    assert got["mode"] == chosen == cfg.output_mode() and got["requested"] == "auto"
    assert [p["mode"] for p in got["probes"]][0] == "json-schema"
    assert len(read_log(srv.cfg.log_path)) == requests
    assert learned["generation"]["parsed"] is True and learned["reward_attributes"] == sorted(sg.ATTRIBUTES)
    sent = [json.loads(json.dumps(e)) for e in read_log(srv.cfg.log_path)][-2:]
    assert all(e["status"] == 200 for e in sent)


def test_a_forced_mode_is_kept_and_off_sends_no_probe(server, tmp_path):
    srv = server(json_schema="honour", grammar="honour")
    cfg = config(srv, tmp_path, reward_mode="judge", structured_output="off")
    assert sg.preflight(cfg)["structured_output"]["probes"] == [] and cfg.output_mode() == "off"
    assert len(read_log(srv.cfg.log_path)) == 2
    forced = config(srv, tmp_path, reward_mode="judge", structured_output="grammar", cache_dir=str(tmp_path / "c2"))
    assert sg.preflight(forced)["structured_output"]["mode"] == "grammar"
    ignored = config(server(grammar="ignore"), tmp_path, reward_mode="judge", structured_output="grammar",
                     cache_dir=str(tmp_path / "c3"))
    got = sg.preflight(ignored)["structured_output"]
    assert got["mode"] == "grammar" and "does not conform" in got["why"]


# ---- the loop: target reached, no junk, in each case ---------------------------------------------------------------
def _clean(doc: str, kind: str, cfg: sg.SdgConfig) -> set[str]:
    """Every clean item the server could answer for this document (a glued closing remark gone, its "." kept)."""
    items = {" ".join(item.split()) for item in clean_items(doc, kind, cfg)}
    return items | {i + "." for i in items}


@pytest.mark.parametrize("json_schema,grammar,mode", [("honour", "ignore", "json-schema"),
                                                      ("422", "honour", "grammar"), ("500", "ignore", "off"),
                                                      ("ignore", "ignore", "off")])
def test_messy_endpoint_reaches_the_target_with_no_junk(server, tmp_path, json_schema, grammar, mode):
    srv = server(junk_rate=0.5, json_schema=json_schema, grammar=grammar)
    records = make_records(60)
    n_train = int((records["split"] == "train").sum())
    cfg = config(srv, tmp_path, target_size=n_train + 30, reward_mode="judge", thresholds={"helpfulness": 0})
    new, rep = grow(records, cfg, tmp_path)
    assert rep["structured_output"]["mode"] == mode
    assert rep["stop_reason"] == "target_reached" and len(new) == 30, rep.get("stop_detail")
    assert_rows_are_clean_items(new, records, cfg, _clean, JUNK_MARKS)
    parse_failures = sum(r["parse_failures"] for r in rep["rounds"])
    events = [json.loads(x) for x in (tmp_path / "sdg_failures.jsonl").read_text().splitlines()]
    response_rejections = [e["reason"] for e in events if e["kind"] in ("response", "gave_up")]
    if mode != "off":      # the form is enforced: junk reaches only the item gates, no answer is unparsable
        assert parse_failures == 0 and not response_rejections, rep["rejections"]
        assert {"echo", "refusal"} & set(rep["rejections"])
    else:
        assert {"truncated", "wrong_count"} <= set(rep["rejections"])
    sent = [e for e in read_log(srv.cfg.log_path) if e["status"] == 200]
    assert sent and rep["llm"]["retries"] == 0


def test_a_cached_free_text_answer_is_never_served_to_a_constrained_call(server, tmp_path):
    srv = server(grammar="honour")
    records = make_records(20)
    n_train = int((records["split"] == "train").sum())
    off = config(srv, tmp_path, target_size=n_train + 6, structured_output="off", reward_mode="judge")
    _, rep_off = grow(records, off, tmp_path)
    assert rep_off["llm"]["requests"] > 0
    on = config(srv, tmp_path, target_size=n_train + 6, structured_output="grammar", reward_mode="judge")
    _, rep_on = grow(records, on, tmp_path, name="again.jsonl")        # the same cache dir
    assert rep_on["structured_output"]["mode"] == "grammar"
    assert rep_on["llm"]["cache_hits"] == 0 and rep_on["llm"]["requests"] > 0
    grammar_sent = [e for e in read_log(srv.cfg.log_path)]
    assert len(grammar_sent) == rep_off["llm"]["requests"] + rep_on["llm"]["requests"]


# ---- concurrency: a one-slot server -------------------------------------------------------------------------------
def _chat_reqs(n: int) -> list[llm.ChatRequest]:
    return [llm.ChatRequest("m", [{"role": "user", "content": f"say hello {i}"}], {"max_tokens": 16})
            for i in range(n)]


def test_one_slot_server_no_retries_no_queue_timeouts(server, tmp_path):
    # 24 calls of 0.15 s on one slot: flooded at the old start (all 24 at once) the last would wait 3.5 s and time
    # out at 2 s, then be paid again; the limiter must find the one slot itself
    srv = server(latency=0.15, slots=1)
    c = llm.LLMClient(srv.base_url, cache_dir=None, max_concurrency=16, timeout=2.0)
    c.limiter.min_queue_seconds = 0.1
    t0 = time.monotonic()
    res = c.run_batch(_chat_reqs(24))
    assert all(r.ok for r in res)
    assert c.stats.retries == 0 and c.stats.timeouts == 0 and c.stats.requests == 24
    # the slow start stops at the first queued call (3 in flight), three latencies then say "cut"; then 1
    assert srv.counts["max_inflight"] <= 4 and c.concurrency == 1 and c.limiter.queue_cuts >= 1
    assert time.monotonic() - t0 < 24 * 0.15 * 2 + 2      # not serialised into waits: about 24 service times


def test_one_slot_server_calls_of_many_sizes_do_not_flood_it(server, tmp_path):
    # SDG sizes each call's max_tokens from its source: with one latency class per exact max_tokens every call was
    # the first of its kind, read as unqueued, and grew the limit (7-8 in flight at a one-slot llama.cpp server)
    srv = server(latency=0.15, slots=1)
    c = llm.LLMClient(srv.base_url, cache_dir=None, max_concurrency=16, timeout=2.0)
    c.limiter.min_queue_seconds = 0.1
    reqs = [llm.ChatRequest("m", [{"role": "user", "content": f"say hello {i}"}], {"max_tokens": 300 + 7 * i})
            for i in range(24)]
    res = c.run_batch(reqs)
    assert all(r.ok for r in res)
    assert c.stats.retries == 0 and c.stats.timeouts == 0 and c.stats.requests == 24
    assert srv.counts["max_inflight"] <= 4 and c.concurrency == 1
    assert {llm.client.cost_class("m", r.params["max_tokens"]) for r in reqs} == {("m", 512)}


def test_parallel_server_still_gets_full_concurrency(server, tmp_path):
    srv = server(latency=0.05)
    c = llm.LLMClient(srv.base_url, cache_dir=None, max_concurrency=32, timeout=5.0)
    res = c.run_batch(_chat_reqs(300))
    assert all(r.ok for r in res) and c.stats.retries == 0
    # (a loaded 2-core machine may stall the server past 0.5 s once: at most one cut, and the limit grows back)
    assert c.limiter.queue_cuts <= 1 and c.concurrency >= 16 and srv.counts["max_inflight"] >= 16


def test_limiter_queue_signal_cuts_to_what_the_server_serves():
    lim = llm.AdaptiveLimiter(32, initial=1)
    lim.min_queue_seconds = 0.5
    lim.inflight = 1
    lim.on_success(2.0, 40, "gen")            # alone: 2 s for 40 tokens is this kind's unqueued latency
    assert lim.current == 2                   # slow start: +1 per success
    lim.inflight = 2
    lim.on_success(2.1, 40, "gen")
    assert lim.current == 3
    for latency in (4.0, 6.1, 6.0):           # queued behind each other: 2x, 3x its kind's latency
        lim.inflight = 3
        lim.on_success(latency, 40, "gen", started=time.monotonic())
    assert lim.current == 1 and lim.queue_cuts == 1 and not lim.slow_start
    grew_after = 0                            # past what the server serves it probes slowly, not at once
    while lim.current == 1:
        lim.inflight = 1
        lim.on_success(2.0, 40, "gen")
        grew_after += 1
    assert grew_after >= llm.limiter.QUEUE_PROBE_SLOWDOWN
    # a long answer is no queue: judged per token too (and a short one on a fixed-latency server per call)
    lim2 = llm.AdaptiveLimiter(32, initial=1)
    lim2.inflight = 1                          # alone: the first answer of its kind may grow the limit
    lim2.on_success(1.0, 20, "gen", started=time.monotonic())
    assert lim2.current == 2
    lim2.inflight = 2
    for latency, tokens in ((10.0, 300), (9.0, 280), (11.0, 320)):
        lim2.on_success(latency, tokens, "gen", started=time.monotonic())
    assert lim2.queue_cuts == 0 and lim2.current == 2
    lim2.on_success(1.0, 20, "judge", started=time.monotonic())     # a new kind among others: measured, no growth
    assert lim2.current == 2 and "judge" in lim2._unqueued


def test_the_choice_reaches_the_report_line_and_the_card():
    import card
    import report

    chosen = st.StructuredChoice("grammar", "grammar: the endpoint's answers followed it").as_dict()
    sdg = {"ran": True, "added": 3, "rounds": [], "stop_reason": "target_reached", "structured_output": chosen,
           "llm": {"requests": 9}}
    assert "structured_output=grammar" in report.section_brief("sdg", sdg)
    lines = card.sdg_summary(sdg, {})
    assert "- structured output: **grammar** (grammar: the endpoint's answers followed it)" in lines


# ---- the filters' word range in the constraint ---------------------------------------------------------------------
def test_word_range_in_the_schema_and_the_grammar():
    pattern = st.items_schema(3, (50, 60))["properties"]["items"]["items"]["pattern"]
    import re
    assert re.fullmatch(pattern, " ".join(["word"] * 55)) and re.fullmatch(pattern, " ".join(["w"] * 50))
    assert not re.fullmatch(pattern, " ".join(["word"] * 49)) and not re.fullmatch(pattern, " ".join(["w"] * 61))
    assert "pattern" not in st.items_schema(3)["properties"]["items"]["items"]       # no range: no pattern
    g = st.constraint_params("grammar", "answer", 3, (50, 120))["grammar"]
    # first word + 48..118 middle words + the last word = 50..120 words; no "*" or backslash in a line; words
    # of at most 40 characters; the first a capitalised word of letters (no list marker); the line ends a sentence
    assert '(" " word){48,118}' in g and "word ::= [^ \\n*\\\\]{1,40}" in g
    assert "first ::= [A-Z] [a-zA-Z" in g and g.count("item") == 4 and "[.!]" in g
    assert "[.?]" in st.items_grammar(1, "question", (50, 60))
    title = st.items_grammar(2, "title")
    assert '"Is it"' in title and '"Is" ' not in title and "[^\\n?*\\\\]{4,160}" in title
    # the cache key covers the range: another --min-words asks again
    cfg = sg.SdgConfig()
    key = lambda words: llm.cache_key(cfg.model, [{"role": "user", "content": "x"}],  # noqa: E731
                                      sg._gen_params(cfg, 0, "answer", "grammar", 3, words))
    assert key((50, 120)) != key((10, 120)) != key(None)


def test_config_passes_the_filters_word_range_to_sdg():
    from config import parse_args
    sample = str(Path(__file__).resolve().parent.parent / "data" / "sample" / "law-stackexchange-questions-answers.json")
    cfg = parse_args(["--input", sample, "--min-words", "12", "--max-words", "300"])
    assert cfg.sdg.item_words == (12, 300) and cfg.filters.word_range() == (12, 300)
    assert parse_args(["--input", sample]).sdg.item_words == sg.SdgConfig().item_words == (50, 500)
