"""`ProcedurePrefilter`: a model-free first pass that drops text which cannot be a procedure.

GEM asks an LLM about every segment; most web text is not procedural, so a cheap
pass in front saves most of those calls. The prefilter is tuned for recall: it
only drops a segment when it lacks the signals every procedure has. It counts

- *step signals*: numbered or bulleted lines, "Step N", and sequence words
  (first, then, next, after that, finally, once, before, when done);
- *imperative starts*: sentences that open with an action verb (open, click,
  select, enter, press, insert...);
- *operation words*: the things operated on (app, account, button, menu, screen,
  settings, device, machine, panel, key...);

and rejects a segment with rule ``too_short`` (under ``min_chars``),
``mostly_code`` (more than ``max_code_share`` of its lines look like code or
table rows), or ``no_procedure`` (fewer step signals plus imperative starts
than ``min_step_signals``, or fewer operation words than ``min_operation_words``).
"""

from __future__ import annotations

import re

import attrs

from gemlib.model import Document, Rejection
from gemlib.pipeline.stage import Stage

__all__ = ["ProcedurePrefilter", "procedure_signals"]

_ACTION_VERBS = (
    "add|allow|apply|assign|attach|book|browse|buy|cancel|change|check|choose|clamp|click|close|"
    "configure|confirm|connect|copy|create|declare|delete|disable|download|drag|drop|edit|"
    "enable|enter|fill|find|follow|give|go|identify|insert|install|jog|launch|load|log|make|move|"
    "navigate|open|order|pay|pick|place|plug|press|print|push|put|remove|rename|request|reset|"
    "restart|review|run|save|scan|schedule|scroll|search|select|send|set|share|sign|start|"
    "submit|switch|swipe|tap|touch|turn|type|unlock|update|upload|use|verify|visit|wait|write"
)
_IMPERATIVE = re.compile(
    rf"(?:^|[.!?:]\s+|\n\s*(?:\d{{1,3}}[.)]\s*|[-*\u2022]\s*)?)(?:{_ACTION_VERBS})\b",
    re.IGNORECASE,
)
_STEP = re.compile(
    r"(?:^|\n)\s*(?:\d{1,3}[.)]|[-*\u2022]|step\s+\d+)\s|"
    r"\b(?:first|then|next|after that|afterwards|finally|once|before|when done|"
    r"followed by)\b",
    re.IGNORECASE,
)
_OPERATION = re.compile(
    r"\b(?:app|application|account|admin|browser|button|card|click|computer|controller|"
    r"dashboard|device|display|email|file|form|icon|key|keyboard|kiosk|link|log ?in|menu|"
    r"machine|page|panel|password|phone|portal|printer|profile|robot|router|screen|settings|"
    r"sign ?in|site|software|tab|tap|terminal|website|window|wi-?fi)s?\b",
    re.IGNORECASE,
)
_CODE_LINE = re.compile(r"^\s*(?:[{}\[\]();<>|]|.*[;{}]\s*$|\|.*\|)")


def procedure_signals(text: str) -> dict[str, float]:
    """The prefilter's measurements of one text (useful for tuning thresholds)."""
    lines = [line for line in text.splitlines() if line.strip()]
    code = sum(1 for line in lines if _CODE_LINE.match(line))
    return {
        "chars": len(text),
        "steps": len(_STEP.findall(text)),
        "imperatives": len(_IMPERATIVE.findall(text)),
        "operations": len(_OPERATION.findall(text)),
        "code_share": code / len(lines) if lines else 0.0,
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
        return doc
