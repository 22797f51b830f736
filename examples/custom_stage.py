"""A custom stage in a pipeline with the built-in ones, run into a resumable directory.

python examples/custom_stage.py [RUN_DIR]
"""

from __future__ import annotations

import sys
from pathlib import Path

import attrs

from gemlib import Document, Pipeline, Rejection, Stage
from gemlib.analysis.report import format_funnel, format_rejections
from gemlib.gem.prefilter import ProcedurePrefilter
from gemlib.gem.segmenter import Segmenter


@attrs.define
class KeywordFilter(Stage):
    """Keep segments that mention one of ``keywords``."""

    keywords: tuple[str, ...] = ("app", "account", "online")

    def process(self, doc: Document) -> Document | Rejection:
        text = doc.text.lower()
        if any(word in text for word in self.keywords):
            return doc
        return Rejection(rule="off_topic", reason=f"mentions none of {', '.join(self.keywords)}")


def main() -> None:
    run_dir = sys.argv[1] if len(sys.argv) > 1 else "runs/custom-stage"
    corpus = Path(__file__).parent / "corpus" / "gem_examples.jsonl"
    pipe = Pipeline([Segmenter(), ProcedurePrefilter()]) | KeywordFilter()
    result = pipe.run(corpus, run_dir=run_dir)
    print(format_funnel(result.stats))
    print(format_rejections(result.rejections, limit=20))


if __name__ == "__main__":
    main()
