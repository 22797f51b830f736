"""Splitting a byte stream into numbered lines, whatever wrote it.

JSONL and CSV files arrive from Windows (``\\r\\n``), old Mac tools (``\\r``
alone) and editors that start UTF-8 with a byte-order mark. Splitting on
``\\n`` alone would read a CR-only file as one enormous line, and the mark
would break the first record; Excel and Windows tools save "Unicode text" as
UTF-16 with a byte-order mark. :func:`numbered_lines` ends a line at any of the
three line endings, drops a leading UTF-8 BOM, turns a stream that starts with
a UTF-16 BOM into UTF-8 as it reads, and reads in blocks, so a file with no
line ending at all never has to fit in memory twice.
"""

from __future__ import annotations

import codecs
from collections.abc import Callable, Iterator
from typing import BinaryIO

__all__ = ["numbered_lines"]

_BLOCK = 1 << 20


def numbered_lines(stream: BinaryIO) -> Iterator[tuple[int, bytes]]:
    """``(line number, line without its ending)`` for every line of ``stream``, from 1.

    Reads with ``read1`` where the stream has it, so a pipe yields each line as
    soon as it arrives rather than once a whole block has.
    """
    read = getattr(stream, "read1", stream.read)
    first_block = read(_BLOCK)
    if first_block.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        read = _utf16_as_utf8(first_block, read)
    else:
        read = _replay(first_block, read)
    carry = b""
    number = 0
    first = True
    after_cr = False  # the last block ended with "\r", which may be half of a "\r\n"
    while block := read(_BLOCK):
        if first:
            first = False
            if block.startswith(codecs.BOM_UTF8):
                block = block[len(codecs.BOM_UTF8) :]
        if after_cr and block.startswith(b"\n"):
            block = block[1:]
        data = carry + block
        lines = data.splitlines()  # bytes split at "\n", "\r\n" and "\r" only
        after_cr = data.endswith(b"\r")
        carry = b"" if data.endswith((b"\n", b"\r")) or not lines else lines.pop()
        for line in lines:
            number += 1
            yield number, line
    if carry:
        yield number + 1, carry


def _replay(first: bytes, read: Callable[[int], bytes]) -> Callable[[int], bytes]:
    """``read`` that gives ``first`` once before reading on."""
    pending = [first]

    def again(size: int) -> bytes:
        return pending.pop() if pending else read(size)

    return again


def _utf16_as_utf8(first: bytes, read: Callable[[int], bytes]) -> Callable[[int], bytes]:
    """``read`` of a UTF-16 stream (``first`` starts with its BOM) that returns UTF-8 blocks.

    Undecodable units (a lone surrogate, an odd final byte) become U+FFFD.
    """
    decoder = codecs.getincrementaldecoder("utf-16")(errors="replace")
    pending = [first]

    def utf8(size: int) -> bytes:
        while True:
            block = pending.pop() if pending else read(size)
            text = decoder.decode(block, final=not block)
            if text or not block:
                return text.encode("utf-8")

    return utf8
