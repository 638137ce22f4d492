"""Which Stack Exchange site a run reads, and how the card, the report and the prompts name it.

A site is its host name (`law.stackexchange.com`, `stackoverflow.com`): from `--site`, from a dump's archive or
folder name (sedump.site_from_path), or Law Stack Exchange for the JSON dump (ymoslem/Law-StackExchange) and the
bundled sample, which are Law Stack Exchange's. Everything here is a pure function of that host name.
"""
from __future__ import annotations

LAW_SITE = "law.stackexchange.com"
LAW_SUBJECT = "legal questions"  # what the law site's questions are, in the prompts; the default --domain
HF_DATASET = "ymoslem/Law-StackExchange"  # the JSON dump's source (docbuilder.DATASET_URL downloads it)

# Sites whose name is not their host's first label title-cased (and a few common ones, spelled as the sites do).
KNOWN_NAMES = {
    "law.stackexchange.com": "Law Stack Exchange",
    "ai.stackexchange.com": "Artificial Intelligence Stack Exchange",
    "quantumcomputing.stackexchange.com": "Quantum Computing Stack Exchange",
    "cardano.stackexchange.com": "Cardano Stack Exchange",
    "stackoverflow.com": "Stack Overflow",
    "superuser.com": "Super User",
    "serverfault.com": "Server Fault",
    "askubuntu.com": "Ask Ubuntu",
    "mathoverflow.net": "MathOverflow",
    "math.stackexchange.com": "Mathematics Stack Exchange",
    "stats.stackexchange.com": "Cross Validated",
    "cooking.stackexchange.com": "Seasoned Advice",
    "datascience.stackexchange.com": "Data Science Stack Exchange",
    "softwareengineering.stackexchange.com": "Software Engineering Stack Exchange",
    "unix.stackexchange.com": "Unix & Linux Stack Exchange",
    "tex.stackexchange.com": "TeX - LaTeX Stack Exchange",
    "english.stackexchange.com": "English Language & Usage Stack Exchange",
    "money.stackexchange.com": "Personal Finance & Money Stack Exchange",
    "security.stackexchange.com": "Information Security Stack Exchange",
    "meta.stackexchange.com": "Meta Stack Exchange",
}
_SE_SUFFIX = ".stackexchange.com"


def site_name(site: str) -> str:
    """The site's name: from the table, else derived from the host (`foo-bar.stackexchange.com` ->
    "Foo Bar Stack Exchange"; any other host is its own name)."""
    site = site.lower()
    if site in KNOWN_NAMES:
        return KNOWN_NAMES[site]
    if site.endswith(_SE_SUFFIX):
        words = site[: -len(_SE_SUFFIX)].replace(".", " ").replace("-", " ").split()
        return " ".join(w.capitalize() for w in words) + " Stack Exchange"
    return site


def site_url(site: str) -> str:
    """The site's address."""
    return f"https://{site.lower()}"


def site_subject(site: str) -> str:
    """What the site's questions are, as the prompts name them: "legal questions" for Law Stack Exchange,
    "questions on <site name>" for any other site."""
    return LAW_SUBJECT if site.lower() == LAW_SITE else f"questions on {site_name(site)}"


def dataset_name(site: str) -> str:
    """The dataset's name on the card: the site's record-id stem (`ai.stackexchange.com` -> ai-stackexchange-qa,
    `law.stackexchange.com` -> law-stackexchange-qa), so a row's id starts with its dataset's name."""
    from sedump import site_id_prefix

    return site_id_prefix(site).rstrip("-")


def input_site(input_path: str | None, site_flag: str | None) -> str | None:
    """The site a run's input is from, known before anything is read: `--site`, else a dump's name; the JSON dump
    (downloaded, --input or the bundled sample) is Law Stack Exchange's. None for a dump whose name does not say
    (the download stage then asks for --site)."""
    from pathlib import Path

    from sedump import input_format, site_from_path

    if not input_path or not Path(input_path).exists():
        return site_flag or LAW_SITE
    fmt = input_format(Path(input_path))
    if fmt == "json":
        return LAW_SITE
    return site_flag or site_from_path(Path(input_path), fmt)


def describe_site(site: str) -> dict:
    """The report's fields for a site: host, name, address and the dataset name derived from it."""
    return {"site": site, "site_name": site_name(site), "site_url": site_url(site), "dataset_name": dataset_name(site)}
