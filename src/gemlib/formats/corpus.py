"""Reading corpora lazily: JSONL, CSV/TSV and Parquet files, folders of text files, iterables.

Nothing here loads a corpus whole: every reader is a generator, so a run over
millions of segments holds only the items in flight. A record that cannot be
read costs only itself: the first of each kind of problem is logged at once,
naming the file and line; when the file is done, one line per kind of problem
gives the count and the first few places; the run goes on. Line endings may be
``\n``, ``\r\n`` or a bare ``\r``; a UTF-8 byte-order mark is ignored.
"""

from __future__ import annotations

import csv
import json
import logging
import os
import re
import sys
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any, BinaryIO

import attrs
from pydantic import BaseModel, ValidationError
from pydantic_core import PydanticSerializationError

from gemlib._lines import numbered_lines
from gemlib._nesting import TooDeep, loads
from gemlib._unicode import LONE_SURROGATE, without_lone_surrogates
from gemlib.errors import CorpusReadError
from gemlib.model import Document

__all__ = ["as_items", "read_corpus"]

log = logging.getLogger("gemlib")

TEXT_SUFFIXES = (".txt", ".md", ".markdown", ".rst")
JSONL_SUFFIXES = (".jsonl", ".ndjson", ".json")
TABLE_DELIMITERS = {".csv": ",", ".tsv": "\t"}
EXAMPLES = 3
"""How many places a summary names for each kind of problem."""

_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")


def read_corpus(
    path: str | os.PathLike[str], *, text_field: str = "text", id_field: str = "id"
) -> Iterator[Document]:
    """Stream :class:`Document` objects from a JSONL, CSV, TSV, text or Parquet file, or a folder.

    JSONL: one JSON object per line; ``text_field`` holds the text, ``id_field``
    the ID (derived from the text when absent), other fields go to ``meta``.
    CSV and TSV (``.csv``, ``.tsv``): a header row names the columns, which are
    read like JSONL fields. A text or Markdown file is one document; a folder
    yields each text file below it in path order (other files are counted and
    named as skipped); a ``.parquet`` file is read in batches (needs pyarrow,
    the ``hf`` extra); ``"-"`` reads JSONL from standard input. Raises
    :class:`FileNotFoundError` up front when ``path`` does not exist.
    """
    if str(path) == "-":
        return _read_stream(sys.stdin.buffer, "<stdin>", text_field, id_field)
    base = Path(path)
    if not base.exists():
        raise FileNotFoundError(f"corpus not found: {base}")
    if base.is_dir():
        return _read_folder(base)
    suffix = base.suffix.lower()
    if suffix == ".parquet":
        return _read_parquet(base, text_field, id_field)
    if suffix in JSONL_SUFFIXES:
        return _read_jsonl(base, text_field, id_field)
    if suffix in TABLE_DELIMITERS:
        return _read_table(base, TABLE_DELIMITERS[suffix], text_field, id_field)
    return _read_single_file(base)


@attrs.define
class _Problems:
    """The problems met in one corpus source: the first of each kind logged, all counted."""

    source: str
    unit: str = "lines"
    counts: dict[str, int] = attrs.field(factory=dict)
    places: dict[str, list[str]] = attrs.field(factory=dict)
    actions: dict[str, str] = attrs.field(factory=dict)
    documents: int = 0

    def note(
        self,
        place: str,
        cause: str,
        detail: str = "",
        action: str = "skipped",
        where: str | None = None,
    ) -> None:
        """Count one problem at ``place`` (``line 3``); log it if it is the first of its kind.

        The log names ``where`` (default: the source and the place).
        """
        count = self.counts.get(cause, 0) + 1
        self.counts[cause] = count
        self.actions[cause] = action
        if count == 1:
            log.warning("%s: %s%s; %s", where or f"{self.source} {place}", cause, detail, action)
        if count <= EXAMPLES:
            self.places.setdefault(cause, []).append(place)

    def summarise(self) -> None:
        """One line per kind of problem met more than once, and a word if nothing was read."""
        for cause, count in self.counts.items():
            if count < 2:
                continue
            shown = ", ".join(self.places[cause])
            more = f" and {count - EXAMPLES} more" if count > EXAMPLES else ""
            log.warning(
                "%s: %s on %d %s (%s%s); %s",
                self.source,
                cause,
                count,
                self.unit,
                shown,
                more,
                self.actions[cause],
            )
        if self.documents == 0:
            log.warning("%s: no documents read", self.source)

    def report(self, documents: Iterable[Document | None]) -> Iterator[Document]:
        """The documents (``None`` stands for one skipped record), then the summary.

        Raises :class:`~gemlib.errors.CorpusReadError` when the source cannot be
        read at all (no permission, an I/O error).
        """
        try:
            for document in documents:
                if document is not None:
                    self.documents += 1
                    yield document
        except OSError as exc:
            reason = exc.strerror or str(exc)
            raise CorpusReadError(f"cannot read the corpus {self.source}: {reason}") from None
        finally:
            self.summarise()


def _read_jsonl(path: Path, text_field: str, id_field: str) -> Iterator[Document]:
    with open(path, "rb") as handle:
        yield from _read_stream(handle, str(path), text_field, id_field)


def _read_stream(
    stream: BinaryIO, source: str, text_field: str, id_field: str
) -> Iterator[Document]:
    problems = _Problems(source)
    return problems.report(_json_lines(stream, problems, text_field, id_field))


def _json_lines(
    stream: BinaryIO, problems: _Problems, text_field: str, id_field: str
) -> Iterator[Document | None]:
    first = True
    for number, raw in numbered_lines(stream):
        line = _decode(raw, problems, number)
        if not line.strip():
            continue
        place = f"line {number}"
        try:
            record = loads(line)
        except TooDeep as exc:
            problems.note(place, f"JSON {exc}")
            continue
        except json.JSONDecodeError as exc:
            _hint_json_lines(problems.source, first)
            first = False
            problems.note(place, "not valid JSON", f" ({exc.msg})")
            continue
        if not isinstance(record, dict):
            _hint_json_lines(problems.source, first)
            first = False
            problems.note(place, "not a JSON object")
            continue
        first = False
        if _SURROGATE_ESCAPE.search(line):
            if LONE_SURROGATE.search(str(record.get(id_field, ""))):
                problems.note(place, "an ID with a lone surrogate")
                continue
            record = without_lone_surrogates(record)
        yield _document(record, text_field, id_field, problems, place)


def _hint_json_lines(source: str, first: bool) -> None:
    """When the first line is not an object, the file is likely one JSON document: say so."""
    if first:
        log.warning(
            "%s: the first line is not a JSON object; if the file is one JSON document (an "
            "array, or an object spread over lines), convert it to JSON Lines, one object per "
            "line, for example with jq -c '.[]'",
            source,
        )


def _decode(raw: bytes, problems: _Problems, number: int) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        problems.note(
            f"line {number}",
            "not valid UTF-8",
            f" (byte {exc.start})",
            "undecodable bytes replaced",
        )
        return raw.decode("utf-8", errors="replace")


def _document(
    record: dict[str, Any],
    text_field: str,
    id_field: str,
    problems: _Problems,
    place: str,
) -> Document | None:
    """The record as a document, or ``None`` after noting why it cannot be one."""
    text = record.pop(text_field, None)
    if text is not None and not isinstance(text, str):
        kind = type(text).__name__
        problems.note(
            place, f"field {text_field!r} is not a string", f" (its value is of type {kind})"
        )
        return None
    if not isinstance(text, str):
        fields = ", ".join(sorted(map(str, record))[:8]) or "none"
        problems.note(place, f"no string field {text_field!r}", f" (fields: {fields})")
        return None
    doc_id = record.pop(id_field, None)
    return Document(id=str(doc_id) if doc_id not in (None, "") else "", text=text, meta=record)


def _read_table(path: Path, delimiter: str, text_field: str, id_field: str) -> Iterator[Document]:
    """CSV or TSV: the header row names the fields; each later row is one record."""
    problems = _Problems(str(path))
    return problems.report(_table_rows(path, delimiter, problems, text_field, id_field))


def _table_rows(
    path: Path, delimiter: str, problems: _Problems, text_field: str, id_field: str
) -> Iterator[Document | None]:
    # A document can be far longer than the csv module's default 128 KiB field limit.
    csv.field_size_limit(max(csv.field_size_limit(), 2**31 - 1))
    with open(path, "rb") as handle:
        lines = (_decode(raw, problems, n) + "\n" for n, raw in numbered_lines(handle))
        reader = csv.reader(lines, delimiter=delimiter)
        header = next(reader, None)
        if header is None or text_field not in header:
            problems.note(
                "line 1",
                f"the header names no column {text_field!r}",
                f" (columns: {', '.join(header or []) or 'none'})",
                "the file is skipped; pass the text column with --text-field",
            )
            return
        yield from _cells(reader, header, problems, text_field, id_field)


def _cells(
    reader: Any, header: list[str], problems: _Problems, text_field: str, id_field: str
) -> Iterator[Document | None]:
    while True:
        try:
            row = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            problems.note(f"line {reader.line_num}", "not valid CSV", f" ({exc})")
            continue
        place = f"line {reader.line_num}"
        if not any(cell.strip() for cell in row):
            continue
        if len(row) != len(header):
            problems.note(
                place,
                "a row whose cell count differs from the header's",
                f" ({len(row)} cells, {len(header)} columns)",
            )
            continue
        record = dict(zip(header, row, strict=True))
        yield _document(record, text_field, id_field, problems, place)


def _read_parquet(path: Path, text_field: str, id_field: str) -> Iterator[Document]:
    from gemlib.formats.hf import parquet_rows

    problems = _Problems(str(path), unit="rows")
    return problems.report(
        _parquet_document(record, text_field, id_field, problems, f"row {number}")
        for number, record in parquet_rows(path)
    )


def _parquet_document(
    record: dict[str, Any], text_field: str, id_field: str, problems: _Problems, place: str
) -> Document | None:
    document = _document(
        _without_binary(record, problems, place), text_field, id_field, problems, place
    )
    if document is not None and document.meta:
        try:  # a cell JSON cannot hold (binary in a list or struct) would fail the run dir
            document.model_dump_json()
        except (ValueError, PydanticSerializationError) as exc:
            problems.note(place, "a cell that cannot be stored as JSON", f" ({exc})")
            return None
    return document


def _without_binary(record: dict[str, Any], problems: _Problems, place: str) -> dict[str, Any]:
    """``record`` with binary cells as text when they are UTF-8, else dropped (JSON cannot hold
    them, and one such cell would fail the run directory)."""
    for key, value in list(record.items()):
        if isinstance(value, bytes):
            try:
                record[key] = value.decode("utf-8")
            except UnicodeDecodeError:
                del record[key]
                problems.note(place, f"column {key!r} holds binary data", action="not kept")
    return record


def _read_folder(base: Path) -> Iterator[Document]:
    problems = _Problems(str(base), unit="files")
    return problems.report(_folder_files(base, problems))


def _folder_files(base: Path, problems: _Problems) -> Iterator[Document | None]:
    for file in sorted(base.rglob("*")):
        if file.is_dir():
            continue
        if not file.is_file():  # a FIFO would block the read; a dangling link has nothing
            problems.note(
                str(file.relative_to(base)),
                "not a regular file (a pipe, socket, device or dangling link)",
                where=str(file),
            )
            continue
        if file.suffix.lower() not in TEXT_SUFFIXES:
            problems.note(
                str(file.relative_to(base)),
                "not a text file by its name",
                f" (only {', '.join(TEXT_SUFFIXES)} are read from a folder)",
                where=str(file),
            )
            continue
        yield _text_file(file, base, problems)


def _read_single_file(file: Path) -> Iterator[Document]:
    problems = _Problems(str(file), unit="files")
    document = _text_file(file, file.parent, problems)
    if document is not None:
        yield document


def _text_file(file: Path, base: Path, problems: _Problems) -> Document | None:
    """A text file as one document, or ``None`` after noting why it is skipped."""
    name = str(file.relative_to(base))
    try:
        text = file.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError:
        problems.note(name, "not UTF-8 text", where=str(file))
        return None
    except OSError as exc:
        problems.note(name, "unreadable", f" ({exc.strerror})", where=str(file))
        return None
    if "\x00" in text:
        problems.note(name, "holds NUL bytes, so it looks binary", where=str(file))
        return None
    return Document(text=text, meta={"source": name})


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
            yield Document(text=LONE_SURROGATE.sub("\ufffd", item))
        elif isinstance(item, Mapping):
            if LONE_SURROGATE.search(str(item.get("id", ""))):
                log.warning("input item %d: an ID with a lone surrogate; skipped", position)
                continue
            try:
                validated = model.model_validate(without_lone_surrogates(dict(item)))
            except ValidationError as exc:
                log.warning(
                    "input item %d: not a valid %s (%s); skipped",
                    position,
                    model.__name__,
                    exc.errors()[0]["msg"],
                )
                continue
            if _serialisable(validated, position):
                yield validated
        elif isinstance(item, Document):
            document = _storable(item, position)
            if document is not None:
                yield document
        else:
            yield item


def _storable(document: Document, position: int) -> Document | None:
    """``document`` with lone surrogates replaced (UTF-8 cannot store them); ``None`` for its ID."""
    if LONE_SURROGATE.search(document.id):
        log.warning("input item %d: an ID with a lone surrogate; skipped", position)
        return None
    if LONE_SURROGATE.search(document.text) or (
        document.meta
        and LONE_SURROGATE.search(json.dumps(document.meta, ensure_ascii=False, default=str))
    ):
        document = document.model_copy(
            update={
                "text": LONE_SURROGATE.sub("\ufffd", document.text),
                "meta": without_lone_surrogates(document.meta),
            }
        )
    return document if _serialisable(document, position) else None


def _serialisable(item: BaseModel, position: int) -> bool:
    """Whether ``item`` can be stored as JSON; if not (metadata holding undecodable bytes,
    an object pydantic cannot serialise), say so and skip it rather than fail the store."""
    if not getattr(item, "meta", None):
        return True
    try:
        item.model_dump_json()
    except (ValueError, PydanticSerializationError) as exc:
        log.warning("input item %d: cannot be stored as JSON (%s); skipped", position, exc)
        return False
    return True
