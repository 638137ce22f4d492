"""Synthetic Q&A generation (DESIGN.md, flow step 7; "The three generation prompts").

Pure parts: the three prompt builders, the list parser, the reward-response parsers (both known shapes, a
single `reward:x` score, and the judge's JSON), the `ATTR=VALUE` threshold parser and the gating decision.
The loop, `grow_train`, samples unused real train rows (seeded, without replacement), asks the generation model
for titles / question paraphrases / answer paraphrases, re-asks a wrong count with a new seed (a new cache key)
a bounded number of times, scores pair k (title k, question k, answer k) with the reward model, keeps pairs above
the thresholds, runs them through the caller's clean/filter stages and dedup against every existing row, and
repeats until: target_reached, max_rounds, budget, no_progress (`patience` empty rounds in a row) or
sources_exhausted. Every LLM call goes through one `llm.LLMClient`, so a rerun after a crash is answered from the
response cache and, as the loop orders everything by the seeded sample and never by arrival, ends with
identical rows.
"""
from __future__ import annotations

import asyncio
import contextlib
import json
import math
import re
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable
from urllib.parse import urlparse

import numpy as np
import pandas as pd

import llm
from outputs import atomic_write
from records import COLUMNS, conform, empty_frame, synthetic_id

DEFAULT_ENDPOINT = "https://integrate.api.nvidia.com/v1"
DEFAULT_MODEL = "nvidia/nemotron-4-340b-instruct"
DEFAULT_REWARD_MODEL = "nvidia/nemotron-4-340b-reward"
ATTRIBUTES = ["helpfulness", "correctness", "coherence", "complexity", "verbosity"]
DEFAULT_THRESHOLDS = {"helpfulness": 2.0}
REWARD_MODES = ("reward", "judge", "none")
STOP_REASONS = ("target_reached", "max_rounds", "budget", "no_progress", "sources_exhausted")
KINDS = ("title", "question", "answer")


class SdgError(RuntimeError):
    """A configuration or endpoint problem that stops SDG with one clear line."""


class NotARewardModel(SdgError):
    pass


# ---- prompts ----------------------------------------------------------------------------------------------------
def _bullets(n: int) -> str:
    return (f'Write exactly {n} lines, one item per line, each starting with "* ", and nothing else: '
            f"no introduction, no numbering, no closing remarks. Exactly {n} items.")


def _message(document: str, instruction: str) -> list[dict]:
    return [{"role": "user", "content": f"TEXT:\n{document.strip()}\n\n{instruction}"}]


def title_prompt(answer: str, n: int) -> list[dict]:
    """Questions the answer text answers; they become titles."""
    return _message(answer, (
        f"Write exactly {n} questions that the text above answers. Each question must be relevant to the text "
        f'and answerable from it, must not mention "the text", must be a complete sentence ending in "?", and '
        f"must be concise. " + _bullets(n)))


def question_prompt(question: str, n: int) -> list[dict]:
    return _message(question, (
        f"Paraphrase the question above into exactly {n} variants. Each variant must be shorter than the "
        f"original, factually faithful to it and relevant. " + _bullets(n)))


def answer_prompt(answer: str, n: int) -> list[dict]:
    return _message(answer, (
        f"Paraphrase the answer above into exactly {n} variants. Each variant must be shorter than the "
        f"original, factually faithful to it and relevant. " + _bullets(n)))


PROMPTS = {"title": (title_prompt, "answer"), "question": (question_prompt, "question"),
           "answer": (answer_prompt, "answer")}


def reward_messages(title: str, question: str, answer: str) -> list[dict]:
    return [{"role": "user", "content": f"{title}\n\n{question}"}, {"role": "assistant", "content": answer}]


def judge_prompt(title: str, question: str, answer: str) -> list[dict]:
    keys = ", ".join(ATTRIBUTES)
    return [{"role": "user", "content": (
        "You rate answers to legal questions.\n\n"
        f"QUESTION TITLE: {title}\n\nQUESTION:\n{question}\n\nANSWER:\n{answer}\n\n"
        f"Rate the answer on five attributes, each an integer from 0 (worst) to 4 (best): {keys}. "
        "(complexity: intellectual depth needed to write it; verbosity: amount of detail relative to what was "
        'asked.) Return only a JSON object, e.g. {"helpfulness": 3, "correctness": 3, "coherence": 4, '
        '"complexity": 2, "verbosity": 2}.')}]


# ---- parsing ----------------------------------------------------------------------------------------------------
@dataclass
class ParseResult:
    items: list[str]
    ok: bool
    reason: str | None
    raw: str


_BULLET = re.compile(r"^\s*(?:[*\-\u2022+]\s+|\d{1,3}[.)]\s+|\(\d{1,3}\)\s+|\*\*\d{1,3}[.)]\*\*\s+)(.*)$")
_LABEL = re.compile(r"^(?:question|paraphrase|variant|answer|title|item|option)\s*\d*\s*[:.\-\u2013]\s*", re.I)


def _clean_item(text: str) -> str:
    s = text.strip()
    s = re.sub(r"\*\*|__", "", s)
    s = _LABEL.sub("", s).strip()
    if len(s) >= 2 and s[0] == s[-1] and s[0] in "\"'\u201c":
        s = s[1:-1]
    if len(s) >= 2 and s[0] == "\u201c" and s[-1] == "\u201d":
        s = s[1:-1]
    return re.sub(r"\s+", " ", s).strip()


def parse_items(text: str | None, n: int | None = None) -> ParseResult:
    """Items from a model's list answer: `* `, `- `, `1.`/`1)`, bold markers; preamble and epilogue lines ignored;
    wrapped continuation lines joined. ok only when there are items (and exactly n when n is given)."""
    raw = text or ""
    items: list[str] = []
    current: list[str] | None = None
    after_blank = False
    for line in raw.replace("\r\n", "\n").split("\n"):
        if not line.strip():
            after_blank = True
            continue
        m = _BULLET.match(line)
        if m and m.group(1).strip():
            if current is not None:
                items.append(" ".join(current))
            current = [m.group(1)]
        elif current is not None and not after_blank:
            current.append(line.strip())          # a wrapped continuation of the current item
        elif current is not None:                 # text after a blank line: an epilogue, the item is over
            items.append(" ".join(current))
            current = None
        after_blank = False
    if current is not None:
        items.append(" ".join(current))
    items = [c for c in (_clean_item(i) for i in items) if c]
    if not items and n:
        # no markers at all: accept exactly n plain lines when none of them looks like a preamble
        plain = [_clean_item(line) for line in raw.split("\n") if line.strip()]
        if len(plain) == n and not any(p.endswith(":") for p in plain):
            items = plain
    if not items:
        return ParseResult([], False, "no list items found", raw)
    if n is not None and len(items) != n:
        return ParseResult(items, False, f"expected {n} items, got {len(items)}", raw)
    return ParseResult(items, True, None, raw)


def shorten(text, limit: int = 300) -> str:
    s = text if isinstance(text, str) else json.dumps(text, ensure_ascii=False, default=str)
    s = re.sub(r"\s+", " ", s).strip()
    return s if len(s) <= limit else s[:limit - 3] + "..."


_PAIR = re.compile(r"^\s*([A-Za-z_][\w\-]*)\s*[:=]\s*(-?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?)\s*$")


def parse_reward_response(data: dict | None) -> dict[str, float]:
    """Attribute scores from a reward model's chat completion, in either known shape:
    choices[0].logprobs.content = [{token: attr, logprob: score}, ...] (Nemotron-4-340B-Reward), or
    choices[0].message.content = "helpfulness:3.1,correctness:3.2,..." (or "reward:-3.5").
    Anything else raises NotARewardModel naming what came back (shortened)."""
    try:
        choice = data["choices"][0]
    except (KeyError, IndexError, TypeError):
        raise NotARewardModel("the reward model endpoint did not return reward scores: "
                              + shorten(data)) from None
    logprobs = (choice.get("logprobs") or {}).get("content") if isinstance(choice.get("logprobs"), dict) else None
    if isinstance(logprobs, list) and logprobs:
        scores = {}
        for entry in logprobs:
            if not isinstance(entry, dict):
                break
            token, value = entry.get("token"), entry.get("logprob")
            if not isinstance(token, str) or not isinstance(value, (int, float)) or not re.fullmatch(r"[\w\-]+",
                                                                                                      token.strip()):
                break
            scores[token.strip()] = float(value)
        else:
            if scores:
                return scores
    content = ((choice.get("message") or {}).get("content") or "") if isinstance(choice, dict) else ""
    if content.strip():
        pairs = [_PAIR.match(p) for p in content.strip().split(",")]
        if all(pairs):
            return {m.group(1): float(m.group(2)) for m in pairs}
    shown = content if content.strip() else choice
    raise NotARewardModel("the reward model endpoint did not return reward scores: " + shorten(shown))


def parse_judge(text: str | None) -> dict[str, float]:
    """The judge's JSON ratings (five attributes, 0-4). Raises ValueError with a reason."""
    raw = text or ""
    m = re.search(r"\{.*?\}", raw, re.S)
    if not m:
        raise ValueError("no JSON object in judge answer")
    try:
        obj = json.loads(m.group(0))
    except ValueError:
        raise ValueError("invalid JSON in judge answer") from None
    out = {}
    for a in ATTRIBUTES:
        v = obj.get(a) if isinstance(obj, dict) else None
        if not isinstance(v, (int, float)) or isinstance(v, bool) or not 0 <= v <= 4:
            raise ValueError(f"judge answer lacks a 0-4 {a}")
        out[a] = float(v)
    return out


def parse_thresholds(specs: list[str] | None) -> dict[str, float]:
    """`ATTR=VALUE` strings (repeatable flag) -> {attr: minimum}; default helpfulness=2.0."""
    if not specs:
        return dict(DEFAULT_THRESHOLDS)
    out = {}
    for spec in specs:
        for part in str(spec).split(","):
            if not part.strip():
                continue
            name, sep, value = part.partition("=")
            try:
                if not sep or not name.strip():
                    raise ValueError
                out[name.strip()] = float(value)
            except ValueError:
                raise SdgError(f"--reward-min {part!r}: expected ATTR=VALUE, e.g. helpfulness=2.0") from None
    return out


def passes(scores: dict[str, float], thresholds: dict[str, float]) -> bool:
    missing = [a for a in thresholds if a not in scores]
    if missing:
        raise SdgError(f"--reward-min names {', '.join(missing)} but the reward model returned only "
                       f"{', '.join(scores) or 'nothing'}; pass e.g. --reward-min {next(iter(scores), 'reward')}=0")
    return all(scores[a] >= v for a, v in thresholds.items())


def round_half_up(x: float) -> int:
    return int(math.floor(x + 0.5))


def score_of(scores: dict[str, float]) -> int:
    """question_score/answer_score of a synthetic row: helpfulness (or a single reward) rounded to nearest."""
    for a in ("helpfulness", "reward"):
        if a in scores:
            return round_half_up(scores[a])
    return 0


# ---- configuration ----------------------------------------------------------------------------------------------
@dataclass
class SdgConfig:
    endpoint: str | None = DEFAULT_ENDPOINT
    model: str | None = DEFAULT_MODEL
    reward_model: str | None = DEFAULT_REWARD_MODEL
    reward_mode: str = "reward"
    thresholds: dict = field(default_factory=lambda: dict(DEFAULT_THRESHOLDS))
    n_variants: int = 3
    rounds: int | None = None          # None: 20 with a target size, else 1 (the tutorial's default)
    ratio: float | None = None         # sources per round as a fraction of real train rows (cap with a target)
    target_size: int | None = None
    api_key: str | None = None
    api_timeout: float = 120.0
    max_concurrency: int = 32
    rpm: float | None = None
    max_requests: int | None = None
    max_tokens: int | None = None
    patience: int = 1
    cache_dir: str = "data/cache"
    seed: int = 42                     # sampling seed
    gen_seed: int = 1234               # generation parameters (the tutorial's)
    top_p: float = 0.7
    gen_max_tokens: int = 1024
    max_reasks: int = 2
    progress: bool = True

    def max_rounds(self) -> int:
        if self.rounds is not None:
            return self.rounds
        return 20 if self.target_size else 1

    def public(self) -> dict:
        d = asdict(self)
        d.pop("api_key", None)
        return d


def add_sdg_arguments(group) -> None:
    """The SDG flags (the tutorial's plus ours) on an argparse parser or argument group."""
    g = group
    g.add_argument("--synth-gen-endpoint", default=DEFAULT_ENDPOINT,
                   help='OpenAI-compatible endpoint for generation and reward calls ("" disables SDG)')
    g.add_argument("--synth-gen-model", default=DEFAULT_MODEL, help="generation model")
    g.add_argument("--synth-gen-rounds", type=int, default=None,
                   help="most SDG rounds (default: 20 with --target-size, else 1)")
    g.add_argument("--synth-gen-ratio", type=float, default=None,
                   help="sources per round as a fraction of the real train rows (a cap with --target-size; "
                        "0.001 without one)")
    g.add_argument("--synth-n-variants", type=int, default=3, help="variants asked per prompt (pairs per source)")
    g.add_argument("--target-size", type=int, default=None, help="grow train to this many rows")
    g.add_argument("--api-key", default=None, help="API key (default: $NVIDIA_API_KEY, then $OPENAI_API_KEY)")
    g.add_argument("--api-timeout", type=float, default=120.0, help="seconds per LLM request")
    g.add_argument("--reward-model", default=DEFAULT_REWARD_MODEL, help="reward model (--reward-mode reward)")
    g.add_argument("--reward-min", action="append", default=None, metavar="ATTR=VALUE",
                   help="keep pairs with ATTR >= VALUE (repeatable; default helpfulness=2.0)")
    g.add_argument("--reward-mode", choices=REWARD_MODES, default="reward",
                   help="reward: a reward model; judge: the generation model rates 0-4 as JSON; none: keep all")
    g.add_argument("--max-concurrency", type=int, default=32, help="ceiling of the adaptive concurrency limit")
    g.add_argument("--rpm", type=float, default=None, help="cap on requests per minute")
    g.add_argument("--max-requests", type=int, default=None, help="budget: HTTP requests (stop reason 'budget')")
    g.add_argument("--max-tokens", type=int, default=None, help="budget: prompt+completion tokens")
    g.add_argument("--patience", type=int, default=1, help="stop after this many rounds in a row that added nothing")
    g.add_argument("--cache-dir", default="data/cache", help="LLM response cache (SQLite)")


def sdg_config_from_args(args) -> SdgConfig:
    ratio = args.synth_gen_ratio
    return SdgConfig(
        endpoint=args.synth_gen_endpoint or None, model=args.synth_gen_model or None,
        reward_model=args.reward_model or None, reward_mode=args.reward_mode,
        thresholds=parse_thresholds(args.reward_min), n_variants=args.synth_n_variants,
        rounds=args.synth_gen_rounds, ratio=ratio, target_size=args.target_size, api_key=args.api_key,
        api_timeout=args.api_timeout, max_concurrency=args.max_concurrency, rpm=args.rpm,
        max_requests=args.max_requests, max_tokens=args.max_tokens, patience=args.patience,
        cache_dir=args.cache_dir, seed=getattr(args, "seed", 42),
        progress=not getattr(args, "quiet", False))


def sdg_gate(cfg: SdgConfig) -> tuple[bool, str | None]:
    """(run?, why not) — as the tutorial: no endpoint/model: skip; the NVIDIA endpoint without a key: skip naming
    NVIDIA_API_KEY; a localhost endpoint needs no key."""
    if not cfg.endpoint or not cfg.model:
        return False, "synthetic data generation skipped: no --synth-gen-endpoint / --synth-gen-model"
    if cfg.reward_mode not in REWARD_MODES:
        return False, f"synthetic data generation skipped: unknown --reward-mode {cfg.reward_mode!r}"
    if cfg.reward_mode == "reward" and not cfg.reward_model:
        return False, ("synthetic data generation skipped: no --reward-model "
                       "(use --reward-mode judge or --reward-mode none without one)")
    if cfg.n_variants < 1:
        return False, "synthetic data generation skipped: --synth-n-variants must be at least 1"
    if llm.is_local_url(cfg.endpoint) or llm.resolve_api_key(cfg.api_key):
        return True, None
    host = (urlparse(cfg.endpoint).hostname or cfg.endpoint)
    if host.endswith("nvidia.com"):
        return False, ("synthetic data generation skipped: no API key for the NVIDIA endpoint; "
                       "set NVIDIA_API_KEY (or pass --api-key)")
    return False, (f"synthetic data generation skipped: no API key for {host}; "
                   "set --api-key, NVIDIA_API_KEY or OPENAI_API_KEY")


# ---- the loop -----------------------------------------------------------------------------------------------------
class _Round:
    def __init__(self, client: llm.LLMClient, cfg: SdgConfig, round_no: int, bar):
        self.client, self.cfg, self.round_no, self.bar = client, cfg, round_no, bar
        self.failures: dict[int, list[dict]] = {}
        self.counts = {"pairs_generated": 0, "parse_failures": 0, "call_failures": 0, "reasks": 0,
                       "below_threshold": 0, "scored": 0}
        self.accepted = 0
        self.scores: dict[int, list[tuple[dict, bool]]] = {}  # per source index: (scores, passed threshold)
        self.t0 = time.monotonic()
        self.req0 = client.stats.requests
        self._last_post = 0.0

    def _fail(self, idx: int, row, prompt: str, kind: str, reason: str, raw: str = "") -> None:
        self.failures.setdefault(idx, []).append(
            {"round": self.round_no, "source_id": row["id"], "prompt": prompt, "kind": kind,
             "reason": reason, "raw": raw})
        self.counts["parse_failures" if kind == "parse" else "call_failures"] += 1

    async def _ask_list(self, idx: int, row, prompt: str) -> list[str] | None:
        build, column = PROMPTS[prompt]
        messages = build(str(row[column]), self.cfg.n_variants)
        last = None
        for attempt in range(self.cfg.max_reasks + 1):
            if attempt:
                self.counts["reasks"] += 1
            res = await self.client.chat(self.cfg.model, messages, top_p=self.cfg.top_p,
                                         max_tokens=self.cfg.gen_max_tokens, seed=self.cfg.gen_seed + attempt)
            if not res.ok:
                self._fail(idx, row, prompt, "call", res.reason or "failed")
                return None
            last = parse_items(res.content, self.cfg.n_variants)
            if last.ok:
                return last.items
        self._fail(idx, row, prompt, "parse",
                   f"{last.reason} (after {self.cfg.max_reasks + 1} tries)", self.client.scrub(last.raw))
        return None

    async def _score(self, idx: int, row, title: str, question: str, answer: str) -> dict | None:
        mode = self.cfg.reward_mode
        if mode == "none":
            return {}
        if mode == "reward":
            res = await self.client.chat(self.cfg.reward_model, reward_messages(title, question, answer))
            if not res.ok:
                self._fail(idx, row, "reward", "call", res.reason or "failed")
                return None
            return parse_reward_response(res.data)   # NotARewardModel stops the run
        messages = judge_prompt(title, question, answer)
        reason, raw = "failed", ""
        for attempt in range(self.cfg.max_reasks + 1):
            if attempt:
                self.counts["reasks"] += 1
            res = await self.client.chat(self.cfg.model, messages, top_p=self.cfg.top_p, max_tokens=256,
                                         seed=self.cfg.gen_seed + attempt)
            if not res.ok:
                self._fail(idx, row, "judge", "call", res.reason or "failed")
                return None
            try:
                return parse_judge(res.content)
            except ValueError as e:
                reason, raw = str(e), res.content
        self._fail(idx, row, "judge", "parse", f"{reason} (after {self.cfg.max_reasks + 1} tries)",
                   self.client.scrub(raw))
        return None

    async def source(self, idx: int, row) -> list[dict]:
        lists = await asyncio.gather(*(self._ask_list(idx, row, p) for p in KINDS))
        if any(v is None for v in lists):
            return []
        titles, questions, answers = lists
        self.counts["pairs_generated"] += len(titles)
        scored = await asyncio.gather(*(self._score(idx, row, t, q, a)
                                        for t, q, a in zip(titles, questions, answers)))
        out = []
        for k, (t, q, a, scores) in enumerate(zip(titles, questions, answers, scored)):
            if scores is None:
                continue
            self.counts["scored"] += 1
            passed = self.cfg.reward_mode == "none" or passes(scores, self.cfg.thresholds)
            self.scores.setdefault(idx, []).append((scores, passed))
            if not passed:
                self.counts["below_threshold"] += 1
                continue
            s = score_of(scores)
            out.append({"id": synthetic_id(row["id"], self.round_no, k), "source_id": row["id"],
                        "title": t, "question": q, "answer": a, "question_score": s, "answer_score": s,
                        "tags": row["tags"], "link": row["link"], "license": row["license"],
                        "file_name": row["file_name"], "split": "train", "synthetic": True,
                        "round": self.round_no, "reward": json.dumps(scores, sort_keys=True)})
        return out

    def tick(self, n_rows: int) -> None:
        self.accepted += n_rows
        if self.bar is None:
            return
        self.bar.update(1)
        now = time.monotonic()
        if now - self._last_post > 0.5:
            self._last_post = now
            rate = (self.client.stats.requests - self.req0) / max(1e-6, now - self.t0)
            self.bar.set_postfix(accepted=self.accepted, req_s=f"{rate:.0f}", conc=self.client.concurrency,
                                 refresh=False)

    async def run(self, batch: pd.DataFrame) -> tuple[list[list[dict]], dict]:
        rows = batch.to_dict("records")
        gate = asyncio.Semaphore(max(8, 2 * self.client.limiter.ceiling))  # sources in flight

        async def one(i, row):
            async with gate:
                out = await self.source(i, row)
            self.tick(len(out))
            return out
        async with self.client.session():
            results = await asyncio.gather(*(one(i, r) for i, r in enumerate(rows)))
        return results, self.counts


def _frame(rows: list[dict]) -> pd.DataFrame:
    if not rows:
        return empty_frame()
    return conform(pd.DataFrame(rows, columns=COLUMNS))


def grow_train(records: pd.DataFrame, cfg: SdgConfig,
               curate: Callable[[pd.DataFrame], tuple[pd.DataFrame, dict]],
               dedup_against: Callable[[pd.DataFrame, pd.DataFrame], tuple[pd.DataFrame, dict]],
               failures_path: str | Path | None, client: llm.LLMClient | None = None
               ) -> tuple[pd.DataFrame, dict]:
    """Grow the train split with synthetic pairs. `records` are all rows of all splits (the record contract);
    returns (new synthetic train rows, the SDG report section). `curate(rows)` -> (kept rows, drop counts) runs the
    clean/filter stages; `dedup_against(new, existing)` -> (new rows that duplicate nothing, stats).
    Raises llm.AuthError (401/403) and SdgError/NotARewardModel (a clear one-line message)."""
    report: dict = {"ran": False, "config": cfg.public()}
    run_it, why = sdg_gate(cfg)
    if not run_it:
        report["skipped"] = why
        return empty_frame(), report
    own_client = client is None
    if own_client:
        client = llm.client_from_config(cfg)
    try:
        with contextlib.ExitStack() as stack:
            # written to a temp file beside it and renamed when the loop ends: a kill or Ctrl-C leaves the previous
            # file (or none), never a part-written one; a rerun (answered from the cache) writes the same bytes
            failures_file = (stack.enter_context(atomic_write(Path(failures_path), "w"))
                             if failures_path is not None else None)
            new_rows, report = _loop(records, cfg, curate, dedup_against, client, failures_file, report)
            report["failures_file"] = str(failures_path) if failures_path is not None else None
        return new_rows, report
    finally:
        if own_client:
            client.close()


def _loop(records, cfg, curate, dedup_against, client, failures_file, report):
    train_mask = records["split"] == "train"
    train = records[train_mask]
    synth = train["synthetic"].astype(bool)
    used = set(train.loc[synth, "source_id"])
    real = train[~synth]
    candidates = real[~real["id"].isin(used)].sort_values("id", kind="mergesort").reset_index(drop=True)
    order = np.random.default_rng(cfg.seed).permutation(len(candidates))
    n_real = len(real)
    size_before = int(train_mask.sum())
    first_round = int(records.loc[records["synthetic"].astype(bool), "round"].max()) + 1 if synth.any() else 1
    target = cfg.target_size
    max_rounds = cfg.max_rounds()
    report.update({"ran": True, "train_size_before": size_before, "target_size": target, "rounds": [],
                   "reward": {"mode": cfg.reward_mode, "model": cfg.reward_model if cfg.reward_mode == "reward"
                              else (cfg.model if cfg.reward_mode == "judge" else None),
                              "thresholds": cfg.thresholds if cfg.reward_mode != "none" else {}}})
    new_parts: list[pd.DataFrame] = []
    # the thresholded attribute's score of every scored pair, for the card's accepted-vs-rejected plot
    reward_attribute = next(iter(cfg.thresholds), "helpfulness")
    reward_scores: dict[str, list[float]] = {"accepted": [], "rejected": []}
    added = 0
    pos = 0
    sources_used = 0
    empty_rounds = 0
    stop = None
    failure_reasons: dict[str, int] = {}
    round_no = first_round - 1
    t_start = time.monotonic()
    while True:
        size = size_before + added
        if target is not None and size >= target:
            stop = "target_reached"
            break
        if round_no - first_round + 1 >= max_rounds:
            stop = "max_rounds"
            break
        if client.budget_hit:
            stop = "budget"
            break
        if pos >= len(candidates):
            stop = "sources_exhausted"
            break
        round_no += 1
        if target is not None:
            # measured yield (+5% margin) once known; a prior without margin before: overshoot is paid for
            est, margin = ((added / sources_used), 1.05) if sources_used and added else (cfg.n_variants * 0.5, 1.0)
            n_src = math.ceil((target - size) / max(est, 0.05) * margin)
            if cfg.ratio:
                n_src = min(n_src, max(1, math.ceil(cfg.ratio * n_real)))
        else:
            n_src = max(1, math.ceil((cfg.ratio if cfg.ratio else 0.001) * n_real))
        n_src = max(1, min(n_src, len(candidates) - pos))
        batch = candidates.iloc[order[pos:pos + n_src]].reset_index(drop=True)
        pos += n_src
        sources_used += n_src
        t0 = time.monotonic()
        req0, ret0 = client.stats.requests, client.stats.retries
        bar = None
        if cfg.progress:
            from tqdm import tqdm
            bar = tqdm(total=n_src, desc=f"SDG round {round_no}", unit="src", leave=True)
        rnd = _Round(client, cfg, round_no, bar)
        try:
            results, counts = client.run(lambda: rnd.run(batch))
        finally:
            if bar is not None:
                bar.set_postfix(accepted=rnd.accepted, conc=client.concurrency, refresh=False)
                bar.close()
        llm_seconds = time.monotonic() - t0
        rows = [r for per_source in results for r in per_source]   # seeded sample order, k order: deterministic
        for i in sorted(rnd.scores):
            for scores, passed in rnd.scores[i]:
                if reward_attribute in scores:
                    reward_scores["accepted" if passed else "rejected"].append(round(scores[reward_attribute], 4))
        # within a source, failures arrive in response order, which a rerun served from the cache changes:
        # order them by prompt instead, so sdg_failures.jsonl is the same bytes either way
        prompt_order = {p: k for k, p in enumerate((*KINDS, "reward", "judge"))}
        failures = [f for i in sorted(rnd.failures)
                    for f in sorted(rnd.failures[i], key=lambda f: (prompt_order.get(f["prompt"], 99), f["kind"],
                                                                    f["reason"], f["raw"]))]
        for f in failures:
            failure_reasons[f["reason"]] = failure_reasons.get(f["reason"], 0) + 1
            if failures_file:
                failures_file.write(json.dumps(f, ensure_ascii=False) + "\n")
        if failures_file:
            failures_file.flush()
        scored_rows = _frame(rows)
        kept, curate_drops = curate(scored_rows) if len(scored_rows) else (scored_rows, {})
        existing = pd.concat([records, *new_parts], ignore_index=True) if new_parts else records
        fresh, dedup_stats = dedup_against(kept, existing) if len(kept) else (kept, {})
        fresh = conform(fresh)
        trimmed = 0
        if target is not None and len(fresh) > target - size:
            trimmed = len(fresh) - (target - size)
            fresh = fresh.iloc[:target - size]
        new_parts.append(fresh)
        added += len(fresh)
        report["rounds"].append({
            "round": round_no, "sources": n_src, **counts, "above_threshold": len(rows),
            "curate_dropped": dict(curate_drops), "dedup_dropped": len(kept) - len(fresh) - trimmed,
            "dedup": dedup_stats, "trimmed": trimmed, "accepted": len(fresh), "train_size": size_before + added,
            "requests": client.stats.requests - req0, "retries": client.stats.retries - ret0,
            "llm_seconds": round(llm_seconds, 3),
            "requests_per_s": round((client.stats.requests - req0) / max(llm_seconds, 1e-6), 1),
            "concurrency": client.concurrency})
        if client.budget_hit and not (target is not None and size_before + added >= target):
            stop = "budget"
            break
        if len(fresh) == 0:
            empty_rounds += 1
            if empty_rounds >= max(1, cfg.patience):
                stop = "no_progress"
                if target is not None and size_before + added >= target:
                    stop = "target_reached"
                break
        else:
            empty_rounds = 0
    new_rows = pd.concat(new_parts, ignore_index=True) if new_parts else empty_frame()
    new_rows = conform(new_rows)
    report.update({"stop_reason": stop, "added": int(len(new_rows)), "train_size_after": size_before + added,
                   "sources_used": sources_used, "sources_available": int(len(candidates)),
                   "failures": dict(sorted(failure_reasons.items())),
                   "failures_file": None,   # set by grow_train (the final name, not the temp file's)
                   "seconds": round(time.monotonic() - t_start, 3), "llm": client.report(),
                   "reward_scores": {"attribute": reward_attribute, **reward_scores}})
    return new_rows, report


# ---- the plan, for --dry-run --------------------------------------------------------------------------------------
def describe_plan(cfg: SdgConfig, questions: int | None, train_ratio: float) -> str:
    """What SDG would do and about how many LLM calls it would make (lines for --dry-run). `questions`: questions
    in the input if known; `train_ratio`: the train share of the split."""
    import math

    will_run, why = sdg_gate(cfg)
    if not will_run:
        return why or "skipped"
    n = cfg.n_variants
    reward_calls = 0 if cfg.reward_mode == "none" else n
    per_source = len(PROMPTS) + reward_calls
    lines = [f"{cfg.model} at {cfg.endpoint}; reward: {cfg.reward_mode}"
             + (f" ({cfg.reward_model})" if cfg.reward_mode == "reward" else "") + f"; up to {cfg.max_rounds()} round(s)",
             f"LLM calls: {len(PROMPTS)} generation + {reward_calls} reward call(s) per source row per "
             f"round; each source row yields up to {n} pair(s)"]
    train_max = math.floor(questions * train_ratio) if questions is not None else None
    if cfg.target_size:
        needed = cfg.target_size - (train_max or 0)
        if needed <= 0:
            lines.append(f"target {cfg.target_size:,} train rows: may already be met by the ~{train_max:,} real "
                         "train rows (known after curation)")
        else:
            best, likely = math.ceil(needed / n) * per_source, math.ceil(needed / (n * 0.5)) * per_source
            lines.append(f"target {cfg.target_size:,} train rows: at least {needed:,} synthetic rows"
                         + (f" (if all ~{train_max:,} real train rows survive curation)" if train_max is not None else "")
                         + f" -> about {best:,} LLM calls if every pair is accepted, {likely:,} if half are")
    elif train_max is not None:
        per_round = max(1, math.ceil((cfg.ratio or 0.001) * train_max))
        lines.append(f"no --target-size: {per_round:,} source row(s) per round -> about "
                     f"{per_round * per_source * cfg.max_rounds():,} LLM calls in {cfg.max_rounds()} round(s)")
    if cfg.max_requests:
        lines.append(f"budget: stops after {cfg.max_requests:,} HTTP requests (--max-requests)")
    lines.append(f"responses are cached in {cfg.cache_dir}: a rerun pays only for new calls")
    return "\n".join(lines)
