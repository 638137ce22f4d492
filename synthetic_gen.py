"""Synthetic Q&A generation (flow step 7: grow the train split; the README's "Synthetic data" section).

Pure parts: the three prompt builders, the reward-response parsers (both known shapes, a single `reward:x` score,
and the judge's JSON), the `ATTR=VALUE` threshold parser; the list parser and its gates live in `sdg_parse`.
`sdg_config_from_args` validates every SDG flag; `preflight` makes one generation and one reward (or judge) call
before any other stage and checks the answers' shapes. The loop, `grow_train`, samples unused real train rows
(seeded, without replacement), asks the generation model for titles / question paraphrases / answer paraphrases,
re-asks a rejected answer with a new seed (a new cache key) a bounded number of times, scores pair k (the k-th
accepted title, question and answer) with the reward model, keeps pairs above the thresholds, runs them through the caller's
clean/filter stages and dedup against every existing row (val/test at the leak thresholds), and repeats until one
stop decision says: target_reached, budget, no_progress (`patience` empty rounds in a row), max_rounds,
sources_exhausted or endpoint_error (the endpoint failed: the rows accepted so far are kept and returned). Every
LLM call goes through one `llm.LLMClient`, so a rerun after a crash is answered from the response cache and, as the
loop orders everything by the seeded sample and never by arrival, ends with identical rows.
"""
from __future__ import annotations

import asyncio
import contextlib
import json
import math
import os
import re
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable, Mapping
from urllib.parse import urlparse

import numpy as np
import pandas as pd

import llm
import structured
from filters import FilterConfig
from outputs import atomic_write
from records import COLUMNS, conform, empty_frame, synthetic_id
from sdg_parse import ParseResult, parse_items, parse_schema_items  # noqa: F401  (parse_items: this module's API)
from sdg_prompts import (PROMPT_KINDS, PROMPTS, answer_prompt, bullets, item_words, judge_prompt,  # noqa: F401
                         list_max_tokens, question_prompt, reward_messages, title_prompt)
from sites import LAW_SUBJECT

DEFAULT_ENDPOINT = "https://integrate.api.nvidia.com/v1"
DEFAULT_MODEL = "nvidia/nemotron-4-340b-instruct"
DEFAULT_REWARD_MODEL = "nvidia/nemotron-4-340b-reward"
ATTRIBUTES = list(structured.JUDGE_ATTRIBUTES)
DEFAULT_THRESHOLDS = {"helpfulness": 2.0}
REWARD_MODES = ("reward", "judge", "none")
STOP_REASONS = ("target_reached", "budget", "no_progress", "max_rounds", "sources_exhausted", "endpoint_error")
# a call that failed this way (after the client's retries) says the endpoint is down, not that one prompt is bad;
# this many in a row without a success in between stop SDG with stop_reason "endpoint_error"
ENDPOINT_FAILURE_PREFIXES = ("connection error", "timeout", "http 5", "http 429", "http 404", "invalid response")
ENDPOINT_FAILURES_IN_A_ROW = 12


class SdgError(RuntimeError):
    """A configuration or endpoint problem that stops SDG with one clear line."""


class NotARewardModel(SdgError):
    """The reward model endpoint answered in neither known reward shape."""


class RewardAttributeMissing(SdgError):
    """`--reward-min` names an attribute the reward model (or judge) does not return."""


class EndpointError(SdgError, llm.EndpointError):
    """The endpoint failed past the client's retries (unreachable, 5xx, unknown model): an llm.EndpointError found
    by SDG's own checks."""


# ---- reward parsing ---------------------------------------------------------------------------------------------
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
    """`ATTR=VALUE` strings (repeatable flag, or comma-separated) -> {attr: minimum}; default helpfulness=2.0.
    Raises ValueError("--reward-min: ...") on a malformed one."""
    if not specs:
        return dict(DEFAULT_THRESHOLDS)
    out = {}
    for spec in specs:
        for part in str(spec).split(","):
            if not part.strip():
                continue
            name, sep, value = part.partition("=")
            try:
                number = float(value) if sep and re.fullmatch(r"[\w\-]+", name.strip()) else math.nan
            except ValueError:
                number = math.nan
            if not math.isfinite(number):
                raise ValueError(f"--reward-min: {part.strip()!r} is not ATTR=VALUE (e.g. helpfulness=2.0)")
            out[name.strip()] = number
    return out


def passes(scores: dict[str, float], thresholds: dict[str, float]) -> bool:
    """Every thresholded attribute at or above its minimum; RewardAttributeMissing when one is not returned."""
    missing = [a for a in thresholds if a not in scores]
    if missing:
        raise RewardAttributeMissing(
            f"--reward-min names {', '.join(missing)} but the reward model returned only "
            f"{', '.join(scores) or 'nothing'}; pass e.g. --reward-min {next(iter(scores), 'reward')}=0")
    return all(scores[a] >= v for a, v in thresholds.items())


# ---- configuration ----------------------------------------------------------------------------------------------
@dataclass
class SdgConfig:
    """Every SDG setting; each default is written here once (argparse refers to these)."""
    endpoint: str | None = DEFAULT_ENDPOINT
    model: str | None = DEFAULT_MODEL
    reward_model: str | None = DEFAULT_REWARD_MODEL
    reward_mode: str = "reward"
    thresholds: dict = field(default_factory=lambda: dict(DEFAULT_THRESHOLDS))
    n_variants: int = 3
    rounds: int | None = None          # None: 20 with a target size, else 1 (the tutorial's default)
    ratio: float | None = None         # sources per round / real train rows (a cap with a target); 0 disables SDG
    target_size: int | None = None
    api_key: str | None = None
    api_timeout: float = 120.0
    max_concurrency: int = llm.DEFAULT_MAX_CONCURRENCY  # the client's ceiling
    rpm: float | None = None
    max_requests: int | None = None
    max_tokens: int | None = None
    patience: int = 1
    cache_dir: str = "data/cache"
    seed: int = 42                     # sampling seed
    gen_seed: int = 1234               # generation parameters (the tutorial's)
    top_p: float = 0.7
    gen_max_tokens: int | None = None  # None: per call, from its item count and word range (list_max_tokens)
    # the (least, most) words of a question or answer item: the filters' range (config.py passes --min-words and
    # --max-words); None: no range
    item_words: tuple | None = field(default_factory=lambda: FilterConfig().word_range())
    max_reasks: int = 2
    progress: bool = True
    domain: str = LAW_SUBJECT          # what the site's questions are, in the prompts (config.py: --domain or the site)
    batch: bool = False                # --batch: each round's calls go out through the Batch API
    batch_cancel: bool = False         # --batch-cancel: cancel the batches recorded in flight, then exit
    batch_max_requests: int = llm.batch_runner.DEFAULT_MAX_REQUESTS
    batch_max_bytes: int = llm.batch_runner.DEFAULT_MAX_BYTES
    batch_poll: float = llm.batch_runner.DEFAULT_POLL_SECONDS
    structured_output: str = "auto"    # --structured-output: auto | json-schema | grammar | off
    # the mode the loop uses and why: set by the preflight (choose_structured_output); None until then
    structured: structured.StructuredChoice | None = field(default=None, compare=False)

    # the tutorial's ratio (0.1% of the real rows per round) when there is no target size to steer by
    UNTARGETED_RATIO = 0.001
    ROUNDS_WITH_TARGET = 20

    def max_rounds(self) -> int:
        if self.rounds is not None:
            return self.rounds
        return self.ROUNDS_WITH_TARGET if self.target_size else 1

    def sources_per_round_cap(self, n_real: int) -> int | None:
        """The most source rows one round may use (None: no cap, the target size steers)."""
        ratio = self.ratio if self.ratio is not None else (None if self.target_size else self.UNTARGETED_RATIO)
        return None if ratio is None else max(1, math.ceil(ratio * n_real))

    def public(self) -> dict:
        d = asdict(self)
        d.pop("api_key", None)
        d["structured"] = self.structured.as_dict() if self.structured is not None else None
        return d

    def output_mode(self) -> str:
        """The constraint the loop's calls carry: the preflight's choice, else the flag (auto unresolved: off)."""
        if self.structured is not None:
            return self.structured.mode
        return self.structured_output if self.structured_output in structured.MODES else "off"


def add_sdg_arguments(group) -> None:
    """The SDG flags (the tutorial's plus ours) on an argparse parser or argument group."""
    g, d = group, SdgConfig
    g.add_argument("--synth-gen-endpoint", default=d.endpoint,
                   help='OpenAI-compatible endpoint for generation and reward calls ("" disables SDG)')
    g.add_argument("--synth-gen-model", default=d.model, help="generation model")
    g.add_argument("--synth-gen-rounds", type=int, default=None,
                   help=f"most SDG rounds (default: {d.ROUNDS_WITH_TARGET} with --target-size, else 1)")
    g.add_argument("--synth-gen-ratio", type=float, default=None,
                   help="sources per round as a fraction of the real train rows, 0-1 (0 disables SDG; a cap with "
                        f"--target-size; {d.UNTARGETED_RATIO} without one)")
    g.add_argument("--synth-n-variants", type=int, default=d.n_variants,
                   help="variants asked per prompt (pairs per source)")
    g.add_argument("--target-size", type=int, default=None, help="grow train to this many rows")
    g.add_argument("--api-key", default=None,
                   help="API key for --synth-gen-endpoint (default: $NVIDIA_API_KEY for *.nvidia.com hosts, "
                        "$OPENAI_API_KEY for other hosts)")
    g.add_argument("--api-timeout", type=float, default=d.api_timeout, help="seconds per LLM request")
    g.add_argument("--reward-model", default=d.reward_model, help="reward model (--reward-mode reward)")
    g.add_argument("--reward-min", action="append", default=None, metavar="ATTR=VALUE",
                   help="keep pairs with ATTR >= VALUE (repeatable; default "
                        + ",".join(f"{k}={v}" for k, v in DEFAULT_THRESHOLDS.items()) + ")")
    g.add_argument("--reward-mode", choices=REWARD_MODES, default=d.reward_mode,
                   help="reward: a reward model; judge: the generation model rates 0-4 as JSON; none: keep all")
    g.add_argument("--max-concurrency", type=int, default=d.max_concurrency,
                   help="ceiling of the adaptive concurrency limit")
    g.add_argument("--rpm", type=float, default=None, help="cap on requests per minute")
    g.add_argument("--max-requests", type=int, default=None, help="budget: HTTP requests (stop reason 'budget')")
    g.add_argument("--max-tokens", type=int, default=None, help="budget: prompt+completion tokens")
    g.add_argument("--patience", type=int, default=d.patience,
                   help="stop after this many rounds in a row that added nothing")
    g.add_argument("--cache-dir", default=d.cache_dir, help="LLM response cache (SQLite)")
    g.add_argument("--batch", action="store_true",
                   help="send each round's generation and reward calls through the OpenAI Batch API (/v1/files + "
                        "/v1/batches, 24 h window, the provider's batch price) instead of online calls; the "
                        "preflight stays online; a rerun picks up the batches in flight")
    g.add_argument("--batch-cancel", action="store_true",
                   help="cancel the batches a --batch run left in flight (recorded in --cache-dir), keep what they "
                        "completed in the cache, and exit")
    g.add_argument("--batch-max-requests", type=int, default=d.batch_max_requests, metavar="N",
                   help="most requests per batch file (OpenAI: 50,000)")
    g.add_argument("--batch-max-bytes", default=str(d.batch_max_bytes), metavar="SIZE",
                   help="largest batch file, bytes or with K/M/G (OpenAI: 200M; Together: 100M)")
    g.add_argument("--batch-poll", type=float, default=d.batch_poll, metavar="SECONDS",
                   help="seconds between looks at a batch in flight")
    g.add_argument("--structured-output", choices=structured.CHOICES, default=d.structured_output,
                   help="constrain generation and judge answers: json-schema (response_format), grammar (llama.cpp "
                        "GBNF), off (free text); auto: the preflight tries json-schema, then grammar, keeps the first "
                        "the endpoint really follows, else off")


def parse_size(text: str, flag: str) -> int:
    """Bytes from "104857600", "100M", "100MB", "1.5G" (binary units); ValueError("FLAG: why") otherwise."""
    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([KMG]?)(?:i?B)?\s*", str(text), re.I)
    if not m:
        raise ValueError(f"{flag}: {text!r} is not a size (e.g. 100M or 104857600)")
    return int(float(m.group(1)) * 1024 ** " KMG".index(m.group(2).upper() or " "))


def _check(ok: bool, flag: str, why: str) -> None:
    if not ok:
        raise ValueError(f"{flag}: {why}")


def validate_sdg_config(cfg: SdgConfig) -> SdgConfig:
    """Raise ValueError("--flag: why") on the first bad value; the config itself otherwise."""
    _check(cfg.ratio is None or (math.isfinite(cfg.ratio) and 0 <= cfg.ratio <= 1), "--synth-gen-ratio",
           f"{cfg.ratio} is outside [0, 1] (0 disables SDG)")
    _check(cfg.n_variants >= 1, "--synth-n-variants", f"{cfg.n_variants}: must be at least 1")
    _check(cfg.target_size is None or cfg.target_size >= 1, "--target-size", f"{cfg.target_size}: must be at least 1")
    _check(cfg.rounds is None or cfg.rounds >= 1, "--synth-gen-rounds", f"{cfg.rounds}: must be at least 1")
    _check(cfg.max_concurrency >= 1, "--max-concurrency", f"{cfg.max_concurrency}: must be at least 1")
    _check(cfg.rpm is None or (math.isfinite(cfg.rpm) and cfg.rpm > 0), "--rpm", f"{cfg.rpm}: must be above 0")
    _check(cfg.max_requests is None or cfg.max_requests >= 1, "--max-requests", f"{cfg.max_requests}: must be >= 1")
    _check(cfg.max_tokens is None or cfg.max_tokens >= 1, "--max-tokens", f"{cfg.max_tokens}: must be at least 1")
    _check(cfg.patience >= 1, "--patience", f"{cfg.patience}: must be at least 1")
    _check(math.isfinite(cfg.api_timeout) and cfg.api_timeout > 0, "--api-timeout",
           f"{cfg.api_timeout}: must be above 0 seconds")
    _check(cfg.structured_output in structured.CHOICES, "--structured-output",
           f"{cfg.structured_output!r}: choose from {', '.join(structured.CHOICES)}")
    _check(cfg.reward_mode in REWARD_MODES, "--reward-mode",
           f"{cfg.reward_mode!r}: choose from {', '.join(REWARD_MODES)}")
    if cfg.endpoint:
        llm.check_endpoint(cfg.endpoint)
        llm.usable_api_key(*resolve_key(cfg))
        _check(cfg.reward_mode != "reward" or bool(cfg.reward_model), "--reward-model",
               "empty with --reward-mode reward (use --reward-mode judge or none without a reward model)")
    _check(cfg.batch_max_requests >= 1, "--batch-max-requests", f"{cfg.batch_max_requests}: must be at least 1")
    _check(cfg.batch_max_bytes >= 1024, "--batch-max-bytes", f"{cfg.batch_max_bytes}: must be at least 1K")
    _check(math.isfinite(cfg.batch_poll) and cfg.batch_poll > 0, "--batch-poll", f"{cfg.batch_poll}: must be above 0")
    _check(not (cfg.batch_cancel and not cfg.endpoint), "--batch-cancel", "needs --synth-gen-endpoint")
    if cfg.reward_mode == "judge":
        unknown = [a for a in cfg.thresholds if a not in ATTRIBUTES]
        _check(not unknown, "--reward-min", f"the judge rates {', '.join(ATTRIBUTES)}, not {', '.join(unknown)}")
    return cfg


def sdg_config_from_args(args) -> SdgConfig:
    """The validated SdgConfig of parsed flags; ValueError("--flag: why") on a bad value."""
    return validate_sdg_config(SdgConfig(
        endpoint=args.synth_gen_endpoint or None, model=args.synth_gen_model or None,
        reward_model=args.reward_model or None, reward_mode=args.reward_mode,
        thresholds=parse_thresholds(args.reward_min), n_variants=args.synth_n_variants,
        rounds=args.synth_gen_rounds, ratio=args.synth_gen_ratio, target_size=args.target_size,
        api_key=args.api_key, api_timeout=args.api_timeout, max_concurrency=args.max_concurrency, rpm=args.rpm,
        max_requests=args.max_requests, max_tokens=args.max_tokens, patience=args.patience,
        cache_dir=args.cache_dir, seed=args.seed, progress=not args.quiet, batch=args.batch,
        batch_cancel=args.batch_cancel, batch_max_requests=args.batch_max_requests,
        batch_max_bytes=parse_size(args.batch_max_bytes, "--batch-max-bytes"), batch_poll=args.batch_poll,
        structured_output=args.structured_output))


# ---- keys and the gate ----------------------------------------------------------------------------------------------
def resolve_key(cfg: SdgConfig, environ: Mapping | None = None) -> tuple[str | None, str | None]:
    """(key, source) for cfg.endpoint: --api-key, else NVIDIA_API_KEY for *.nvidia.com hosts, else OPENAI_API_KEY
    for other hosts. `source` names the flag or variable, never the key."""
    return llm.resolve_api_key(cfg.endpoint, cfg.api_key, os.environ if environ is None else environ)


def sdg_gate(cfg: SdgConfig, environ: Mapping | None = None) -> tuple[bool, str | None]:
    """(run?, why not) — as the tutorial: no endpoint/model or --synth-gen-ratio 0: skip; no key for the endpoint's
    host: skip naming the variable to set; a localhost endpoint needs no key. Flag values are checked earlier, by
    sdg_config_from_args."""
    if not cfg.endpoint or not cfg.model:
        return False, "synthetic data generation skipped: no --synth-gen-endpoint / --synth-gen-model"
    if cfg.ratio == 0:
        return False, "synthetic data generation skipped: --synth-gen-ratio 0"
    if llm.is_local_url(cfg.endpoint) or resolve_key(cfg, environ)[0]:
        return True, None
    where = ("the NVIDIA endpoint" if llm.is_nvidia_host(cfg.endpoint)
             else urlparse(cfg.endpoint).hostname or cfg.endpoint)
    return False, (f"synthetic data generation skipped: no API key for {where}; "
                   f"set {llm.key_variable(cfg.endpoint)} (or pass --api-key)")


# ---- preflight ----------------------------------------------------------------------------------------------------
PREFLIGHT_TITLE = "Can a landlord keep a tenant's deposit for normal wear and tear?"
PREFLIGHT_QUESTION = "I moved out after three years and left the flat as I found it. The landlord kept my deposit."
PREFLIGHT_ANSWER = ("Usually not. A landlord may deduct from a deposit only for damage beyond normal wear and tear "
                    "or for unpaid rent, and must list the deductions; ask in writing for the deposit back.")
PREFLIGHT_RETRIES = 1   # a dead endpoint must fail the preflight in seconds, not after the loop's patient retries


def _gen_params(cfg: SdgConfig, attempt: int, kind: str = "title", mode: str | None = None,
                n: int | None = None, words: tuple[int, int] | None = None) -> dict:
    """A generation call's parameters, the structured-output constraint (with the items' word range) included (part
    of the cache key); max_tokens from the item count and word range unless cfg.gen_max_tokens fixes it."""
    n = n or cfg.n_variants
    return {"top_p": cfg.top_p, "max_tokens": cfg.gen_max_tokens or list_max_tokens(kind, n, words),
            "seed": cfg.gen_seed + attempt, **structured.constraint_params(mode or cfg.output_mode(), kind, n, words)}


def _judge_params(cfg: SdgConfig, attempt: int, mode: str | None = None) -> dict:
    return {"top_p": cfg.top_p, "max_tokens": 256, "seed": cfg.gen_seed + attempt,
            **structured.constraint_params(mode or cfg.output_mode(), "judge")}


def list_messages(kind: str, text: str, n: int, mode: str, domain: str = LAW_SUBJECT,
                  words: tuple[int, int] | None = None) -> list[dict]:
    """The prompt of a list call (title / question / answer) for a structured-output mode: json-schema asks for the
    JSON object in place of "* " lines (the rest of the prompt is the builder's)."""
    messages = PROMPTS[kind][0](text, n, domain, words)
    if mode != "json-schema":
        return messages
    last = dict(messages[-1])
    last["content"] = last["content"].replace(bullets(n), structured.json_instruction(n))
    return [*messages[:-1], last]


def parse_list(res: llm.Result, n: int, kind: str, mode: str, sources=(), words: tuple[int, int] | None = None,
               topic: str | None = None) -> ParseResult:
    """A list call's answer through the strict parser of its mode (a schema answer, or free text / grammar lines)."""
    parse = parse_schema_items if mode == "json-schema" else parse_items
    return parse(res.content, n, kind, finish_reason_of(res), sources, words, topic)


def _preflight_calls(cfg: SdgConfig) -> list[tuple[str, str, list[dict], dict]]:
    """(role, model, messages, params) of the preflight: the loop's own prompts and parameters, on a fixed text."""
    mode = cfg.output_mode()
    calls = [("generation", cfg.model, list_messages("title", PREFLIGHT_QUESTION, cfg.n_variants, mode, cfg.domain),
              _gen_params(cfg, 0))]
    if cfg.reward_mode == "reward":
        calls.append(("reward", cfg.reward_model,
                      reward_messages(PREFLIGHT_TITLE, PREFLIGHT_QUESTION, PREFLIGHT_ANSWER), {}))
    elif cfg.reward_mode == "judge":
        calls.append(("judge", cfg.model, judge_prompt(PREFLIGHT_TITLE, PREFLIGHT_QUESTION, PREFLIGHT_ANSWER,
                                                       cfg.domain),
                      _judge_params(cfg, 0)))
    return calls


PROBE_TRIES = 2   # seeds per probe call: a tiny model may run an answer into max_tokens even under a constraint


async def _probe(client: llm.LLMClient, cfg: SdgConfig, mode: str) -> tuple[bool, list[dict]]:
    """Whether the endpoint follows `mode`: a title call whose constraint asks for one item more than its prompt
    does (only a server that applies the constraint answers that count), then, in judge mode, a judge call under
    the constraint. (works, what each probe call found)."""
    n, ask = cfg.n_variants, cfg.n_variants + 1
    calls = [("title", list_messages("title", PREFLIGHT_QUESTION, n, mode, cfg.domain), ask,
              lambda a: _gen_params(cfg, a, "title", mode, ask))]
    if cfg.reward_mode == "judge":
        calls.append(("judge", judge_prompt(PREFLIGHT_TITLE, PREFLIGHT_QUESTION, PREFLIGHT_ANSWER, cfg.domain), None,
                      lambda a: _judge_params(cfg, a, mode)))
    found = []
    for kind, messages, count, params in calls:
        for attempt in range(PROBE_TRIES):
            res = await client.chat(cfg.model, messages, **params(attempt))
            if not res.ok:
                found.append({"mode": mode, "call": kind, "result": f"rejected ({res.reason})"})
                return False, found
            ok, why = structured.conforms(mode, kind, count, res.content)
            cut_off = finish_reason_of(res) == "length"
            found.append({"mode": mode, "call": kind, "result": "conforms" if ok else
                          f"does not conform: {'cut off at max_tokens' if cut_off else why}"})
            if ok:
                break
            if not cut_off:          # a complete answer that ignores the constraint settles it; a cut-off one not
                return False, found
        else:
            return False, found
    return True, found


def choose_structured_output(cfg: SdgConfig, client: llm.LLMClient) -> structured.StructuredChoice:
    """The mode the loop uses: a mode given by the flag is probed and kept whatever the probe found (the strict
    parser judges every answer anyway); `auto` keeps the first of json-schema, grammar whose probe conforms, else
    off. Probes are sent without retries (a server that rejects a constraint may say 500)."""
    wanted = cfg.structured_output
    if wanted == "off":
        return structured.StructuredChoice("off", "--structured-output off", wanted)
    order = structured.AUTO_ORDER if wanted == "auto" else (wanted,)
    probes: list[dict] = []
    retries, client.max_retries = client.max_retries, 0
    try:
        for mode in order:
            works, found = client.run(lambda: _probe(client, cfg, mode))
            probes += found
            if works:
                return structured.StructuredChoice(mode, f"{mode}: the endpoint's answers followed it", wanted,
                                                   probes)
    finally:
        client.max_retries = retries
    why = "; ".join(f"{p['mode']} {p['call']}: {p['result']}" for p in probes)
    if wanted != "auto":
        return structured.StructuredChoice(wanted, f"as asked, although the probe found: {why}", wanted, probes)
    return structured.StructuredChoice("off", f"no constraint was followed ({why})", wanted, probes)


def _probe_without_preflight(cfg: SdgConfig, client: llm.LLMClient) -> structured.StructuredChoice:
    """The structured-output choice when no preflight made it: probed online like the preflight (with --batch, by
    an online client on the same cache: a probe must not wait a batch window); a probe that meets an endpoint-wide
    failure settles on off, and the loop's first call meets that failure again and stops SDG, named."""
    prober = llm.client_from_config(cfg) if cfg.batch else client
    try:
        return choose_structured_output(cfg, prober)
    except llm.EndpointError as exc:
        return structured.StructuredChoice("off", f"the probe failed: {type(exc).__name__}", cfg.structured_output)
    finally:
        if prober is not client:
            prober.close()


def describe_preflight(cfg: SdgConfig) -> str:
    """What `preflight` would call (for --dry-run), one line."""
    run_it, why = sdg_gate(cfg)
    if not run_it:
        return f"preflight: none ({why})"
    calls = _preflight_calls(cfg)
    what = " and ".join(f"{model} once ({role})" for role, model, _, _ in calls)
    source = resolve_key(cfg)[1] or "none (local endpoint)"
    batch = " and check its Batch API (GET /v1/batches)" if cfg.batch else ""
    probes = ("" if cfg.structured_output == "off" else
              f"; --structured-output {cfg.structured_output}: first a probe call per mode tried "
              f"({', '.join(structured.AUTO_ORDER) if cfg.structured_output == 'auto' else cfg.structured_output})")
    return (f"preflight: would call {what} at {cfg.endpoint}{batch} before any other stage (online, cached like "
            f"any other call){probes}; API key from {source}")


def _check_generation(cfg: SdgConfig, res: llm.Result) -> dict:
    choices = (res.data or {}).get("choices") if isinstance(res.data, dict) else None
    message = choices[0].get("message") if isinstance(choices, list) and choices and isinstance(choices[0], dict) \
        else None
    if not isinstance(message, dict) or not isinstance(message.get("content"), str):
        raise EndpointError(f"--synth-gen-model {cfg.model} did not answer a chat completion: {shorten(res.data)}")
    parsed = parse_list(res, cfg.n_variants, "title", cfg.output_mode())
    return {"finish_reason": finish_reason_of(res), "parsed": parsed.ok, "rejection": parsed.reason}


def preflight(cfg: SdgConfig, client: llm.LLMClient | None = None) -> dict:
    """The smallest real calls before any other stage: one generation call and one reward (or judge) call, cached
    like any other. Raises llm.AuthError (key rejected), EndpointError (unreachable, unknown model, not a chat
    completion), NotARewardModel, RewardAttributeMissing (a --reward-min attribute the model does not return).
    Returns what it learned, for the report: models, key source, the reward model's attributes."""
    t0 = time.monotonic()
    own_client = client is None
    client = client or llm.client_from_config(cfg)
    retries, client.max_retries = client.max_retries, min(client.max_retries, PREFLIGHT_RETRIES)
    try:
        if cfg.batch:   # before any paid call: an endpoint without the Batch API stops here (BatchUnsupported)
            client.run(lambda: llm.probe_batch_api(client))
        if cfg.structured is None:
            cfg.structured = choose_structured_output(cfg, client)
        calls = _preflight_calls(cfg)
        results = client.run(lambda: asyncio.gather(*(client.chat(m, msgs, **params) for _, m, msgs, params in calls)))
    finally:
        client.max_retries = retries
        if own_client:
            client.close()
    learned = {"endpoint": cfg.endpoint, "model": cfg.model, "reward_mode": cfg.reward_mode,
               "reward_model": cfg.reward_model if cfg.reward_mode == "reward" else None,
               "key_source": resolve_key(cfg)[1], "calls": len(calls), "cached": sum(r.cached for r in results),
               "batch_api": True if cfg.batch else None,
               "structured_output": cfg.structured.as_dict()}
    for (role, model, _, _), res in zip(calls, results):
        if not res.ok:
            raise EndpointError(f"{role} call to {model} at {cfg.endpoint} failed: {res.reason}")
        if role == "generation":
            learned["generation"] = _check_generation(cfg, res)
        elif role == "reward":
            scores = parse_reward_response(res.data)           # NotARewardModel
            passes(scores, cfg.thresholds)                     # RewardAttributeMissing
            learned["reward_attributes"] = sorted(scores)
        else:
            try:
                learned["reward_attributes"] = sorted(parse_judge(res.content))
            except ValueError as exc:     # a judge may fumble one answer; the loop re-asks and counts it
                learned["judge_rejection"] = str(exc)
    learned["seconds"] = round(time.monotonic() - t0, 3)
    return learned


def finish_reason_of(res: llm.Result) -> str | None:
    """The first choice's finish_reason ("stop", "length", ...) of a chat completion, None when absent."""
    direct = getattr(res, "finish_reason", None)
    if isinstance(direct, str):
        return direct
    try:
        value = res.data["choices"][0].get("finish_reason")
    except (KeyError, IndexError, TypeError, AttributeError):
        return None
    return value if isinstance(value, str) else None


# ---- one round ------------------------------------------------------------------------------------------------------
ECHO_SOURCE = {"title": "title", "question": "question", "answer": "answer"}   # what an item must not copy
EVENT_ORDER = {p: k for k, p in enumerate((*PROMPT_KINDS, "reward", "judge"))}


class _Round:
    """The LLM work of one round: three lists per source, then a score per complete pair."""

    def __init__(self, client: llm.LLMClient, cfg: SdgConfig, round_no: int, bar):
        self.client, self.cfg, self.round_no, self.bar = client, cfg, round_no, bar
        self.events: dict[int, list[dict]] = {}     # per source index: every rejection and failure
        self.counts = {"pairs_generated": 0, "pairs_rejected": 0, "parse_failures": 0, "call_failures": 0,
                       "reasks": 0, "below_threshold": 0, "scored": 0}
        self.results: dict[int, list[dict]] = {}
        self.scores: dict[int, list[tuple[dict, bool]]] = {}  # per source index: (scores, passed threshold)
        self.error: BaseException | None = None
        self.accepted = 0
        self.failures_in_a_row = 0
        self.t0 = time.monotonic()
        self.req0 = client.stats.requests
        self._last_post = 0.0

    def _record(self, idx: int, row, prompt: str, kind: str, reason: str, raw: str = "", detail=None,
                attempt: int = 0, slot: int | None = None) -> None:
        """One line of sdg_failures.jsonl. kind: call (the request failed), response (an answer rejected; re-asked),
        gave_up (the prompt's last try rejected), item (one item rejected by a gate; its pair dropped)."""
        self.events.setdefault(idx, []).append(
            {"round": self.round_no, "source_id": row["id"], "prompt": prompt, "kind": kind, "attempt": attempt,
             "slot": slot, "reason": reason, "detail": detail, "raw": raw})
        if kind in ("call", "gave_up"):
            self.counts["call_failures" if kind == "call" else "parse_failures"] += 1

    async def _call(self, model: str, messages: list[dict], **params) -> llm.Result:
        res = await self.client.chat(model, messages, **params)
        if res.ok:
            self.failures_in_a_row = 0
        elif (res.reason or "").startswith(ENDPOINT_FAILURE_PREFIXES):
            self.failures_in_a_row += 1
            if self.failures_in_a_row >= ENDPOINT_FAILURES_IN_A_ROW:
                raise EndpointError(f"{self.failures_in_a_row} calls in a row failed; last: {res.reason}")
        return res

    async def _ask(self, idx: int, row, prompt: str, model: str, messages: list[dict], parse, tries: int,
                   params: Callable[[int], dict] | None = None):
        """The one re-ask helper: ask, then `parse(result) -> (value, reason, detail)`; a rejected answer is asked
        again with the next seed (a new cache key), `tries` times in all. Returns the value, or None (recorded)."""
        reason = None
        for attempt in range(tries):
            if attempt:
                self.counts["reasks"] += 1
            res = await self._call(model, messages, **(params(attempt) if params else {}))
            if not res.ok:
                self._record(idx, row, prompt, "call", res.reason or "failed", attempt=attempt)
                return None
            value, reason, detail = parse(res)
            if reason is None:
                return value
            self._record(idx, row, prompt, "response", reason, self.client.scrub(res.content), detail, attempt)
        self._record(idx, row, prompt, "gave_up", reason, detail=f"after {tries} tries", attempt=tries - 1)
        return None

    async def _ask_list(self, idx: int, row, kind: str) -> list | None:
        column = PROMPTS[kind][1]
        n, sources, text = self.cfg.n_variants, [str(row[ECHO_SOURCE[kind]])], str(row[column])
        mode, words = self.cfg.output_mode(), item_words(kind, text, self.cfg.item_words)

        def parse(res: llm.Result):     # each item stays on the text its prompt showed (`topic`)
            parsed = parse_list(res, n, kind, mode, sources, words, topic=text)
            return parsed, parsed.reason, parsed.detail
        parsed = await self._ask(idx, row, kind, self.cfg.model,
                                 list_messages(kind, text, n, mode, self.cfg.domain, words), parse,
                                 self.cfg.max_reasks + 1, lambda a: _gen_params(self.cfg, a, kind, words=words))
        if parsed is None:
            return None
        for slot, reason, item in parsed.rejected:
            self._record(idx, row, kind, "item", reason, self.client.scrub(item), slot=slot)
        return parsed.items

    @staticmethod
    def _parse_judge(res: llm.Result):
        try:
            return parse_judge(res.content), None, None
        except ValueError as exc:
            return None, "judge_unparsable", str(exc)

    async def _score(self, idx: int, row, title: str, question: str, answer: str) -> dict | None:
        if self.cfg.reward_mode == "none":
            return {}
        if self.cfg.reward_mode == "reward":   # NotARewardModel / RewardAttributeMissing stop SDG (see run)
            return await self._ask(idx, row, "reward", self.cfg.reward_model, reward_messages(title, question, answer),
                                   lambda res: (parse_reward_response(res.data), None, None), 1)
        return await self._ask(idx, row, "judge", self.cfg.model,
                               judge_prompt(title, question, answer, self.cfg.domain), self._parse_judge,
                               self.cfg.max_reasks + 1, lambda a: _judge_params(self.cfg, a))

    def _row(self, row, k: int, title: str, question: str, answer: str, scores: dict) -> dict:
        # the vote columns carry the source row's votes (which passed the vote filters); the reward is in `reward`
        return {"id": synthetic_id(row["id"], self.round_no, k), "source_id": row["id"], "title": title,
                "question": question, "answer": answer, "question_score": int(row["question_score"]),
                "answer_score": int(row["answer_score"]), "tags": row["tags"], "link": row["link"],
                "license": row["license"], "file_name": row["file_name"], "split": "train", "synthetic": True,
                "round": self.round_no, "reward": json.dumps(scores, sort_keys=True)}

    async def source(self, idx: int, row) -> list[dict]:
        lists = await asyncio.gather(*(self._ask_list(idx, row, p) for p in PROMPT_KINDS))
        if any(v is None for v in lists):
            return []
        # the three lists are written independently, so slot k of one means nothing to slot k of another: pair the
        # accepted items in slot order (a rejected title in slot 0 and a rejected answer in slot 1 leave one pair)
        accepted = [[item for item in items if item] for items in lists]
        pairs = [(k, t, q, a) for k, (t, q, a) in enumerate(zip(*accepted))]
        self.counts["pairs_generated"] += len(pairs)
        self.counts["pairs_rejected"] += self.cfg.n_variants - len(pairs)
        scored = await asyncio.gather(*(self._score(idx, row, t, q, a) for _, t, q, a in pairs))
        out = []
        for (k, t, q, a), scores in zip(pairs, scored):
            if scores is None:
                continue
            self.counts["scored"] += 1
            passed = self.cfg.reward_mode == "none" or passes(scores, self.cfg.thresholds)
            self.scores.setdefault(idx, []).append((scores, passed))
            if passed:
                out.append(self._row(row, k, t, q, a, scores))
            else:
                self.counts["below_threshold"] += 1
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

    async def run(self, batch: pd.DataFrame) -> list[list[dict]]:
        """Rows per source in sample order. An endpoint error (AuthError, SdgError) cancels what is in flight and
        is kept in `self.error`; the sources finished before it keep their rows."""
        rows = batch.to_dict("records")
        # sources in flight; a batch client ships a wave when every source waits, so all of them are in flight
        batched = getattr(self.client, "batched", False)
        gate = asyncio.Semaphore(len(rows) if batched else max(8, 2 * self.client.limiter.ceiling))

        async def one(i, row):
            async with gate:
                out = await self.source(i, row)
            self.results[i] = out
            self.tick(len(out))
        async with self.client.session():
            tasks = [asyncio.ensure_future(one(i, r)) for i, r in enumerate(rows)]
            try:
                await asyncio.gather(*tasks)
            except (llm.EndpointError, SdgError) as exc:
                self.error = exc
                for t in tasks:
                    t.cancel()
                await asyncio.gather(*tasks, return_exceptions=True)
        return [self.results[i] for i in sorted(self.results)]

    def ordered_events(self) -> list[dict]:
        # within a source, events arrive in response order, which a rerun served from the cache changes: order
        # them by prompt, attempt and slot instead, so sdg_failures.jsonl is the same bytes either way
        def key(e):
            return (EVENT_ORDER.get(e["prompt"], 99), e["attempt"], -1 if e["slot"] is None else e["slot"],
                    e["kind"], e["reason"] or "", e["raw"])
        return [e for i in sorted(self.events) for e in sorted(self.events[i], key=key)]


def _run_round(client: llm.LLMClient, cfg: SdgConfig, round_no: int, batch: pd.DataFrame
               ) -> tuple[_Round, list[dict], float]:
    """(the round's state, its rows in sample order, LLM seconds), with a progress bar when cfg.progress."""
    t0 = time.monotonic()
    bar = None
    if cfg.progress:
        from tqdm import tqdm
        bar = tqdm(total=len(batch), desc=f"SDG round {round_no}", unit="src", leave=True)
    rnd = _Round(client, cfg, round_no, bar)
    if getattr(client, "batched", False):
        client.label = f"round {round_no}"
    try:
        results = client.run(lambda: rnd.run(batch))
    finally:
        if bar is not None:
            bar.set_postfix(accepted=rnd.accepted, conc=client.concurrency, refresh=False)
            bar.close()
    rows = [r for per_source in results for r in per_source]   # seeded sample order, k order: deterministic
    return rnd, rows, time.monotonic() - t0


# ---- the loop -----------------------------------------------------------------------------------------------------
@dataclass
class _LoopState:
    """The loop's running totals: what the round plan and the stop decision read."""
    size_before: int
    target: int | None
    first_round: int
    n_real: int
    n_candidates: int
    added: int = 0
    pos: int = 0
    sources_used: int = 0
    rounds_done: int = 0
    empty_rounds: int = 0
    error: BaseException | None = None

    @property
    def size(self) -> int:
        return self.size_before + self.added


def _plan_round(cfg: SdgConfig, st: _LoopState) -> int:
    """Source rows for the next round: with a target, enough to reach it at the measured yield (+5% margin) once
    known, a prior without margin before (overshoot is paid for); capped by --synth-gen-ratio; else the ratio."""
    cap = cfg.sources_per_round_cap(st.n_real)
    if st.target is not None:
        known = st.sources_used and st.added
        est, margin = ((st.added / st.sources_used), 1.05) if known else (cfg.n_variants * 0.5, 1.0)
        n_src = math.ceil((st.target - st.size) / max(est, 0.05) * margin)
        n_src = min(n_src, cap) if cap else n_src
    else:
        n_src = cap
    return max(1, min(n_src, st.n_candidates - st.pos))


def _stop_decision(cfg: SdgConfig, st: _LoopState, client: llm.LLMClient) -> tuple[str | None, str | None]:
    """The one place that decides whether to stop, checked before every round: (stop_reason, one-line detail)."""
    if st.error is not None:
        message = client.scrub(" ".join(str(st.error).split()))[:300]
        return "endpoint_error", f"{type(st.error).__name__}: {message}"
    if st.target is not None and st.size >= st.target:
        return "target_reached", f"train has {st.size:,} rows (target {st.target:,})"
    if client.budget_hit:
        return "budget", f"the {client.budget_hit} budget is spent"
    if st.empty_rounds >= cfg.patience:
        return "no_progress", f"{st.empty_rounds} round(s) in a row added nothing"
    if st.rounds_done >= cfg.max_rounds():
        return "max_rounds", f"{st.rounds_done} round(s) run"
    if st.pos >= st.n_candidates:
        return "sources_exhausted", f"all {st.n_candidates:,} unused real train rows were sources"
    return None, None


def _sources(records: pd.DataFrame, cfg: SdgConfig) -> tuple[pd.DataFrame, np.ndarray, _LoopState]:
    """Real train rows not yet used as a source (sorted by id), their seeded order, and the loop's start state."""
    train_mask = records["split"] == "train"
    train = records[train_mask]
    synth = train["synthetic"].astype(bool)
    used = set(train.loc[synth, "source_id"])
    real = train[~synth]
    candidates = real[~real["id"].isin(used)].sort_values("id", kind="mergesort").reset_index(drop=True)
    order = np.random.default_rng(cfg.seed).permutation(len(candidates))
    first_round = int(records.loc[records["synthetic"].astype(bool), "round"].max()) + 1 if synth.any() else 1
    return candidates, order, _LoopState(size_before=int(train_mask.sum()), target=cfg.target_size,
                                         first_round=first_round, n_real=len(real), n_candidates=len(candidates))


def _round_result(rows: list[dict], records: pd.DataFrame, new_parts: list[pd.DataFrame], curate, dedup_against,
            st: _LoopState) -> tuple[pd.DataFrame, dict]:
    """A round's scored rows through curate and dedup against every existing row (all splits: val/test at the leak
    thresholds), trimmed to the target: (accepted rows, the round's accounting)."""
    scored_rows = _frame(rows)
    kept, curate_drops = curate(scored_rows) if len(scored_rows) else (scored_rows, {})
    existing = pd.concat([records, *new_parts], ignore_index=True) if new_parts else records
    fresh, dedup_stats = dedup_against(kept, existing) if len(kept) else (kept, {})
    fresh = conform(fresh)
    trimmed = 0
    if st.target is not None and len(fresh) > st.target - st.size:
        trimmed = len(fresh) - (st.target - st.size)
        fresh = fresh.iloc[:st.target - st.size]
    by_kind = {k: int(v) for k, v in (dedup_stats.get("removed") or {}).items() if isinstance(v, (int, np.integer))}
    return fresh, {"above_threshold": len(rows), "curate_dropped": dict(curate_drops),
                   "dedup_dropped": len(kept) - len(fresh) - trimmed, "dedup_by_kind": by_kind,
                   "leak_dropped": by_kind.get("leak", 0), "dedup": dedup_stats, "trimmed": trimmed,
                   "accepted": len(fresh)}


def _frame(rows: list[dict]) -> pd.DataFrame:
    if not rows:
        return empty_frame()
    return conform(pd.DataFrame(rows, columns=COLUMNS))


def _write_events(rnd: _Round, failures_file, totals: dict) -> None:
    """The round's rejections and failures to sdg_failures.jsonl; counted into totals["rejections"] (every
    rejected answer or item, by reason) and totals["failures"] (prompts given up and failed calls, by reason)."""
    for e in rnd.ordered_events():
        bucket = "rejections" if e["kind"] in ("response", "item") else "failures"
        totals[bucket][e["reason"]] = totals[bucket].get(e["reason"], 0) + 1
        if failures_file:
            failures_file.write(json.dumps(e, ensure_ascii=False) + "\n")
    if failures_file:
        failures_file.flush()


def _reward_plot_scores(rnd: _Round, attribute: str, into: dict) -> None:
    for i in sorted(rnd.scores):
        for scores, passed in rnd.scores[i]:
            if attribute in scores:
                into["accepted" if passed else "rejected"].append(round(scores[attribute], 4))


def _loop(records, cfg, curate, dedup_against, client, failures_file, report):
    """Rounds until the stop decision says stop: plan, run, write the events, take the round's result."""
    candidates, order, st = _sources(records, cfg)
    report.update({"ran": True, "train_size_before": st.size_before, "target_size": st.target, "rounds": [],
                   "reward": {"mode": cfg.reward_mode, "model": cfg.reward_model if cfg.reward_mode == "reward"
                              else (cfg.model if cfg.reward_mode == "judge" else None),
                              "thresholds": cfg.thresholds if cfg.reward_mode != "none" else {}}})
    new_parts: list[pd.DataFrame] = []
    # the thresholded attribute's score of every scored pair, for the card's accepted-vs-rejected plot
    reward_attribute = next(iter(cfg.thresholds), "helpfulness")
    reward_scores: dict[str, list[float]] = {"accepted": [], "rejected": []}
    totals: dict[str, dict] = {"rejections": {}, "failures": {}}
    t_start = time.monotonic()
    while True:
        stop, detail = _stop_decision(cfg, st, client)
        if stop:
            break
        round_no = st.first_round + st.rounds_done
        n_src = _plan_round(cfg, st)
        batch = candidates.iloc[order[st.pos:st.pos + n_src]].reset_index(drop=True)
        st.pos, st.sources_used, st.rounds_done = st.pos + n_src, st.sources_used + n_src, st.rounds_done + 1
        req0, ret0 = client.stats.requests, client.stats.retries
        rnd, rows, llm_seconds = _run_round(client, cfg, round_no, batch)
        _reward_plot_scores(rnd, reward_attribute, reward_scores)
        _write_events(rnd, failures_file, totals)
        fresh, accounting = _round_result(rows, records, new_parts, curate, dedup_against, st)
        new_parts.append(fresh)
        st.added += len(fresh)
        st.empty_rounds = 0 if len(fresh) else st.empty_rounds + 1
        st.error = rnd.error
        requests = client.stats.requests - req0
        report["rounds"].append({
            "round": round_no, "sources": n_src, **rnd.counts, **accounting, "train_size": st.size,
            "requests": requests, "retries": client.stats.retries - ret0, "llm_seconds": round(llm_seconds, 3),
            "requests_per_s": round(requests / max(llm_seconds, 1e-6), 1), "concurrency": client.concurrency})
    new_rows = conform(pd.concat(new_parts, ignore_index=True)) if new_parts else empty_frame()
    report.update({"stop_reason": stop, "stop_detail": detail, "added": int(len(new_rows)),
                   "train_size_after": st.size, "sources_used": st.sources_used,
                   "sources_available": st.n_candidates,
                   "rejections": dict(sorted(totals["rejections"].items())),
                   "failures": dict(sorted(totals["failures"].items())),
                   "failures_file": None,   # set by grow_train (the final name, not the temp file's)
                   "seconds": round(time.monotonic() - t_start, 3), "llm": client.report(),
                   "batch": client.batch_report() if getattr(client, "batched", False) else None,
                   "reward_scores": {"attribute": reward_attribute, **reward_scores}})
    return new_rows, report


def grow_train(records: pd.DataFrame, cfg: SdgConfig,
               curate: Callable[[pd.DataFrame], tuple[pd.DataFrame, dict]],
               dedup_against: Callable[[pd.DataFrame, pd.DataFrame], tuple[pd.DataFrame, dict]],
               failures_path: str | Path | None, client: llm.LLMClient | None = None
               ) -> tuple[pd.DataFrame, dict]:
    """Grow the train split with synthetic pairs. `records` are all rows of all splits (the record contract);
    returns (new synthetic train rows, the SDG report section). `curate(rows)` -> (kept rows, drop counts) runs the
    clean/filter stages; `dedup_against(new, existing)` -> (new rows that duplicate nothing and leak into no val/test
    row, stats) gets every existing row, split column included.

    Never raises on an endpoint failure: a rejected key (AuthError), an endpoint that is gone or fails past the
    retries, a reward model that stops answering scores, or a spent budget stops SDG; the rows accepted so far are
    returned and the section says why (`stop_reason` "endpoint_error" or "budget", `stop_detail` one line)."""
    report: dict = {"ran": False, "config": cfg.public(), "key_source": resolve_key(cfg)[1]}
    run_it, why = sdg_gate(cfg)
    if not run_it:
        report["skipped"] = why
        return empty_frame(), report
    own_client = client is None
    if own_client:
        client = llm.batch_client_from_config(cfg) if cfg.batch else llm.client_from_config(cfg)
    try:
        if cfg.structured is None:     # no preflight ran (a library caller): probe as the preflight would
            cfg.structured = _probe_without_preflight(cfg, client)
        report["structured_output"] = cfg.structured.as_dict()
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


# ---- the plan, for --dry-run --------------------------------------------------------------------------------------
def describe_plan(cfg: SdgConfig, questions: int | None, train_ratio: float) -> str:
    """What SDG would do and about how many LLM calls it would make (lines for --dry-run). `questions`: questions
    in the input if known; `train_ratio`: the train share of the split."""

    will_run, why = sdg_gate(cfg)
    if not will_run:
        return why or "skipped"
    n = cfg.n_variants
    reward_calls = 0 if cfg.reward_mode == "none" else n
    per_source = len(PROMPT_KINDS) + reward_calls
    lines = [f"{cfg.model} at {cfg.endpoint}; reward: {cfg.reward_mode}"
             + (f" ({cfg.reward_model})" if cfg.reward_mode == "reward" else "") + f"; up to {cfg.max_rounds()} round(s)",
             f"LLM calls: {len(PROMPT_KINDS)} generation + {reward_calls} reward call(s) per source row per "
             f"round; each source row yields up to {n} pair(s); the prompts name {cfg.domain!r} (--domain)"]
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
        per_round = cfg.sources_per_round_cap(train_max)
        lines.append(f"no --target-size: {per_round:,} source row(s) per round -> about "
                     f"{per_round * per_source * cfg.max_rounds():,} LLM calls in {cfg.max_rounds()} round(s)")
    if cfg.batch:
        lines += describe_batch_plan(cfg, train_max, per_source)
    if cfg.max_requests:
        lines.append(f"budget: stops after {cfg.max_requests:,} HTTP requests (--max-requests)")
    lines.append(f"responses are cached in {cfg.cache_dir}: a rerun pays only for new calls")
    lines.append(describe_preflight(cfg))
    return "\n".join(lines)


def describe_batch_plan(cfg: SdgConfig, train_max: int | None, per_source: int) -> list[str]:
    """The --batch lines of the plan: waves, batches per wave (the first round's, when the input size is known),
    the price, and any batches a killed run left in flight."""
    per_file = f"{cfg.batch_max_requests:,} requests or {cfg.batch_max_bytes / 1024 ** 2:,.0f} MiB"
    steps = "generation, re-asks" + ("" if cfg.reward_mode == "none" else f", {cfg.reward_mode} scoring")
    lines = [f"batch: each round's calls go out as Batch API files (/v1/files + /v1/batches, 24 h window) at the "
             f"provider's batch price (OpenAI: half the online price); one wave per step of the call chain ({steps}),"
             f" one file per model, split at {per_file} per file (--batch-max-requests, --batch-max-bytes)"]
    if train_max is not None and not (cfg.target_size and cfg.target_size <= train_max):
        st = _LoopState(size_before=train_max, target=cfg.target_size, first_round=1, n_real=train_max,
                        n_candidates=train_max)
        n_src = _plan_round(cfg, st) if train_max else 0
        gen, score = len(PROMPT_KINDS) * n_src, (per_source - len(PROMPT_KINDS)) * n_src
        first = f"round 1: ~{n_src:,} source row(s) -> a generation wave of {gen:,} request(s) in " \
                f"{max(1, math.ceil(gen / cfg.batch_max_requests)):,} batch(es)"
        if score:
            first += f", then a scoring wave of up to {score:,} in {math.ceil(score / cfg.batch_max_requests):,}"
        lines.append(first + " (more if a file would pass the size limit)")
    in_flight = llm.batch_runner.BatchStore(cfg.cache_dir, cfg.endpoint).open_parts()
    if in_flight:
        lines.append(f"{len(in_flight)} batch(es) recorded in flight in {cfg.cache_dir}: this run picks them up "
                     "(--batch-cancel cancels them)")
    return lines


def synthesis_accounting(sdg: dict) -> tuple[int, int, dict[str, int]]:
    """The synthesize stage as rows in/out/dropped: complete pairs generated -> accepted rows, every loss named."""
    dropped: dict[str, int] = {}
    generated = 0
    for rnd in sdg.get("rounds", []):
        generated += rnd.get("pairs_generated", 0)
        losses = {"reward_call_failed": rnd.get("pairs_generated", 0) - rnd.get("scored", 0),
                  "below_reward_threshold": rnd.get("below_threshold", 0),
                  "duplicate": rnd.get("dedup_dropped", 0) - rnd.get("leak_dropped", 0),
                  "leak": rnd.get("leak_dropped", 0), "over_target": rnd.get("trimmed", 0),
                  **{f"filter:{k}": v for k, v in rnd.get("curate_dropped", {}).items()}}
        for reason, n in losses.items():
            dropped[reason] = dropped.get(reason, 0) + int(n)
    return generated, int(sdg.get("added", 0)), dropped
