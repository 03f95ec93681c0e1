"""Shared fixtures: tiny generated models (built once per session), specs, pipeline helpers."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import apache_beam as beam
import pytest
from apache_beam.metrics.metric import MetricsFilter
from apache_beam.options.pipeline_options import PipelineOptions
from model_factory import (
    COLBERT_MODEL_NAME,
    IMAGE_MODEL_NAME,
    SPLADE_MODEL_NAME,
    TINY_TEXT_MODEL_NAME,
    make_colbert_model,
    make_image_model,
    make_splade_model,
    make_text_model,
)

os.environ.setdefault("HF_HUB_OFFLINE", "1")

TEXT_DIM = 16


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """No test sees the developer's keys or model folders."""
    for name in list(os.environ):
        if name.endswith("_API_KEY") or name == "QDRANT_BEAM_MODELS":
            monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")


@pytest.fixture(scope="session")
def model_dirs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("models")
    return {
        "text": make_text_model(root / "tiny-text", dim=TEXT_DIM, max_length=32),
        "colbert": make_colbert_model(root / "colbert"),
        "image": make_image_model(root / "clip"),
        "splade": make_splade_model(root / "splade"),
    }


@pytest.fixture(scope="session")
def models_map(model_dirs: dict[str, Path]) -> dict[str, Any]:
    """The `models:` section of a spec for the tiny models."""
    return {
        TINY_TEXT_MODEL_NAME: {"path": str(model_dirs["text"]), "kind": "dense", "dim": TEXT_DIM},
        COLBERT_MODEL_NAME: {"path": str(model_dirs["colbert"])},
        IMAGE_MODEL_NAME: {"path": str(model_dirs["image"])},
        SPLADE_MODEL_NAME: {"path": str(model_dirs["splade"])},
    }


def resolve_points(engine: Any, points: list[Any]) -> tuple[list[Any], list[Any]]:
    """An ``InferenceEngine`` over points, as ``ResolveInference`` runs it: ``FromPoints``
    prepares them, the engine resolves what was prepared."""
    from qdrant_beam.transforms.prepare import FromPoints

    mapped, failed = FromPoints().prepare(points)
    done, more = engine.resolve(mapped)
    return done, failed + more


def pipeline_options(*extra: str) -> PipelineOptions:
    return PipelineOptions(["--runner=FnApiRunner", *extra])


def run_collect(
    build: Any, *, options: PipelineOptions | None = None
) -> tuple[dict[str, list[Any]], Any]:
    """Run ``build(pipeline)`` and return its outputs, collected by name, and the result.

    ``build`` returns ``{name: pcoll}`` or a transform's named tuple of outputs.
    """
    collected: dict[str, list[Any]] = {}
    pipeline = beam.Pipeline(options=options or pipeline_options())
    outputs = build(pipeline)
    if hasattr(outputs, "_asdict"):
        outputs = outputs._asdict()
    for name, pcoll in outputs.items():
        collected[name] = []
        pcoll | f"Collect{name}" >> beam.ParDo(_Collector(name))
    result = pipeline.run()
    result.wait_until_finish()
    collected.update({name: list(_Collector.sink.pop(name, [])) for name in outputs})
    return collected, result


class _Collector(beam.DoFn):
    """Collects into a process-global dict; FnApiRunner runs in this process."""

    sink: dict[str, list[Any]] = {}

    def __init__(self, name: str) -> None:
        self._name = name

    def process(self, element: Any) -> Iterator[None]:
        _Collector.sink.setdefault(self._name, []).append(element)
        return iter(())


def counter(result: Any, name: str, namespace: str | None = None) -> int:
    flt = MetricsFilter().with_name(name)
    if namespace:
        flt = flt.with_namespace(namespace)
    return sum(c.committed for c in result.metrics().query(flt)["counters"])


class Listener:
    """A retry listener (``qdrant_beam.io.retry.RetryListener``) that records what it heard."""

    def __init__(self) -> None:
        self.events: list[str] = []

    def on_success(self) -> None:
        self.events.append("success")

    def on_throttle(self) -> None:
        self.events.append("throttle")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="session")
def job_endpoint() -> Iterator[str]:
    port = free_port()
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "apache_beam.runners.portability.local_job_service_main",
            f"--port={port}",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            break
        except OSError:
            time.sleep(0.2)
    else:
        proc.kill()
        pytest.fail("local job service did not start within 60 s")
    yield f"localhost:{port}"
    proc.terminate()
    proc.wait(timeout=30)
