#!/usr/bin/env python3
"""Write a corpus of broken Law-StackExchange-shaped inputs, one file per kind of breakage, plus MANIFEST.json.

    python tests/data/make_bad_inputs.py [--out tests/data/bad] [--with-huge]

Each manifest entry says what the pipeline must do with the file:
  "error" - stop with one clear line naming the file (and position where it applies), no traceback,
            nothing (not even a partial file) left in the output dir;
  "skip"  - finish; the listed elements are counted as skipped with the listed reasons
            (`skip_reasons`: reason -> count); `records_ok` elements come out of the convert stage;
  "ok"    - finish; every element converts (`records_ok`), the noted hazard is handled (stripped, bounded).
Reason names follow docbuilder.py: "no_answer" (answers null/empty/missing), "malformed:<field>" (first bad
field; answer-level: "malformed:answers.body" / "malformed:answers.score"; a non-object element:
"malformed:element"), "duplicate_question_id" (the later occurrence is dropped).
Where a second behaviour is acceptable it is listed under `also_acceptable`.

The 10 MB body (huge_body.json) is not committed: tests build it with make_huge_body(path) (or pass
--with-huge). Everything here is deterministic; the texts are invented for this project.
"""
from __future__ import annotations

import argparse
import json
import os
import sys

BAD_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "bad")

_Q_SENTENCES = [
    "My landlord in Leeds kept part of my deposit after I moved out of the flat in March.",
    "He says the carpets needed a professional clean even though the inventory never mentioned them.",
    "I have photos from the day I left showing the rooms were clean and nothing was damaged.",
    "The deposit was never registered with a protection scheme as far as I can tell.",
    "I asked him in writing for an itemised list of deductions and he has not replied in three weeks.",
    "Can he keep the money, and what should I do next if he keeps ignoring me?",
]
_A_SENTENCES = [
    "A landlord may only deduct for damage beyond fair wear and tear, and he has to prove it.",
    "Without a signed check-in inventory it is hard for him to show the carpets were any cleaner before.",
    "If the deposit was not protected within the time limit you may also claim a penalty on top.",
    "Send a short letter before action giving him fourteen days to return the money.",
    "If he ignores it, a small claim is cheap and you do not need a lawyer for it.",
    "Keep copies of everything and note the dates of every message you send.",
]


def _html(sentences, k):
    """Two paragraphs of plain sentences (about 90 words), varied by k so bodies differ."""
    s = [x.replace("three", ("three", "four", "five", "six")[k % 4]) for x in sentences]
    return f"<p>{' '.join(s[:3])}</p>\n\n<p>{' '.join(s[3:])} (case {k})</p>\n"


def valid_record(qid: int, k: int = 0) -> dict:
    """A record in the exact source schema that passes the default filters (about 90/90 words, scores >= 0)."""
    return {
        "question_id": qid,
        "tags": ["tenancy", "security-deposit"],
        "score": 3 + k % 5,
        "license": "CC BY-SA 4.0",
        "link": f"https://law.stackexchange.com/questions/{qid}/can-my-landlord-keep-my-deposit-{k}",
        "question_title": f"Can my landlord keep my deposit for carpet cleaning? (variant {k})",
        "question_body": _html(_Q_SENTENCES, k),
        "answers": [
            {"answer_id": 900000 + qid * 10 + 1, "body": _html(_A_SENTENCES, k), "score": 5},
            {"answer_id": 900000 + qid * 10 + 2, "body": "<p>Talk to a local advice centre.</p>", "score": 1},
        ],
    }


def _dump(obj) -> bytes:
    return json.dumps(obj, ensure_ascii=False, indent=1).encode("utf-8")


def make_huge_body(path: str, mb: int = 10) -> None:
    """One otherwise valid record whose question_body is `mb` MB of HTML (plus two normal records)."""
    para = "<p>" + " ".join(_Q_SENTENCES) + "</p>\n"
    reps = mb * 1024 * 1024 // len(para) + 1
    rec = valid_record(500001, 1)
    rec["question_body"] = para * reps
    data = [valid_record(500000, 0), rec, valid_record(500002, 2)]
    with open(path, "wb") as fh:
        fh.write(_dump(data))


def build(out: str, with_huge: bool = False) -> list[dict]:
    os.makedirs(out, exist_ok=True)
    manifest: list[dict] = []

    def write(name, data: bytes, **entry):
        with open(os.path.join(out, name), "wb") as fh:
            fh.write(data)
        manifest.append({"file": name, **entry})

    # --- whole-file errors -------------------------------------------------------------------------------
    full = _dump([valid_record(100001, 0), valid_record(100002, 1), valid_record(100003, 2)])
    cut = full.index(b'"question_body"', len(full) // 2) + 40
    write("truncated_array.json", full[:cut],
          description="a JSON array cut off in the middle of the third element (download died)",
          outcome="error", error_hint="truncated / unexpected end of file, with byte position")
    write("not_an_array.json", _dump(valid_record(100010, 0)),
          description="top level is one object, not an array of questions",
          outcome="error", error_hint="expected a JSON array of questions")
    write("empty.json", b"", description="zero-byte file", outcome="error", error_hint="empty file")
    garbage = (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(range(256)) +
               b"<html><body>502 Bad Gateway</body></html>\n")
    write("garbage.bin", garbage, description="non-JSON bytes (binary header, then an HTML error page)",
          outcome="error", error_hint="not JSON, with byte position")
    write("html_error_page.json", b"<!DOCTYPE html>\n<html><head><title>429 Too Many Requests</title></head>"
          b"<body><h1>Too Many Requests</h1></body></html>\n",
          description="an HTML error page saved under the dump's name",
          outcome="error", error_hint="not JSON")
    write("trailing_garbage.json", _dump([valid_record(100020, 0)]) + b"\n}{ this is not json",
          description="a valid array followed by junk",
          outcome="error", error_hint="trailing data after the array, with position",
          also_acceptable="convert the array (1 record) and report the trailing data as a warning")

    # --- per-element problems: counted skips -----------------------------------------------------------
    recs = [valid_record(100100 + i, i) for i in range(8)]
    recs[0]["question_id"] = "abc"
    recs[1]["score"] = "5"
    recs[2]["tags"] = "tenancy,deposit"
    recs[3]["answers"] = {"answer_id": 1, "body": "<p>x</p>", "score": 1}
    recs[4]["answers"][0]["score"] = "high"
    recs[5]["question_body"] = 12345
    recs[6]["question_title"] = ["not", "a", "string"]
    # recs[7] stays valid
    write("wrong_field_types.json", _dump(recs),
          description="fields of the wrong JSON type: question_id str, score str, tags str, answers object, "
                      "answer score str, question_body int, question_title list; the last element is valid",
          outcome="skip", records_ok=1,
          skip_reasons={"malformed:question_id": 1, "malformed:score": 1, "malformed:tags": 1,
                        "malformed:answers": 1, "malformed:answers.score": 1, "malformed:question_body": 1,
                        "malformed:question_title": 1},
          also_acceptable="answer-level problems (a bad answer score) may skip just that answer and keep the "
                          "question if another answer is valid: then records_ok=2, no malformed:answers.score")

    recs = [valid_record(100200 + i, i) for i in range(6)]
    del recs[0]["question_title"]
    del recs[1]["question_body"]
    del recs[2]["answers"]
    del recs[3]["question_id"]
    del recs[4]["answers"][0]["body"]
    del recs[4]["answers"][1]["body"]
    write("missing_fields.json", _dump(recs),
          description="required fields missing: question_title, question_body, answers, question_id, "
                      "answers[].body (in every answer); the last element is valid",
          outcome="skip", records_ok=1,
          skip_reasons={"malformed:question_title": 1, "malformed:question_body": 1, "no_answer": 1,
                        "malformed:question_id": 1, "malformed:answers.body": 1},
          also_acceptable="a missing `answers` key counted as malformed:answers instead of no_answer")

    recs = [valid_record(100300 + i, i) for i in range(4)]
    recs[0]["answers"] = None
    recs[1]["answers"] = []
    recs[2]["answers"] = [None, recs[2]["answers"][0]]
    write("null_answers.json", _dump(recs),
          description="answers: null; answers: []; answers: [null, <valid answer>]; one valid element",
          outcome="skip", records_ok=1,
          skip_reasons={"no_answer": 2, "malformed:answers.body": 1},
          also_acceptable="answers: null counted as malformed:answers; the null answer alone dropped and the "
                          "[null, valid] element kept (then records_ok=2)")

    a = valid_record(100400, 0)
    b = valid_record(100400, 3)
    b["question_title"] = "A completely different question that reuses the same id"
    write("duplicate_question_id.json", _dump([a, valid_record(100401, 1), b]),
          description="two elements share question_id 100400 with different content",
          outcome="skip", records_ok=2, skip_reasons={"duplicate_question_id": 1},
          also_acceptable="keep the first occurrence, skip the later one (the expected rule)")

    write("array_of_non_objects.json", _dump([1, "question", None, [1, 2], valid_record(100500, 0)]),
          description="array elements that are not objects (int, str, null, list) and one valid element",
          outcome="skip", records_ok=1, skip_reasons={"malformed:element": 4})

    # --- hazards that must be handled without skipping ----------------------------------------------------
    rec = valid_record(100600, 0)
    depth = 10000
    inner = "<p>" + " ".join(_Q_SENTENCES) + "</p>"
    rec["question_body"] = "<div>" * depth + inner + "</div>" * depth
    write("deep_nesting.json", _dump([rec, valid_record(100601, 1)]),
          description=f"question_body nested {depth} levels of <div> around a normal paragraph",
          outcome="ok", records_ok=2,
          note="the HTML->text step must not recurse per level (no RecursionError) and must keep the text")

    recs = [valid_record(100700 + i, i) for i in range(4)]
    recs[0]["question_body"] = "<p>Broken \ud800 surrogate in the body.</p>" + recs[0]["question_body"]
    recs[1]["question_title"] = "Lone low surrogate \udc00 in the title"
    recs[2]["answers"][0]["body"] = "<p>Reversed pair \udc00\ud800 in an answer.</p>" + recs[2]["answers"][0]["body"]
    raw = json.dumps(recs, ensure_ascii=True, indent=1).encode("ascii")  # surrogates as \\udXXX escapes
    assert b"\\ud800" in raw
    write("invalid_surrogates.json", raw,
          description="lone / reversed UTF-16 surrogate escapes (\\ud800, \\udc00) in a body, a title and an "
                      "answer; one clean element",
          outcome="error", error_hint="invalid text (lone surrogate escape) naming the element and byte position",
          also_acceptable="skip the three elements (malformed:question_body, malformed:question_title, "
                          "malformed:answers.body; records_ok=1), or repair each lone surrogate to U+FFFD and "
                          "keep all 4; never a traceback or a crash while writing UTF-8 output")

    recs = [valid_record(100800 + i, i) for i in range(3)]
    recs[0]["question_body"] = recs[0]["question_body"].replace("Leeds", "Le\u0000eds\u0007")
    recs[1]["question_title"] = "Escape \u001b[31mred\u001b[0m and DEL \u007f in a title"
    recs[2]["answers"][0]["body"] = "<p>Form\u000cfeed and vertical\u000btab.</p>" + recs[2]["answers"][0]["body"]
    write("control_chars.json", json.dumps(recs, ensure_ascii=True, indent=1).encode("ascii"),
          description="JSON-escaped control characters (NUL, BEL, ESC, DEL, FF, VT) in body, title, answer",
          outcome="ok", records_ok=3,
          note="control characters (other than newline/tab) must not reach the output; NUL must not "
               "truncate the text")

    write("bom.json", b"\xef\xbb\xbf" + _dump([valid_record(100900 + i, i) for i in range(3)]),
          description="UTF-8 byte-order mark before an otherwise valid array of 3 elements",
          outcome="ok", records_ok=3, also_acceptable="error with a clear 'UTF-8 BOM' line (not preferred)")

    # --- the 10 MB body: generated at test time -----------------------------------------------------------
    entry = dict(description="one element whose question_body is 10 MB of HTML, between two normal elements",
                 outcome="skip", records_ok=2, stage="filter",
                 skip_reasons={"question word count above the maximum (filter stage; name per filters.py)": 1},
                 note="convert and clean must finish in bounded time and memory; the 10 MB row converts and "
                      "is then dropped by the word-count filter (3 rows in, 2 out)",
                 generated_at_test_time=True,
                 generator="tests/data/make_bad_inputs.py: make_huge_body(path) (or --with-huge)")
    if with_huge:
        make_huge_body(os.path.join(out, "huge_body.json"))
    manifest.append({"file": "huge_body.json", **entry})

    with open(os.path.join(out, "MANIFEST.json"), "w", encoding="utf-8") as fh:
        json.dump({"classes": {"error": "stop with one clear line naming the file; no traceback; no partial "
                                        "output file",
                               "skip": "finish; count skips per reason (skip_reasons); records_ok rows convert",
                               "ok": "finish; records_ok rows convert; the hazard is handled"},
                   "files": manifest}, fh, indent=1, ensure_ascii=False)
        fh.write("\n")
    return manifest


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", default=BAD_DIR, help="output directory (default: tests/data/bad/)")
    ap.add_argument("--with-huge", action="store_true", help="also write the 10 MB huge_body.json")
    args = ap.parse_args(argv)
    m = build(args.out, args.with_huge)
    print(f"wrote {len(m)} entries to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
