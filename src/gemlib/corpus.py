"""Reading corpora lazily: JSONL files, folders of text files, or Python iterables.

Nothing here loads a corpus whole: every reader is a generator, so a run over
millions of segments holds only the items in flight. A malformed record is
skipped with a warning that names the file and line; the run goes on.
"""

from __future__ import annotations

import importlib
import json
import logging
import os
import sys
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError

from gemlib.model import Document

__all__ = ["as_items", "read_corpus"]

log = logging.getLogger("gemlib")

TEXT_SUFFIXES = (".txt", ".md", ".markdown", ".rst")
JSONL_SUFFIXES = (".jsonl", ".ndjson", ".json")


def read_corpus(
    path: str | os.PathLike[str], *, text_field: str = "text", id_field: str = "id"
) -> Iterator[Document]:
    """Stream :class:`Document` objects from a JSONL file, a text file, or a folder.

    JSONL: one JSON object per line; ``text_field`` holds the text, ``id_field``
    the ID (derived from the text when absent), other fields go to ``meta``.
    A text or Markdown file is one document; a folder yields each text file
    below it in path order; a ``.parquet`` file is read in batches (needs
    pyarrow, the ``hf`` extra); ``"-"`` reads JSONL from standard input.
    Raises :class:`FileNotFoundError` up front when ``path`` does not exist.
    """
    if str(path) == "-":
        return _records(sys.stdin.buffer, "<stdin>", text_field, id_field)
    base = Path(path)
    if not base.exists():
        raise FileNotFoundError(f"corpus not found: {base}")
    if base.is_dir():
        return _read_folder(base)
    if base.suffix.lower() == ".parquet":
        return _read_parquet(base, text_field, id_field)
    if base.suffix.lower() in JSONL_SUFFIXES:
        return _read_jsonl(base, text_field, id_field)
    return _read_folder_file(base, base.parent)


def _decode(raw: bytes, path: str, number: int) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        log.warning(
            "%s line %d: not valid UTF-8 (byte %d); undecodable bytes replaced",
            path,
            number,
            exc.start,
        )
        return raw.decode("utf-8", errors="replace")


def _read_jsonl(path: Path, text_field: str, id_field: str) -> Iterator[Document]:
    with open(path, "rb") as handle:
        yield from _records(handle, str(path), text_field, id_field)


def _records(
    lines: Iterable[bytes], source: str, text_field: str, id_field: str
) -> Iterator[Document]:
    for number, raw in enumerate(lines, start=1):
        line = _decode(raw, source, number)
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as exc:
            log.warning("%s line %d: not valid JSON (%s); skipped", source, number, exc.msg)
            continue
        if not isinstance(record, dict):
            log.warning("%s line %d: not a JSON object; skipped", source, number)
            continue
        document = _document(record, text_field, id_field)
        if document is None:
            log.warning("%s line %d: no string field %r; skipped", source, number, text_field)
            continue
        yield document


def _document(record: dict[str, Any], text_field: str, id_field: str) -> Document | None:
    text = record.pop(text_field, None)
    if not isinstance(text, str):
        return None
    doc_id = record.pop(id_field, None)
    return Document(id=str(doc_id) if doc_id not in (None, "") else "", text=text, meta=record)


def _read_parquet(path: Path, text_field: str, id_field: str) -> Iterator[Document]:
    try:
        parquet = importlib.import_module("pyarrow.parquet")
    except ImportError:
        raise FileNotFoundError(
            f"{path}: reading Parquet needs pyarrow: pip install 'gemlib[hf]'"
        ) from None
    number = 0
    for batch in parquet.ParquetFile(str(path)).iter_batches(batch_size=1024):
        for record in batch.to_pylist():
            number += 1
            document = _document(record, text_field, id_field)
            if document is None:
                log.warning("%s row %d: no string field %r; skipped", path, number, text_field)
                continue
            yield document


def _read_folder(base: Path) -> Iterator[Document]:
    for file in sorted(base.rglob("*")):
        if file.is_file() and file.suffix.lower() in TEXT_SUFFIXES:
            yield from _read_folder_file(file, base)


def _read_folder_file(file: Path, base: Path) -> Iterator[Document]:
    try:
        text = file.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        log.warning("%s: not UTF-8 text; skipped", file)
        return
    except OSError as exc:
        log.warning("%s: unreadable (%s); skipped", file, exc.strerror)
        return
    if "\x00" in text:
        log.warning("%s: holds NUL bytes, so it looks binary; skipped", file)
        return
    yield Document(text=text, meta={"source": str(file.relative_to(base))})


def as_items(items: Any, input_type: Any = Document) -> Iterable[Any]:
    """Turn what a user passes to ``Pipeline.run`` into a stream of items.

    A path reads a corpus (:func:`read_corpus`); strings become documents;
    mappings are validated as the pipeline's input model (a Document unless the
    first stage takes another pydantic model); other objects pass through.
    """
    if isinstance(items, (str, bytes)):
        raise TypeError(
            "pass a list of texts or documents, or a pathlib.Path to a corpus; "
            "a bare string would be read one character at a time"
        )
    if isinstance(items, os.PathLike):
        return read_corpus(items)
    model = (
        input_type
        if isinstance(input_type, type) and issubclass(input_type, BaseModel)
        else (Document)
    )
    return _coerce(items, model)


def _coerce(items: Iterable[Any], model: type[BaseModel]) -> Iterator[Any]:
    for position, item in enumerate(items):
        if isinstance(item, str):
            yield Document(text=item)
        elif isinstance(item, Mapping):
            try:
                yield model.model_validate(item)
            except ValidationError as exc:
                log.warning(
                    "input item %d: not a valid %s (%s); skipped",
                    position,
                    model.__name__,
                    exc.errors()[0]["msg"],
                )
        else:
            yield item
