"""Labels for the relevance classifier (:mod:`gemlib.classifier`) from GEM's relevance stage."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from gemlib.classifier.scoring import LabelledText
from gemlib.gem.prefilter import ProcedurePrefilter
from gemlib.gem.relevance import RelevanceFilter
from gemlib.gem.segmenter import Segmenter
from gemlib.model import Document
from gemlib.pipeline.pipeline import Pipeline

__all__ = ["candidate_segments", "label_with_llm"]


def candidate_segments(
    documents: Iterable[Document], *, prefilter: bool = True
) -> Iterator[Document]:
    """The segments GEM's relevance stage would be asked about: each document split by the
    :class:`~gemlib.gem.segmenter.Segmenter`, then (with ``prefilter``) those the
    :class:`~gemlib.gem.prefilter.ProcedurePrefilter` keeps."""
    segmenter, keeps = Segmenter(), ProcedurePrefilter()
    for document in documents:
        segments = segmenter.process(document)
        for segment in segments if isinstance(segments, list) else []:
            if not prefilter or isinstance(keeps.process(segment), Document):
                yield segment


def label_with_llm(
    segments: Iterable[Document | str],
    model: Any,
    *,
    run_dir: str | Path | None = None,
    **run_options: Any,
) -> tuple[list[LabelledText], int]:
    """Ask the LLM's relevance stage about each segment; return the labels and how many failed.

    Kept segments are procedural; ``not_procedural`` rejections are not; any
    other rejection (an unparseable reply, a model error) gives no label and
    is counted. With ``run_dir`` the labelling resumes like any run.
    """
    docs = [s if isinstance(s, Document) else Document(text=s) for s in segments]
    texts = {d.id: d.text for d in docs}
    result = Pipeline([RelevanceFilter(model)]).run(docs, run_dir=run_dir, **run_options)
    labels = [LabelledText(id=d.id, text=d.text, procedural=True) for d in result.outputs]
    failed = 0
    for rejection in result.rejections:
        if rejection.rule == "not_procedural" and rejection.item_id in texts:
            labels.append(
                LabelledText(id=rejection.item_id, text=texts[rejection.item_id], procedural=False)
            )
        else:
            failed += 1
    return labels, failed
