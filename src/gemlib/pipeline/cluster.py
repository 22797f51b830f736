"""Run a pipeline over a partitioned corpus on a Dask cluster (the ``dask`` extra).

    from dask.distributed import Client, LocalCluster
    from gemlib.pipeline.cluster import run_partitions

    def make_pipeline(limits):                     # importable: workers rebuild it
        return Pipeline.gem("hosted_vllm/Qwen/Qwen3-8B", api_base=URL, limits=limits)

    with Client(LocalCluster(host="127.0.0.1", dashboard_address=None)) as client:
        result = run_partitions(make_pipeline, ["part-0.jsonl", "part-1.jsonl"],
                                "runs/big", client=client, limits=Limits(64, rpm=3000))

Each partition runs the ordinary async runner in a worker, into its own run
directory (``runs/big/part-00000``, ...), so a rerun resumes every partition
where it stopped and skips the finished ones with no model calls.

The request budget of one model is split, not shared: with ``W`` partitions
running at once (the cluster's worker threads, or fewer partitions), each
gets ``limits`` divided by ``W`` (concurrency, requests and tokens per
minute, rounded down, at least 1 in flight), so the whole cluster never
exceeds ``limits`` whatever the scheduling. Partitions queued behind the
running ones get the same share when they start. With several models,
``make_pipeline`` applies the share to each as it sees fit.
"""

from __future__ import annotations

import contextlib
import importlib
import os
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import attrs

from gemlib.errors import GemlibError
from gemlib.llm.limits import Limits
from gemlib.pipeline.accounting import RunStats
from gemlib.pipeline.rundir import RunDir

__all__ = [
    "ClusterResult",
    "PartitionResult",
    "corpus_partitions",
    "dask_client",
    "run_partitions",
    "share_limits",
]

PARTITION_SUFFIXES = (".jsonl", ".ndjson", ".parquet")
"""The corpus files :func:`corpus_partitions` takes from a folder."""


def share_limits(limits: Limits, parts: int) -> Limits:
    """One of ``parts`` equal shares of ``limits`` (never more than the whole, in sum)."""
    if parts < 1:
        raise ValueError(f"parts must be at least 1, got {parts}")
    concurrency = limits.max_concurrency // parts
    if concurrency < 1:
        raise GemlibError(
            f"max_concurrency {limits.max_concurrency} cannot be split over {parts} partitions "
            "running at once: raise it, or run fewer workers"
        )
    return attrs.evolve(
        limits,
        max_concurrency=concurrency,
        min_concurrency=min(limits.min_concurrency, concurrency),
        rpm=None if limits.rpm is None else limits.rpm / parts,
        tpm=None if limits.tpm is None else limits.tpm / parts,
    )


@attrs.frozen
class PartitionResult:
    """One partition: its run directory, its statistics (all sessions of that run
    directory, like any run's) and the model requests sent in this call."""

    index: int
    run_dir: Path
    stats: RunStats
    requests: int


@attrs.frozen
class ClusterResult:
    """Every partition's result, in partition order, with totals."""

    partitions: list[PartitionResult]
    share: Limits
    """The limits each partition ran with."""

    @property
    def outputs(self) -> int:
        """Outputs in all partitions' run directories (every session)."""
        return sum(p.stats.outputs for p in self.partitions)

    @property
    def rejections(self) -> int:
        """Rejections in all partitions' run directories (every session)."""
        return sum(p.stats.rejections for p in self.partitions)

    @property
    def requests(self) -> int:
        """Model requests sent in this call, over all partitions."""
        return sum(p.requests for p in self.partitions)

    def left_for_retry(self) -> RunStats:
        """The items this call left not done, over all partitions, by cause (with one
        example each), as :attr:`RunStats.left_for_retry` counts them for one run."""
        left = RunStats()
        for part in self.partitions:
            for cause, count in part.stats.left_for_retry.items():
                left.left_for_retry[cause] = left.left_for_retry.get(cause, 0) + count
                example = part.stats.left_for_retry_examples.get(cause, "")
                left.left_for_retry_examples.setdefault(cause, example)
        return left


def corpus_partitions(folder: str | os.PathLike[str]) -> list[Path]:
    """The JSONL and Parquet files of ``folder``, sorted: one partition each.

    The paths are absolute: a worker of a running scheduler has a working
    directory of its own.
    """
    root = Path(folder)
    if not root.is_dir():
        raise GemlibError(f"a partitioned run needs a folder of corpus files: {root}")
    parts = sorted(
        p
        for p in root.resolve().iterdir()
        if p.suffix.lower() in PARTITION_SUFFIXES and not p.is_dir()
    )
    if not parts:
        raise GemlibError(f"{root} holds no .jsonl or .parquet files to use as partitions")
    return parts


@contextlib.contextmanager
def dask_client(address: str) -> Iterator[Any]:
    """A Dask client, closed on exit: ``local`` or ``local:N`` starts a cluster of ``N``
    one-thread workers (default 2) on 127.0.0.1 and closes it too; anything else is the
    address of a running scheduler."""
    try:
        distributed: Any = importlib.import_module("dask.distributed")
    except ImportError:
        raise GemlibError("Dask runs need the dask extra: pip install 'gemlib[dask]'") from None
    cluster = None
    if address == "local" or address.startswith("local:"):
        _, _, workers = address.partition(":")
        try:
            count = int(workers or 2)
        except ValueError:
            raise GemlibError(f"local:N takes a number of workers, got {address!r}") from None
        cluster = distributed.LocalCluster(
            host="127.0.0.1", n_workers=count, threads_per_worker=1, dashboard_address=None
        )
        client = distributed.Client(cluster)
    else:
        client = distributed.Client(address)
    try:
        yield client
    finally:
        client.close()
        if cluster is not None:
            cluster.close()


def _run_partition(
    make_pipeline: Callable[[Limits], Any],
    corpus: Any,
    index: int,
    run_dir: str,
    share: Limits,
    text_field: str,
    run_options: dict[str, Any],
) -> PartitionResult:
    """Runs in a worker: build the pipeline with the share, run one partition."""
    from gemlib.formats.corpus import read_corpus

    pipeline = make_pipeline(share)
    if isinstance(corpus, (str, os.PathLike)):
        items = read_corpus(corpus, text_field=text_field)
    else:
        items = corpus
    target = RunDir(run_dir).partition(index).path
    result = pipeline.run(items, run_dir=target, **run_options)
    requests = sum(u.requests for stage in pipeline.stages for u in stage.usage().values())
    return PartitionResult(index=index, run_dir=target, stats=result.stats, requests=requests)


def run_partitions(
    make_pipeline: Callable[[Limits], Any],
    partitions: Sequence[Any],
    run_dir: str | os.PathLike[str],
    *,
    client: Any,
    limits: Limits | None = None,
    text_field: str = "text",
    **run_options: Any,
) -> ClusterResult:
    """Run ``make_pipeline(share)`` over each partition on the Dask ``client``; wait for all.

    ``partitions``: corpus paths (anything :func:`~gemlib.formats.corpus.read_corpus`
    reads, with ``text_field``) or lists of items. ``make_pipeline`` must be importable by the
    workers (a module-level function); it gets this partition's share of
    ``limits`` (default ``Limits()``) and returns a
    :class:`~gemlib.pipeline.pipeline.Pipeline`. Other keywords go to
    ``Pipeline.run`` (``max_in_flight``...). A failed partition raises after
    the others finish; rerun to resume it.
    """
    if not partitions:
        raise ValueError("no partitions to run")
    RunDir(run_dir).refuse_other_kind(partitioned=True)
    workers = sum(client.nthreads().values())
    if workers < 1:
        raise GemlibError("the Dask cluster has no worker threads")
    share = share_limits(limits or Limits(), min(workers, len(partitions)))
    options = {"progress_interval": None, **run_options}
    root = str(Path(run_dir).resolve())
    futures = [
        client.submit(
            _run_partition, make_pipeline, corpus, i, root, share, text_field, options, pure=False
        )
        for i, corpus in enumerate(partitions)
    ]
    results = client.gather(futures, errors="skip")
    failed = [f for f in futures if f.status == "error"]
    if failed:
        raise GemlibError(
            f"{len(failed)} of {len(futures)} partitions failed (first: "
            f"{failed[0].exception()!r}); finished partitions are kept, rerun to resume"
        )
    return ClusterResult(partitions=sorted(results, key=lambda r: r.index), share=share)
