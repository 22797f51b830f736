"""Partitions on a Dask LocalCluster bound to 127.0.0.1: outputs, resume, the shared budget."""

from __future__ import annotations

import contextlib
import io
import json
import subprocess
from collections.abc import Iterator
from functools import partial
from pathlib import Path
from typing import Any

import pytest

from cli_runner import gemlib as run_gemlib
from cluster_pipelines import gem_against
from conftest import third_party
from fake_openai import FakeOpenAI, Reply
from gemlib.cli import main
from gemlib.errors import GemlibError
from gemlib.llm import Limits
from gemlib.pipeline.accounting import RunStats
from gemlib.pipeline.cluster import (
    ClusterResult,
    PartitionResult,
    corpus_partitions,
    dask_client,
    run_partitions,
    share_limits,
)
from gemlib.pipeline.rundir import open_results
from teacher import JUDGE, canned_reply

EXAMPLES = Path(__file__).parents[1] / "examples" / "corpus" / "gem_examples.jsonl"


def _partitions(tmp_path: Path, parts: int, per_part: int) -> list[Path]:
    procedural = [json.loads(line) for line in EXAMPLES.open()][:16]
    tmp_path.mkdir(exist_ok=True)
    paths = []
    for p in range(parts):
        path = tmp_path / f"corpus-{p}.jsonl"
        with path.open("w") as out:
            for i in range(per_part):
                doc = procedural[(p * per_part + i) % 16]
                out.write(json.dumps({"id": f"p{p}-{i}", "text": doc["text"]}) + "\n")
        paths.append(path)
    return paths


@pytest.fixture(scope="module")
def cluster() -> Iterator[Any]:
    """One Dask cluster of two one-thread worker processes on 127.0.0.1 for this module.

    Started through ``dask_client("local:2")``, the way ``--dask local:2`` starts one;
    the tests reuse it (by client or by scheduler address) instead of paying for a
    cluster, and workers importing gemlib, each time.
    """
    third_party("distributed")
    with dask_client("local:2") as client:
        assert sorted(client.nthreads().values()) == [1, 1]
        assert all("127.0.0.1" in worker for worker in client.nthreads())
        yield client


def test_partitions_run_resume_and_stay_within_the_global_budget(
    tmp_path: Path, cluster: Any
) -> None:
    partitions = _partitions(tmp_path, parts=3, per_part=2)
    client = cluster
    with FakeOpenAI(canned_reply, latency=0.2) as server:
        make = partial(gem_against, server.url)
        budget = Limits(max_concurrency=4)
        first = run_partitions(make, partitions, tmp_path / "run", client=client, limits=budget)
        sent = len(server.requests)
        assert first.share.max_concurrency == 2, "two workers at once: half the budget each"
        assert server.peak <= 4, "the cluster as a whole never exceeds the model's limit"
        assert server.peak >= 3, "and partitions did run side by side"
        assert first.outputs == 6
        assert first.requests == sent == 6 * 5

        again = run_partitions(make, partitions, tmp_path / "run", client=client, limits=budget)
        assert len(server.requests) == sent, "a rerun resumes every partition: no requests"
        assert again.requests == 0
        assert again.outputs == 6, "the run directories' totals, all sessions"
        assert sum(p.stats.resumed for p in again.partitions) == 6

        broken = [*partitions, tmp_path / "missing.jsonl"]
        with pytest.raises(GemlibError, match=r"1 of 4 partitions failed .*missing\.jsonl"):
            run_partitions(make, broken, tmp_path / "run", client=client, limits=budget)
        assert len(server.requests) == sent, "the others resumed; nothing was redone"

    parts = sorted((tmp_path / "run").iterdir())
    assert [p.name for p in parts] == ["part-00000", "part-00001", "part-00002"]
    ids = [t["id"] for p in parts for t in open_results(p)[0]]
    assert len(ids) == len(set(ids)) == 6
    sources = {t["provenance"]["document_id"] for p in parts for t in open_results(p)[0]}
    assert sources == {f"p{p}-{i}" for p in range(3) for i in range(2)}


def test_budget_shares_never_add_up_to_more_than_the_whole() -> None:
    share = share_limits(Limits(max_concurrency=10, rpm=600, tpm=90_000), 3)
    assert (share.max_concurrency, share.rpm, share.tpm) == (3, 200, 30_000)
    with pytest.raises(GemlibError, match="cannot be split over 5 partitions"):
        share_limits(Limits(max_concurrency=4), 5)


def test_partitions_are_the_folders_corpus_files_and_bad_addresses_say_so(tmp_path: Path) -> None:
    for name in ("b.jsonl", "a.parquet", "c.NDJSON", "notes.txt", "d.json"):
        (tmp_path / name).write_text("")
    (tmp_path / "sub.jsonl").mkdir()  # a folder named like a corpus file is not one
    assert [p.name for p in corpus_partitions(tmp_path)] == ["a.parquet", "b.jsonl", "c.NDJSON"]
    with pytest.raises(GemlibError, match="needs a folder of corpus files"):
        corpus_partitions(tmp_path / "b.jsonl")
    (tmp_path / "empty").mkdir()
    with pytest.raises(GemlibError, match=r"holds no \.jsonl or \.parquet files"):
        corpus_partitions(tmp_path / "empty")
    with (
        pytest.raises(GemlibError, match="local:N takes a number of workers"),
        dask_client("local:two"),
    ):
        pass


def test_what_partitions_left_for_retry_adds_up() -> None:
    def part(index: int, left: dict[str, int], example: str) -> PartitionResult:
        stats = RunStats(left_for_retry=left, left_for_retry_examples=dict.fromkeys(left, example))
        return PartitionResult(index=index, run_dir=Path(f"part-{index}"), stats=stats, requests=1)

    result = ClusterResult(
        partitions=[
            part(0, {"judge: ModelError": 2}, "first"),
            part(1, {"judge: ModelError": 1, "relevance: CacheError": 4}, "second"),
        ],
        share=Limits(),
    )
    left = result.left_for_retry()
    assert left.left_for_retry == {"judge: ModelError": 3, "relevance: CacheError": 4}
    assert left.left_for_retry_examples == {
        "judge: ModelError": "first",
        "relevance: CacheError": "second",
    }


def test_run_command_on_a_dask_cluster_and_resume(tmp_path: Path, cluster: Any) -> None:
    _partitions(tmp_path / "corpus", parts=2, per_part=3)
    scheduler = cluster.scheduler.address  # the module's cluster: --dask takes its address

    def gemlib(*args: str) -> subprocess.CompletedProcess[str]:
        return run_gemlib(*args, cwd=tmp_path, env={"OPENAI_API_KEY": "none"})

    with FakeOpenAI(canned_reply) as server:
        first = gemlib(
            "run", "corpus", "--model", "openai/teacher", "--api-base", server.url,
            "--out", "run", "--dask", scheduler, "--concurrency", "4",
        )  # fmt: skip
        assert first.returncode == 0, first.stderr
        sent = len(server.requests)
        assert 0 < sent <= 6 * 5, "five calls per text at most (the rest from the cache)"
        assert server.peak <= 4
        for written in (tmp_path / "run").glob("part-*/*.jsonl"):
            with open(written, "a") as handle:  # what killed partitions leave
                handle.write('{"id": "half-writ')
        again = gemlib("resume", "run")
        assert again.returncode == 0, again.stderr
        assert len(server.requests) == sent
        settings = (tmp_path / "run" / "run.json").read_bytes()
        other = gemlib(
            "run", "corpus", "--model", "openai/teacher", "--api-base", server.url,
            "--out", "run", "--dask", scheduler, "--no-judge",
        )  # fmt: skip
        assert other.returncode == 2, other.stderr
        assert "different pipeline" in other.stderr
        assert (tmp_path / "run" / "run.json").read_bytes() == settings, "refused: unchanged"
    assert "2 partitions on 2 Dask workers" in first.stdout
    assert "each partition ran with 2 requests in flight" in first.stdout
    assert "part-00001: corpus-1.jsonl, 3 trajectories, 0 rejections" in first.stdout
    assert f"6 trajectories, 0 rejections in run/part-*, {sent} requests this run" in first.stdout
    assert "3 already done, 0 requests this run" in again.stdout
    _every_reader_reads_the_committed_records(
        tmp_path / "run", tmp_path / "corpus" / "corpus-0.jsonl"
    )

    # A judge the server refuses (a 400: the service's doing, not the items') leaves
    # every item for retry: the summary adds the partitions up and the exit code says so.
    def refuse_judge(body: dict[str, Any], n: int) -> Reply:
        reply = canned_reply(body, n)
        return Reply(status=400) if reply.content == JUDGE["Northwind"] else reply

    with FakeOpenAI(refuse_judge) as server:
        left = gemlib(
            "run", "corpus", "--model", "openai/teacher", "--api-base", server.url,
            "--out", "left", "--dask", scheduler, "--concurrency", "4",
        )  # fmt: skip
    assert left.returncode == 3, left.stderr
    assert "6 items left for retry" in left.stdout
    assert "llm_judge: ModelRequestError (HTTP 400)" in left.stdout

    single = gemlib(
        "run", "corpus/corpus-0.jsonl", "--model", "m", "--out", "x", "--dask", "local"
    )  # fmt: skip
    assert single.returncode == 2
    assert "a partitioned run needs a folder of corpus files" in single.stderr


def _every_reader_reads_the_committed_records(root: Path, corpus: Path) -> None:
    """The commands that read a run read a partitioned one, half lines after each file."""
    for written in root.glob("part-*/*.jsonl"):
        with open(written, "a") as handle:
            handle.write('{"id": "half-writ')
    out = root.parent / "read"
    commands = {
        "export": ["export", str(root), "--format", "sharegpt", "--out", str(out / "x")],
        "stats": ["stats", str(root), "--fast"],
        "validate": ["validate", str(root)],
        "synth-data": ["synth-data", str(root), "--out", str(out / "synth")],
        "view": ["view", str(root), "--out", str(out / "view.html")],
        "estimate": ["estimate", str(corpus), "--pilot", str(root)],
    }
    printed = {}
    for name, argv in commands.items():
        with contextlib.redirect_stdout(io.StringIO()) as stdout:
            assert main(argv) == 0, name
        printed[name] = stdout.getvalue()
    assert "wrote 6 trajectories" in printed["export"]
    assert "6 trajectories" in printed["stats"]
    assert "6 of 6 trajectories pass" in printed["validate"]
    assert "from 6 source documents" in printed["synth-data"]
    assert "[pilot]" in printed["estimate"], "calibrated from both partitions"
