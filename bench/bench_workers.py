"""Many workers against one Qdrant and one provider: a discrete-event simulation.

Each simulated worker runs the package's own policy code: the real ``AimdWindow`` (made by
the real ``Concurrency.window()``), the real ``RetryPolicy.next_wait_s`` (backoff with full
jitter, capped ``Retry-After``, attempts and deadline, drawn from a seeded generator) and,
for a shared window, the real ``Pacer`` (pacing, pauses, which throttles shrink the
window). What the ``Limiter`` and ``Retrying`` do with them (they block threads) is
replayed here as events; only the clock, the threads and the servers are simulated: a
priority queue of events in simulated seconds, seeded random numbers, no sleeping.

The workers are modelled on the real clients:

- the sink (``connectors/write.py``): ``InFlight`` takes a ``Limiter`` slot per batch and the
  batch holds it through every retry and backoff; ``Retrying`` (with the limiter as its
  listener) feeds each try's outcome to the window, reports ``Retry-After`` and waits in
  ``Limiter.before_retry`` before each retry; the slot goes back when the batch is written
  or given up (lost);
- a provider client (``transforms/backends/remote.py``): ``2 * maximum`` threads each send
  one chunk at a time; each try takes a slot (``Limiter.slot``: the outcome feeds the
  window, a ``Retry-After`` pauses a shared window) and gives it back before the backoff of
  ``Retrying`` (which has no listener).

The servers. Qdrant serves at most ``cap`` upserts at once (lognormal service time) and
refuses the others at once with 503 (or 429 with ``Retry-After``, ``--refuse 429``); a client
timeout while the server still applies the upsert counts a duplicate when the batch is sent
again. The provider has requests- and tokens-per-minute budgets (token buckets holding one
second of each) and refuses over budget with 429 and ``Retry-After`` = the time until the
bucket holds enough, rounded up to whole seconds as HTTP sends it.

Policies: ``before`` is today's per-worker window (``Concurrency()``, one worker's);
``after`` the same settings told the worker count (``Concurrency().for_workers(n)``);
``after+total`` also given the total hint (the server's limit: ``total=cap``).

Usage::

    python bench/bench_workers.py [--json PATH] [--duration 300] [--workers 1,2,4,...]
"""

from __future__ import annotations

import argparse
import collections
import dataclasses
import heapq
import json
import math
import random
import sys
import textwrap
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from qdrant_beam.io.errors import QdrantBeamError, RateLimited, Timeout, Unavailable
from qdrant_beam.io.pacing import Pacer
from qdrant_beam.io.retry import RetryPolicy, is_throttle
from qdrant_beam.io.window import AimdWindow, Concurrency

RESULTS = Path(__file__).resolve().parent / "results"
WORKER_COUNTS = (1, 2, 4, 8, 16, 32, 64, 128, 256)
POLICIES = ("before", "after", "after+total")
LABELS = {
    "before": "before: one worker's window each",
    "after": "after: windows told the worker count",
    "after+total": "after, with the total hint = the server's limit",
}

#: The sink's defaults (``WriteConfig.retry`` and ``.concurrency`` are these dataclasses'
#: defaults) and the providers' (``PROVIDER_RETRY``, ``PROVIDER_CONCURRENCY`` of
#: ``transforms/backends/providers/config.py``; ``tests/test_workers_sim.py`` checks them).
SINK_RETRY = RetryPolicy()
SINK_CONCURRENCY = Concurrency()
PROVIDER_RETRY = RetryPolicy(
    max_attempts=8,
    initial_backoff_s=0.5,
    max_backoff_s=20.0,
    max_retry_after_s=60.0,
    deadline_s=600.0,
)
PROVIDER_CONCURRENCY = Concurrency(initial=4, minimum=1, maximum=8)
#: ``Limiter``'s default ``max_pause_s``.
MAX_PAUSE_S = 60.0

Reply = Callable[[BaseException | None], None]


# -- the servers ------------------------------------------------------------------------------
def lognormal(rng: random.Random, median: float, sigma: float) -> float:
    return rng.lognormvariate(math.log(median), sigma)


def lognormal_mean(median: float, sigma: float) -> float:
    """The mean of a lognormal service time given its median: both models draw from one."""
    return median * math.exp(sigma**2 / 2)


@dataclasses.dataclass(frozen=True)
class QdrantModel:
    """At most ``cap`` upserts at once; the others are refused at once (503, or 429)."""

    cap: int = 32
    service_median_s: float = 0.25
    service_sigma: float = 0.4
    refuse: str = "503"  # or "429"
    retry_after_s: float = 1.0
    rtt_s: float = 0.002
    timeout_s: float = 30.0  # QdrantTarget.timeout_s

    @property
    def mean_service_s(self) -> float:
        return lognormal_mean(self.service_median_s, self.service_sigma)

    @property
    def capacity_per_s(self) -> float:
        return self.cap / self.mean_service_s

    @property
    def in_flight(self) -> float:
        return float(self.cap)

    def describe(self) -> str:
        refuse = "503" if self.refuse == "503" else f"429 Retry-After {self.retry_after_s:g} s"
        return (
            f"Qdrant: at most {self.cap} upserts at once, service lognormal median "
            f"{self.service_median_s:g} s (mean {self.mean_service_s:.3f} s), over the cap "
            f"{refuse}; {self.capacity_per_s:.0f} upserts/s"
        )


@dataclasses.dataclass(frozen=True)
class ProviderModel:
    """Requests and tokens per minute, as token buckets holding ``burst_s`` of budget."""

    rpm: float = 3_000
    tpm: float = 1_000_000
    burst_s: float = 1.0
    tokens_mean: float = 250.0
    tokens_sigma: float = 0.5
    service_median_s: float = 0.45
    service_sigma: float = 0.35
    retry_after_step_s: float = 1.0  # Retry-After in whole seconds, as HTTP sends it
    rtt_s: float = 0.03
    timeout_s: float = 60.0  # ProviderConfig.timeout_s

    @property
    def mean_service_s(self) -> float:
        return lognormal_mean(self.service_median_s, self.service_sigma)

    @property
    def capacity_per_s(self) -> float:
        return min(self.rpm / 60, self.tpm / 60 / self.tokens_mean)

    @property
    def in_flight(self) -> float:
        """Requests in flight the budget sustains (rate x service time)."""
        return self.capacity_per_s * self.mean_service_s

    def describe(self) -> str:
        return (
            f"provider: {self.rpm:,.0f} RPM and {self.tpm:,.0f} TPM (buckets of "
            f"{self.burst_s:g} s), ~{self.tokens_mean:g} tokens per request, service lognormal "
            f"median {self.service_median_s:g} s (mean {self.mean_service_s:.3f} s), over "
            f"budget 429 with Retry-After rounded up to {self.retry_after_step_s:g} s; "
            f"{self.capacity_per_s:.0f} requests/s, ~{self.in_flight:.0f} in flight"
        )


class Loop:
    """Simulated time: a priority queue of callbacks."""

    def __init__(self) -> None:
        self.now = 0.0
        self._queue: list[tuple[float, int, Callable[..., None], tuple[Any, ...]]] = []
        self._seq = 0

    def at(self, t: float, fn: Callable[..., None], *args: Any) -> None:
        self._seq += 1
        heapq.heappush(self._queue, (max(t, self.now), self._seq, fn, args))

    def run(self) -> int:
        events = 0
        while self._queue:
            self.now, _, fn, args = heapq.heappop(self._queue)
            fn(*args)
            events += 1
        return events


class Server:
    """Serves a request for a lognormal time; the client times out after ``timeout_s``."""

    def __init__(self, loop: Loop, rng: random.Random, median: float, sigma: float) -> None:
        self.loop, self.rng = loop, rng
        self.median, self.sigma = median, sigma
        self.active = 0
        self.applied: collections.Counter[int] = collections.Counter()

    def serve(self, key: int, reply: Reply, rtt_s: float, timeout_s: float) -> None:
        now = self.loop.now
        self.active += 1
        service = lognormal(self.rng, self.median, self.sigma)
        self.loop.at(now + service, self._applied, key)
        if service + rtt_s > timeout_s:
            self.loop.at(now + timeout_s, reply, Timeout("timed out"))
        else:
            self.loop.at(now + service + rtt_s, reply, None)

    def _applied(self, key: int) -> None:
        self.active -= 1
        self.applied[key] += 1


class QdrantServer(Server):
    def __init__(self, loop: Loop, model: QdrantModel, rng: random.Random) -> None:
        super().__init__(loop, rng, model.service_median_s, model.service_sigma)
        self.model = model

    def send(self, key: int, reply: Reply) -> None:
        model = self.model
        if self.active < model.cap:
            self.serve(key, reply, model.rtt_s, model.timeout_s)
            return
        refused: BaseException = (
            Unavailable("503", 503)
            if model.refuse == "503"
            else RateLimited("429", model.retry_after_s)
        )
        self.loop.at(self.loop.now + model.rtt_s, reply, refused)


class ProviderServer(Server):
    def __init__(self, loop: Loop, model: ProviderModel, rng: random.Random) -> None:
        super().__init__(loop, rng, model.service_median_s, model.service_sigma)
        self.model = model
        self.requests = self.request_rate * model.burst_s
        self.tokens = self.token_rate * model.burst_s
        self._refilled = 0.0

    @property
    def request_rate(self) -> float:
        return self.model.rpm / 60

    @property
    def token_rate(self) -> float:
        return self.model.tpm / 60

    def send(self, key: int, tokens: float, reply: Reply) -> None:
        model, now = self.model, self.loop.now
        elapsed, self._refilled = now - self._refilled, now
        burst = model.burst_s
        self.requests = min(self.request_rate * burst, self.requests + elapsed * self.request_rate)
        self.tokens = min(self.token_rate * burst, self.tokens + elapsed * self.token_rate)
        if self.requests >= 1 and self.tokens >= tokens:
            self.requests -= 1
            self.tokens -= tokens
            self.serve(key, reply, model.rtt_s, model.timeout_s)
            return
        until = max(
            (1 - self.requests) / self.request_rate, (tokens - self.tokens) / self.token_rate, 0.0
        )
        step = model.retry_after_step_s
        retry_after = max(step, math.ceil(until / step) * step) if step else until
        self.loop.at(now + model.rtt_s, reply, RateLimited("429", retry_after))


# -- the workers ------------------------------------------------------------------------------
@dataclasses.dataclass
class Stats:
    """What one run measured; rates and latencies only from ``warmup_s`` to ``duration_s``."""

    warmup_s: float
    duration_s: float
    done: int = 0
    responses: int = 0
    refused: int = 0
    timeouts: int = 0
    started: int = 0
    attempts: int = 0
    lost: int = 0
    latencies: list[float] = dataclasses.field(default_factory=list)
    timeline: list[tuple[float, float, int]] = dataclasses.field(default_factory=list)

    def measured(self, now: float) -> bool:
        return self.warmup_s <= now < self.duration_s

    def response(self, now: float, error: BaseException | None) -> None:
        if not self.measured(now):
            return
        self.responses += 1
        if isinstance(error, (RateLimited, Unavailable)):
            self.refused += 1
        elif isinstance(error, Timeout):
            self.timeouts += 1


@dataclasses.dataclass
class Work:
    """One batch (sink) or chunk (provider)."""

    key: int
    began: float  # Retrying.call started: at the first send (sink), before its slot (provider)
    tokens: float = 0.0
    first_send: float | None = None
    sent: float = 0.0
    attempts: int = 0
    waiting: bool = False


class Worker:
    """One worker process: its ``Limiter`` (the real window and pacer, and the limiter's
    rules, replayed without threads) and its retries (the real policy)."""

    def __init__(
        self,
        loop: Loop,
        stats: Stats,
        index: int,
        concurrency: Concurrency,
        policy: RetryPolicy,
        rng: random.Random,
    ) -> None:
        self.loop, self.stats, self.index = loop, stats, index
        self.window: AimdWindow = concurrency.window()
        self.shared = concurrency.is_shared
        self.pacer = Pacer()
        self.policy = policy
        self.rng = rng  # Retrying's jitter
        self.pause_rng = random.Random(rng.random())  # the Limiter's
        self.in_flight = 0
        self.retries_waiting = 0
        self._wake_at: float | None = None
        self._keys = 0

    def new_work(self, **fields: Any) -> Work:
        self._keys += 1
        self.stats.started += 1
        return Work(key=self.index * 10_000_000 + self._keys, began=self.loop.now, **fields)

    def may_start(self) -> bool:
        """``Limiter.acquire`` without blocking: may a request take a slot now? If the pause
        or the pacing holds it back, wake up when they end."""
        if self.in_flight >= self.window.size or self.retries_waiting:
            return False
        if not self.shared:
            return True
        wait = self.pacer.wait_s(self.loop.now)
        if wait <= 0:
            return True
        t = self.loop.now + wait
        if self._wake_at is None or t < self._wake_at:
            self._wake_at = t
            self.loop.at(t, self._wake)
        return False

    def _wake(self) -> None:
        self._wake_at = None
        self.pump()

    def take_slot(self) -> None:
        self.in_flight += 1
        if self.shared:
            self.pacer.on_send(self.loop.now, self.window)

    def release(self) -> None:
        self.in_flight -= 1
        self.pump()

    def on_success(self, latency_s: float) -> None:
        """``Limiter.on_latency``, then ``Limiter.on_success``."""
        if self.shared:
            self.pacer.on_success(latency_s)
        self.window.on_success()

    def on_throttle(self, error: BaseException, cap_s: float) -> None:
        """``Limiter.on_throttle``, and ``Limiter.pause_for`` on a ``Retry-After``."""
        if not self.shared or self.pacer.should_decrease(self.loop.now):
            self.window.on_throttle()
        retry_after = error.retry_after_s if isinstance(error, RateLimited) else None
        if self.shared and retry_after is not None and retry_after > 0:
            self.pacer.on_retry_after(
                self.loop.now,
                min(retry_after, cap_s),
                cap_s=MAX_PAUSE_S,
                jitter=self.pause_rng.random(),
            )

    def finished(self, work: Work) -> None:
        if self.stats.measured(self.loop.now):
            assert work.first_send is not None
            self.stats.done += 1
            self.stats.latencies.append(self.loop.now - work.first_send)

    def pump(self) -> None:
        """Start what the limiter lets start."""
        raise NotImplementedError


class SinkWorker(Worker):
    """``WriteToQdrant``'s DoFn: ``InFlight.submit`` of one batch after another."""

    def __init__(self, server: QdrantServer, *args: Any) -> None:
        super().__init__(*args)
        self.server = server

    def pump(self) -> None:
        while self.loop.now < self.stats.duration_s and self.may_start():
            self.take_slot()
            work = self.new_work(first_send=self.loop.now)
            self.send(work)

    def send(self, work: Work) -> None:
        work.attempts += 1
        work.sent = self.loop.now
        self.stats.attempts += 1
        self.server.send(work.key, lambda error: self.outcome(work, error))

    def outcome(self, work: Work, error: BaseException | None) -> None:
        """One try's end, in ``Retrying.call`` with the limiter as listener."""
        now = self.loop.now
        self.stats.response(now, error)
        if error is None:
            self.on_success(now - work.sent)
            self.finished(work)
            self.release()
            return
        assert isinstance(error, QdrantBeamError)
        if is_throttle(error):
            self.on_throttle(error, self.policy.max_retry_after_s)
        wait = self.policy.next_wait_s(work.attempts, error, now - work.began, self.rng)
        if wait is None:
            self.stats.lost += 1
            self.release()
            return
        self.loop.at(now + wait, self.before_retry, work)

    def before_retry(self, work: Work) -> None:
        """``Limiter.before_retry``: a shared window's pause and pacing hold retries too, and
        new batches wait while a retry does."""
        if self.shared:
            if not work.waiting:
                work.waiting = True
                self.retries_waiting += 1
            wait = self.pacer.wait_s(self.loop.now)
            if wait > 0:
                self.loop.at(self.loop.now + wait, self.before_retry, work)
                return
            work.waiting = False
            self.retries_waiting -= 1
            self.pacer.on_send(self.loop.now, self.window)
        self.send(work)
        self.pump()


class ProviderWorker(Worker):
    """``RemoteClient``: ``threads`` chunks at a time, each ``Retrying.call`` of a
    ``Limiter.slot`` per try; the backoff is spent without the slot."""

    def __init__(self, server: ProviderServer, threads: int, *args: Any) -> None:
        super().__init__(*args)
        self.server = server
        # Threads blocked in Limiter.acquire; in a shared window retries go first.
        self.fresh: collections.deque[Work] = collections.deque()
        self.retries: collections.deque[Work] = collections.deque()
        for _ in range(threads):
            self.loop.at(0.0, self.next_chunk)

    def next_chunk(self) -> None:
        if self.loop.now >= self.stats.duration_s:
            return
        model = self.server.model
        sigma = model.tokens_sigma
        tokens = model.tokens_mean * self.rng.lognormvariate(-(sigma**2) / 2, sigma)
        self.want_slot(self.new_work(tokens=tokens))

    def want_slot(self, work: Work) -> None:
        (self.retries if self.shared and work.attempts else self.fresh).append(work)
        self.pump()

    def pump(self) -> None:
        while True:
            queue = self.retries or self.fresh
            if not queue or not self.may_start():
                return
            work = queue.popleft()
            self.take_slot()
            now = self.loop.now
            work.sent = now
            if work.first_send is None:
                work.first_send = now
            work.attempts += 1
            self.stats.attempts += 1
            self.server.send(work.key, work.tokens, self.replier(work))

    def replier(self, work: Work) -> Reply:
        return lambda error: self.outcome(work, error)

    def outcome(self, work: Work, error: BaseException | None) -> None:
        """The slot's end (``Limiter.slot``), then ``Retrying.call`` decides."""
        now = self.loop.now
        self.stats.response(now, error)
        if error is None:
            self.on_success(now - work.sent)
            self.release()
            self.finished(work)
            self.next_chunk()
            return
        assert isinstance(error, QdrantBeamError)
        if is_throttle(error):
            self.on_throttle(error, MAX_PAUSE_S)
        self.release()
        wait = self.policy.next_wait_s(work.attempts, error, now - work.began, self.rng)
        if wait is None:
            self.stats.lost += 1
            self.next_chunk()
            return
        self.loop.at(now + wait, self.want_slot, work)


# -- one run ----------------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class Scenario:
    target: str  # "sink" or "provider"
    policy: str  # one of POLICIES
    workers: int
    duration_s: float = 300.0
    warmup: float = 0.2
    seed: int = 7
    qdrant: QdrantModel = QdrantModel()
    provider: ProviderModel = ProviderModel()
    provider_threads: int = 2 * PROVIDER_CONCURRENCY.maximum  # RemoteClient's pool

    @property
    def model(self) -> QdrantModel | ProviderModel:
        return self.qdrant if self.target == "sink" else self.provider

    def concurrency(self) -> Concurrency:
        base = SINK_CONCURRENCY if self.target == "sink" else PROVIDER_CONCURRENCY
        if self.policy == "before":
            return base
        if self.policy == "after":
            return base.for_workers(self.workers)
        total = max(1, round(self.model.in_flight))
        return dataclasses.replace(base, total=total).for_workers(self.workers)


def simulate(scenario: Scenario) -> dict[str, Any]:
    """One run: its measures, the same for the same scenario (seed included)."""
    loop = Loop()
    warmup_s = scenario.duration_s * scenario.warmup
    stats = Stats(warmup_s=warmup_s, duration_s=scenario.duration_s)
    concurrency = scenario.concurrency()
    seed = scenario.seed
    server: QdrantServer | ProviderServer
    workers: list[Worker] = []
    if scenario.target == "sink":
        server = QdrantServer(loop, scenario.qdrant, random.Random(seed))
    else:
        server = ProviderServer(loop, scenario.provider, random.Random(seed))
    for i in range(scenario.workers):
        common = (loop, stats, i, concurrency, random.Random(seed * 1_000_003 + i + 1))
        if isinstance(server, QdrantServer):
            sink = SinkWorker(server, *common[:4], SINK_RETRY, common[4])
            workers.append(sink)
            loop.at(0.0, sink.pump)
        else:
            threads = scenario.provider_threads
            workers.append(ProviderWorker(server, threads, *common[:4], PROVIDER_RETRY, common[4]))

    def sample() -> None:
        windows = sum(w.window.value for w in workers)
        stats.timeline.append((loop.now, windows, server.active))
        if loop.now + 1 < scenario.duration_s:
            loop.at(loop.now + 1.0, sample)

    loop.at(0.0, sample)
    events = loop.run()
    latencies = sorted(stats.latencies)

    def percentile(q: float) -> float | None:
        return latencies[min(len(latencies) - 1, int(q * len(latencies)))] if latencies else None

    model = scenario.model
    return {
        "target": scenario.target,
        "policy": scenario.policy,
        "workers": scenario.workers,
        "seed": seed,
        "concurrency": dataclasses.asdict(concurrency),
        "throughput_share": stats.done / (scenario.duration_s - warmup_s) / model.capacity_per_s,
        "demand_share": min(1.0, scenario.workers * concurrency.maximum / model.in_flight),
        "refused_rate": stats.refused / stats.responses if stats.responses else 0.0,
        "timeouts": stats.timeouts,
        "p50_s": percentile(0.5),
        "p99_s": percentile(0.99),
        "started": stats.started,
        "attempts": stats.attempts,
        "resent": stats.attempts - stats.started,
        "lost": stats.lost,
        "duplicates": sum(n - 1 for n in server.applied.values() if n > 1),
        "events": events,
        "timeline": stats.timeline,
    }


# -- report -----------------------------------------------------------------------------------
def table(rows: Sequence[dict[str, Any]], target: str) -> str:
    lines = [
        "| workers | policy | throughput / capacity (most possible) | 429/503 after warm-up "
        "| p50 s | p99 s | lost | re-sent tries (per 100 batches) | duplicates |",
        "|---:|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for row in rows:
        if row["target"] != target:
            continue
        per_100 = 100 * row["resent"] / row["started"] if row["started"] else 0.0
        lines.append(
            f"| {row['workers']} | {row['policy']} | {row['throughput_share']:.0%} "
            f"({row['demand_share']:.0%}) | {row['refused_rate']:.1%} "
            f"| {row['p50_s']:.2f} | {row['p99_s']:.2f} | {row['lost']:,} "
            f"| {row['resent']:,} ({per_100:.0f}) | {row['duplicates']} |"
        )
    return "\n".join(lines)


def plot(rows: Sequence[dict[str, Any]], target: str, title: str, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = [
        ("throughput_share", "throughput / capacity (goal >= 85%)", 0.85),
        ("refused_rate", "429/503 share of responses after warm-up (goal < 5%)", 0.05),
        ("p99_s", "p99 seconds from first send to success", None),
        ("resent_share", "re-sent tries per batch; x = some lost", None),
    ]
    fig, axes = plt.subplots(2, 2, figsize=(11, 8))
    for ax, (key, label, goal) in zip(axes.flat, panels, strict=True):
        for policy in POLICIES:
            mine = [r for r in rows if r["target"] == target and r["policy"] == policy]
            if not mine:
                continue
            xs = [r["workers"] for r in mine]
            if key == "resent_share":
                ys = [r["resent"] / max(1, r["started"]) for r in mine]
            else:
                ys = [r[key] or 0.0 for r in mine]
            (line,) = ax.plot(xs, ys, marker="o", label=LABELS[policy])
            lost = [(x, y) for x, y, r in zip(xs, ys, mine, strict=True) if r["lost"]]
            if key == "resent_share" and lost:
                lx, ly = zip(*lost, strict=True)
                ax.scatter(lx, ly, marker="x", s=120, color=line.get_color(), zorder=3)
        if key == "throughput_share":
            before = [r for r in rows if r["target"] == target and r["policy"] == "before"]
            ax.plot(
                [r["workers"] for r in before],
                [r["demand_share"] for r in before],
                linestyle=":",
                color="grey",
                label="most the windows' maximum allows",
            )
            ax.set_ylim(0, 1.05)
        if key == "p99_s":
            ax.set_yscale("log")
        if key == "resent_share":
            ax.set_yscale("symlog", linthresh=0.1)
        if goal is not None:
            ax.axhline(goal, color="red", linewidth=0.8, linestyle="--")
        ax.set_xscale("log", base=2)
        ax.set_xlabel("workers")
        ax.set_title(label, fontsize=10)
        ax.grid(True, alpha=0.3)
    axes.flat[0].legend(fontsize=8, loc="lower right")
    fig.suptitle(textwrap.fill(title, 140), fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_timeline(runs: Sequence[dict[str, Any]], limit: float, title: str, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(len(runs), 1, figsize=(11, 2.6 * len(runs)), sharex=True)
    for ax, run in zip(axes, runs, strict=True):
        ts = [t for t, _, _ in run["timeline"]]
        ax.plot(ts, [w for _, w, _ in run["timeline"]], label="sum of the windows")
        ax.plot(ts, [a for _, _, a in run["timeline"]], label="in service", alpha=0.7)
        ax.axhline(limit, color="red", linewidth=0.8, linestyle="--", label="server's limit")
        ax.set_title(f"{LABELS[run['policy']]}: {run['workers']} workers", fontsize=10)
        ax.set_yscale("log", base=2)
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=8, loc="upper right")
    axes[-1].set_xlabel("simulated seconds")
    fig.suptitle(textwrap.fill(title, 140), fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--json", type=Path, help="write every run's measures here")
    parser.add_argument("--duration", type=float, default=300.0, help="simulated seconds")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--workers", default=",".join(map(str, WORKER_COUNTS)))
    parser.add_argument("--targets", default="sink,provider")
    parser.add_argument("--policies", default=",".join(POLICIES))
    parser.add_argument("--cap", type=int, default=32, help="Qdrant: upserts at once")
    parser.add_argument("--refuse", choices=("503", "429"), default="503", help="Qdrant's no")
    parser.add_argument("--qdrant-timeout", type=float, default=30.0, help="client timeout, s")
    parser.add_argument("--rpm", type=float, default=3_000, help="provider requests/minute")
    parser.add_argument("--tpm", type=float, default=1_000_000, help="provider tokens/minute")
    parser.add_argument("--plots", action=argparse.BooleanOptionalAction, default=True)
    args = parser.parse_args(argv)

    qdrant = QdrantModel(cap=args.cap, refuse=args.refuse, timeout_s=args.qdrant_timeout)
    provider = ProviderModel(rpm=args.rpm, tpm=args.tpm)
    counts = [int(n) for n in args.workers.split(",")]
    targets = args.targets.split(",")
    policies = [p for p in args.policies.split(",") if p]
    rows: list[dict[str, Any]] = []
    started = time.perf_counter()
    for target in targets:
        for policy in policies:
            for n in counts:
                scenario = Scenario(
                    target,
                    policy,
                    n,
                    args.duration,
                    seed=args.seed,
                    qdrant=qdrant,
                    provider=provider,
                )
                rows.append(simulate(scenario))
    elapsed = time.perf_counter() - started

    titles = {"sink": qdrant.describe(), "provider": provider.describe()}
    print(
        f"{args.duration:g} simulated s per run, the first 20% excluded from rates and "
        f"latencies, seed {args.seed}; {len(rows)} runs in {elapsed:.1f} s\n"
    )
    for target in targets:
        print(f"### {target}: {titles[target]}\n\n{table(rows, target)}\n")

    if args.plots:
        RESULTS.mkdir(parents=True, exist_ok=True)
        shown = 64 if 64 in counts else counts[-1]
        models: dict[str, QdrantModel | ProviderModel] = {"sink": qdrant, "provider": provider}
        for target in targets:
            path = RESULTS / f"workers_{target}.png"
            plot(rows, target, titles[target], path)
            runs = [r for r in rows if r["target"] == target and r["workers"] == shown]
            timeline = RESULTS / f"workers_{target}_timeline.png"
            plot_timeline(runs, models[target].in_flight, titles[target], timeline)
            print(f"wrote {path} and {timeline}")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        slim = [{k: v for k, v in r.items() if k != "timeline"} for r in rows]
        args.json.write_text(json.dumps(slim, indent=2) + "\n")
        print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
