"""`gemlib export --format hf` and `gemlib push`: a ready Hub dataset folder, and its upload.

The push goes to tests/fake_hub.py, a loopback fake of the endpoints
huggingface_hub calls for an upload (create repo, preupload, commit).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from cli_runner import gemlib as _gemlib
from cli_runner import gemlib_process
from fake_hub import FakeHub
from viewer_data import make_run

yaml = pytest.importorskip("yaml")
datasets = pytest.importorskip("datasets")


def _front_matter(card: str) -> dict[str, object]:
    assert card.startswith("---\n")
    front = yaml.safe_load(card.split("---\n")[1])
    assert isinstance(front, dict)
    return front


def test_the_exported_folder_is_a_dataset_with_a_card(tmp_path: Path) -> None:
    run = make_run(tmp_path)
    done = _gemlib(
        "export",
        str(run),
        "--format",
        "hf",
        "--out",
        "ds",
        "--license",
        "cc-by-4.0",
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr
    card = (tmp_path / "ds" / "README.md").read_text(encoding="utf-8")
    front = _front_matter(card)
    assert front["license"] == "cc-by-4.0"
    assert front["task_categories"] == ["text-generation"]
    assert front["size_categories"] == ["n<1K"]
    configs = {c["config_name"]: c for c in front["configs"]}  # type: ignore[attr-defined]
    assert list(configs) == ["openai", "sharegpt", "hermes", "gem"]
    assert configs["openai"]["default"] is True
    # The body says how it was made: stages in order with the funnel, checks, statistics.
    assert card.index("| writer |") < card.index("| rule_validator |")
    assert "too_short 2" in card
    assert "`_Grounded()`" in card
    assert "| messages | 7.1 |" in card
    assert "## Known limits" in card
    assert (
        "| hermes | `data/hermes/train.jsonl` | 18 | JSONL: ChatML text with &lt;tool_call&gt;"
        in card
    )
    # Every config loads offline, with the rows the card says.
    rows = {"openai": 19, "sharegpt": 18, "hermes": 18, "gem": 18}
    for name, expected in rows.items():
        loaded = datasets.load_dataset(str(tmp_path / "ds"), name, split="train")
        assert len(loaded) == expected, name
        assert f"| {name} | `data/{name}/train.jsonl` | {expected} |" in card
    first = datasets.load_dataset(str(tmp_path / "ds"), "openai", split="train")[0]
    assert first["messages"][0]["role"] == "system"

    # An export over an earlier one replaces it; over anything else it refuses.
    again = _gemlib("export", str(run), "--format", "hf", "--out", "ds", cwd=tmp_path)
    assert again.returncode == 0, again.stderr
    assert _front_matter((tmp_path / "ds" / "README.md").read_text())["license"] == "other"
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("keep me")
    refused = _gemlib("export", str(run), "--format", "hf", "--out", "mine", cwd=tmp_path)
    assert refused.returncode == 2
    assert "is not a gemlib dataset folder" in refused.stderr
    assert (tmp_path / "mine" / "notes.txt").read_text() == "keep me"
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".")) == []


# huggingface_hub reads HF_ENDPOINT, HF_HUB_OFFLINE and the token from the
# environment when it is imported, so each push runs in a process of its own.
def _push_env(tmp_path: Path, hub: FakeHub, token: str | None) -> dict[str, str]:
    """Online (huggingface_hub also reads TRANSFORMERS_OFFLINE), at the fake, home in tmp."""
    return {
        "HF_HUB_OFFLINE": "",
        "TRANSFORMERS_OFFLINE": "",
        "HF_ENDPOINT": hub.url,
        "HOME": str(tmp_path / "home"),
        "HF_HOME": str(tmp_path / "hf-home"),
        "HF_TOKEN": token or "",
        "HUGGING_FACE_HUB_TOKEN": "",
    }


def test_push_uploads_the_folder_with_the_token_only_in_the_header(tmp_path: Path) -> None:
    run = make_run(tmp_path)
    token = "hf_FAKEtoken0123456789abcdef"
    with FakeHub(token=token) as hub:
        done = gemlib_process(
            "push",
            str(run),
            "me/gem-data",
            "--private",
            cwd=tmp_path,
            env=_push_env(tmp_path, hub, token),
        )
        assert done.returncode == 0, done.stderr
        assert hub.repos["me/gem-data"]["type"] == "dataset"
        assert hub.repos["me/gem-data"]["visibility"] == "private"
        sent = hub.files["me/gem-data"]
        assert sorted(sent) == [
            "README.md",
            "data/gem/train.jsonl",
            "data/hermes/train.jsonl",
            "data/openai/train.jsonl",
            "data/sharegpt/train.jsonl",
        ]
        assert sent["data/openai/train.jsonl"].count(b"\n") == 19
        assert b'load_dataset("me/gem-data"' in sent["README.md"]
        uploads = [(m, p, h) for m, p, h in hub.requests if p != "/api/agent-harnesses"]
        assert [p for _, p, _ in uploads] == [
            "/api/repos/create",
            "/api/validate-yaml",
            "/api/datasets/me/gem-data/preupload/main",
            "/api/datasets/me/gem-data/commit/main",
        ]
        assert all(h.get("authorization") == f"Bearer {token}" for _, _, h in uploads)
        assert [c["license"] for c in hub.cards] == ["other"]
    assert "pushed to me/gem-data" in done.stdout
    # The token went in the header and nowhere else: not the output, not a file.
    assert token not in done.stdout + done.stderr
    for path in tmp_path.rglob("*"):
        if path.is_file():
            assert token.encode() not in path.read_bytes(), path


def test_push_refusals_never_show_the_token(tmp_path: Path) -> None:
    run = make_run(tmp_path)
    with FakeHub(token="hf_the_right_one") as hub:
        missing = gemlib_process(
            "push", str(run), "me/x", cwd=tmp_path, env=_push_env(tmp_path, hub, None)
        )
        assert missing.returncode == 2
        assert "no Hugging Face token: set HF_TOKEN" in missing.stderr
        wrong = "hf_WRONGtoken_9876543210"
        refused = gemlib_process(
            "push", str(run), "me/x", cwd=tmp_path, env=_push_env(tmp_path, hub, wrong)
        )
        assert refused.returncode == 2
        assert "push to me/x failed" in refused.stderr
        assert wrong not in refused.stdout + refused.stderr
        # Offline as this process is (conftest): in process.
        stopped = _gemlib("push", str(run), "me/x", cwd=tmp_path, env={"HF_TOKEN": wrong})
        assert stopped.returncode == 2
        assert "HF_HUB_OFFLINE (or TRANSFORMERS_OFFLINE) is set" in stopped.stderr
        assert wrong not in stopped.stdout + stopped.stderr
    assert "me/x" not in hub.files
