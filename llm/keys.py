"""Which API key may go to which host, and the checks on the endpoint URL and the key."""
from __future__ import annotations

import os
from typing import Mapping
from urllib.parse import urlsplit

KEY_ENV_VARS = ("NVIDIA_API_KEY", "OPENAI_API_KEY")


def host_of(url: str | None) -> str:
    try:
        return (urlsplit(url or "").hostname or "").lower().rstrip(".")
    except ValueError:
        return ""


def is_nvidia_host(url: str | None) -> bool:
    """True for nvidia.com and its subdomains only (not evilnvidia.com, not nvidia.com.evil.org)."""
    host = host_of(url)
    return host == "nvidia.com" or host.endswith(".nvidia.com")


def is_local_url(url: str | None) -> bool:
    host = host_of(url)
    return host in ("localhost", "127.0.0.1", "::1", "0.0.0.0") or host.startswith("127.")


def key_variable(endpoint: str | None) -> str:
    """The environment variable whose key may go to `endpoint`: NVIDIA_API_KEY for NVIDIA hosts, else
    OPENAI_API_KEY."""
    return "NVIDIA_API_KEY" if is_nvidia_host(endpoint) else "OPENAI_API_KEY"


def resolve_api_key(endpoint: str | None, flag_key: str | None,
                    environ: Mapping[str, str] = os.environ) -> tuple[str | None, str | None]:
    """(key, source) for `endpoint`: the flag's key for the endpoint named; else NVIDIA_API_KEY for an NVIDIA host;
    else OPENAI_API_KEY for any other host (local ones too, as the openai SDK does); never a key meant for another
    kind of host. Source is "--api-key", "NVIDIA_API_KEY", "OPENAI_API_KEY" or None (no key)."""
    if flag_key:
        return flag_key, "--api-key"
    var = key_variable(endpoint)
    value = environ.get(var)
    return (value, var) if value else (None, None)


def usable_api_key(key: str | None, source: str | None) -> str | None:
    """The key without surrounding whitespace (a key pasted with its newline), or ValueError("SOURCE: why") when it
    holds characters a header line cannot carry (it goes into one as it is). The message never holds the key."""
    if key is None:
        return None
    key = key.strip()
    if not all(33 <= ord(c) < 127 for c in key):
        raise ValueError(f"{source}: the API key holds characters an HTTP header cannot carry "
                         "(spaces, line breaks or non-ASCII)")
    return key


def check_endpoint(url: str) -> None:
    """Raise ValueError("--synth-gen-endpoint: why") unless `url` is an http(s) URL with a host and no user info
    (user info would let two URL parsers disagree on the host the key goes to)."""
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError on a bad port
    except ValueError as exc:
        raise ValueError(f"--synth-gen-endpoint: not a URL ({exc})") from None
    if parts.scheme not in ("http", "https"):
        raise ValueError("--synth-gen-endpoint: must start with http:// or https://")
    if not parts.hostname:
        raise ValueError("--synth-gen-endpoint: no host name")
    if "@" in parts.netloc:
        raise ValueError("--synth-gen-endpoint: user info in the URL is not supported; pass the key with --api-key")
    if any(c.isspace() or c == "\\" for c in url):
        raise ValueError("--synth-gen-endpoint: spaces and backslashes are not allowed")
    if not url.isascii() or not url.isprintable():
        raise ValueError("--synth-gen-endpoint: ASCII only (percent-encode the path, punycode the host)")
