"""`ProcedurePrefilter`: a model-free first pass that drops text which cannot be a procedure.

GEM asks an LLM about every segment; most web text is not procedural, so a cheap
pass in front saves most of those calls. The prefilter is tuned for recall: it
only drops a segment when it lacks the signals every procedure has. It counts

- *step signals*: numbered or bulleted lines, "Step N", shell-prompt lines
  (``$ command``) and sequence words (first, then, next, after that, finally,
  once, before, when done);
- *imperative starts*: sentences that open with an action verb (open, click,
  select, enter, press, insert...);
- *operation words*: the things operated on (app, account, button, menu, screen,
  settings, device, machine, panel, key, command, order, reservation...);

and rejects a segment with rule ``too_short`` (under ``min_chars``),
``mostly_code`` (more than ``max_code_share`` of its lines look like code or
table rows), ``no_procedure`` (fewer step signals plus imperative starts
than ``min_step_signals``, or fewer operation words than ``min_operation_words``),
or ``sparse_procedure`` (a long text whose few signals are spread thin: under
``min_operation_density`` operation words *and* under ``min_imperative_density``
imperative starts per 1000 characters, like release notes or a language reference).
"""

from __future__ import annotations

import re

import attrs

from gemlib.model import Document, Rejection
from gemlib.pipeline.stage import Stage

__all__ = ["ProcedurePrefilter", "procedure_signals"]


def _words(text: str) -> frozenset[bytes]:
    return frozenset(text.encode().split())


_ACTION_VERBS = _words(
    "add allow apply assign attach book browse buy cancel change check choose clamp click close "
    "configure confirm connect copy create declare delete disable download drag drop edit enable "
    "enter fill find follow give go identify insert install jog launch load log make move "
    "navigate open order pay pick place plug press print push put remove rename request reset "
    "restart review run save scan schedule scroll search select send set share sign start submit "
    "switch swipe tap touch turn type unlock update upload use verify visit wait write"
)
_OPERATION_WORDS = _words(
    "app apps application applications account accounts admin browser button buttons card cards "
    "click computer controller dashboard device devices display email emails file files form "
    "forms icon icons key keys keyboard kiosk kiosks link links login menu menus machine machines "
    "page pages panel panels password passwords phone phones portal printer profile robot router "
    "screen screens settings signin site sites software tab tabs tap terminal website websites "
    "window windows wifi tool tools shell database "
    "reservation reservations booking bookings"
)
_SEQUENCE_WORDS = _words("first then next finally once before afterwards")
_VOCABULARY = _OPERATION_WORDS | _SEQUENCE_WORDS  # disjoint: one pass finds both
_SEQUENCE_PHRASES = (b"after that", b"when done", b"followed by")
# The scan runs on ASCII bytes: lower-cased text, anything else a "?" (so [a-z]
# words are exactly what a str regex would find), with a newline in front so
# every sentence, the first included, starts after a delimiter.
_LETTERS_ONLY = bytes(c if 97 <= c <= 122 else 32 for c in range(256))
_SENTENCE_START = re.compile(rb"[.!?:;\n][\s\-*]*(?:\d{1,3}[.)]\s*|step\s+\d+\s*)?([a-z]+)")
_LIST_LINE = re.compile(rb"\n\s*(?:\d{1,3}[.)]|[-*$]|step\s+\d+)\s")  # $: a shell prompt
_CODE_LINE = re.compile(r"^\s*(?:[{}\[\]();<>|]|.*[;{}]\s*$|\|.*\|)")


def procedure_signals(text: str) -> dict[str, float]:
    """The prefilter's measurements of one text (useful for tuning thresholds).

    Every count is one pass in C (a byte translation, a split, two regular
    expressions, set lookups through ``filter``); Python touches only the few
    words that match, which keeps the prefilter above 50,000 segments per
    second on one core (``benchmarks/bench_filters.py``).
    """
    lower = b"\n" + (
        text.lower()
        .replace("log in", "login")
        .replace("sign in", "signin")
        .replace("wi-fi", "wifi")
        .replace("\u2022", "*")
        .encode("ascii", "replace")
    )
    hits = list(filter(_VOCABULARY.__contains__, lower.translate(_LETTERS_ONLY).split()))
    operations = len(list(filter(_OPERATION_WORDS.__contains__, hits)))
    starts = _SENTENCE_START.findall(lower)
    steps = (
        len(_LIST_LINE.findall(lower))
        + len(hits)
        - operations
        + sum(map(lower.count, _SEQUENCE_PHRASES))
    )
    code_share = 0.0
    if any(mark in text for mark in "{};|"):  # only then can a line look like code
        lines = [line for line in text.splitlines() if line.strip()]
        code_share = sum(1 for line in lines if _CODE_LINE.match(line)) / len(lines)
    return {
        "chars": len(text),
        "steps": steps,
        "imperatives": len(list(filter(_ACTION_VERBS.__contains__, starts))),
        "operations": operations,
        "code_share": code_share,
    }


@attrs.define
class ProcedurePrefilter(Stage):
    """Drop segments that cannot describe a multi-step operation; keep the rest.

    Thresholds are options; the defaults favour recall (a later LLM filter
    decides the close cases). The measurements go into the rejection's
    ``detail`` so a rejection can be checked by eye.
    """

    min_chars: int = 120
    min_step_signals: int = 2
    min_operation_words: int = 1
    max_code_share: float = 0.5
    min_operation_density: float = 1.0
    """Operation words per 1000 characters; a segment below it needs ``min_imperative_density``."""
    min_imperative_density: float = 2.0
    """Imperative starts per 1000 characters, for segments with few operation words."""

    def process(self, doc: Document) -> Document | Rejection:
        """Pass ``doc`` through, or reject it naming the missing signal."""
        signals = procedure_signals(doc.text)
        if signals["chars"] < self.min_chars:
            return Rejection(
                rule="too_short",
                reason=f"{signals['chars']:.0f} characters, fewer than {self.min_chars}",
                detail=signals,
            )
        if signals["code_share"] > self.max_code_share:
            return Rejection(
                rule="mostly_code",
                reason=f"{signals['code_share']:.0%} of lines look like code or tables",
                detail=signals,
            )
        step_signals = signals["steps"] + signals["imperatives"]
        if step_signals < self.min_step_signals or signals["operations"] < self.min_operation_words:
            return Rejection(
                rule="no_procedure",
                reason=(
                    f"{step_signals:.0f} step signals (need {self.min_step_signals}) and "
                    f"{signals['operations']:.0f} operation words (need {self.min_operation_words})"
                ),
                detail=signals,
            )
        per_1000 = 1000 / max(signals["chars"], 1)
        operation_density = signals["operations"] * per_1000
        imperative_density = signals["imperatives"] * per_1000
        if (
            operation_density < self.min_operation_density
            and imperative_density < self.min_imperative_density
        ):
            return Rejection(
                rule="sparse_procedure",
                reason=(
                    f"{operation_density:.1f} operation words and {imperative_density:.1f} "
                    f"imperative starts per 1000 characters (need {self.min_operation_density} "
                    f"or {self.min_imperative_density})"
                ),
                detail=signals,
            )
        return doc
