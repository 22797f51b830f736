"""`gemlib stats`, `view`, `export`, `push` and `validate`: commands that read results."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from gemlib._atomic import write_atomic
from gemlib.cli._shared import (
    card_options,
)
from gemlib.errors import FormatError


def _stats(args: argparse.Namespace) -> int:
    from gemlib.analysis.report import html_report, text_report
    from gemlib.analysis.stats import dataset_stats
    from gemlib.analysis.summary import load_summary
    from gemlib.errors import RunDirError
    from gemlib.pipeline.rundir import RunDir, read_trajectories, refuse_run_file

    if args.html:
        refuse_run_file(args.html)
    source = Path(args.file)
    dataset = dataset_stats(read_trajectories(source, args.format), count_tokens=not args.fast)
    try:  # a run directory, or a partitioned run's root: the run report too
        runs = RunDir(source).runs() if source.is_dir() else []
    except RunDirError:
        runs = []
    summary = load_summary(source) if runs and runs[0].manifest_file.is_file() else None
    if summary is None:
        print(dataset.format())
    else:
        print(text_report(summary.stats, dataset, examples=summary.examples))
    if args.html:
        run, examples = (summary.stats, summary.examples) if summary else (None, None)
        page = html_report(dataset, run, title=f"gemlib: {source}", examples=examples)
        write_atomic(args.html, page)
        print(f"\nHTML report: {args.html}")
    return 0


def _view(args: argparse.Namespace) -> int:
    import time

    from gemlib.analysis.viewer import serve_viewer, write_viewer
    from gemlib.pipeline.rundir import refuse_run_file

    if args.out:
        refuse_run_file(args.out)
    page = write_viewer(args.source, args.out)
    print(page)
    if not args.serve:
        return 0
    server, _ = serve_viewer(page, port=args.port)
    print(f"serving on http://127.0.0.1:{server.server_address[1]}/ (Ctrl-C to stop)", flush=True)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        return 0
    finally:
        server.shutdown()
        server.server_close()


def _export(args: argparse.Namespace) -> int:
    from gemlib.formats import export
    from gemlib.pipeline.rundir import read_trajectories, refuse_run_file

    refuse_run_file(args.out)
    print(
        export(
            args.file,
            args.out,
            args.format,
            input_format=args.input_format,
            masked=args.masked,
            license=args.license,
            pretty_name=args.name,
            trajectories=lambda: read_trajectories(args.file, args.input_format),
        )
    )
    return 0


def _push(args: argparse.Namespace) -> int:
    from gemlib.hub import push_to_hub

    url = push_to_hub(
        args.source, args.repo_id, private=args.private, license=args.license, pretty_name=args.name
    )
    print(f"pushed to {args.repo_id}: {url}")
    return 0


def _validate(args: argparse.Namespace) -> int:
    from gemlib.pipeline.rundir import read_trajectories
    from gemlib.validation import default_checks, validate

    checks = default_checks(
        one_call_per_turn=args.one_call_per_turn, grounding=not args.no_grounding
    )
    total = failed = unreadable = 0

    def report_unreadable(error: FormatError) -> None:
        nonlocal unreadable
        unreadable += 1
        print(error)

    for trajectory in read_trajectories(args.file, args.format, on_error=report_unreadable):
        total += 1
        report = validate(trajectory, checks)
        if not report.ok:
            failed += 1
            print(f"{trajectory.id}:")
            print("  " + str(report).replace("\n", "\n  "))
    print(f"{total - failed} of {total} trajectories pass")
    if unreadable:
        print(f"{unreadable} records could not be read (listed above)")
    return 1 if failed or unreadable else 0


def add_commands(commands: Any) -> None:
    """Add this module's commands to the `gemlib` parser's subcommands."""
    from gemlib.formats.registry import available_formats

    known = available_formats()  # gemlib's and the plug-ins' (entry points gemlib.formats)
    formats = [f.name for f in known if f.reads]
    writers = [f for f in known if f.writes]
    stats = commands.add_parser(
        "stats",
        help="statistics of a run directory or trajectory file",
        epilog="example: gemlib stats runs/one --html report.html",
    )
    stats.add_argument("file", help="a run directory or a JSONL file of trajectories")
    stats.add_argument("--format", choices=formats, help="the file's format (guessed if omitted)")
    stats.add_argument("--html", help="also write a self-contained HTML report here")
    stats.add_argument("--fast", action="store_true", help="estimate tokens instead of counting")
    stats.set_defaults(handler=_stats)

    view = commands.add_parser(
        "view",
        help="write a self-contained HTML viewer of a run's trajectories and rejections",
        description="Write one HTML page (no network, nothing fetched) showing every kept "
        "trajectory as a conversation with its tools and provenance, and every rejection by "
        "stage and rule, with filters and search; print its path.",
        epilog="example: gemlib view runs/one --serve",
    )
    view.add_argument("source", help="a run directory or a JSONL file of trajectories")
    view.add_argument("--out", help="the page to write (default: viewer.html in the run directory)")
    view.add_argument("--serve", action="store_true", help="also serve it on 127.0.0.1")
    view.add_argument("--port", type=int, default=0, help="port for --serve (default: any free)")
    view.set_defaults(handler=_view)

    export = commands.add_parser(
        "export",
        help="write trajectories in a training format",
        epilog="formats:\n"
        + "".join(f"  {f.name:<10} {f.description}\n" for f in writers)
        + "\nexample: gemlib export runs/one --format sharegpt --out data/gem.jsonl",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    export.add_argument("file", help="a run directory or a JSONL file of trajectories")
    export.add_argument(
        "--format",
        required=True,
        choices=[f.name for f in writers],
        help="the format to write (listed below)",
    )
    export.add_argument("--out", required=True, help="the file (or, for hf, folder) to write")
    card_options(export, "hf: ")
    export.add_argument("--input-format", choices=formats, help="the input's format if not guessed")
    export.add_argument(
        "--masked",
        choices=["cut", "drop"],
        default="cut",
        help="formats without per-message training flags "
        f"({', '.join(f.name for f in writers if f.dump and not f.carries_masks)}): cut a "
        "conversation before its first masked turn, or drop it (default: cut)",
    )
    export.set_defaults(handler=_export)

    push = commands.add_parser(
        "push",
        help="upload a run to the Hugging Face Hub as a dataset (needs gemlib[hf])",
        description="Export SOURCE as a Hugging Face dataset folder (every format as a "
        "config, and a dataset card) and upload it to the dataset repository REPO_ID, "
        "creating it if needed. The token comes from HF_TOKEN (or `hf auth login`).",
        epilog="example: HF_TOKEN=hf_... gemlib push runs/one me/gem-trajectories --private",
    )
    push.add_argument("source", help="a run directory or a JSONL file of trajectories")
    push.add_argument("repo_id", help="the dataset repository, as owner/name")
    push.add_argument("--private", action="store_true", help="create the repository private")
    card_options(push)
    push.set_defaults(handler=_push)

    check = commands.add_parser(
        "validate",
        help="run the rule checks on trajectories",
        epilog="exit code 0 when all pass, 1 when some fail",
    )
    check.add_argument("file", help="a run directory or a JSONL file of trajectories")
    check.add_argument("--format", choices=formats, help="the file's format (guessed if omitted)")
    check.add_argument("--one-call-per-turn", action="store_true")
    check.add_argument("--no-grounding", action="store_true", help="skip the grounding checks")
    check.set_defaults(handler=_validate)
