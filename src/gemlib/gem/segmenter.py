"""`Segmenter`: split long documents into segments without cutting procedures apart.

A document is read as blocks separated by blank lines. Consecutive list blocks
(numbered or bulleted lines, "Step N") form one procedure, and a short heading
block sticks to the block after it. Blocks are then packed greedily into
segments of at most ``max_chars`` characters; only a single block longer than
that is cut, at line boundaries first and at ``max_chars`` as a last resort.
Each segment is a :class:`~gemlib.Document` with ID ``<document id>:<index>``,
``parent_id`` set to the document and ``segment_index`` to its position, so the
same document always gives the same segment IDs.
"""

from __future__ import annotations

import re

import attrs

from gemlib.model import Document, Rejection
from gemlib.pipeline.stage import Stage

__all__ = ["Segmenter", "split_text"]

_LIST_LINE = re.compile(r"^\s*(?:\d{1,3}[.)]|[-*\u2022]|step\s+\d+\b)", re.IGNORECASE)
_BLANK_LINES = re.compile(r"\n\s*\n")


def _is_list_block(block: str) -> bool:
    return bool(_LIST_LINE.match(block))


def _is_heading(block: str) -> bool:
    return "\n" not in block and len(block) <= 80 and not block.rstrip().endswith((".", ":", ";"))


def _units(text: str) -> list[str]:
    """Blocks joined so that procedures and their headings stay together."""
    blocks = [b.strip("\n") for b in _BLANK_LINES.split(text) if b.strip()]
    units: list[str] = []
    attach_next = False
    for block in blocks:
        if units and (attach_next or (_is_list_block(block) and _is_list_block(units[-1]))):
            units[-1] = f"{units[-1]}\n\n{block}"
        else:
            units.append(block)
        attach_next = _is_heading(block)
    return units


def _cut(unit: str, max_chars: int) -> list[str]:
    """Cut one oversized unit at line boundaries, then hard at ``max_chars``."""
    pieces: list[str] = []
    current = ""
    for line in unit.split("\n"):
        if len(line) > max_chars:
            if current:
                pieces.append(current)
                current = ""
            cut = len(line) - len(line) % max_chars or len(line) - max_chars
            pieces += [line[i : i + max_chars] for i in range(0, cut, max_chars)]
            line = line[cut:]
        candidate = f"{current}\n{line}" if current else line
        if len(candidate) > max_chars:
            pieces.append(current)
            current = line
        else:
            current = candidate
    if current.strip():
        pieces.append(current)
    return pieces


def split_text(text: str, max_chars: int) -> list[str]:
    """The segment texts of ``text``, each at most ``max_chars`` long."""
    segments: list[str] = []
    current = ""
    for unit in _units(text):
        for piece in _cut(unit, max_chars) if len(unit) > max_chars else [unit]:
            candidate = f"{current}\n\n{piece}" if current else piece
            if len(candidate) > max_chars and current:
                segments.append(current)
                current = piece
            else:
                current = candidate
    if current.strip():
        segments.append(current)
    return segments


@attrs.define
class Segmenter(Stage):
    """Split each document into segments of at most ``max_chars`` characters.

    Documents already short enough pass as one segment. A document with no
    text is rejected with rule ``empty_document``.
    """

    max_chars: int = attrs.field(default=6000, validator=attrs.validators.ge(200))

    def process(self, doc: Document) -> list[Document] | Rejection:
        """One document in, its segments out."""
        if not doc.text.strip():
            return Rejection(rule="empty_document", reason="the document has no text")
        return [
            Document(
                id=f"{doc.id}:{index}",
                text=text,
                meta=doc.meta,
                parent_id=doc.document_id,
                segment_index=index,
            )
            for index, text in enumerate(split_text(doc.text, self.max_chars))
        ]
