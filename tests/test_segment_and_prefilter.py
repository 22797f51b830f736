"""Segmenter keeps procedures whole; the prefilter separates procedures from other text."""

from __future__ import annotations

from gemlib import Document, Pipeline
from gemlib.gem.prefilter import ProcedurePrefilter, procedure_signals
from gemlib.gem.segmenter import Segmenter, split_text

PROCEDURE = "How to reset the router\n\n" + "\n".join(
    f"{i}. Open the admin page and change setting number {i} on the menu." for i in range(1, 9)
)
PROSE = "\n\n".join(f"Paragraph {i} of an essay about the history of tea." * 3 for i in range(6))


def test_short_documents_are_one_segment_with_a_derived_id() -> None:
    doc = Document(id="d1", text="Open the app.\n\nTap go.")
    (segment,) = Segmenter().process(doc)
    assert segment.id == "d1:0"
    assert segment.parent_id == "d1"
    assert segment.segment_index == 0
    assert segment.text == doc.text


def test_a_numbered_procedure_and_its_heading_stay_in_one_segment() -> None:
    text = PROSE + "\n\n" + PROCEDURE + "\n\n" + PROSE
    segments = split_text(text, max_chars=800)
    holding = [s for s in segments if "1. Open the admin page" in s]
    assert len(holding) == 1
    assert "How to reset the router" in holding[0]
    assert "8. Open the admin page" in holding[0], "the procedure was cut apart"
    assert all(len(s) <= 800 for s in segments)


def test_oversized_blocks_are_cut_at_lines_then_hard() -> None:
    text = "\n".join(["x" * 150] * 10) + "\n" + "y" * 700
    segments = split_text(text, max_chars=300)
    assert all(len(s) <= 300 for s in segments)
    assert "".join(segments).replace("\n", "") == text.replace("\n", "")


def test_segment_ids_are_stable_across_runs() -> None:
    doc = Document(text=PROSE + "\n\n" + PROCEDURE)
    first = [s.id for s in Segmenter(max_chars=400).process(doc)]
    assert first == [s.id for s in Segmenter(max_chars=400).process(doc)]
    assert len(first) > 1


def test_empty_documents_are_rejected_with_a_reason() -> None:
    result = Pipeline([Segmenter()]).run(["   \n\n  "])
    assert result.outputs == []
    assert [(r.rule, r.reason) for r in result.rejections] == [
        ("empty_document", "the document has no text")
    ]


def test_prefilter_keeps_procedures_and_names_what_others_lack() -> None:
    prefilter = ProcedurePrefilter()
    assert prefilter.process(Document(text=PROCEDURE)) == Document(text=PROCEDURE)
    essay = prefilter.process(Document(text=PROSE))
    assert essay.rule == "no_procedure"  # type: ignore[union-attr]
    short = prefilter.process(Document(text="Click OK."))
    assert short.rule == "too_short"  # type: ignore[union-attr]
    code = "\n".join(["int main() {", "  return 0;", "}", "x = f(y);"] * 20)
    assert prefilter.process(Document(text=code)).rule == "mostly_code"  # type: ignore[union-attr]


def test_prefilter_density_rule_shell_prompts_and_empty_text() -> None:
    prefilter = ProcedurePrefilter()
    # Long prose with one list and one operation word: enough signals in count,
    # far too few per 1000 characters.
    notes = "The module now supports more types. " * 80 + "\n- first change\n- the file"
    sparse = prefilter.process(Document(text=notes))
    assert sparse.rule == "sparse_procedure"  # type: ignore[union-attr]
    assert "per 1000 characters" in sparse.reason  # type: ignore[union-attr]
    assert isinstance(
        ProcedurePrefilter(min_imperative_density=0).process(Document(text=notes)), Document
    )
    shell = "Build it from source in a terminal:\n$ ./configure\n$ make\n$ make install\n" * 2
    assert procedure_signals(shell)["steps"] == 6
    assert isinstance(prefilter.process(Document(text=shell)), Document)
    empty = ProcedurePrefilter(min_chars=0).process(Document(id="e", text=""))
    assert empty.rule == "no_procedure"  # type: ignore[union-attr]


def test_prefilter_on_the_example_corpus() -> None:
    from pathlib import Path

    corpus = Path(__file__).parents[1] / "examples" / "corpus" / "gem_examples.jsonl"
    result = Pipeline([Segmenter(), ProcedurePrefilter()]).run(corpus)
    rejected = {r.document_id for r in result.rejections}
    assert rejected == {"history-printing", "review-coffee", "poem-autumn", "team-news"}
    assert len(result.outputs) == 16
