"""Prefilter and classifier throughput and memory on a million generated segments.

Writes a JSONL corpus of generated segments (half numbered procedures, half
prose, 200 to 400 characters), then, each in a fresh subprocess so that memory peaks
do not mix, streams it with ``read_corpus`` and

- reads only (the cost every stage pays: JSON parsing and ``Document``s),
- reads and runs ``ProcedurePrefilter.process`` on every segment,
- reads and scores every segment with a trained ``RelevanceClassifier``.

A filter's own rate is segments divided by (its pass minus the read-only
pass); the ratio is that rate over the 50,000 segments per second target.
Memory is the peak RSS of each pass over the peak of the same pass on a tenth
of the corpus (flat memory: about 1).

    python benchmarks/bench_filters.py                 # 1,000,000 segments
    python benchmarks/bench_filters.py --segments 200000
"""

from __future__ import annotations

import argparse
import json
import random
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

from _memory import peak_rss_mib

TARGET = 50_000.0
APPS = ["Northwind", "Teamdesk", "Heatly", "the bank app", "the kiosk", "the router page"]
THINGS = ["order", "invoice", "meeting", "schedule", "password", "printer", "ticket", "profile"]
VERBS = ["Open", "Tap", "Select", "Enter", "Click", "Choose", "Press", "Confirm"]
PLACES = ["Settings", "the menu", "Orders", "the Account page", "the main screen", "Reports"]
TOPICS = ["printing press", "autumn rain", "river trade", "old harbour", "city library"]


def segment(rng: random.Random, index: int) -> dict[str, str]:
    """One generated segment: a numbered procedure or a paragraph of prose."""
    if index % 2 == 0:
        app, thing = rng.choice(APPS), rng.choice(THINGS)
        steps = [
            f"{n}. {rng.choice(VERBS)} {rng.choice(PLACES)} and find the {thing} field."
            for n in range(1, rng.randint(4, 7))
        ]
        text = f"How to change your {thing} in {app}\n\n" + "\n".join(steps)
    else:
        topic = rng.choice(TOPICS)
        text = (
            f"A short history of the {topic}. In the early years the {topic} drew visitors "
            f"from far away, and merchants wrote about it in their letters. Scholars still "
            f"debate how the {topic} changed the town around it; the archive holds {index % 97} "
            f"volumes on the subject, most of them unread since the last century."
        )
    return {"id": f"s{index}", "text": text}


def write_corpus(path: Path, n: int) -> float:
    """Write ``n`` segments; return their mean length in characters."""
    rng = random.Random(7)
    chars = 0
    with path.open("w") as out:
        for i in range(n):
            generated = segment(rng, i)
            chars += len(generated["text"])
            out.write(json.dumps(generated) + "\n")
    return chars / n


def train_classifier(path: Path) -> None:
    from gemlib.classifier import LabelledText, RelevanceClassifier

    rng = random.Random(11)
    labelled = [
        LabelledText(id=s["id"], text=s["text"], procedural=i % 2 == 0)
        for i, s in enumerate(segment(rng, i) for i in range(4000))
    ]
    RelevanceClassifier.train(labelled, target_recall=0.95).save(path)


def run_pass(kind: str, corpus: str, limit: int, model: str) -> None:
    """One pass in this process; prints its JSON figures."""
    from gemlib.classifier import RelevanceClassifier
    from gemlib.formats.corpus import read_corpus
    from gemlib.gem.prefilter import ProcedurePrefilter
    from gemlib.model import Document

    def docs() -> Iterator[Document]:
        for count, doc in enumerate(read_corpus(corpus)):
            if count == limit:
                return
            yield doc

    kept = 0
    started = time.perf_counter()
    if kind == "read":
        for _doc in docs():
            kept += 1
    elif kind == "prefilter":
        prefilter = ProcedurePrefilter()
        for doc in docs():
            kept += isinstance(prefilter.process(doc), Document)
    else:
        classifier = RelevanceClassifier.load(model)
        for doc in docs():
            kept += classifier.keeps(doc.text)
    elapsed = time.perf_counter() - started
    print(json.dumps({"seconds": elapsed, "kept": kept, "peak_mib": peak_rss_mib()}))


def measure(kind: str, corpus: Path, limit: int, model: Path) -> dict[str, float]:
    command = [sys.executable, __file__, "--pass", kind, str(corpus), str(limit), str(model)]
    out = subprocess.run(command, check=True, capture_output=True, text=True).stdout
    figures: dict[str, float] = json.loads(out.splitlines()[-1])
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--segments", type=int, default=1_000_000)
    parser.add_argument("--pass", dest="one_pass", nargs=4, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one_pass:
        kind, corpus, limit, model = args.one_pass
        run_pass(kind, corpus, int(limit), model)
        return

    n = args.segments
    with tempfile.TemporaryDirectory() as tmp:
        corpus, model = Path(tmp) / "segments.jsonl", Path(tmp) / "classifier.json"
        started = time.perf_counter()
        mean_chars = write_corpus(corpus, n)
        train_classifier(model)
        size = corpus.stat().st_size / 2**20
        print(
            f"{n:,} generated segments of {mean_chars:.0f} characters on average "
            f"({size:.0f} MiB of JSONL, written in "
            f"{time.perf_counter() - started:.0f} s); one core each pass"
        )
        small = {
            kind: measure(kind, corpus, n // 10, model)
            for kind in ("read", "prefilter", "classifier")
        }
        full = {
            kind: measure(kind, corpus, n, model) for kind in ("read", "prefilter", "classifier")
        }
    read = full["read"]["seconds"]
    print(
        f"{'pass':<12} {'segments/s':>11} {'filter alone/s':>15} {'ratio to 50k':>13} "
        f"{'kept':>9} {'peak RSS':>9} {'RSS vs 1/10':>11}"
    )
    for kind, figures in full.items():
        rate = n / figures["seconds"]
        alone = n / (figures["seconds"] - read) if kind != "read" else float("nan")
        ratio = alone / TARGET if kind != "read" else float("nan")
        growth = figures["peak_mib"] / small[kind]["peak_mib"]
        print(
            f"{kind:<12} {rate:>11,.0f} {alone:>15,.0f} {ratio:>13.2f} {figures['kept']:>9,.0f} "
            f"{figures['peak_mib']:>7.1f} M {growth:>11.2f}"
        )


if __name__ == "__main__":
    main()
