"""A Hugging Face dataset card (README.md) that says how a gemlib dataset was made.

The YAML front matter declares one config per export format (each a
``train`` split), the license, task categories, tags and size category, so
the Hub's viewer and ``datasets.load_dataset`` find every config. The body
says how the data was made: gemlib version, the models and prompt hashes of
each stage, the stages in pipeline order with the funnel, the statistics of
the kept trajectories beside the paper's, the validation rules and the judge's
rubric, and the known limits.

Every string in the front matter is written as a JSON string, which YAML
reads as the same string, so names with quotes or colons cannot break it.
Nothing from the run's settings but model names and hashes is written: no
API base, no corpus path (only its file name), no key.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from gemlib._version import __version__
from gemlib.analysis.stats import PAPER_FIGURES, DatasetStats
from gemlib.analysis.summary import RunSummary
from gemlib.formats.registry import get_format

__all__ = ["dataset_card", "size_category"]

_SIZES = ((1_000, "n<1K"), (10_000, "1K<n<10K"), (100_000, "10K<n<100K"))


def size_category(rows: int) -> str:
    """The Hub's ``size_categories`` value for ``rows`` rows."""
    for limit, name in _SIZES:
        if rows < limit:
            return name
    if rows < 1_000_000:
        return "100K<n<1M"
    return "1M<n<10M" if rows < 10_000_000 else "n>10M"


def _yaml(value: Any, indent: int = 0) -> str:
    """Block YAML for dicts and lists of dicts; keys are plain names, every value JSON."""
    pad = " " * indent
    if isinstance(value, Mapping):
        lines = []
        for key, item in value.items():
            if isinstance(item, (Mapping, list)) and item:
                lines.append(f"{pad}{key}:\n{_yaml(item, indent + 2)}")
            else:
                lines.append(f"{pad}{key}: {json.dumps(item)}")
        return "\n".join(lines)
    if isinstance(value, list):
        lines = []
        for item in value:
            if isinstance(item, Mapping) and item:
                body = _yaml(item, indent + 2)
                lines.append(f"{pad}- {body.lstrip()}")
            else:
                lines.append(f"{pad}- {json.dumps(item)}")
        return "\n".join(lines)
    return pad + json.dumps(value)


def _table(header: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    def cell(value: object) -> str:  # text, even with <tags> in it (the Hub renders HTML)
        text = str(value).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
        return text.replace("|", "\\|").replace("\n", " ")

    lines = ["| " + " | ".join(header) + " |", "|" + " --- |" * len(header)]
    lines += ["| " + " | ".join(cell(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def _stages_section(summary: RunSummary) -> list[str]:
    models = summary.models()
    rows = []
    for stage in summary.stages:
        name = str(stage.get("name"))
        counts = summary.stats.stages.get(name)
        reasons = (
            ", ".join(
                f"{rule} {n}"
                for rule, n in sorted(counts.rejections_by_rule.items(), key=lambda kv: -kv[1])
            )
            if counts
            else ""
        )
        rows.append(
            (
                name,
                stage.get("version", ""),
                models.get(name, "-"),
                stage.get("prompt_hash") or "-",
                counts.received if counts else "",
                counts.emitted if counts else "",
                reasons,
            )
        )
    header = ["stage", "version", "model", "prompt hash", "in", "out", "drop reasons"]
    return [
        "## How it was made",
        "",
        f"Made with [gemlib](https://pypi.org/project/gemlib/) {__version__}, which turns "
        "plain-text documents into multi-turn tool-use conversations with the GEM method: "
        "find texts that describe a procedure, extract its workflow and tools, generate a "
        "conversation that carries it out, refine it to be harder, and keep it only if "
        "rule checks and an LLM judge pass it. The stages, in the order they ran, with "
        "the items each received and passed on and why it dropped the rest:",
        "",
        _table(header, rows),
        "",
        f"{summary.stats.inputs} source items gave {summary.stats.outputs} trajectories "
        f"({summary.stats.rejections} items rejected along the way). Prompt hashes identify "
        "the exact prompt templates (gemlib's `prompt_hash`); the run's fingerprint is "
        f"`{summary.manifest.get('fingerprint', '-')}`.",
        "",
    ]


def _validation_section(summary: RunSummary) -> list[str]:
    lines = ["## Validation", ""]
    for stage in summary.stages:
        config = stage.get("config")
        if not isinstance(config, Mapping):
            continue
        if isinstance(config.get("checks"), list):
            checks = ", ".join(f"`{c}`" for c in config["checks"])
            lines += [
                f"Rule checks (`{stage.get('name')}`), every kept trajectory passes: {checks}.",
                "",
            ]
        if isinstance(config.get("require"), list):
            rubric = ", ".join(f"`{r}`" for r in config["require"])
            lines += [
                f"LLM judge (`{stage.get('name')}`), every kept trajectory passes {rubric} "
                "(R1 context hallucination, R2 capability hallucination, R3 task completion).",
                "",
            ]
    return lines if len(lines) > 2 else []


def _statistics_section(dataset: DatasetStats) -> list[str]:
    rows = []
    for name in ("messages", "user_turns", "distinct_tools_used", "tool_calls", "tokens"):
        d = getattr(dataset, name)
        paper = PAPER_FIGURES.get(name)
        rows.append(
            (
                name.replace("_", " "),
                f"{d.mean:.1f}",
                f"{d.median:.1f}",
                f"{d.max:.0f}",
                f"{paper:.1f}" if paper is not None else "",
            )
        )
    kinds = ", ".join(f"{k} {v}" for k, v in sorted(dataset.call_kinds.items()))
    lines = [
        "## Statistics",
        "",
        f"{dataset.trajectories} trajectories. Per trajectory (tokens counted with "
        f"{dataset.tokens_counted_with}), beside the means the GEM paper reports after "
        "refinement:",
        "",
        _table(["per trajectory", "mean", "median", "max", "GEM paper (mean)"], rows),
        "",
        f"Tool calls by kind (judged from tool names): {kinds or 'none'}.",
    ]
    for title, counts in (("Domains", dataset.domains), ("Tasks", dataset.tasks)):
        if counts:
            top = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[:10]
            lines.append(f"{title}: " + ", ".join(f"{k} {v}" for k, v in top) + ".")
    return [*lines, ""]


LIMITS = (
    "The conversations are synthetic: a language model wrote them from the source texts, "
    "so they can hold mistakes the checks do not catch, such as a plausible but wrong value "
    "or a turn no real user would write.",
    "The rule checks are mechanical (schemas, call and reply order, grounding of argument "
    "values in earlier turns). The judge is a language model grading against a rubric, and "
    "it can be wrong in both directions.",
    "Tool replies are simulated by the model that wrote the conversation. No tool was run.",
    "The data carries the topics, languages and biases of the source corpus and of the "
    "teacher model. The source texts' licenses may restrict use. Check them before "
    "publishing or training.",
)


def dataset_card(
    *,
    configs: Mapping[str, tuple[str, int]],
    dataset: DatasetStats,
    summary: RunSummary | None = None,
    license: str = "other",
    pretty_name: str = "",
    source_name: str = "",
    repo_id: str = "",
) -> str:
    """The README.md of an exported dataset folder.

    ``configs`` maps each config name to ``(data file path in the folder, rows)``;
    the first is the default shown by the Hub.
    """
    rows = max((n for _, n in configs.values()), default=0)
    front: dict[str, Any] = {
        "license": license,
        "pretty_name": pretty_name or "gemlib tool-use trajectories",
        "task_categories": ["text-generation"],
        "tags": ["tool-use", "function-calling", "agents", "synthetic", "gemlib"],
        "size_categories": [size_category(rows)],
        "configs": [
            {
                "config_name": name,
                **({"default": True} if i == 0 else {}),
                "data_files": [{"split": "train", "path": path}],
            }
            for i, (name, (path, _)) in enumerate(configs.items())
        ],
    }
    lines = [
        "---",
        _yaml(front),
        "---",
        "",
        f"# {front['pretty_name']}",
        "",
        "Multi-turn tool-use conversations: a system prompt with the rules of a setting, "
        "user turns, assistant turns that call tools with JSON arguments, and the tools' "
        "replies, each with the tool definitions it may call"
        + (f", made from `{Path(source_name).name}`." if source_name else "."),
        "",
        "## Configs",
        "",
        _table(
            ["config", "file", "rows", "format"],
            [
                (name, f"`{path}`", n, get_format(name).description)
                for name, (path, n) in configs.items()
            ],
        ),
        "",
        "Formats that cannot mark a turn as not trained on (ShareGPT, Hermes, gem) cut "
        "such trajectories before their first masked turn, so they can hold fewer rows.",
        "",
        "```python",
        "from datasets import load_dataset",
        f'ds = load_dataset("{repo_id or "path/to/this/folder"}", '
        f'"{next(iter(configs), "openai")}", split="train")',
        "```",
        "",
    ]
    if summary is not None:
        lines += _stages_section(summary)
        lines += _validation_section(summary)
    lines += _statistics_section(dataset)
    lines += ["## Known limits", "", *(f"- {limit}" for limit in LIMITS), ""]
    if license == "other":
        lines += [
            "## License",
            "",
            "Not set when this card was written (`license: other`). The source corpus's "
            "license applies; pass `--license` to `gemlib export`/`gemlib push` to set it.",
            "",
        ]
    return "\n".join(lines)
