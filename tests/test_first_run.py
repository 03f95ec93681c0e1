"""The command as a new user meets it: the console script in a subprocess.

Every run, good or bad, must leave stderr free of ``WARNING`` lines and tracebacks; a user
error is ``error: ...`` and exit code 2.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from conftest import free_port
from fakes.providers import ProviderServer
from model_factory import TINY_TEXT_MODEL_NAME

SCRIPT = Path(sys.executable).with_name("qdrant-beam")


def run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(SCRIPT), *args],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
        env=env,
    )


def assert_clean(proc: subprocess.CompletedProcess[str]) -> None:
    lines = proc.stderr.splitlines()
    assert not [line for line in lines if "WARNING" in line], proc.stderr
    assert "Traceback" not in proc.stderr, proc.stderr


def assert_user_error(proc: subprocess.CompletedProcess[str], *fragments: str) -> str:
    assert proc.returncode == 2, (proc.returncode, proc.stderr)
    assert_clean(proc)
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1, proc.stderr
    for fragment in fragments:
        assert fragment in proc.stderr, proc.stderr
    return errors[0]


def spec(models_map: dict[str, Any], mrl: int = 4) -> dict[str, Any]:
    text = "{title}. {body}"
    return {
        "collection": "docs",
        "id": "{doc_id}",
        "vectors": {
            "dense": {"text": text, "model": TINY_TEXT_MODEL_NAME},
            "small": {"text": text, "model": TINY_TEXT_MODEL_NAME, "options": {"mrl": mrl}},
            "bm25": {"text": text, "model": "qdrant/bm25"},
        },
        "models": {TINY_TEXT_MODEL_NAME: models_map[TINY_TEXT_MODEL_NAME]},
    }


@pytest.fixture
def files(tmp_path: Path, models_map: dict[str, Any]) -> dict[str, Path]:
    records = tmp_path / "records.jsonl"
    records.write_text(
        "".join(
            json.dumps({"doc_id": f"d{i}", "title": f"Title {i}", "body": f"body {i}"}) + "\n"
            for i in range(40)
        ),
        encoding="utf-8",
    )
    good = tmp_path / "spec.yaml"
    good.write_text(yaml.safe_dump(spec(models_map)), encoding="utf-8")
    resized = tmp_path / "resized.yaml"
    resized.write_text(yaml.safe_dump(spec(models_map, mrl=8)), encoding="utf-8")
    broken = tmp_path / "broken.yaml"
    broken.write_text("collection: docs\nvectors: {dense: {text: '{title}'}}\n", encoding="utf-8")
    return {"records": records, "spec": good, "resized": resized, "broken": broken}


def ingest(files: dict[str, Path], *extra: str, spec_key: str = "spec") -> list[str]:
    return [
        "ingest",
        f"--spec={files[spec_key]}",
        f"--input={files['records']}",
        *extra,
    ]


def test_a_normal_ingest_then_a_mismatched_collection(files: dict[str, Path], tmp_path: Path):
    qdrant = f"--qdrant-path={tmp_path / 'q'}"
    first = run(*ingest(files, qdrant, f"--dead-letter={tmp_path / 'dead'}"))
    assert first.returncode == 0, first.stderr
    assert_clean(first)
    assert "points written:    40" in first.stdout
    assert (tmp_path / "dead.jsonl").read_text(encoding="utf-8") == ""

    resized = run(*ingest(files, qdrant, spec_key="resized"))
    assert_user_error(resized, "vector 'small': size is 8 in the spec but 4 in Qdrant")


def test_a_missing_input_names_the_pattern(files: dict[str, Path], tmp_path: Path) -> None:
    pattern = str(tmp_path / "nothing" / "*.jsonl")
    proc = run("ingest", f"--spec={files['spec']}", f"--input={pattern}", "--qdrant-path=q")
    assert_user_error(proc, f"no input files match '{pattern}'")


def test_a_bad_spec_names_the_field(files: dict[str, Path]) -> None:
    proc = run(*ingest(files, "--qdrant-path=q", spec_key="broken"))
    assert_user_error(proc, "id: Field required", "vectors.dense.model: Field required")
    missing = run(
        "ingest", "--spec=/no/such/spec.yaml", f"--input={files['records']}", "--qdrant-path=q"
    )
    assert_user_error(missing, "cannot read spec /no/such/spec.yaml")


def test_an_unreachable_qdrant_names_the_url(files: dict[str, Path]) -> None:
    url = f"http://127.0.0.1:{free_port()}"
    proc = run(*ingest(files, f"--qdrant-url={url}"))
    assert_user_error(proc, f"cannot reach Qdrant at {url} (REST)")


@pytest.mark.parametrize(
    ("option", "fragment"),
    [
        ("--dead-leter=x", "unknown option --dead-leter for `qdrant-beam ingest`; did you mean"),
        ("--num_workers=abc", "argument --num_workers: invalid int value: 'abc'"),
        ("--runner=Nope", "--runner 'Nope' is not a Beam runner"),
    ],
)
def test_a_bad_option_is_one_line(files: dict[str, Path], option: str, fragment: str) -> None:
    assert_user_error(run(*ingest(files, "--qdrant-path=q", option)), fragment)


def test_a_refused_provider_key_is_one_line(files: dict[str, Path], tmp_path: Path) -> None:
    with ProviderServer("openai", api_key="sk-right") as server:
        remote = {
            "collection": "docs",
            "id": "{doc_id}",
            "vectors": {
                "dense": {
                    "text": "{title}",
                    "model": "openai/text-embedding-3-small",
                    "options": {"dimensions": 8},
                }
            },
            "providers": {"openai": {"base_url": server.base_url}},
        }
        path = tmp_path / "remote.yaml"
        path.write_text(yaml.safe_dump(remote), encoding="utf-8")
        env = {"PATH": "/usr/bin:/bin", "HF_HUB_OFFLINE": "1", "OPENAI_API_KEY": "sk-wrong"}
        proc = run(
            "ingest",
            f"--spec={path}",
            f"--input={files['records']}",
            f"--qdrant-path={tmp_path / 'q'}",
            env=env,
        )
    line = assert_user_error(proc, "openai answered 401", "OPENAI_API_KEY")
    assert "sk-wrong" not in proc.stderr + proc.stdout, line
