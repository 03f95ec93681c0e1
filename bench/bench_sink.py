"""Sink benchmarks: WriteToQdrant against Beam's Qdrant sink and qdrant-client's upload_points.

All contenders are measured side by side in one run (the machines are noisy), against the REST
test server (``tests/fakes/qdrant.py``) in its own process, with ``--latency-ms`` added to every
upsert, writing ``--n`` points of two dense vectors (384-d, 64-d) and one sparse vector (20
non-zeros) in batches of 64. Run: ``python bench/bench_sink.py [--n 20000] [--json PATH]``.

The standalone server (``python tests/qdrant_server.py``) takes no latency or fault options, so
this script starts it with ``python bench/bench_sink.py --serve ...``: the same
``QdrantTestServer`` in its own process, with ``Faults`` set from the command line and a
line-based control channel on stdin (``stats``) and stdout (the URL, then one JSON line per
``stats``).

Throughput runs use the no-store mode (it parses, counts and answers); its own ceiling, and the
storing mode's, are measured by a raw client loop without latency and reported next to the
results. Point counts are checked on the no-store server's counters and, for WriteToQdrant with
and without faults, in a storing run that counts the collection. The storing mode is itself the
bottleneck (~2k points/s without latency, slower as the collection grows), which is why it only
checks counts. ``--profile`` adds two runs: CPU seconds per thread, and cProfile of all threads.

Typical results, 2 shared cores, 20k points, 20 ms latency (points/s; the ratios swing ~20 %
between runs)::

    no-store server ceiling (raw, 4 threads)     8k - 13k
    QdrantClient.upsert ceiling (4 threads)      5k - 6.7k
    WriteToQdrant, points built in the pipeline  2.5k - 3.3k   (window_max 8 >= 16)
    WriteToQdrant, points prebuilt               4.3k - 4.4k
    Beam's QdrantWriteConfig                     290 - 330     (objsize.get_deep_size per point)
    upload_points (points prebuilt)              1.5k - 1.7k
    WriteToQdrant, 10 % 503 + 5 % 429 (RA: 1)    1.1k - 1.2k   (Retry-After: 0 -> ~1.9k)

Our pipeline is CPU-bound in one process (~0.9 core busy, the GIL): per 64-point batch the
writer threads spend ~9-13 ms CPU in qdrant-client (model_dump_json ~4 ms, the inference
inspector walking every point ~1.2 ms, httpx with a new connection per request on localhost)
while the main thread builds points and batches them; requests average ~140 ms for 20 ms of
server latency because writer threads wait for the GIL.
"""

from __future__ import annotations

import argparse
import collections
import concurrent.futures
import contextlib
import json
import logging
import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import apache_beam as beam
import numpy as np
from apache_beam.metrics.metric import MetricsFilter
from apache_beam.options.pipeline_options import PipelineOptions
from qdrant_client import QdrantClient, models

from qdrant_beam.connectors import (
    CollectionSchema,
    DenseVector,
    QdrantTarget,
    SparseVector,
    WriteToQdrant,
)

REPO = Path(__file__).resolve().parent.parent
BATCH = 64
BIG, SMALL, NNZ = 384, 64, 20
SCHEMA = CollectionSchema(
    "bench", {"big": DenseVector(BIG), "small": DenseVector(SMALL)}, {"sparse": SparseVector()}
)
_TABLE_ROWS = 1024


# --- the points -----------------------------------------------------------------------------


def _table() -> np.ndarray:
    return np.random.default_rng(0).random((_TABLE_ROWS, BIG + SMALL))


def _vectors(table: np.ndarray, i: int) -> tuple[list[float], list[float], list[int]]:
    row = table[i % _TABLE_ROWS]
    indices = sorted((i * 7919 + k * 1499) % 30_000 for k in range(NNZ))
    return row[:BIG].tolist(), row[BIG:].tolist(), indices


def make_point(table: np.ndarray, i: int) -> models.PointStruct:
    big, small, indices = _vectors(table, i)
    return models.PointStruct(
        id=i,
        vector={
            "big": big,
            "small": small,
            "sparse": models.SparseVector(indices=indices, values=small[:NNZ]),
        },
        payload={"n": i, "tag": f"t{i % 7}"},
    )


def make_item(table: np.ndarray, i: int) -> Any:
    """Beam's ``EmbeddableItem``: one dense (the 384-d) and one sparse embedding only."""
    from apache_beam.ml.rag.types import Content, EmbeddableItem, Embedding

    big, small, indices = _vectors(table, i)
    return EmbeddableItem(
        content=Content(),
        id=str(i),
        metadata={"n": i, "tag": f"t{i % 7}"},
        embedding=Embedding(dense_embedding=big, sparse_embedding=(indices, small[:NNZ])),
    )


#: Points built before the clock starts, by key; FnApiRunner runs the DoFns in this process.
PREBUILT: dict[str, list[Any]] = {}


class _Generate(beam.DoFn):
    """Builds the points inside the pipeline (``beam.Create`` of 20k points is slow), or
    hands out ``PREBUILT[prebuilt]``: looked up at run time, so it is never pickled."""

    def __init__(self, n: int, items: bool = False, prebuilt: str | None = None) -> None:
        self._n = n
        self._items = items
        self._prebuilt = prebuilt

    def setup(self) -> None:
        self._table = _table()

    def process(self, _: Any) -> Iterator[Any]:
        if self._prebuilt is not None:
            yield from sys.modules[__name__].PREBUILT[self._prebuilt]
            return
        make = make_item if self._items else make_point
        for i in range(self._n):
            yield make(self._table, i)


# --- the server in its own process ----------------------------------------------------------


def serve(args: argparse.Namespace) -> int:
    """``--serve``: the test server with latency and faults; stdin ``stats`` -> a JSON line."""
    sys.path.insert(0, str(REPO / "tests"))
    from fakes.qdrant import Faults, QdrantTestServer

    statuses = [503] * round(args.error_503 * 100) + [429] * round(args.error_429 * 100)
    faults = Faults(
        kinds=frozenset({"upsert"}),
        latency_s=args.latency_ms / 1000,
        error_rate=args.error_503 + args.error_429,
        error_statuses=tuple(statuses) or (503,),
        retry_after_s=args.retry_after,
        seed=args.seed,
    )
    server = QdrantTestServer(port=0, store=not args.no_store, faults=faults).start()
    print(server.url, flush=True)
    try:
        for line in sys.stdin:
            if line.strip() == "stats":
                s = server.stats
                doc = {
                    "upsert_requests": s.upsert_requests,
                    "upserts_applied": s.upserts_applied,
                    "points_received": s.points_received,
                    "points_upserted": s.points_upserted,
                    "faults": dict(s.faults),
                    "max_concurrent_seen": s.max_concurrent_seen,
                    "errors": s.errors[:5],
                }
                print(json.dumps(doc), flush=True)
    finally:
        server.close()
    return 0


class Server:
    """``with Server(store=False, latency_ms=20) as s: s.url, s.stats()``."""

    def __init__(
        self,
        *,
        store: bool,
        latency_ms: float,
        error_503: float = 0.0,
        error_429: float = 0.0,
        retry_after: int = 1,
        seed: int = 0,
    ) -> None:
        self.argv = [
            sys.executable,
            str(Path(__file__).resolve()),
            "--serve",
            f"--latency-ms={latency_ms}",
            f"--error-503={error_503}",
            f"--error-429={error_429}",
            f"--retry-after={retry_after}",
            f"--seed={seed}",
            *([] if store else ["--no-store"]),
        ]

    def __enter__(self) -> Server:
        self.proc = subprocess.Popen(
            self.argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, cwd=REPO
        )
        assert self.proc.stdout is not None
        self.url = self.proc.stdout.readline().strip()
        if not self.url.startswith("http"):
            raise RuntimeError(f"the test server did not start: {self.url!r}")
        return self

    def stats(self) -> dict[str, Any]:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write("stats\n")
        self.proc.stdin.flush()
        return json.loads(self.proc.stdout.readline())

    @contextlib.contextmanager
    def expect(self, points: int, what: str) -> Iterator[dict[str, Any]]:
        """Checks the server saw exactly ``points`` upserted points in the block; yields the
        stats of the block, filled in at its end."""
        before = self.stats()
        delta: dict[str, Any] = {}
        yield delta
        after = self.stats()
        got = after["points_upserted"] - before["points_upserted"]
        faults = collections.Counter(after["faults"])
        faults.subtract(before["faults"])
        delta.update(points_upserted=got, faults=dict(+faults), errors=after["errors"])
        if got != points or after["errors"]:
            raise RuntimeError(f"{what}: the server saw {delta}, expected {points} points")

    def client(self) -> QdrantClient:
        return QdrantClient(url=self.url, timeout=30, check_compatibility=False)

    def create(self, collection: str) -> None:
        client = self.client()
        CollectionSchema(collection, SCHEMA.dense, SCHEMA.sparse).create(client)
        client.close()

    def count(self, collection: str) -> int:
        client = self.client()
        try:
            return client.count(collection, exact=True).count
        finally:
            client.close()

    def __exit__(self, *exc: object) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.close()
        try:
            self.proc.wait(15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


# --- contenders -----------------------------------------------------------------------------


def _run(build: Callable[[beam.Pipeline], None]) -> tuple[float, Any]:
    """Seconds from ``run()`` to the end (collection creation, at graph time, excluded)."""
    pipeline = beam.Pipeline(options=PipelineOptions(["--runner=FnApiRunner"]))
    build(pipeline)
    started = time.perf_counter()
    result = pipeline.run()
    result.wait_until_finish()
    return time.perf_counter() - started, result


def _counters(result: Any) -> dict[str, Any]:
    metrics = result.metrics().query(MetricsFilter())
    out: dict[str, Any] = {
        c.key.metric.name: c.committed
        for c in metrics["counters"]
        if c.key.metric.namespace == "qdrant_beam.write"
    }
    for d in metrics["distributions"]:
        name = {"in_flight": "in_flight_mean", "request_latency_ms": "request_ms_mean"}.get(
            d.key.metric.name
        )
        if name and d.key.metric.namespace == "qdrant_beam.write" and d.committed is not None:
            out[name] = round(d.committed.mean, 2)
    return out


def ours(
    url: str, n: int, collection: str, window_max: int, prebuilt: str | None = None, **kwargs: Any
) -> tuple[float, dict]:
    target = QdrantTarget(url=url, timeout_s=30)
    schema = CollectionSchema(collection, SCHEMA.dense, SCHEMA.sparse)
    seconds, result = _run(
        lambda p: (
            p
            | beam.Create([None])
            | beam.ParDo(_Generate(n, prebuilt=prebuilt))
            | WriteToQdrant(
                target, schema=schema, upsert_batch_size=BATCH, window_max=window_max, **kwargs
            )
        )
    )
    counters = _counters(result)
    if counters.get("points_written") != n or counters.get("dead_letters", 0):
        raise RuntimeError(f"WriteToQdrant wrote {counters} of {n} points")
    return seconds, counters


def generate_only(n: int) -> float:
    """Seconds for the same pipeline without the sink: the cost of building the points."""
    seconds, _ = _run(
        lambda p: p | beam.Create([None]) | beam.ParDo(_Generate(n)) | beam.Map(lambda _: None)
    )
    return seconds


def beam_sink(server: Server, n: int, collection: str) -> float:
    from apache_beam.ml.rag.ingestion.base import VectorDatabaseWriteTransform
    from apache_beam.ml.rag.ingestion.qdrant import QdrantConnectionParameters, QdrantWriteConfig

    server.create(collection)  # Beam's sink never creates collections
    config = QdrantWriteConfig(
        connection_params=QdrantConnectionParameters(url=server.url, timeout=30),
        collection_name=collection,
        batch_size=BATCH,
        dense_embedding_key="big",
        sparse_embedding_key="sparse",
    )
    seconds, _ = _run(
        lambda p: (
            p
            | beam.Create([None])
            | beam.ParDo(_Generate(n, items=True))
            | VectorDatabaseWriteTransform(config)
        )
    )
    return seconds


def upload_points(server: Server, n: int, collection: str) -> float:
    """A plain loop; the points are built before the clock starts."""
    server.create(collection)
    table = _table()
    points = [make_point(table, i) for i in range(n)]
    client = server.client()
    started = time.perf_counter()
    client.upload_points(collection, points, batch_size=BATCH, parallel=1)
    seconds = time.perf_counter() - started
    client.close()
    return seconds


def ceiling(server: Server, n: int, collection: str, threads: int, *, raw: bool) -> float:
    """Points/s of ``threads`` threads upserting without latency (points and clients prebuilt).

    ``raw``: pre-encoded bodies sent by httpx, a new connection per request (as qdrant-client
    does on localhost; the test server's keep-alive answers stall ~40 ms on Nagle + delayed
    ACK), the server's own ceiling. Else ``QdrantClient.upsert``, which adds the client's
    serialisation and checks: the most any QdrantClient-based writer in one process can do.
    """
    import httpx

    server.create(collection)
    table = _table()
    batches = [
        [make_point(table, i) for i in range(start, min(n, start + BATCH))]
        for start in range(0, n, BATCH)
    ]
    url = f"{server.url}/collections/{collection}/points?wait=true"
    headers = {"content-type": "application/json", "connection": "close"}
    bodies = [
        models.PointsList(points=b).model_dump_json(exclude_unset=True).encode() for b in batches
    ]
    https = [httpx.Client(timeout=30) for _ in range(threads)]
    client = server.client()

    def loop(k: int) -> None:
        for j in range(k, len(batches), threads):
            if raw:
                https[k].put(url, content=bodies[j], headers=headers).raise_for_status()
            else:
                client.upsert(collection, points=batches[j], wait=True)

    started = time.perf_counter()
    with concurrent.futures.ThreadPoolExecutor(threads) as pool:
        list(pool.map(loop, range(threads)))
    seconds = time.perf_counter() - started
    for http in https:
        http.close()
    client.close()
    return n / seconds


# --- where the CPU goes ---------------------------------------------------------------------


class ThreadCpu:
    """CPU seconds per thread group (from /proc, Linux), and of the whole process."""

    def __init__(self, interval_s: float = 0.1) -> None:
        self.interval_s = interval_s
        self.cpu: dict[int, tuple[str, float]] = {}
        self._stop = threading.Event()

    def __enter__(self) -> ThreadCpu:
        self._wall, self._proc = time.perf_counter(), time.process_time()
        self._sample()
        self.before = dict(self.cpu)
        self._thread = threading.Thread(target=self._loop, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.wall_s = time.perf_counter() - self._wall
        self.process_s = time.process_time() - self._proc

    def _loop(self) -> None:
        while not self._stop.wait(self.interval_s):
            self._sample()
        self._sample()

    def _sample(self) -> None:
        tick = os.sysconf("SC_CLK_TCK")
        for thread in threading.enumerate():
            tid = thread.native_id
            try:
                fields = Path(f"/proc/self/task/{tid}/stat").read_text().rsplit(")", 1)[1]
            except (OSError, IndexError):
                continue
            utime, stime = fields.split()[11:13]
            self.cpu[tid] = (thread.name, (int(utime) + int(stime)) / tick)

    def report(self) -> dict[str, float]:
        groups: collections.Counter[str] = collections.Counter()
        for tid, (name, seconds) in self.cpu.items():
            seconds -= self.before.get(tid, (name, 0.0))[1]
            group = "sink writer threads" if name.startswith("qdrant-beam-write") else name
            groups[group.split("-")[0] if group.startswith("Thread-") else group] += seconds
        out = {name: round(s, 2) for name, s in groups.most_common(6) if s >= 0.05}
        out["process_cpu_s"] = round(self.process_s, 2)
        out["wall_s"] = round(self.wall_s, 2)
        out["cores_busy"] = round(self.process_s / self.wall_s, 2)
        return out


@contextlib.contextmanager
def profile_all_threads() -> Iterator[list[Any]]:
    """cProfile with a CPU-time clock in every thread started inside the block."""
    import cProfile

    profiles: list[Any] = []

    def start(*_: Any) -> None:
        sys.setprofile(None)
        prof = cProfile.Profile(time.thread_time)
        profiles.append(prof)
        prof.enable()

    main = cProfile.Profile(time.thread_time)
    profiles.append(main)
    threading.setprofile(start)
    main.enable()
    try:
        yield profiles
    finally:
        main.disable()
        threading.setprofile(None)  # type: ignore[arg-type]


def print_profile(profiles: list[Any], top: int = 18) -> None:
    import io
    import pstats

    stream = io.StringIO()
    stats = pstats.Stats(profiles[0], stream=stream)
    for prof in profiles[1:]:
        stats.add(prof)
    ours_and_client = r"connectors/|qdrant_client/|bench_sink|httpx/|httpcore/|transforms/util"
    stats.sort_stats("cumulative").print_stats(ours_and_client, top)
    stats.sort_stats("tottime").print_stats(top)
    text = stream.getvalue().replace(str(REPO) + "/", "").replace(sys.prefix + "/lib/", "")
    print(text.replace("python3.11/site-packages/", ""))


# --- main -----------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--n", type=int, default=20_000, help="points per contender")
    parser.add_argument("--latency-ms", type=float, default=20.0, help="added to every upsert")
    parser.add_argument("--windows", type=int, nargs="+", default=[8, 16], help="window_max")
    parser.add_argument("--retry-after", type=int, default=1, help="Retry-After of the 429s")
    parser.add_argument("--error-503", type=float, default=0.10, help="share of upserts -> 503")
    parser.add_argument("--error-429", type=float, default=0.05, help="share of upserts -> 429")
    parser.add_argument("--threads", type=int, default=4, help="threads of the ceiling loops")
    parser.add_argument("--skip-storing", action="store_true", help="no storing-mode runs")
    parser.add_argument(
        "--profile", action="store_true", help="two more runs: CPU per thread, and cProfile"
    )
    parser.add_argument("--json", type=Path, default=None, help="write results here")
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--no-store", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--seed", type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.serve:
        return serve(args)
    # Beam's VectorDatabaseWriteTransform logs a harmless type-hint warning per pipeline.
    logging.getLogger().addFilter(lambda record: "output type hint" not in record.getMessage())

    n, latency = args.n, args.latency_ms
    faults = {
        "error_503": args.error_503,
        "error_429": args.error_429,
        "retry_after": args.retry_after,
        "seed": 7,
    }
    results: dict[str, Any] = {
        "n": n,
        "batch_size": BATCH,
        "latency_ms": latency,
        "cpus": os.cpu_count(),
        "faults": faults,
    }
    started_all = time.perf_counter()

    def report(name: str, value: Any) -> None:
        results[name] = value
        print(f"{name}: {value}", flush=True)

    def rate(seconds: float) -> float:
        return round(n / seconds, 1)

    # Warm-up (imports, the FnApiRunner's first start), then the no-store server's ceilings:
    # multi-threaded loops without latency, points prebuilt.
    with Server(store=False, latency_ms=0) as server:
        ours(server.url, min(n, 2 * BATCH * 8), "warmup", 8)
        report(
            "ceiling_no_store_raw_points_per_s",
            round(ceiling(server, n, "ceiling_raw", args.threads, raw=True), 1),
        )
        report(
            "ceiling_no_store_qdrant_client_points_per_s",
            round(ceiling(server, n, "ceiling_client", args.threads, raw=False), 1),
        )
    report("generate_only_s", round(generate_only(n), 2))

    with Server(store=False, latency_ms=latency) as server:
        # 1. WriteToQdrant, each window_max.
        by_window: dict[int, float] = {}
        for window in args.windows:
            with server.expect(n, f"ours window_max={window}"):
                seconds, counters = ours(server.url, n, f"ours_w{window}", window)
            by_window[window] = rate(seconds)
            report(f"ours_window{window}_points_per_s", by_window[window])
            report(f"ours_window{window}_requests", counters.get("requests"))
            report(f"ours_window{window}_in_flight_mean", counters.get("in_flight_mean"))
            report(f"ours_window{window}_blocked_ms", counters.get("blocked_ms"))
            report(f"ours_window{window}_request_ms_mean", counters.get("request_ms_mean"))
        best_window = max(by_window, key=lambda w: by_window[w])
        ours_rate = by_window[best_window]
        report("ours_points_per_s", ours_rate)
        report("ours_best_window_max", best_window)

        # 1b. The same with the points built before the clock, as upload_points gets them.
        table = _table()
        PREBUILT["ours"] = [make_point(table, i) for i in range(n)]
        with server.expect(n, "ours, prebuilt points"):
            seconds, counters = ours(server.url, n, "ours_prebuilt", best_window, "ours")
        del PREBUILT["ours"]
        prebuilt_rate = rate(seconds)
        report("ours_prebuilt_points_per_s", prebuilt_rate)
        report("ours_prebuilt_request_ms_mean", counters.get("request_ms_mean"))

        # 2. Beam's QdrantWriteConfig: 384-d dense + sparse only (it cannot write the 64-d one).
        with server.expect(n, "beam sink"):
            beam_rate = rate(beam_sink(server, n, "beam"))
        report("beam_points_per_s", beam_rate)

        # 3. qdrant-client upload_points, plain loop, points prebuilt (generation excluded).
        with server.expect(n, "upload_points"):
            upload_rate = rate(upload_points(server, n, "upload"))
        report("upload_points_points_per_s", upload_rate)

    # 4. WriteToQdrant under faults: 503s and 429s with Retry-After.
    with (
        Server(store=False, latency_ms=latency, **faults) as server,
        server.expect(n, "ours with faults") as stats,
    ):
        seconds, counters = ours(server.url, n, "ours_faults", best_window)
    faults_rate = rate(seconds)
    report("ours_faults_points_per_s", faults_rate)
    report("ours_faults_injected", stats["faults"])
    report("ours_faults_requests", counters.get("requests"))
    report(
        "ours_faults_retries",
        {k[len("retries_") :]: v for k, v in counters.items() if k.startswith("retries_")},
    )
    report("ours_faults_throttled_ms", counters.get("throttled_ms"))
    report("ours_faults_in_flight_mean", counters.get("in_flight_mean"))

    # Storing mode: is it the bottleneck? And the collection must end with exactly n points.
    if not args.skip_storing:
        with Server(store=True, latency_ms=0) as server:
            report(
                "ceiling_storing_raw_points_per_s",
                round(ceiling(server, n // 4, "ceiling_stored", args.threads, raw=True), 1),
            )
        with Server(store=True, latency_ms=latency) as server:
            seconds, _ = ours(server.url, n, "ours_stored", best_window)
            stored = server.count("ours_stored")
        report("storing_ours_points_per_s", rate(seconds))
        report("storing_ours_count", stored)
        with Server(store=True, latency_ms=latency, **faults) as server:
            seconds, counters = ours(server.url, n, "ours_faults_stored", best_window)
            stored_faults = server.count("ours_faults_stored")
            injected = server.stats()["faults"]
        report("storing_ours_faults_points_per_s", rate(seconds))
        report("storing_ours_faults_count", stored_faults)
        report("storing_ours_faults_injected", injected)
        if stored != n or stored_faults != n:
            raise RuntimeError(f"the collections hold {stored} and {stored_faults}, not {n}")

    if args.profile:
        with Server(store=False, latency_ms=latency) as server:
            with ThreadCpu() as cpu:
                seconds, _ = ours(server.url, n, "ours_cpu", best_window)
            report("profile_ours_points_per_s", rate(seconds))
            report("profile_cpu_s_by_thread", cpu.report())
            with profile_all_threads() as profiles:
                ours(server.url, n, "ours_profiled", best_window)
        print("cProfile of WriteToQdrant, all threads, CPU time (slows it down):")
        print_profile(profiles)

    report("ratio_ours_vs_beam", round(ours_rate / beam_rate, 2))
    report("ratio_ours_vs_upload_points", round(ours_rate / upload_rate, 2))
    report("ratio_ours_prebuilt_vs_upload_points", round(prebuilt_rate / upload_rate, 2))
    report("ratio_ours_faults_vs_ours", round(faults_rate / ours_rate, 2))
    report("total_s", round(time.perf_counter() - started_all, 1))
    print(
        "notes: server in its own process, no-store mode for throughput (counts checked on its "
        "counters; storing runs count the collection); Beam's sink writes only the 384-d dense "
        "+ sparse vectors (it cannot write the 64-d one: less data, which favours it); "
        "upload_points times only the upload (points prebuilt), wait=False (its default); "
        f"our pipeline times include building the points ({results['generate_only_s']} s alone); "
        f"faults: {args.error_503:.0%} 503 + {args.error_429:.0%} 429 with Retry-After: "
        f"{args.retry_after}, default RetryPolicy; ours = best window_max of {args.windows} "
        f"({best_window})",
        flush=True,
    )
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
