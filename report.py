"""Run report: per-stage counts and seconds, the source, the splits; printed as a table, saved as JSON.

Invariant checked for every stage: rows_in = rows_out + sum(dropped).

Besides the stages, report.json holds `sections`: whatever the other steps return as dicts ("dedup",
"sdg", "audit", "word_counts", "outputs") and "run" (the command line and arguments with every secret
scrubbed, the seed, Python and package versions). Secrets never reach the file: arguments whose name says
key/token/secret/password are replaced by "***", and as a last guard every string in the report is
searched for the secret values themselves (from the arguments and from *_API_KEY/*TOKEN*/*SECRET*
environment variables) and redacts them wherever they appear.
"""
from __future__ import annotations

import json
import os
import platform
import re
import sys
import time
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Iterator

from outputs import atomic_write

SECRET_WORDS = ("key", "token", "secret", "password", "passwd", "credential")
REDACTED = "***"
# Packages whose versions a run records (those missing are skipped).
VERSIONED_PACKAGES = ("dask", "distributed", "pandas", "pyarrow", "numpy", "requests", "httpx2", "tqdm", "ftfy",
                      "lxml", "ijson", "orjson", "xxhash", "torch", "sentence-transformers", "transformers",
                      "scikit-learn", "model2vec", "matplotlib", "cudf", "cuml")


def is_secret_name(name: str) -> bool:
    """True for argument / variable names that hold credentials (api_key, hf_token, client_secret, ...)."""
    lowered = name.lower().lstrip("-").replace("-", "_")
    return any(word in lowered for word in SECRET_WORDS)


_SECRET_ENV = re.compile(r"(^|_)(API_?KEY|KEY|TOKEN|SECRET|PASSWORD|PASSWD)$", re.IGNORECASE)


def _arguments(args) -> dict:
    """The parsed flags as a dict, from a RunConfig (its `namespace`), an argparse Namespace or a dict."""
    if args is None:
        return {}
    if isinstance(args, dict):
        return args
    namespace = getattr(args, "namespace", None)
    return dict(namespace) if isinstance(namespace, dict) else vars(args)


def secret_values(args=None, environ: dict | None = None, min_len: int = 8) -> set[str]:
    """The secret strings of this run: values of secret-named arguments and environment variables."""
    found: set[str] = set()
    for name, value in _arguments(args).items():
        if is_secret_name(name) and isinstance(value, str) and len(value) >= min_len:
            found.add(value)
    env = os.environ if environ is None else environ
    for name, value in env.items():  # NVIDIA_API_KEY, OPENAI_API_KEY, HF_TOKEN, ... (not TOKENIZERS_PARALLELISM)
        if _SECRET_ENV.search(name) and isinstance(value, str) and len(value) >= min_len:
            found.add(value)
    return found


# Keys inside report sections that hold a credential (stricter than argument names: "prompt_tokens" is fine).
_SECRET_KEY = re.compile(r"(api_?key|secret|password|passwd|credentials?|(^|_)token)$", re.IGNORECASE)
_NUMBER = re.compile(r"^-?[0-9.]+([eE][-+]?[0-9]+)?$")
_URL_CREDENTIALS = re.compile(r"(://)[^/@\s]+@")


def redact(value, secrets: set[str] | frozenset[str] = frozenset()):
    """`value` (str / dict / list, nested) with every secret string and URL credentials replaced by ***."""
    if isinstance(value, str):
        for secret in sorted(secrets, key=len, reverse=True):
            if secret in value:
                value = value.replace(secret, REDACTED)
        return _URL_CREDENTIALS.sub(r"\1" + REDACTED + "@", value)
    if isinstance(value, dict):
        return {k: (REDACTED if _SECRET_KEY.search(str(k)) and isinstance(v, str) and v else redact(v, secrets))
                for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [redact(v, secrets) for v in value]
    return value


def scrub_args(args) -> dict:
    """The parsed arguments as a dict, string values of secret-named ones replaced by *** (numbers such as
    --max-tokens and None stay), private (_name) ones left out."""
    out = {}
    for name, value in sorted(_arguments(args).items()):
        if name.startswith("_"):
            continue
        out[name] = REDACTED if is_secret_name(name) and isinstance(value, str) and value else value
    return out


def scrub_argv(argv: list[str], secrets: set[str] | frozenset[str] = frozenset()) -> list[str]:
    """The command line with the values of secret-named flags (`--api-key X`, `--api-key=X`) and any secret
    string replaced by ***."""
    out: list[str] = []
    hide_next = False
    for token in argv:
        if hide_next:
            hide_next = False
            if not token.startswith("-") or _NUMBER.match(token):
                out.append(token if _NUMBER.match(token) else REDACTED)
                continue
        if token.startswith("--") and is_secret_name(token.split("=", 1)[0]):
            if "=" in token:
                name, value = token.split("=", 1)
                out.append(f"{name}={value if _NUMBER.match(value) else REDACTED}")
            else:
                out.append(token)
                hide_next = True
            continue
        out.append(redact(token, secrets))
    return out


def package_versions(names=VERSIONED_PACKAGES) -> dict[str, str]:
    """Installed versions of the packages that shape the output (absent ones skipped)."""
    from importlib import metadata

    versions = {"python": platform.python_version()}
    for name in names:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return versions


def run_info(args, argv: list[str] | None = None) -> dict:
    """The "run" section: command line and arguments (scrubbed), seed, versions, platform."""
    secrets = secret_values(args)
    argv = list(sys.argv[1:] if argv is None else argv)
    info = {
        "command": ["python", "main.py", *scrub_argv(argv, secrets)],
        "args": redact(scrub_args(args), secrets),
        "seed": _arguments(args).get("seed"),
        "versions": package_versions(),
        "platform": f"{platform.system()} {platform.machine()}",
    }
    if hasattr(args, "describe"):  # a RunConfig: the settings as resolved (defaults filled in), not just the flags
        info["config"] = redact(json.loads(json.dumps(args.describe(), default=str)), secrets)
    return info


@dataclass
class StageReport:
    """One stage's accounting."""

    name: str
    rows_in: int
    rows_out: int
    dropped: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0

    def check(self) -> None:
        """Raise AssertionError if rows went missing without a reason."""
        lost = self.rows_in - self.rows_out - sum(self.dropped.values())
        if lost:
            raise AssertionError(f"stage {self.name}: {lost} rows unaccounted for "
                                 f"(in {self.rows_in}, out {self.rows_out}, dropped {self.dropped})")


@dataclass
class RunReport:
    """Everything a run did, in the shape written to report.json."""

    source: dict = field(default_factory=dict)
    stages: list[StageReport] = field(default_factory=list)
    splits: dict[str, int] = field(default_factory=dict)
    sections: dict[str, object] = field(default_factory=dict)  # run, dedup, sdg, audit, outputs, ...
    secrets: set[str] = field(default_factory=set, repr=False)  # redacted from everything written
    started: float = field(default_factory=time.perf_counter, repr=False)  # wall clock of the whole run

    def add_stage(self, name: str, rows_in: int, rows_out: int, dropped: dict[str, int] | None = None,
                  seconds: float = 0.0) -> StageReport:
        """Record a stage; its invariant is checked at once."""
        stage = StageReport(name, int(rows_in), int(rows_out),
                            {k: int(v) for k, v in sorted((dropped or {}).items()) if v}, round(seconds, 3))
        stage.check()
        self.stages.append(stage)
        return stage

    def set_run(self, cfg) -> None:
        """Record the command line, arguments (scrubbed), seed and versions of a RunConfig; remember the secrets
        to redact."""
        self.secrets |= secret_values(cfg)
        self.sections["run"] = run_info(cfg, cfg.argv)

    def to_dict(self) -> dict:
        """The report as written: JSON-safe, with every secret redacted."""
        out = {"source": self.source, "stages": [asdict(s) for s in self.stages], "splits": self.splits}
        out.update(self.sections)
        out["wall_seconds"] = round(time.perf_counter() - self.started, 3)
        return redact(json.loads(json.dumps(out, default=str)), self.secrets | secret_values())

    def write(self, path: Path, data: dict | None = None) -> None:
        """report.json, written atomically (`data`: an already built `to_dict()`)."""
        with atomic_write(path, "w") as f:
            json.dump(self.to_dict() if data is None else data, f, indent=2, sort_keys=False,
                      ensure_ascii=False, default=str)
            f.write("\n")

    def table(self) -> str:
        """The console summary: one line per stage, then splits, outputs, dedup/sdg/audit, seed, source."""
        data = self.to_dict()
        lines = [f"{'stage':<12}{'in':>9}{'out':>9}{'dropped':>9}{'seconds':>9}  reasons"]
        for s in data["stages"]:
            reasons = ", ".join(f"{k}={v}" for k, v in s["dropped"].items())
            lines.append(f"{s['name']:<12}{s['rows_in']:>9}{s['rows_out']:>9}{sum(s['dropped'].values()):>9}"
                         f"{s['seconds']:>9.2f}  {reasons}")
        total = sum(s["seconds"] for s in data["stages"])
        lines.append(f"{'total':<39}{total:>9.2f}  (wall {data['wall_seconds']:.1f}s: + startup, leak check, "
                     f"audit, card)")
        if data.get("splits"):
            lines.append("splits: " + ", ".join(f"{k}={v}" for k, v in data["splits"].items()))
        outputs = data.get("outputs") or {}
        if outputs.get("files"):
            lines.append(f"formats: {', '.join(outputs['files'])}"
                         + (f"; card: {outputs['card']}" if outputs.get("card") else "")
                         + (f"; plots: {', '.join(outputs['plots'])}" if outputs.get("plots") else ""))
        for name in ("dedup", "sdg", "leaks", "audit"):
            if isinstance(data.get(name), dict):
                lines.append(f"{name}: {section_brief(name, data[name])}")
        run = data.get("run") or {}
        if run:
            versions = run.get("versions") or {}
            lines.append(f"seed: {run.get('seed')}; python {versions.get('python', '?')}, "
                         + ", ".join(f"{k} {versions[k]}" for k in ("dask", "pandas", "torch") if k in versions))
        origin = self.source.get("origin")
        if origin:
            note = "  <- BUNDLED SAMPLE (generated data), not the real dump" if self.source.get("sample") else ""
            sha = f" sha256 {self.source['sha256'][:12]}…" if self.source.get("sha256") else ""
            name = self.source.get("site_name")
            site = f" [{name}, {self.source.get('site_url')}]" if name else ""
            lines.append(f"source: {origin} {self.source.get('path', '')}{sha}{site}{note}")
            lines += licence_lines(outputs)
        return "\n".join(lines)


def licence_lines(outputs: dict) -> list[str]:
    """The written rows per licence, how many of them inferred from the post's date, and the posts' period."""
    licenses, inferred = outputs.get("licenses") or {}, outputs.get("licenses_inferred") or {}
    period = outputs.get("period") or {}
    lines = ["licences: " + ", ".join(f"{k or '(none)'}={v}" + (f" ({inferred[k]} inferred)" if inferred.get(k)
                                                                 else "") for k, v in licenses.items())
             ] if licenses else []
    if period:
        lines.append(f"posts from {str(period.get('first'))[:10]} to {str(period.get('last'))[:10]}")
    return lines


def _scalar(value) -> bool:
    return isinstance(value, (int, float, str, bool)) and not (isinstance(value, str) and len(value) > 60)


def section_brief(name: str, section: dict, limit: int = 8) -> str:
    """One line for a report section: the well-known counts first, then other top-level scalars."""
    parts: list[str] = []
    if name == "dedup":
        config = section.get("config") if isinstance(section.get("config"), dict) else {}
        for kind in ("exact", "fuzzy", "semantic"):
            if config and not config.get(kind):
                continue
            if isinstance(section.get(kind), dict) and "removed" in section[kind]:
                parts.append(f"{kind}={section[kind]['removed']}")
        if config and not any(config.get(k) for k in ("exact", "fuzzy", "semantic")):
            parts.append("no kinds run")
        if isinstance(section.get("families"), dict) and "count" in section["families"]:
            parts.append(f"families={section['families']['count']}")
        skip = {"config", "rows_in", "rows_out", "seconds_total", "exact", "fuzzy", "semantic", "families"}
    elif name == "audit":
        checks = section.get("checks") if isinstance(section.get("checks"), dict) else {}
        statuses: dict[str, int] = {}
        for check in checks.values():
            if isinstance(check, dict):
                statuses[str(check.get("status"))] = statuses.get(str(check.get("status")), 0) + 1
        return (f"{str(section.get('verdict', '?')).upper()}"
                + (f", leaks={section['leaks']}" if "leaks" in section else "")
                + (f", failed={','.join(section['failed'])}" if section.get("failed") else "")
                + (", checks: " + " ".join(f"{k}={v}" for k, v in sorted(statuses.items())) if statuses else "")
                + (f", error: {section['error']}" if section.get("error") else "")
                + (f" ({section['seconds']:.1f}s)" if isinstance(section.get("seconds"), (int, float)) else ""))
    elif name == "leaks":
        return (f"{section.get('total', '?')} cross-split pairs (exact {section.get('exact_pairs', 0)}, "
                f"jaccard {section.get('jaccard_pairs', 0)}, cosine {section.get('cosine_pairs', 0)})"
                + (f" ({section['seconds']:.1f}s)" if isinstance(section.get("seconds"), (int, float)) else ""))
    elif name == "sdg":
        if not section.get("ran", True):
            why = str(section.get("skipped") or "not configured")
            return f"skipped ({why.split('skipped: ', 1)[-1]})"
        rounds = section.get("rounds")
        parts.append(f"added={section.get('added', 0)}")
        if isinstance(rounds, list):
            parts.append(f"rounds={len(rounds)}")
        parts.append(f"stop={section.get('stop_reason')}")
        if isinstance(section.get("structured_output"), dict):
            parts.append(f"structured_output={section['structured_output'].get('mode')}")
        llm = section.get("llm") if isinstance(section.get("llm"), dict) else {}
        parts += [f"{k}={llm[k]}" for k in ("requests", "cache_hits", "retries", "total_tokens") if k in llm]
        if isinstance(section.get("batch"), dict):
            parts.append(f"batches={len(section['batch'].get('batches') or [])}")
        return ", ".join(parts)
    else:
        skip = set()
    for key, value in section.items():
        if len(parts) >= limit:
            break
        if key in skip:
            continue
        if _scalar(value):
            parts.append(f"{key}={round(value, 3) if isinstance(value, float) else value}")
        elif isinstance(value, list) and key in ("rounds",):
            parts.append(f"{key}={len(value)}")
        elif isinstance(value, dict) and value and len(value) <= 4 and all(
                isinstance(v, (int, float)) and not isinstance(v, bool) for v in value.values()):
            parts.append(f"{key}=" + "/".join(f"{k}:{round(v, 3) if isinstance(v, float) else v}"
                                              for k, v in value.items()))
    return ", ".join(parts) or "(see report.json)"


@contextmanager
def timed() -> Iterator[dict]:
    """`with timed() as t: ...` then t["seconds"]."""
    box = {"seconds": 0.0}
    start = time.perf_counter()
    try:
        yield box
    finally:
        box["seconds"] = time.perf_counter() - start
