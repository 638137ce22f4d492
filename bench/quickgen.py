"""Fallback corpus generator for the benchmark, used only when data/make_sample.py is absent.

Writes a Law-StackExchange-shaped JSON array (the dump's schema, as data/make_sample.py writes it) with
roughly the real dump's size and length distribution (~4.3 KB per question, bodies ~50-600 words, 0-5 answers, realistic HTML:
paragraphs, lists, blockquotes, links, code, entities, some mojibake) and a few planted duplicates.
Text is generated from a small vocabulary of legal words; it is not real Law.SE text.

    python bench/quickgen.py --questions 24370 --seed 7 --out bench/corpora/quick-24370.json
"""
from __future__ import annotations

import argparse
import json
import random
from pathlib import Path

WORDS = ("contract tenant landlord lease court judge statute breach damages liability negligence copyright "
         "license trademark patent employer employee wage police warrant search seizure evidence witness "
         "defendant plaintiff appeal jurisdiction federal state county law clause agreement notice deposit "
         "property easement trespass privacy data consent minor guardian custody divorce alimony estate will "
         "probate trust tax income deduction refund fine penalty crime felony misdemeanor arrest bail sentence "
         "the a an of to in for on with by under is are was be may must shall not if when whether that this "
         "which would could should any all each their his her its our your my reasonable lawful unlawful "
         "written oral implied express void voidable enforceable remedy injunction settlement claim filed "
         "section act regulation code rule precedent doctrine fair use public domain GDPR EU UK US").split()
TAGS = ("contract-law united-states united-kingdom copyright criminal-law tenancy employment gdpr privacy "
        "intellectual-property tax-law family-law police evidence canada australia germany").split()
MOJIBAKE = ["donâ€™t", "â€œnoticeâ€\x9d", "cafÃ©", "naÃ¯ve"]
CURLY = ["don\u2019t", "\u201cterms\u201d", "the\u00a0Act", "\u00a7\u00a012", "2019\u20132020"]
ENTITIES = ["&amp;", "&quot;terms&quot;", "&lt;clause&gt;", "&#8217;s", "&nbsp;"]


def _sentence(rng: random.Random, n: int) -> str:
    words = [rng.choice(WORDS) for _ in range(n)]
    roll = rng.random()
    if roll < 0.005:
        words[rng.randrange(n)] = rng.choice(MOJIBAKE)
    elif roll < 0.04:
        words[rng.randrange(n)] = rng.choice(ENTITIES)
    elif roll < 0.10:
        words[rng.randrange(n)] = rng.choice(CURLY)
    words[0] = words[0].capitalize()
    return " ".join(words) + rng.choice([".", ".", ".", "?", ";"])


def _text(rng: random.Random, words: int) -> str:
    out, left = [], words
    while left > 0:
        n = min(left, rng.randint(6, 24))
        out.append(_sentence(rng, n))
        left -= n
    return " ".join(out)


def _html_body(rng: random.Random, words: int) -> str:
    """HTML with paragraphs and the odd list, quote, link, code block or line break."""
    blocks, left = [], words
    while left > 0:
        n = min(left, rng.randint(20, 90))
        left -= n
        kind = rng.random()
        if kind < 0.08:
            items = "".join(f"<li>{_text(rng, max(3, n // 3))}</li>" for _ in range(3))
            blocks.append(f"<{'ol' if rng.random() < 0.4 else 'ul'}>\n{items}\n</ul>")
        elif kind < 0.16:
            blocks.append(f"<blockquote>\n  <p>{_text(rng, n)}</p>\n</blockquote>")
        elif kind < 0.20:
            blocks.append(f"<pre><code>{_text(rng, n)}\n  indented line\n</code></pre>")
        else:
            text = _text(rng, n)
            if rng.random() < 0.2:
                cut = text.find(" ", len(text) // 2)
                text = (f'{text[:cut]} <a href="https://example.org/{rng.randrange(10**6)}" rel="nofollow">'
                        f'see here</a>{text[cut:]}')
            if rng.random() < 0.1:
                text = text.replace(". ", ".<br>\n", 1)
            if rng.random() < 0.1:
                text = text.replace(" the ", " <em>the</em> ", 1).replace(" law ", " <code>law</code> ", 1)
            blocks.append(f"<p>{text}</p>")
    return "\n\n".join(blocks) + "\n"


def _length(rng: random.Random) -> int:
    # log-normal-ish around ~180 words; ~8% under 50, ~5% over 500
    return max(5, min(3000, int(rng.lognormvariate(5.1, 0.65))))


def generate(questions: int, seed: int) -> list[dict]:
    rng = random.Random(seed)
    out: list[dict] = []
    for i in range(questions):
        qid = 1000 + i * 3 + rng.randint(0, 2)
        if out and rng.random() < 0.02:  # planted exact/near duplicate of an earlier question
            src = rng.choice(out)
            el = json.loads(json.dumps(src))
            el["question_id"] = qid
            el["link"] = f"https://law.stackexchange.com/questions/{qid}/copy-{qid}"
            if rng.random() < 0.5 and el["answers"]:
                el["answers"][0]["body"] = el["answers"][0]["body"].replace(" the ", " a ", 2)
            out.append(el)
            continue
        n_answers = rng.choice([0, 1, 1, 1, 2, 2, 3, 4, 5]) if rng.random() > 0.05 else 0
        answers = [{"answer_id": qid * 10 + k, "body": _html_body(rng, _length(rng)),
                    "score": rng.randint(-3, 40)} for k in range(n_answers)]
        answers.sort(key=lambda a: -a["score"])
        title = _sentence(rng, rng.randint(5, 14)).rstrip(".;") + "?"
        out.append({
            "question_id": qid,
            "tags": rng.sample(TAGS, rng.randint(1, 4)),
            "score": rng.randint(-4, 60),
            "license": rng.choice(["CC BY-SA 3.0", "CC BY-SA 4.0"]),
            "link": f"https://law.stackexchange.com/questions/{qid}/generated-{qid}",
            "question_title": title,
            "question_body": _html_body(rng, _length(rng)),
            "answers": answers,
        })
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--questions", type=int, default=24370)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--out", required=True)
    a = ap.parse_args()
    out = Path(a.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(".tmp")
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(generate(a.questions, a.seed), f, ensure_ascii=False)
    tmp.replace(out)


if __name__ == "__main__":
    main()
