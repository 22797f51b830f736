"""Cost: LLM relevance calls saved by the prefilter and the classifier, at the chosen recall.

Every segment that reaches GEM's relevance stage costs one LLM call (and a
procedural one four more: extraction, generation, refinement, judge). The
filters in front decide how many get there. Two corpora:

- the bundled examples corpus (20 texts, 16 procedural);
- real text from outside the project (tau2-bench policies and manuals and the
  Python documentation's guides as procedural, its release notes, language
  reference, glossary and licence as not; see ``tests/real_text.py``),
  segmented at 2000 characters.

The classifier is trained on the labels of half the real segments (standing
in for the LLM's labels: each segment takes its source's label), with the
threshold chosen for a target recall, and measured on the other half and on
the examples corpus. Prints relevance calls with no filter, with the
prefilter, and with both; the share of calls saved; and the share of
procedural segments kept (recall).

    python benchmarks/bench_cost.py [--recall 0.95]

Needs the test data: ``nox -s bench`` installs tau2-bench and unpacks Debian's
python3.11-doc (or set GEMLIB_PYTHON_DOCS to its ``html/_sources`` folder).
"""

from __future__ import annotations

import argparse
import json
import random
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from gemlib.classifier import LabelledText, RelevanceClassifier  # noqa: E402
from gemlib.gem.prefilter import ProcedurePrefilter  # noqa: E402
from gemlib.model import Document  # noqa: E402
from real_text import labelled_segments  # noqa: E402


def examples() -> list[tuple[Document, bool]]:
    path = ROOT / "examples" / "corpus" / "gem_examples.jsonl"
    rows = [json.loads(line) for line in path.open()]
    return [(Document(id=r["id"], text=r["text"]), i < 16) for i, r in enumerate(rows)]


def report(name: str, rows: list[tuple[Document, bool]], classifier: RelevanceClassifier) -> None:
    prefilter = ProcedurePrefilter()
    after_prefilter = [(d, y) for d, y in rows if isinstance(prefilter.process(d), Document)]
    after_both = [(d, y) for d, y in after_prefilter if classifier.keeps(d.text)]
    procedural = sum(y for _, y in rows)
    print(f"\n{name}: {len(rows)} segments, {procedural} procedural")
    print(f"{'filters':<24} {'relevance calls':>15} {'saved':>7} {'recall':>7}")
    only_classifier = [(d, y) for d, y in rows if classifier.keeps(d.text)]
    for label, kept in (
        ("none", rows),
        ("prefilter", after_prefilter),
        ("classifier", only_classifier),
        ("prefilter + classifier", after_both),
    ):
        saved = 1 - len(kept) / len(rows)
        recall = sum(y for _, y in kept) / procedural
        print(f"{label:<24} {len(kept):>15} {saved:>7.1%} {recall:>7.3f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--recall", type=float, default=0.95, help="target recall")
    args = parser.parse_args()
    rows = labelled_segments(max_chars=2000)
    random.Random(5).shuffle(rows)
    half = len(rows) // 2
    train = [LabelledText(id=d.id, text=d.text, procedural=y) for d, y in rows[:half]]
    classifier = RelevanceClassifier.train(train, target_recall=args.recall, seed=5)
    assert classifier.report is not None
    print(f"classifier: {classifier.report.format()}")
    report("real text, the half not used for training", rows[half:], classifier)
    report("examples corpus", examples(), classifier)


if __name__ == "__main__":
    main()
