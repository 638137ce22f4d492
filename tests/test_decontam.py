"""decontam.py: eval-file loading, the exact / n-gram / embedding rules, the driver over pandas and Dask, the SDG
check, and the config flags.

The acceptance corpus is generated with data/make_sample.py's templates (never real Stack Exchange text): a
dataset of generated questions, and an eval file with 10 of its questions verbatim, 10 lightly edited (a typo every
40th word: only the n-gram rule can catch them), 10 paraphrased by the generator (re-picked wording, < 0.5 of their
13-grams left: only the embedding rule can catch them) and 20 generated questions that are not in the dataset.
Embeddings use the distilled static model (milliseconds) with a cache under tmp_path.
"""
from __future__ import annotations

import argparse
import importlib.util
import json
import random
from pathlib import Path

import pandas as pd
import pytest

import decontam
from decontam import (DecontamConfig, Decontaminator, EvalFileError, EvalItem, add_decontam_arguments,
                      build_index, decontam_config_from_args, decontaminate_partition, load_eval_file)
from dedup import DedupConfig, Embedder

REPO = Path(__file__).resolve().parent.parent


def _make_sample():
    spec = importlib.util.spec_from_file_location("make_sample_for_decontam", REPO / "data" / "make_sample.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


MS = _make_sample()


def _docs(n: int, seed: int) -> list[dict]:
    """n generated docs with an answer that pass the default filters."""
    rng = random.Random(seed)
    out = []
    while len(out) < n:
        d = MS.make_doc(rng)
        if d["best"] >= 0 and MS.passes_default_filters(d):
            out.append(d)
    return out


def _row(doc: dict, i: int) -> dict:
    title, question, answer = MS.doc_plain(doc)
    rid = f"law-stackexchange-qa-{100000 + i}"
    return {"id": rid, "source_id": rid, "title": title, "question": question, "answer": answer}


def light_edit(text: str, every: int = 40) -> str:
    """A typo (one letter doubled) in every `every`-th word from the 20th: exact fails, most 13-grams survive."""
    words = text.split(" ")
    for i in range(20, len(words), every):
        if words[i]:
            words[i] = words[i][0] + words[i]
    return " ".join(words)


def static_cfg(tmp_path, **kw) -> DedupConfig:
    return DedupConfig(embedding_model="static", embedding_cache=str(tmp_path / "emb"), **kw)


def _overlap(index_text: str, row: dict, n: int = 13) -> float:
    idx = build_index([EvalItem("x", index_text, "f")], DecontamConfig(ngram=n))
    _, frac = decontam._ngram_hits(pd.DataFrame([row]), idx)
    return float(frac[0]) if len(frac) else 0.0


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    """(rows, eval lines, expected {row id: rule}) for the acceptance test; built once (about a second)."""
    tmp = tmp_path_factory.mktemp("corpus")
    docs = _docs(230, seed=7)
    rows = [_row(d, i) for i, d in enumerate(docs[:200])]
    unrelated = [MS.doc_plain(d)[1] for d in docs[200:220]]
    rng = random.Random(3)
    picks = rng.sample(range(200), 60)
    expected: dict[str, str] = {}
    lines: list[str] = []
    for i in picks[:10]:
        lines.append(rows[i]["question"])
        expected[rows[i]["id"]] = "exact"
    for i in picks[10:20]:
        lines.append(light_edit(rows[i]["question"]))
        expected[rows[i]["id"]] = "ngram"
    # paraphrases by the generator; kept only where the n-gram rule cannot see them and the static model puts
    # them at the leak threshold (it does for ~3/4 of generated paraphrases), so this checks the embedding path
    emb = Embedder(static_cfg(tmp))
    thr = static_cfg(tmp).leak_cos
    prng = random.Random(11)
    for i in picks[20:]:
        if sum(1 for r in expected.values() if r == "embedding") == 10:
            break
        para = MS.paraphrase_copy(docs[i], prng)
        if para is None:
            continue
        q = MS.doc_plain(para[0])[1]
        e, _ = emb.embed([q, rows[i]["question"]])
        if _overlap(q, rows[i]) < 0.5 and float(e[0] @ e[1]) >= thr + 0.002:
            lines.append(q)
            expected[rows[i]["id"]] = "embedding"
    assert sum(1 for r in expected.values() if r == "embedding") == 10
    lines.extend(unrelated)
    order = random.Random(5).sample(range(len(lines)), len(lines))
    return pd.DataFrame(rows), [lines[j] for j in order], expected


def _write_jsonl(path: Path, objs) -> Path:
    path.write_text("".join(json.dumps(o) + "\n" for o in objs), encoding="utf-8")
    return path


# ------------------------------------------------------------------------------------------ acceptance
def test_acceptance_removes_exactly_the_30_leaked_questions(corpus, tmp_path):
    rows, lines, expected = corpus
    f = _write_jsonl(tmp_path / "eval.jsonl", [{"question": q} for q in lines])
    cfg = DecontamConfig(files=(str(f),))
    dec = Decontaminator.from_config(cfg, static_cfg(tmp_path))
    res = dec.run(rows)
    got = dict(zip(res.removed["id"], res.removed["rule"]))
    assert got == expected  # exactly the 30, each by the rule that should catch it
    assert len(res.kept) == len(rows) - 30 and not set(res.kept["id"]) & set(expected)
    assert list(res.removed.columns) == ["id", "kind", "duplicate_of", "similarity", "rule"]
    assert set(res.removed["kind"]) == {"decontaminated"}
    # duplicate_of names the eval line that leaked: file name and line number
    line_of = {q: n for n, q in enumerate(lines, 1)}
    for rid, dup in zip(res.removed["id"], res.removed["duplicate_of"]):
        if expected[rid] == "exact":
            assert dup == f"eval.jsonl:{line_of[rows.set_index('id').at[rid, 'question']]}"
    sims = res.removed.set_index("id")["similarity"]
    assert all(sims[r] == 1.0 for r, k in expected.items() if k == "exact")
    assert all(0.5 <= sims[r] < 1.0 for r, k in expected.items() if k == "ngram")
    assert all(sims[r] >= 0.98 for r, k in expected.items() if k == "embedding")
    st = res.stats
    assert st["removed"] == {"exact": 10, "ngram": 10, "embedding": 10, "total": 30}
    assert st["files"][str(f)]["removed"]["total"] == 30 and st["files"][str(f)]["items"] == 50
    assert st["rows_in"] == 200 and st["rows_out"] == 170


def test_without_embeddings_the_paraphrases_stay(corpus, tmp_path):
    rows, lines, expected = corpus
    f = tmp_path / "eval.txt"
    f.write_text("".join(" ".join(q.split()) + "\n" for q in lines), encoding="utf-8")  # one question a line
    for dcfg, cfg in ((static_cfg(tmp_path, semantic=False), DecontamConfig(files=(str(f),))),
                      (static_cfg(tmp_path), DecontamConfig(files=(str(f),), embedding=False))):
        res = Decontaminator.from_config(cfg, dcfg).run(rows)
        assert dict(zip(res.removed["id"], res.removed["rule"])) == {
            k: v for k, v in expected.items() if v != "embedding"}
        assert res.stats["embedding"] == {"ran": False}


def test_dask_input_gives_the_same_removals(corpus, tmp_path):
    dd = pytest.importorskip("dask.dataframe")
    rows, lines, expected = corpus
    f = _write_jsonl(tmp_path / "eval.jsonl", [{"prompt": q} for q in lines])
    dec = Decontaminator.from_config(DecontamConfig(files=(str(f),)), static_cfg(tmp_path))
    pandas_res = dec.run(rows)
    ddf = dd.from_pandas(rows, npartitions=4)
    with __import__("dask").config.set(scheduler="synchronous"):
        res = dec.run(ddf)
        kept = res.kept.compute()
    pd.testing.assert_frame_equal(res.removed, pandas_res.removed)
    assert sorted(kept["id"]) == sorted(pandas_res.kept["id"])
    assert res.stats["rows_in"] == 200


def test_partition_function_and_synthetic_check(corpus, tmp_path):
    rows, lines, expected = corpus
    items = [EvalItem(f"e{i}", q, "f") for i, q in enumerate(lines)]
    index = build_index(items, DecontamConfig())
    kept, removed = decontaminate_partition(rows, index)
    assert set(removed["id"]) == {k for k, v in expected.items() if v != "embedding"}
    assert len(kept) == 180
    # new synthetic rows: one copies an eval question into its answer, one is fresh
    dec = Decontaminator(items, {"f": {"items": len(items)}}, DecontamConfig(), static_cfg(tmp_path))
    leaked = rows.iloc[0].to_dict() | {"id": "s-1", "question": "What now?", "answer": "Quote: " + lines[0]}
    fresh = rows.iloc[1].to_dict() | {"id": "s-2", "question": "Is a handshake deal binding here?",
                                      "answer": "It depends on the facts and on what was said."}
    out, drops = dec.check_new_rows(pd.DataFrame([leaked, fresh]))
    assert list(out["id"]) == ["s-2"] and drops == {"decontaminated": 1}
    assert dec.synthetic["removed"]["ngram"] == 1 and dec.synthetic["checked"] == 2
    assert dec.synthetic_removed[0].iloc[0]["duplicate_of"] == "e0"


# ------------------------------------------------------------------------------------------ the rules
def _rows(*texts):
    return pd.DataFrame([{"id": f"r{i}", "title": "A title", "question": q, "answer": a}
                         for i, (q, a) in enumerate(texts)])


WORDS = [f"w{i}" for i in range(400)]


def test_exact_after_normalization_and_title_plus_question():
    rows = _rows(("Can my Landlord keep the DEPOSIT?", "no idea"), ("other", "x"))
    items = [EvalItem("a", "  can my landlord   keep the deposit?\n", "f"), EvalItem("b", "a title other", "f")]
    _, removed = decontaminate_partition(rows, build_index(items, DecontamConfig()))
    assert dict(zip(removed["id"], removed["duplicate_of"])) == {"r0": "a", "r1": "b"}
    assert set(removed["rule"]) == {"exact"} and set(removed["similarity"]) == {1.0}
    kept, removed = decontaminate_partition(rows.iloc[:0], build_index(items, DecontamConfig()))  # empty partition
    assert kept.empty and removed.empty and list(removed.columns) == decontam.REMOVED_COLUMNS


def test_ngram_rule_inside_the_answer_and_overlap_threshold():
    item = " ".join(WORDS[:40])
    half = " ".join(WORDS[:26])  # 14 of the item's 28 13-grams: exactly half
    rows = _rows(("unrelated question", "As they wrote: " + item.upper() + "!"), ("q", half),
                 ("q", " ".join(WORDS[:24])))
    idx = build_index([EvalItem("a", item, "f")], DecontamConfig())
    _, removed = decontaminate_partition(rows, idx)
    assert dict(zip(removed["id"], removed["similarity"])) == {"r0": 1.0, "r1": 0.5}
    assert set(removed["rule"]) == {"ngram"}
    strict = build_index([EvalItem("a", item, "f")], DecontamConfig(ngram_overlap=0.0))
    assert set(decontaminate_partition(rows, strict)[1]["id"]) == {"r0", "r1", "r2"}


def test_short_items_whole_item_ngram_or_exact_only():
    rows = _rows(("x", "the court said " + " ".join(WORDS[:9]) + " and more"), ("w0 w1 w2", "y"), ("z", "w0 w1 w2 z"))
    items = [EvalItem("nine", " ".join(WORDS[:9]), "f"), EvalItem("three", "w0 w1 w2", "f")]
    idx = build_index(items, DecontamConfig())
    assert idx.whole_items == 1 and idx.short_items == 1
    _, removed = decontaminate_partition(rows, idx)
    # the 9-word item matches as one n-gram inside text; the 3-word item only as a whole question
    assert dict(zip(removed["id"], removed["duplicate_of"])) == {"r0": "nine", "r1": "three"}
    assert dict(zip(removed["id"], removed["rule"])) == {"r0": "ngram", "r1": "exact"}


def test_window_hashes_do_not_cross_documents():
    wh, off = decontam.word_hashes([[b"a", b"b"], [b"c", b"d", b"e"]])
    h, doc = decontam.window_hashes(wh, off, 2)
    assert list(doc) == [0, 1, 1]
    wh2, off2 = decontam.word_hashes([[b"c", b"d"]])
    assert decontam.window_hashes(wh2, off2, 2)[0][0] == h[1]  # same words, same hash in any batch


def test_index_pickles_without_its_bitmap_and_still_matches():
    import pickle

    idx = build_index([EvalItem("a", " ".join(WORDS[:20]), "f")], DecontamConfig())
    assert idx.bitmap.any()
    blob = pickle.dumps(idx)
    assert len(blob) < 100_000  # the 4 MiB bitmap is rebuilt where the index is used, not shipped
    again = pickle.loads(blob)
    _, removed = decontaminate_partition(_rows(("q", " ".join(WORDS[:20])), ("q", "nothing here")), again)
    assert list(removed["id"]) == ["r0"]


# ------------------------------------------------------------------------------------------ loading
def test_loading_jsonl_fields_messages_ids_and_skips(tmp_path):
    f = _write_jsonl(tmp_path / "set.jsonl", [
        {"question": "Q one?"}, {"prompt": "P two?", "id": "custom-7"}, {"input": "I three?"},
        {"messages": [{"role": "system", "content": "be nice"}, {"role": "user", "content": "M four?"},
                      {"role": "assistant", "content": "A"}, {"role": "user", "content": "and?"}]},
        {"question": "   "}, {"messages": [{"role": "system", "content": "only"}]}])
    with f.open("a") as fh:
        fh.write("\n")
    items, st = load_eval_file(f)
    assert [(i.id, i.text) for i in items] == [("set.jsonl:1", "Q one?"), ("custom-7", "P two?"),
                                               ("set.jsonl:3", "I three?"), ("set.jsonl:4", "M four?\nand?")]
    assert st == {"format": "jsonl", "items": 4, "skipped": {"blank line": 1, "empty item": 1, "no user turn": 1}}


def test_loading_plain_text_sniffing_and_json_array(tmp_path):
    t = tmp_path / "qs.txt"
    t.write_text("\ufeffFirst question?\r\n\n{not json} second \u2028 same line\n", encoding="utf-8")
    items, st = load_eval_file(t)
    assert [(i.id, i.text) for i in items] == [("qs.txt:1", "First question?"),
                                               ("qs.txt:3", "{not json} second \u2028 same line")]
    assert st["format"] == "text" and st["skipped"] == {"blank line": 1}
    sniff = tmp_path / "evalset"  # no extension: JSON objects by content
    sniff.write_text('{"question": "Via sniffing?"}\n', encoding="utf-8")
    assert load_eval_file(sniff)[1]["format"] == "jsonl"
    arr = tmp_path / "arr.json"
    arr.write_text(json.dumps([{"question": "A?"}, {"prompt": "B?"}]), encoding="utf-8")
    items, st = load_eval_file(arr)
    assert [i.id for i in items] == ["arr.json:1", "arr.json:2"] and st["format"] == "json array"


@pytest.mark.parametrize("content,where,why,name", [
    (b'{"question": "ok"}\n{"question": "broken\n', ":2:", "not valid JSON", "bad.jsonl"),
    (b'{"question": "ok"}\n{"answer": "no question"}\n', ":2:", "no question, prompt, input or messages", "bad.jsonl"),
    (b'{"question": 12}\n', ":1:", "'question' is not a string", "bad.jsonl"),
    (b'{"messages": "hi"}\n', ":1:", "not a list of objects", "bad.jsonl"),
    (b'["a list"]\n', ":1:", "expected a JSON object", "bad.jsonl"),
    (b'{"question": "ok"}\n{"question": "caf\xe9"}\n', ":2:", "not UTF-8", "bad.jsonl"),
    (b"\n\n", "", "no eval items", "bad.jsonl"),
    (b'[{"question": "a"},\n {"question": ]', ":2:", "not valid JSON", "bad.json"),
])
def test_bad_files_raise_one_line_naming_file_and_line(tmp_path, content, where, why, name):
    f = tmp_path / name
    f.write_bytes(content)
    with pytest.raises(EvalFileError) as exc:
        load_eval_file(f)
    msg = str(exc.value)
    assert "\n" not in msg and msg.startswith(str(f) + where) and why in msg


# ------------------------------------------------------------------------------------------ config
def _args(*argv):
    p = argparse.ArgumentParser()
    add_decontam_arguments(p)
    return p.parse_args(list(argv))


def test_config_defaults_and_validation(tmp_path):
    cfg = decontam_config_from_args(_args())
    assert cfg == DecontamConfig() and not cfg.enabled
    good = tmp_path / "e.txt"
    good.write_text("q?\n")
    cfg = decontam_config_from_args(_args("--decontaminate", str(good), "--decontaminate", str(good),
                                          "--decontam-cosine", "0.9", "--decontam-no-embedding"))
    assert cfg.files == (str(good),) and cfg.cosine == 0.9 and not cfg.embedding
    assert cfg.cosine_for(DedupConfig()) == 0.9
    assert DecontamConfig().cosine_for(DedupConfig(embedding_model="static")) == 0.98
    for argv, flag in [(["--decontaminate", str(tmp_path / "missing.jsonl")], "--decontaminate"),
                       (["--decontaminate", str(tmp_path)], "--decontaminate"),
                       (["--decontam-ngram", "1"], "--decontam-ngram"),
                       (["--decontam-min-words", "14"], "--decontam-min-words"),
                       (["--decontam-ngram-overlap", "1.5"], "--decontam-ngram-overlap"),
                       (["--decontam-cosine", "0"], "--decontam-cosine")]:
        with pytest.raises(ValueError, match=f"^{flag}:"):
            decontam_config_from_args(_args(*argv))


def test_card_summary_names_each_file_and_rule(corpus, tmp_path):
    rows, lines, _ = corpus
    f = _write_jsonl(tmp_path / "my-eval.jsonl", [{"question": q} for q in lines])
    res = Decontaminator.from_config(DecontamConfig(files=(str(f),)), static_cfg(tmp_path)).run(rows)
    text = "\n".join(decontam.decontam_summary(json.loads(json.dumps(res.stats))))  # as read back from report.json
    assert "**30** rows removed" in text and "exact: 10, n-gram overlap: 10, embedding: 10" in text
    assert "| `my-eval.jsonl` | jsonl | 50 | 0 | 30 | 10 | 10 | 10 |" in text
    assert "cosine >= 0.98" in text
    assert decontam.decontam_summary({}) == []
