"""audit.py: an independent check of a finished dataset finds every planted leak and defect, passes a clean one,
and the pipeline puts its verdict in report.json and the card."""
from __future__ import annotations

import json
import subprocess
import sys

import pytest

from conftest import REPO, run_main, source_element

import audit

SPLITS = ("train", "val", "test")


def row(i: int, split: str, words: int = 60, **kw) -> dict:
    """A row that passes the default filters; its text is unique to `i`."""
    rid = f"law-stackexchange-qa-{i}"
    out = {"id": rid, "source_id": rid, "title": f"Question number {i} about a lease?",
           "question": " ".join(f"q{i}x{k}" for k in range(words)),
           "answer": " ".join(f"a{i}y{k}" for k in range(words)),
           "question_score": 1, "answer_score": 2, "tags": "contract", "link": f"https://law.stackexchange.com/q/{i}",
           "license": "CC BY-SA 4.0", "file_name": "dump.json", "split": split, "synthetic": False, "round": 0,
           "reward": None}
    out.update(kw)
    return out


def synth(source: dict, k: int = 0, **kw) -> dict:
    out = row(0, "train", id=f"{source['id']}-synth-r1-{k}", source_id=source["id"], synthetic=True, round=1,
              reward={"helpfulness": 3.0}, question_score=3, answer_score=3)
    out.update(title=f"Synthetic {k} of {source['id']}?",
               question=" ".join(f"sq{k}{source['id'][-3:]}w{j}" for j in range(55)),
               answer=" ".join(f"sa{k}{source['id'][-3:]}w{j}" for j in range(55)))
    out.update(kw)
    return out


def write_dataset(root, rows: list[dict], report: dict | None = None, fix_accounting: bool = True):
    final = root / "final"
    final.mkdir(parents=True, exist_ok=True)
    counts = {s: 0 for s in SPLITS}
    for split in SPLITS:
        lines = [json.dumps(r) for r in rows if r["split"] == split]
        counts[split] = len(lines)
        (final / f"law-qa-{split}.jsonl").write_text("".join(line + "\n" for line in lines))
    n_real = sum(1 for r in rows if not r["synthetic"])
    n_syn = len(rows) - n_real
    if report is None:
        report = {"stages": [{"name": "convert", "rows_in": n_real + 2, "rows_out": n_real,
                              "dropped": {"no_answer": 2}},
                             {"name": "clean", "rows_in": n_real, "rows_out": n_real, "dropped": {}},
                             {"name": "filter", "rows_in": n_real, "rows_out": n_real, "dropped": {}},
                             {"name": "dedup", "rows_in": n_real, "rows_out": n_real, "dropped": {}},
                             {"name": "split", "rows_in": n_real, "rows_out": n_real, "dropped": {}},
                             {"name": "synthesize", "rows_in": n_syn + 1, "rows_out": n_syn,
                              "dropped": {"below_reward_threshold": 1}},
                             {"name": "write", "rows_in": len(rows), "rows_out": len(rows), "dropped": {}}],
                  "splits": counts,
                  "run": {"args": {"min_words": 50, "max_words": 500, "min_question_score": 0,
                                   "min_answer_score": 0, "dedup": "exact,fuzzy,semantic"}}}
    (final / "report.json").write_text(json.dumps(report))
    return final


def clean_rows() -> list[dict]:
    rows = [row(i, SPLITS[0 if i % 10 < 8 else 1 if i % 10 == 8 else 2]) for i in range(100, 140)]
    rows += [synth(rows[0], 0), synth(rows[0], 1), synth(rows[1], 0)]
    return rows


def run_audit(path, embeddings=None) -> dict:
    return audit.audit_dataset(path, embeddings=embeddings)


def test_clean_dataset_passes(tmp_path):
    write_dataset(tmp_path, clean_rows())
    result = run_audit(tmp_path)
    assert result["verdict"] == "pass", audit.table(result)
    assert result["rows"]["synthetic"] == 3 and result["rows"]["total"] == 43
    assert {c["status"] for c in result["checks"].values()} <= {"PASS", "SKIP"}


def test_exact_copy_across_splits_is_a_leak_and_cli_exits_1(tmp_path):
    rows = clean_rows()
    twin = dict(rows[2], id="law-stackexchange-qa-999", source_id="law-stackexchange-qa-999", split="test",
                question=rows[2]["question"].upper() + "  ", title=rows[2]["title"] + "!")  # normalises equal
    write_dataset(tmp_path, rows + [twin])
    result = run_audit(tmp_path)
    assert result["verdict"] == "leak"
    assert result["checks"]["exact_across_splits"]["count"] == 1
    assert result["checks"]["near_dup_jaccard"]["count"] == 1  # Jaccard 1.0 too
    cli = subprocess.run([sys.executable, str(REPO / "audit.py"), str(tmp_path), "--no-embeddings"],
                         capture_output=True, text=True, timeout=120)
    assert cli.returncode == 1 and "verdict: LEAK" in cli.stdout and "Traceback" not in cli.stderr


def test_exact_copy_within_a_split_fails(tmp_path):
    rows = clean_rows()
    twin = dict(rows[3], id="law-stackexchange-qa-998", source_id="law-stackexchange-qa-998")
    write_dataset(tmp_path, rows + [twin])
    result = run_audit(tmp_path)
    assert result["verdict"] == "fail" and result["failed"] == ["exact_within_split"]


def test_near_duplicate_across_splits_found_by_minhash(tmp_path):
    rows = clean_rows()
    words = rows[5]["answer"].split()
    words[10] = "changed"  # 1 word of 120: Jaccard of 5-shingles ~0.93
    near = dict(rows[5], id="law-stackexchange-qa-997", source_id="law-stackexchange-qa-997", split="val",
                answer=" ".join(words))
    far = dict(rows[6], id="law-stackexchange-qa-996", source_id="law-stackexchange-qa-996", split="val",
               answer=" ".join(w + "z" if k % 3 == 0 else w for k, w in enumerate(rows[6]["answer"].split())))
    write_dataset(tmp_path, rows + [near, far])
    check = run_audit(tmp_path)["checks"]["near_dup_jaccard"]
    assert check["status"] == "LEAK" and check["count"] == 1, check
    assert "law-stackexchange-qa-997" in json.dumps(check["examples"])
    assert 0.8 <= check["examples"][0]["jaccard"] < 1.0


def test_minhash_lsh_recall_on_many_pairs():
    """Every cross-split pair at Jaccard ~0.82-0.95 is a candidate (LSH banding misses none of 200)."""
    import numpy as np

    rng = np.random.default_rng(0)
    docs, codes = [], []
    for i in range(200):
        words = [f"w{i}_{k}" for k in range(150)]
        docs.append(" ".join(words))
        edited = list(words)
        for pos in rng.choice(150, size=int(rng.integers(1, 4)), replace=False):
            edited[pos] = "edit"
        docs.append(" ".join(edited))
        codes += [0, 1 + i % 2]
    sets = audit.shingle_sets(docs)
    pairs, capped = audit.lsh_cross_split_candidates(audit.minhash(sets), np.array(codes, np.int8))
    found = {(int(a), int(b)) for a, b in pairs}
    assert not capped and all((2 * i, 2 * i + 1) in found for i in range(200))
    assert all(audit.exact_jaccard(sets[a], sets[b]) < 0.5 for a, b in found if b != a + 1 or a % 2)


def test_cosine_check_with_static_embeddings(tmp_path):
    rows = clean_rows()
    near = dict(rows[7], id="law-stackexchange-qa-995", source_id="law-stackexchange-qa-995", split="test",
                answer=" ".join(reversed(rows[7]["answer"].split())))  # same words, no shared 5-shingle
    write_dataset(tmp_path, rows + [near])
    result = run_audit(tmp_path, embeddings="static")
    assert result["checks"]["near_dup_jaccard"]["count"] == 0
    assert result["checks"]["near_dup_cosine"]["status"] == "LEAK"
    assert "law-stackexchange-qa-995" in json.dumps(result["checks"]["near_dup_cosine"]["examples"])


def test_synthetic_lineage(tmp_path):
    rows = clean_rows()
    val_row = next(r for r in rows if r["split"] == "val")
    rows += [synth(val_row, 0),                                           # descends from a val row
             synth(rows[0], 5, split="val"),                              # synthetic row outside train
             synth(rows[0], 6, source_id="law-stackexchange-qa-4242")]    # source not in the dataset
    write_dataset(tmp_path, rows)
    check = run_audit(tmp_path)["checks"]["synthetic_lineage"]
    assert check["status"] == "FAIL" and check["count"] == 3, check


def test_repeated_ids_and_filter_failures(tmp_path):
    rows = clean_rows()
    rows.append(dict(row(150, "test"), id=rows[0]["id"]))             # id repeated across splits
    rows.append(row(151, "train", words=20))                          # question/answer too short
    rows.append(row(152, "train", question_score=-1))                 # below the score threshold
    write_dataset(tmp_path, rows)
    result = run_audit(tmp_path)
    assert result["checks"]["ids"]["count"] == 1
    assert result["checks"]["filters"]["count"] == 2
    assert "question has 20 words" in json.dumps(result["checks"]["filters"]["examples"])
    assert result["verdict"] == "fail"


def test_filters_use_the_runs_thresholds(tmp_path):
    rows = clean_rows()
    final = write_dataset(tmp_path, rows)
    report = json.loads((final / "report.json").read_text())
    report["run"]["args"]["min_words"] = 58  # real rows have 60 words, synthetic ones 55
    (final / "report.json").write_text(json.dumps(report))
    assert run_audit(tmp_path)["checks"]["filters"]["count"] == 3


def test_accounting(tmp_path):
    final = write_dataset(tmp_path, clean_rows())
    report = json.loads((final / "report.json").read_text())
    report["stages"][2]["rows_out"] -= 1          # a row lost without a reason
    report["splits"]["val"] += 1                  # report disagrees with the file
    (final / "report.json").write_text(json.dumps(report))
    (final / "chat").mkdir()
    (final / "chat" / "train.jsonl").write_text("{}\n")  # a format file with the wrong row count
    check = run_audit(tmp_path)["checks"]["accounting"]
    text = json.dumps(check)
    assert check["status"] == "FAIL"
    assert "stage filter" in text and "val rows" in text and "chat/train.jsonl" in text


def test_unreadable_directory_exits_2_with_one_line(tmp_path):
    for args in ([str(tmp_path / "nope")], [str(tmp_path)]):
        cli = subprocess.run([sys.executable, str(REPO / "main.py"), "audit", *args, "--no-embeddings"],
                             capture_output=True, text=True, timeout=120)
        assert cli.returncode == 2 and cli.stderr.count("\n") == 1 and cli.stderr.startswith("error:"), cli.stderr
    write_dataset(tmp_path, clean_rows())
    (tmp_path / "final" / "law-qa-val.jsonl").write_text('{"id": "x"\n')
    cli = subprocess.run([sys.executable, str(REPO / "audit.py"), str(tmp_path), "--no-embeddings"],
                         capture_output=True, text=True, timeout=120)
    assert cli.returncode == 2 and "law-qa-val.jsonl:1: not JSON" in cli.stderr and "Traceback" not in cli.stderr


def test_audit_shares_no_code_with_dedup():
    code = "import audit, sys; audit.audit_dataset; print('dedup' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, timeout=60)
    assert out.stdout.strip() == "False"
    assert "import dedup" not in (REPO / "audit.py").read_text() and "from dedup" not in (REPO / "audit.py").read_text()


@pytest.mark.e2e
def test_pipeline_records_the_audit_verdict(tmp_path, write_source):
    elements = [source_element(i, body_words=55 + i % 40, answer_words=60 + i % 30) for i in range(1, 61)]
    elements.append(dict(elements[4], question_id=500, link="https://law.stackexchange.com/questions/500/x"))
    src = write_source(elements)
    result = run_main("--input", str(src), "--output-dir", str(tmp_path / "out"), "--n-workers", "1",
                      "--dedup", "exact,fuzzy", "--synth-gen-endpoint", "", "--embedding-cache", "", timeout=180)
    assert result.returncode == 0, result.stderr[-2000:]
    final = tmp_path / "out" / "final"
    report = json.loads((final / "report.json").read_text())
    assert report["audit"]["verdict"] == "pass", report["audit"]
    assert report["audit"]["checks"]["near_dup_cosine"]["status"] == "SKIP"  # no semantic dedup, no embeddings
    assert "**Verdict: PASS**" in (final / "README.md").read_text()
    assert "audit: PASS" in result.stdout
    cli = run_main("audit", str(tmp_path / "out"), "--no-embeddings", timeout=120)
    assert cli.returncode == 0 and "verdict: PASS" in cli.stdout


@pytest.mark.e2e
def test_minilm_cosine_check(tmp_path):
    rows = clean_rows()[:12]
    for r in rows:
        r["split"] = "train"
    rows[10]["split"] = "val"
    rows.append(dict(rows[3], id="law-stackexchange-qa-994", source_id="law-stackexchange-qa-994", split="test",
                     answer=" ".join(reversed(rows[3]["answer"].split()))))
    write_dataset(tmp_path, rows)
    result = run_audit(tmp_path, embeddings="minilm")
    check = result["checks"]["near_dup_cosine"]
    assert check["status"] == "LEAK" and check["threshold"] == 0.95
    assert "law-stackexchange-qa-994" in json.dumps(check["examples"])


@pytest.mark.e2e
@pytest.mark.parametrize("mode, cosine_status", [("full", "PASS"), ("fast", "SKIP"), ("off", None)])
def test_pipeline_audit_modes(tmp_path, write_source, mode, cosine_status):
    elements = [source_element(i, body_words=55 + i % 40, answer_words=60 + i % 30) for i in range(1, 41)]
    src = write_source(elements)
    result = run_main("--input", str(src), "--output-dir", str(tmp_path / "out"), "--n-workers", "1",
                      "--embedding-model", "static", "--embedding-cache", "", "--synth-gen-endpoint", "",
                      "--formats", "none", "--audit", mode, "--quiet", timeout=180)
    assert result.returncode == 0, result.stderr[-2000:]
    audit = json.loads((tmp_path / "out" / "final" / "report.json").read_text())["audit"]
    if cosine_status is None:
        assert audit["verdict"] == "not run" and audit["checks"] == {}
    else:
        assert audit["verdict"] == "pass"
        assert audit["checks"]["near_dup_cosine"]["status"] == cosine_status


def _reference_signatures(docs: list[str]):
    """The audit's normalisation, shingles and MinHash written the plain way (regex words, one doc at a time,
    one permutation at a time): what the whole-array versions must reproduce bit for bit."""
    import re
    import unicodedata

    import numpy as np

    norm = [" ".join(re.findall(r"\w+", unicodedata.normalize("NFKC", d).casefold())) for d in docs]
    vocab: dict[str, int] = {}
    sets = []
    for text in norm:
        ids = np.array([vocab.setdefault(w, len(vocab) + 1) for w in text.split()], dtype=np.uint64)
        ids = np.concatenate([ids, np.zeros(max(0, audit.SHINGLE - len(ids)), np.uint64)])
        m = len(ids) - audit.SHINGLE + 1
        h = np.zeros(m, np.uint64)
        with np.errstate(over="ignore"):
            for j in range(audit.SHINGLE):
                h = h * np.uint64(0x100000001B3) + ids[j:j + m]
        sets.append(np.unique(audit._mix(h)))
    seeds = audit._mix(np.arange(1, 101, dtype=np.uint64) * np.uint64(8))
    sig = np.array([[audit._mix(s ^ seed).min() for seed in seeds] for s in sets], dtype=np.uint64)
    return norm, sets, sig


def test_fast_normalise_shingles_and_minhash_equal_the_plain_ones():
    import random

    import numpy as np

    rng = random.Random(3)
    soup = ["Caf\u00e9", "cafe\u0301", "\uff21\uff22", "\ufb01nance", "\u0130stanbul", "don\u2019t", "\u00a7\u00a012",
            "x_y", "a-b", "\u6cd5\u5f8b", "\u00bd", "\u2028", "\x1c", "\t", "\u00a0", "!?", "STRASSE", "stra\u00dfe",
            "12,5", "\U0001F600"] + [f"w{k}" for k in range(40)]
    docs = ["", "one", "two words", " ".join(soup)] + [
        " ".join(rng.choice(soup) for _ in range(rng.randint(0, 300))) for _ in range(150)]
    norm, sets, sig = _reference_signatures(docs)
    assert [audit.normalise(d) for d in docs] == norm
    fast_sets = audit.shingle_sets(docs)
    assert all(np.array_equal(a, b) for a, b in zip(fast_sets, sets)) and len(fast_sets) == len(sets)
    assert np.array_equal(audit.minhash(fast_sets), sig)
    hashes, offsets = audit.shingle_hashes(norm, block=7)  # words numbered across blocks of docs
    assert np.array_equal(audit.minhash_flat(hashes, offsets, block=64), sig)  # sets spread over many blocks


def test_bulk_normalise_word_ids_and_threaded_minhash_equal_the_plain_ones():
    """normalise_all (spaces collapsed over one buffer), word_ids (Arrow's dictionary encoding) and minhash_flat
    on several threads give what the one-text-at-a-time versions give."""
    import random

    import numpy as np

    rng = random.Random(5)
    soup = ["A", "b", "\u00e9t\u00e9", "\u2014", "--", " ", "\n", "\t", "\x00", "\x1f", "...", "_", "\u00a0", "\u3000",
            "\u6cd5", "\ufb01", "\u00df", "x1", "\U0001F600", "\ud800"] + [f"w{k}" for k in range(30)]
    docs = ["", " ", "\n\n", "...", "a", " a ", "\x00a\x00", "--a--b--"] + [
        "".join(rng.choice(soup) + rng.choice(["", " ", ""]) for _ in range(rng.randint(0, 200))) for _ in range(200)]
    norm, _, sig = _reference_signatures(docs)
    assert audit.normalise_all(docs) == [n.encode("utf-8", "surrogatepass") for n in norm]
    assert audit.normalise_all([]) == []
    ids_str, lengths_str = audit.word_ids(norm)
    ids_bytes, lengths_bytes = audit.word_ids(audit.normalise_all(docs))
    vocab: dict[str, int] = {}
    plain = [vocab.setdefault(w, len(vocab) + 1) for text in norm for w in text.split()]
    assert ids_str.tolist() == ids_bytes.tolist() == plain
    assert lengths_str.tolist() == lengths_bytes.tolist() == [len(n.split()) for n in norm]
    with pytest.raises(ValueError):
        audit.word_ids(["a  b"])
    hashes, offsets = audit.shingle_hashes(audit.normalise_all(docs), block=5)
    one = audit.minhash_flat(hashes, offsets, block=256, threads=1)
    assert np.array_equal(one, sig) and np.array_equal(audit.minhash_flat(hashes, offsets, block=256, threads=3), sig)


def test_jaccard_check_with_signatures_made_beside_it_equals_the_plain_one():
    import numpy as np

    rows = clean_rows()
    near = dict(rows[1], id="law-stackexchange-qa-9001", split="test")
    near["answer"] = near["answer"] + " one more word"
    rows = [dict(r, _file=r["split"], _line=n) for n, r in enumerate(rows + [near], 1)]
    codes = np.array([SPLITS.index(r["_file"]) for r in rows], np.int8)
    normalised = audit.normalise_all([audit.doc_of(r) for r in rows])
    hashes, offsets = audit.shingle_hashes(normalised)
    signed = (hashes, offsets, audit.minhash_flat(hashes, offsets), 0.0)
    plain, beside = audit.check_jaccard(rows, codes), audit.check_jaccard(rows, codes, signed=signed)
    assert plain["status"] == "LEAK" and plain["count"] == 1
    assert {k: v for k, v in plain.items() if k != "seconds"} == {k: v for k, v in beside.items() if k != "seconds"}


def test_word_counts_equal_str_split():
    import random

    rng = random.Random(11)
    soup = ["a", "bb", " ", "\n", "\t", "\x1c", "\x1f", "\x85", "\u00a0", "\u2028", "\u3000", "\u00e9", "\U0001F600",
            "\x00", ".", "\ud800", "\u200b", "\r\n"]
    texts = ["", " ", "a", " a ", "\x1ca\x1d", "\u00a0"] + [
        "".join(rng.choice(soup) for _ in range(rng.randint(0, 80))) for _ in range(2000)]
    assert audit.word_counts(texts).tolist() == [len(t.split()) for t in texts]
    assert audit.word_counts([]).tolist() == []
