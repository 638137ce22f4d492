"""A small OpenAI-compatible test server (real HTTP on 127.0.0.1) for tests, benchmarks and manual runs.

    python tests/llm_server.py --port 0 --latency 0.1 --capacity 64          # prints "URL http://127.0.0.1:P/v1"

In pytest:  `srv = start_server(latency=0.01, log_path=tmp_path / "log.jsonl")`, then `srv.base_url`, `srv.stop()`.

What it answers on POST /v1/chat/completions (everything derived deterministically from the request):
- a generation prompt (the last user message: the source text under a label, then an instruction naming "exactly N")
  -> exactly N `* ` bullets: questions ending in "?" for a "questions" instruction, shorter paraphrases of the
  document (words dropped deterministically, varied by `seed` and k) for a "paraphrase" instruction;
- a judge prompt (mentions "JSON" and "helpfulness") -> a JSON object of five 0-4 ratings;
- a reward model (model name contains "reward", or listed in `reward_models`) -> scores of the assistant turn in
  the configured shape: "logprobs" (choices[0].logprobs.content [{token, logprob}]), "content"
  ("helpfulness:3.1,correctness:..."), "single" ("reward:-3.5") or "none" (answers like a chat model: not a
  reward model). A model name containing "content"/"logprobs"/"single" overrides the shape.
Constraints: `json_schema` "honour" answers a generation call with {"items": [n strings]} (n from the schema, not the
prompt) and a judge call with its JSON scores; "ignore" answers as if the field were absent; "400"/"422"/"500"
reject the request with that status (llama-cpp-python's server says 500). `grammar` "honour" answers n "* " lines (n
from the GBNF root rule) or the judge's JSON; "ignore" as if absent. Under a constraint, junk (junk_rate) keeps the
form and puts an echo, a refusal or a glued closing remark inside the items.
`slots`: requests served at once, the rest queue inside the server (a one-slot llama.cpp server), unlike
`capacity`, beyond which a request is refused with 429.
Failure injection: latency, capacity (429 + Retry-After beyond it), first-K-attempts 5xx / 429 / hang per distinct
request, random 5xx, wrong-count, garbage, preamble + numbered/bold lists, wrapped lines, per-model error status,
401 when `api_key` is set and the bearer token differs. `usage` carries word-count token numbers.

Every request is logged (JSONL file when `log_path` is set, and in memory; GET /log) with `hash` = sha256 of the
canonical request body (model + messages + parameters), `key_sha256` = sha256 of the bearer token it carried
(None: no Authorization header) and `completed` = a 200 answer was written in full, so tests
can assert no completed request was ever sent twice, across processes. "Completed" is the server's view: an answer
written in full can still be lost by a client killed before it stored it (tests/test_faults.py reads the client's
cache to tell the two apart; the answer's id carries the hash: "chatcmpl-<hash[:24]>"). `on_completed` (a callable
set on LLMServer) runs after each such answer, e.g. to interrupt a client at that exact point.
"""
from __future__ import annotations

import argparse
import dataclasses
import hashlib
import json
import random
import re
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

ATTRIBUTES = ["helpfulness", "correctness", "coherence", "complexity", "verbosity"]


@dataclass
class ServerConfig:
    latency: float = 0.0            # seconds per answered request
    capacity: int = 0               # max concurrent requests; beyond -> 429 (0 = unlimited)
    retry_after: float = 1.0        # seconds, sent as Retry-After (and retry-after-ms)
    api_key: str | None = None      # when set, a different bearer token gets 401
    fail_first: int = 0             # first K attempts of each distinct request -> fail_status
    fail_status: int = 500
    fail_rate: float = 0.0          # probability of a random fail_status answer
    rate_limit_first: int = 0       # first K attempts of each distinct request -> 429
    hang_first: int = 0             # first K attempts of each distinct request hang, then the connection closes
    hang_seconds: float = 30.0
    wrong_count_rate: float = 0.0   # fraction of generation requests (by hash) answering N-1 items
    garbage_rate: float = 0.0       # fraction of generation requests (by hash) answering garbage
    junk_rate: float = 0.0          # fraction of generation requests (by hash) answering small-model junk (junk_answer)
    preamble: bool = False          # "Here are N ...:" + numbered bold list + epilogue
    wrap: int = 0                   # wrap items at this many characters (continuation lines)
    reward_shape: str = "logprobs"  # logprobs | content | single | none
    reward_models: list = field(default_factory=list)
    error_models: dict = field(default_factory=dict)   # model -> HTTP status
    reward_low: float = 0.5         # helpfulness is spread over [reward_low, reward_high]
    reward_high: float = 4.0
    log_path: str | None = None
    slots: int = 0                  # requests served at once; more wait in the server's queue (0 = unlimited)
    json_schema: str = "ignore"     # response_format json_schema: honour | ignore | 400 | 422 | 500 (rejected)
    grammar: str = "ignore"         # llama.cpp's `grammar` field: honour | ignore


def _h(*parts) -> int:
    return int.from_bytes(hashlib.sha256("\x1f".join(map(str, parts)).encode()).digest()[:8], "big")


def _u(*parts) -> float:
    return _h(*parts) / 2**64


def request_hash(body: dict) -> str:
    return hashlib.sha256(json.dumps(body, sort_keys=True, ensure_ascii=False).encode()).hexdigest()


def bearer_sha256(authorization: str | None) -> str | None:
    """sha256 hex of the bearer token a request carried (None without one): tests see which key came, never it."""
    if not authorization:
        return None
    token = authorization[len("Bearer "):] if authorization.startswith("Bearer ") else authorization
    return hashlib.sha256(token.encode()).hexdigest()


def _words(text: str) -> list[str]:
    return text.split()


_SOURCE_LABEL = re.compile(r"(?:TEXT|TITLE|QUESTION|ANSWER):\n")


def parse_generation_prompt(content: str):
    """(kind, document, n) for a generation prompt (the source text under a "TITLE:" / "QUESTION:" / "ANSWER:" label,
    a blank line, then an instruction naming "exactly N"), else None."""
    label = _SOURCE_LABEL.match(content)
    if not label:
        return None
    doc, sep, instr = content[label.end():].rpartition("\n\n")
    m = re.search(r"exactly (\d+)", instr)
    if not sep or not m:
        return None
    kind = "paraphrase" if re.search(r"paraphrase|rewrite the (?:question|answer)", instr, re.I) else "questions"
    return kind, doc.strip(), int(m.group(1))


_TEMPLATES = [
    "Is it legal to {a} when {b}?",
    "What does the law say about {a} and {b}?",
    "Can a person be liable for {a} if {b}?",
    "How does {a} apply to {b}?",
    "Do I need permission for {a} under {b}?",
]


def make_question(doc: str, seed, k: int) -> str:
    words = [re.sub(r"[^\w'-]", "", w).lower() for w in _words(doc)]
    words = [w for w in words if len(w) > 3] or ["this", "situation"]
    rng = random.Random(_h(doc, seed, k, "q"))
    i = rng.randrange(len(words))
    a = " ".join(words[i:i + 3]) or words[0]
    j = rng.randrange(len(words))
    b = " ".join(words[j:j + 3]) or words[-1]
    return _TEMPLATES[rng.randrange(len(_TEMPLATES))].format(a=a, b=b)


def make_paraphrase(doc: str, seed, k: int) -> str:
    words = _words(doc)
    n = len(words)
    if n <= 2:
        return " ".join(words)
    drop = max(1, n // 12)
    if n > 50:
        drop = min(drop, n - 50)
    rng = random.Random(_h(doc, seed, k, "p"))
    gone = set(rng.sample(range(1, n), min(drop, n - 1)))
    return " ".join(w for i, w in enumerate(words) if i not in gone)


def reward_scores(text: str, cfg: ServerConfig) -> dict:
    out = {}
    for a in ATTRIBUTES:
        u = _u(text, a)
        lo, hi = (cfg.reward_low, cfg.reward_high) if a == "helpfulness" else (0.0, 4.0)
        out[a] = round(lo + (hi - lo) * u, 4)
    return out


def _wrap(text: str, width: int) -> list[str]:
    lines, cur = [], ""
    for w in text.split():
        if cur and len(cur) + 1 + len(w) > width:
            lines.append(cur)
            cur = w
        else:
            cur = f"{cur} {w}" if cur else w
    return lines + ([cur] if cur else [])


def render_items(items: list[str], cfg: ServerConfig, what: str) -> str:
    lines = []
    if cfg.preamble:
        lines += [f"Here are {len(items)} {what}:", ""]
    for i, item in enumerate(items, 1):
        parts = _wrap(item, cfg.wrap) if cfg.wrap else [item]
        if cfg.preamble:
            parts[0] = f"{i}. **{parts[0]}" if len(parts) > 1 else f"{i}. **{parts[0]}**"
            if len(parts) > 1:
                parts[-1] += "**"
        else:
            parts[0] = f"* {parts[0]}"
        lines.append(parts[0])
        lines += [f"  {p}" for p in parts[1:]]
    if cfg.preamble:
        lines += ["", "Let me know if you need anything else."]
    return "\n".join(lines)


# ---- junk: what small models write when asked for a list (the SDG parser must never accept any of it) ----------
def _junk_items(kind: str, doc: str, n: int, seed) -> list[str]:
    return [make_question(doc, seed, k) if kind == "questions" else make_paraphrase(doc, seed, k) for k in range(n)]


def _junk_bullets(items: list[str]) -> str:
    return "\n".join(f"* {i}" for i in items)


JUNK_KINDS = ("preamble_no_colon", "glued_closing", "refusal", "truncated", "think_block", "sub_bullets",
              "unclosed_think", "closing_next_line", "echo")


def junk_answer(kind: str, doc: str, n: int, seed, h: str) -> tuple[str, str]:
    """(content, finish_reason) of one junk answer, chosen by the request hash: deterministic by request. Answers
    that keep the clean items around them (preamble, closing remark, think block) parse to exactly the clean items;
    the others (refusal, cut off, sub-bullets, unclosed think, an echo of the document) must be rejected."""
    items = _junk_items(kind, doc, n, seed)
    what = "questions" if kind == "questions" else "paraphrases"
    junk = JUNK_KINDS[_h(h, "junk-kind") % len(JUNK_KINDS)]
    if junk == "preamble_no_colon":
        return f"Sure! Here are {n} {what} based on the text\n" + _junk_bullets(items), "stop"
    if junk == "glued_closing":
        return _junk_bullets(items) + " I hope these help, let me know!", "stop"
    if junk == "refusal":
        return "I'm sorry, but I can't help with that. As an AI, I cannot provide legal advice.", "stop"
    if junk == "truncated":
        body = _junk_bullets(items)
        return body[:len(body) - max(3, len(items[-1]) // 2)], "length"
    if junk == "think_block":
        return (f"<think>\nThe user wants {n} {what}. Draft:\n* draft one\n* draft two\n</think>\n\n"
                + _junk_bullets(items)), "stop"
    if junk == "sub_bullets":
        return f"* {items[0]}\n" + "\n".join(f"  * junk sub-bullet {k}?" for k in range(n)), "stop"
    if junk == "unclosed_think":
        return f"<think>\nI need {n} {what}. First, * junk draft", "length"
    if junk == "closing_next_line":
        return _junk_bullets(items) + "\nLet me know if you need more " + what + ".", "stop"
    return _junk_bullets([doc] + items[1:]), "stop"     # echo: the document itself as the first variant


# ---- constraints: response_format json_schema and llama.cpp's grammar ----------------------------------------------
def _json_schema(body: dict) -> dict | None:
    fmt = body.get("response_format")
    if isinstance(fmt, dict) and fmt.get("type") == "json_schema":
        return (fmt.get("json_schema") or {}).get("schema") or {}
    return None


def _constraint_rejection(body: dict, cfg: ServerConfig) -> int | None:
    if _json_schema(body) is not None and cfg.json_schema in ("400", "422", "500"):
        return int(cfg.json_schema)
    return None


def _constraint_count(body: dict) -> tuple[str | None, int | None]:
    """(which constraint the server honours here, the item count it asks for; None for the judge's)."""
    schema = _json_schema(body)
    if schema is not None:
        items = (schema.get("properties") or {}).get("items")
        return "json-schema", (items.get("minItems") if isinstance(items, dict) else None)
    grammar = body.get("grammar")
    if isinstance(grammar, str):
        root = next((line for line in grammar.splitlines() if line.startswith("root ::=")), "")
        n = root.split("::=", 1)[1].split().count("item")
        return "grammar", (n or None)
    return None, None


def _constrained_answer(body: dict, cfg: ServerConfig, h: str, seed) -> str | None:
    """The answer under an honoured constraint, or None (no constraint, or one this server ignores)."""
    which, n = _constraint_count(body)
    if which is None or (which == "json-schema" and cfg.json_schema != "honour") or \
            (which == "grammar" and cfg.grammar != "honour"):
        return None
    messages = body.get("messages") or []
    user = str(messages[-1].get("content", "")) if messages else ""
    gen = parse_generation_prompt(user)
    if gen is None or n is None:                       # the judge (or any other call): its JSON scores
        return json.dumps({a: int(v) for a, v in reward_scores(user, cfg).items()})
    kind, doc, _ = gen
    items = _junk_items(kind, doc, n, seed)
    if _u(h, "junk") < cfg.junk_rate:                  # form kept, content junk: the item gates must catch it
        junk = _h(h, "constrained-junk") % 3
        items[0] = (doc if junk == 0 else "I'm sorry, but as an AI I cannot help with that." if junk == 1
                    else items[0] + ("" if items[0][-1:] in ".?!" else ".") + " I hope these help!")
    items = [" ".join(i.split()) for i in items]
    if which == "json-schema":
        return json.dumps({"items": items})
    if kind == "questions":        # the title grammar ends each line in "?": so does a model that follows it
        items = [i if i.endswith("?") else i.rstrip(".!") + "?" for i in items]
    return "".join(f"* {i}\n" for i in items)


class _State:
    def __init__(self, cfg: ServerConfig):
        self.cfg = cfg
        self.lock = threading.Lock()
        self.inflight = 0
        self.max_inflight = 0
        self.slots = threading.Semaphore(cfg.slots) if cfg.slots else None
        self.attempts: dict[str, int] = {}
        self.log: list[dict] = []
        self.counts = {"requests": 0, "429": 0, "5xx": 0, "200": 0, "401": 0, "hang": 0}
        self._log_file = open(cfg.log_path, "a", encoding="utf-8") if cfg.log_path else None
        # called (on the handler's thread) with each logged entry of a 200 answer written in full, after it is
        # logged: tests use it to interrupt a client right after a response left the server (LLMServer.on_completed)
        self.on_completed = None

    def record(self, entry: dict) -> None:
        with self.lock:
            self.log.append(entry)
            if self._log_file:
                self._log_file.write(json.dumps(entry) + "\n")
                self._log_file.flush()


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "llm-test-server/1"
    disable_nagle_algorithm = True   # headers and body go out as separate writes: no 40 ms delayed-ACK stalls

    def log_message(self, *args):  # quiet
        pass

    @property
    def st(self) -> _State:
        return self.server.state  # type: ignore[attr-defined]

    def _send(self, status: int, obj=None, headers: dict | None = None) -> bool:
        data = json.dumps(obj if obj is not None else {}).encode()
        try:
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            for k, v in (headers or {}).items():
                self.send_header(k, v)
            self.end_headers()
            self.wfile.write(data)
            self.wfile.flush()
            return True
        except OSError:
            return False

    def do_GET(self):
        if self.path.rstrip("/") == "/log":
            with self.st.lock:
                self._send(200, list(self.st.log))
        elif self.path.rstrip("/") == "/stats":
            with self.st.lock:
                self._send(200, {**self.st.counts, "max_inflight": self.st.max_inflight})
        elif self.path.rstrip("/") == "/v1/models":
            self._send(200, {"object": "list", "data": [{"id": "test-model", "object": "model"}]})
        else:
            self._send(404, {"error": {"message": "not found"}})

    def do_POST(self):
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        if self.path.rstrip("/") == "/config":
            upd = json.loads(raw or b"{}")
            for k, v in upd.items():
                setattr(self.st.cfg, k, v)
            self._send(200, dataclasses.asdict(self.st.cfg))
            return
        if self.path.rstrip("/") not in ("/v1/chat/completions", "/chat/completions"):
            self._send(404, {"error": {"message": "not found"}})
            return
        try:
            body = json.loads(raw)
        except ValueError:
            self._send(400, {"error": {"message": "invalid JSON"}})
            return
        self._chat(body)

    def _chat(self, body: dict) -> None:
        st, cfg = self.st, self.st.cfg
        h = request_hash(body)
        model = body.get("model", "")
        entry = {"hash": h, "model": model, "t": time.time(), "status": None, "completed": False,
                 "key_sha256": bearer_sha256(self.headers.get("Authorization"))}
        with st.lock:
            st.counts["requests"] += 1
            attempt = st.attempts.get(h, 0)
            st.attempts[h] = attempt + 1
        if cfg.api_key is not None and self.headers.get("Authorization") != f"Bearer {cfg.api_key}":
            with st.lock:
                st.counts["401"] += 1
            entry["status"] = 401
            st.record(entry)
            self._send(401, {"error": {"message": "Incorrect API key provided", "type": "invalid_request_error",
                                       "code": "invalid_api_key"}})
            return
        with st.lock:
            over = cfg.capacity and st.inflight >= cfg.capacity
            if over:
                st.counts["429"] += 1
            else:
                st.inflight += 1
                st.max_inflight = max(st.max_inflight, st.inflight)
        if over or attempt < cfg.rate_limit_first:
            if not over:
                with st.lock:
                    st.inflight -= 1
                    st.counts["429"] += 1
            entry["status"] = 429
            st.record(entry)
            self._send(429, {"error": {"message": "Too many requests", "type": "rate_limit"}},
                       {"Retry-After": f"{cfg.retry_after:g}", "retry-after-ms": str(int(cfg.retry_after * 1000))})
            return
        released = False

        def release():
            nonlocal released
            if not released:
                released = True
                with st.lock:
                    st.inflight -= 1

        try:
            if attempt < cfg.hang_first:
                with st.lock:
                    st.counts["hang"] += 1
                entry["status"] = "hang"
                time.sleep(cfg.hang_seconds)
                release()
                st.record(entry)
                self.close_connection = True
                try:
                    self.connection.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
                return
            if st.slots is not None:
                with st.slots:      # one at a time (or `slots` at a time): the rest wait here, as in llama.cpp
                    if cfg.latency:
                        time.sleep(cfg.latency)
            elif cfg.latency:
                time.sleep(cfg.latency)
            status = cfg.error_models.get(model) or _constraint_rejection(body, cfg)
            if status is None and (attempt < cfg.fail_first or
                                   (cfg.fail_rate and random.random() < cfg.fail_rate)):
                status = cfg.fail_status
            if status is not None:
                release()
                with st.lock:
                    if status >= 500:
                        st.counts["5xx"] += 1
                entry["status"] = status
                st.record(entry)
                self._send(status, {"error": {"message": f"injected error {status}", "type": "server_error"}})
                return
            resp = self._answer(body, h)
            release()  # before writing, so a client that reuses its slot at once is not counted twice
            ok = self._send(200, resp)
            entry["status"] = 200
            entry["completed"] = ok
            with st.lock:
                st.counts["200"] += 1
            st.record(entry)
            if ok and st.on_completed is not None:
                st.on_completed(entry)
        finally:
            release()

    # ---- answers -------------------------------------------------------------------------------------------
    def _is_reward(self, model: str) -> bool:
        return model in self.st.cfg.reward_models or "reward" in model.lower()

    def _answer(self, body: dict, h: str) -> dict:
        cfg = self.st.cfg
        model = body.get("model", "")
        messages = body.get("messages") or []
        seed = body.get("seed")
        prompt_text = " ".join(str(m.get("content", "")) for m in messages)
        logprobs = None
        finish_reason = "stop"
        if self._is_reward(model):
            shape = cfg.reward_shape
            for s in ("content", "logprobs", "single"):
                if s in model.lower():
                    shape = s
            assistant = next((m.get("content", "") for m in reversed(messages) if m.get("role") == "assistant"), "")
            user = next((m.get("content", "") for m in messages if m.get("role") == "user"), "")
            scores = reward_scores(user + "\n" + assistant, cfg)
            if shape == "logprobs":
                content = ""
                logprobs = {"content": [{"token": a, "logprob": v, "bytes": None, "top_logprobs": []}
                                        for a, v in scores.items()]}
            elif shape == "content":
                content = ",".join(f"{a}:{v}" for a, v in scores.items())
            elif shape == "single":
                content = f"reward:{round(scores['helpfulness'] * 4 - 10, 4)}"
            else:
                content = "Thank you for sharing this conversation! The answer seems reasonable."
        else:
            user = messages[-1].get("content", "") if messages else ""
            gen = parse_generation_prompt(str(user))
            if gen is not None:
                kind, doc, n = gen
                if _u(h, "garbage") < cfg.garbage_rate:
                    content = "I'm sorry, I can't help with that. ### <|endoftext|>"
                elif _u(h, "junk") < cfg.junk_rate:
                    content, finish_reason = junk_answer(kind, doc, n, seed, h)
                else:
                    if _u(h, "wrong") < cfg.wrong_count_rate:
                        n = max(0, n - 1)
                    if kind == "questions":
                        items = [make_question(doc, seed, k) for k in range(n)]
                    else:
                        items = [make_paraphrase(doc, seed, k) for k in range(n)]
                    content = render_items(items, cfg, "questions" if kind == "questions" else "paraphrases")
            elif "JSON" in user and "helpfulness" in user:
                scores = {a: int(v) for a, v in reward_scores(user, cfg).items()}
                content = json.dumps(scores)
            else:
                content = "This is a test answer from the test server."
            constrained = _constrained_answer(body, cfg, h, seed)
            if constrained is not None:
                content, finish_reason = constrained, "stop"
        prompt_tokens = len(prompt_text.split())
        completion_tokens = max(1, len(content.split()))
        choice = {"index": 0, "message": {"role": "assistant", "content": content},
                  "finish_reason": finish_reason, "logprobs": logprobs}
        return {"id": "chatcmpl-" + h[:24], "object": "chat.completion", "created": 0, "model": model,
                "choices": [choice],
                "usage": {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
                          "total_tokens": prompt_tokens + completion_tokens}}


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 1024
    allow_reuse_address = True

    def handle_error(self, request, client_address):
        # a client killed (or closing its keep-alive connections) mid-request is expected here, not a server bug
        if isinstance(sys.exc_info()[1], (ConnectionResetError, BrokenPipeError)):
            return
        super().handle_error(request, client_address)


class LLMServer:
    """A running test server (in this process, on a daemon thread)."""

    def __init__(self, cfg: ServerConfig, port: int = 0):
        self.cfg = cfg
        self.state = _State(cfg)
        self.httpd = _Server(("127.0.0.1", port), Handler)
        self.httpd.state = self.state  # type: ignore[attr-defined]
        self.port = self.httpd.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.base_url = self.url + "/v1"
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)

    def start(self) -> "LLMServer":
        self.thread.start()
        return self

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        if self.state._log_file:
            self.state._log_file.close()

    @property
    def log(self) -> list[dict]:
        with self.state.lock:
            return list(self.state.log)

    @property
    def on_completed(self):
        return self.state.on_completed

    @on_completed.setter
    def on_completed(self, fn) -> None:
        """fn(entry), called after each 200 answer has been written in full and logged."""
        self.state.on_completed = fn

    @property
    def counts(self) -> dict:
        with self.state.lock:
            return {**self.state.counts, "max_inflight": self.state.max_inflight}

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()


def start_server(port: int = 0, **kwargs) -> LLMServer:
    if kwargs.get("log_path") is not None:
        kwargs["log_path"] = str(kwargs["log_path"])
    return LLMServer(ServerConfig(**kwargs), port=port).start()


def read_log(path) -> list[dict]:
    p = Path(path)
    if not p.exists():
        return []
    return [json.loads(line) for line in p.read_text(encoding="utf-8").splitlines() if line.strip()]


def completed_twice(entries: list[dict]) -> list[str]:
    """Hashes of requests that were answered in full more than once (a call paid twice)."""
    seen, twice = set(), []
    for e in entries:
        if e.get("completed"):
            if e["hash"] in seen:
                twice.append(e["hash"])
            seen.add(e["hash"])
    return twice


def spawn_server(*args: str, timeout: float = 20.0):
    """Start the server in a separate process; returns (Popen, base_url)."""
    proc = subprocess.Popen([sys.executable, str(Path(__file__).resolve()), "--port", "0", *args],
                            stdout=subprocess.PIPE, text=True)
    deadline = time.time() + timeout
    while time.time() < deadline:
        line = proc.stdout.readline()
        if line.startswith("URL "):
            return proc, line.split()[1]
        if not line and proc.poll() is not None:
            break
    proc.kill()
    raise RuntimeError("test server did not start")


def _main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--port", type=int, default=0)
    for f in dataclasses.fields(ServerConfig):
        name = "--" + f.name.replace("_", "-")
        if f.name in ("reward_models", "error_models"):
            continue
        if f.type in ("bool",) or isinstance(f.default, bool):
            ap.add_argument(name, action="store_true")
        elif f.name in ("api_key", "log_path", "reward_shape"):
            ap.add_argument(name, default=f.default)
        else:
            ap.add_argument(name, type=type(f.default), default=f.default)
    ap.add_argument("--reward-model", action="append", default=[], dest="reward_models")
    ap.add_argument("--error-model", action="append", default=[], metavar="MODEL=STATUS")
    a = ap.parse_args(argv)
    kw = {f.name: getattr(a, f.name) for f in dataclasses.fields(ServerConfig) if f.name != "error_models"}
    kw["error_models"] = {m.split("=")[0]: int(m.split("=")[1]) for m in a.error_model}
    srv = LLMServer(ServerConfig(**kw), port=a.port)
    print(f"URL {srv.base_url}", flush=True)
    try:
        srv.httpd.serve_forever(poll_interval=0.1)
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    _main()
