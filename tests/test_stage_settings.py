"""Every setting of a stage reaches the run fingerprint, or the run is refused with advice."""

from __future__ import annotations

from pathlib import Path

import attrs
import pytest

from gemlib import Document, Pipeline, PipelineError, RunDirError, Stage, stage


class Threshold(Stage):
    """A plain (non-attrs) stage with one setting."""

    def __init__(self, min_chars: int) -> None:
        self.min_chars = min_chars
        self.seen: list[str] = []  # state, not a setting: not in the fingerprint

    def process(self, doc: Document) -> Document:
        self.seen.append(doc.text)
        return doc


def test_a_plain_stage_setting_changes_the_fingerprint(tmp_path: Path) -> None:
    # Plain classes used to be fingerprinted by name only, so a changed setting
    # silently resumed a run made with the old one.
    first = Threshold(10)
    Pipeline([first]).run(["a", "b"], run_dir=tmp_path)
    assert Pipeline([first]).describe()[0]["config"] == {"min_chars": 10}
    Pipeline([Threshold(10)]).run(["a", "b"], run_dir=tmp_path)  # same settings: resumes
    with pytest.raises(RunDirError, match="different pipeline"):
        Pipeline([Threshold(20)]).run(["a", "b"], run_dir=tmp_path)


def test_a_setting_the_stage_does_not_keep_is_refused_with_advice(tmp_path: Path) -> None:
    class Hidden(Stage):
        def __init__(self, limit: int) -> None:
            self.cap = limit

        def process(self, doc: Document) -> Document:
            return doc

    with pytest.raises(PipelineError, match=r"keeps no attribute.*self\.limit.*config\(\)"):
        Pipeline([Hidden(3)]).run(["a"], run_dir=tmp_path)
    assert not (tmp_path / "manifest.json").exists()


def test_secrets_never_reach_the_manifest(tmp_path: Path) -> None:
    class Keyed(Stage):
        def __init__(self, api_key: str, size: int) -> None:
            self.api_key = api_key
            self.size = size

        def process(self, doc: Document) -> Document:
            return doc

    Pipeline([Keyed("sk-secret-123", 3)]).run(["a"], run_dir=tmp_path)
    manifest = (tmp_path / "manifest.json").read_text()
    assert "sk-secret-123" not in manifest
    assert '"size": 3' in manifest


def test_an_unidentifiable_setting_is_refused_with_advice(tmp_path: Path) -> None:
    class Opaque:
        pass

    @attrs.define
    class Holds(Stage):
        thing: Opaque

        def process(self, doc: Document) -> Document:
            return doc

    # Its repr carries a memory address: a fingerprint built from it would
    # differ in every process, so no run could ever resume.
    with pytest.raises(PipelineError, match=r"Holds\.thing|holds\.thing.*describe\(\)"):
        Pipeline([Holds(Opaque())]).run(["a"], run_dir=tmp_path)


def _upper(doc: Document) -> Document:
    return doc.model_copy(update={"text": doc.text.upper()})


def _lower(doc: Document) -> Document:
    return doc.model_copy(update={"text": doc.text.lower()})


def test_a_function_stage_is_fingerprinted_by_its_function_and_version(tmp_path: Path) -> None:
    Pipeline([stage(_upper, name="case")]).run(["a"], run_dir=tmp_path)
    Pipeline([stage(_upper, name="case")]).run(["a"], run_dir=tmp_path)  # resumes
    with pytest.raises(RunDirError):  # another function under the same stage name
        Pipeline([stage(_lower, name="case")]).run(["a"], run_dir=tmp_path)
    with pytest.raises(RunDirError):  # the same function, its code declared changed
        Pipeline([stage(_upper, name="case", version="2")]).run(["a"], run_dir=tmp_path)
