"""The HTTP plumbing every loopback fake shares.

``LoopbackServer`` is a threaded HTTP/1.1 server on 127.0.0.1 (keep-alive, one thread per
connection) that hands each request to its subclass's ``handle(exchange)``, with the building
blocks a fake needs around it:

* lifecycle: ``start()`` (binds; a restart rebinds the same port), ``stop()`` (held, paused and
  sleeping requests are released, idle keep-alive connections are closed, in-flight requests are
  drained for up to ``drain_timeout_s``), ``close()``, ``with server: ...``, ``.url``;
* faults (``fakes.faults``): ``.faults`` (get / set), ``push_script``, ``script_remaining``,
  and per request ``admit`` (in-flight counting and the ``max_concurrent`` cap), ``delay`` (the
  pause gate and latency), ``draw`` (one outcome), ``drop`` (reset or hold-then-reset);
* concurrency: ``in_flight``, ``max_concurrent_seen``, ``wait_for_in_flight(n)``,
  ``pause()`` / ``resume()`` (in-scope requests wait at a gate, bounded by ``gate_timeout_s``);
* answers: ``respond(exchange, record, status, payload, ...)`` counts the request (once, before
  the answer leaves, so a client holding its answer also sees it counted) and writes it;
* a bounded request log: ``.requests``;
* ``transport()``: an ``httpx.MockTransport`` that runs the same ``handle`` in process, with no
  socket: for tests of request shapes.  A reset raises ``httpx.ReadError`` and a timeout
  ``httpx.ReadTimeout`` at once (there is no client deadline to wait for in process).

``serve_until_signal`` and ``spawn`` run a fake in its own process (its own GIL, as a benchmark
needs): the child prints one ready line, then serves until SIGTERM / Ctrl-C.
"""

from __future__ import annotations

import contextlib
import json
import os
import select
import signal
import socket
import socketserver
import struct
import subprocess
import sys
import threading
import time
from collections import Counter, deque
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Self
from urllib.parse import parse_qs, urlsplit

import httpx

from .faults import Fault, Faults, FaultState

__all__ = [
    "Exchange",
    "LoopbackServer",
    "Record",
    "Spawned",
    "serve_until_signal",
    "spawn",
]

TESTS_DIR = Path(__file__).resolve().parents[1]


class Exchange:
    """One request, and the ways to answer it (on a socket, or in process)."""

    method: str
    target: str  # path and query, as sent
    headers: Any  # case-insensitive .get(name) and .items()
    body: bytes

    def __init__(self, method: str, target: str, headers: Any, body: bytes) -> None:
        self.method = method
        self.target = target
        self.headers = headers
        self.body = body
        split = urlsplit(target)
        self.path = split.path
        self.query = {k: v[-1] for k, v in parse_qs(split.query, keep_blank_values=True).items()}
        self.started = time.perf_counter()

    def send(
        self,
        status: int,
        payload: bytes,
        *,
        content_type: str = "application/json",
        headers: Iterable[tuple[str, str]] = (),
    ) -> None:
        raise NotImplementedError

    def reset(self, partial: bytes = b"") -> None:
        """Send ``partial`` (e.g. a status line and half a body), then a TCP RST."""
        raise NotImplementedError

    def hold(self, seconds: float, stop: threading.Event) -> None:
        """Answer nothing until the client hangs up, ``seconds`` pass or ``stop`` is set."""
        raise NotImplementedError


class _SocketExchange(Exchange):
    def __init__(self, handler: BaseHTTPRequestHandler) -> None:
        self._h = handler
        super().__init__(handler.command, handler.path, handler.headers, read_body(handler))

    def send(
        self,
        status: int,
        payload: bytes,
        *,
        content_type: str = "application/json",
        headers: Iterable[tuple[str, str]] = (),
    ) -> None:
        h = self._h
        try:
            h.send_response(status)
            h.send_header("Content-Type", content_type)
            h.send_header("Content-Length", str(len(payload)))
            for name, value in headers:
                h.send_header(name, value)
            h.end_headers()
            h.wfile.write(payload)
        except OSError:  # the client went away
            h.close_connection = True

    def reset(self, partial: bytes = b"") -> None:
        h = self._h
        h.close_connection = True
        if partial:
            with contextlib.suppress(OSError):
                h.wfile.write(partial)
                h.wfile.flush()
        with contextlib.suppress(OSError):  # SO_LINGER 0: close() sends a TCP RST
            h.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            h.connection.close()

    def hold(self, seconds: float, stop: threading.Event) -> None:
        conn = self._h.connection
        deadline = time.monotonic() + seconds
        while not stop.is_set() and time.monotonic() < deadline:
            try:
                readable, _, _ = select.select([conn], [], [], 0.05)
                if readable and conn.recv(1, socket.MSG_PEEK) == b"":
                    return  # the client gave up
            except (OSError, ValueError):
                return
            if readable:
                stop.wait(0.05)


class _MockExchange(Exchange):
    def __init__(self, request: httpx.Request) -> None:
        self.request = request
        self.response: httpx.Response | None = None
        self.dropped: str | None = None
        target = request.url.raw_path.decode("ascii")
        super().__init__(request.method, target, request.headers, request.read())

    def send(
        self,
        status: int,
        payload: bytes,
        *,
        content_type: str = "application/json",
        headers: Iterable[tuple[str, str]] = (),
    ) -> None:
        if self.response is None and self.dropped is None:
            all_headers = [("Content-Type", content_type), *headers]
            self.response = httpx.Response(status, headers=all_headers, content=payload)

    def reset(self, partial: bytes = b"") -> None:
        self.dropped = self.dropped or "reset"

    def hold(self, seconds: float, stop: threading.Event) -> None:
        self.dropped = "timeout"

    def outcome(self) -> httpx.Response:
        if self.dropped == "timeout":
            raise httpx.ReadTimeout("no answer (injected timeout)", request=self.request)
        if self.response is None:
            raise httpx.ReadError("connection reset by peer (injected)", request=self.request)
        return self.response


def read_body(h: BaseHTTPRequestHandler) -> bytes:
    if h.headers.get("Transfer-Encoding", "").lower() == "chunked":
        chunks: list[bytes] = []
        while True:
            size = int(h.rfile.readline().split(b";")[0].strip() or b"0", 16)
            if size == 0:
                while h.rfile.readline() not in (b"\r\n", b"\n", b""):
                    pass
                return b"".join(chunks)
            chunks.append(h.rfile.read(size))
            h.rfile.readline()
    length = int(h.headers.get("Content-Length") or 0)
    return h.rfile.read(length) if length else b""


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    timeout = 60  # idle keep-alive connections are dropped after this
    # headers and body leave in two writes: with Nagle on, a keep-alive client waits ~40 ms for
    # the delayed ACK on every request
    disable_nagle_algorithm = True
    server: _HTTPServer

    def setup(self) -> None:
        super().setup()
        self.server.app._track(self.connection, add=True)

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            self.server.app._track(self.connection, add=False)

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def _dispatch(self) -> None:
        self.server.app.handle(_SocketExchange(self))

    do_GET = do_PUT = do_POST = do_DELETE = do_PATCH = _dispatch


class _HTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 256
    app: LoopbackServer

    def server_bind(self) -> None:
        # skip HTTPServer's socket.getfqdn(), which may wait on a DNS lookup
        socketserver.TCPServer.server_bind(self)
        host, port = self.server_address[:2]
        self.server_name = str(host)
        self.server_port = int(port)


@dataclass(kw_only=True)
class Record:
    """One served request, as kept in ``server.requests`` (fakes add their own fields)."""

    method: str
    path: str  # path and query, as sent
    kind: str = ""  # the fake's name for the request, as in ``Faults.kinds``
    status: int | None = None  # None for a reset / timeout
    fault: str | None = None  # Fault.label, "over_cap", or None
    error: str | None = None  # the error message answered, if any
    started: float = field(default_factory=time.perf_counter)
    duration_s: float = 0.0  # until the answer (or the drop) started
    _recorded: bool = field(default=False, repr=False, compare=False)


class LoopbackServer:
    """A fake's HTTP server on a background thread; subclasses implement ``handle``."""

    thread_name = "loopback-fake"

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        faults: Faults | None = None,
        request_log_size: int = 10_000,
        gate_timeout_s: float = 30.0,
        drain_timeout_s: float = 5.0,
    ) -> None:
        self.host = host
        self.port = port
        self.gate_timeout_s = gate_timeout_s
        self.drain_timeout_s = drain_timeout_s
        self._lock = threading.Lock()  # counters, the log, the connections
        self._in_flight_cv = threading.Condition(self._lock)
        self._in_flight = 0
        self._max_concurrent_seen = 0
        self._fault_counts: Counter[str] = Counter()
        self._log: deque[Any] = deque(maxlen=request_log_size)
        self._fault_state = FaultState(faults)
        self._stop_event = threading.Event()
        self._gate = threading.Event()
        self._gate.set()
        self._connections: set[socket.socket] = set()
        self._httpd: _HTTPServer | None = None
        self._thread: threading.Thread | None = None

    # --- lifecycle ---------------------------------------------------------------------------

    def start(self) -> Self:
        if self._httpd is not None:
            return self
        self._stop_event.clear()
        httpd = _HTTPServer((self.host, self.port), _Handler)
        httpd.app = self
        self.port = httpd.server_address[1]  # a restart rebinds the same port
        self._httpd = httpd
        self._thread = threading.Thread(
            target=httpd.serve_forever,
            kwargs={"poll_interval": 0.05},
            name=f"{self.thread_name}:{self.port}",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving; held, paused and sleeping requests are released."""
        httpd, self._httpd = self._httpd, None
        if httpd is None:
            return
        self._stop_event.set()
        self._gate.set()
        httpd.shutdown()
        httpd.server_close()
        with self._lock:
            connections = list(self._connections)
        for conn in connections:  # idle keep-alive connections must not outlive the server
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)
        with self._in_flight_cv:
            self._in_flight_cv.wait_for(lambda: self._in_flight == 0, self.drain_timeout_s)
        if self._thread is not None:
            self._thread.join(self.drain_timeout_s)
            self._thread = None

    def close(self) -> None:
        self.stop()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def _track(self, conn: socket.socket, *, add: bool) -> None:
        with self._lock:
            if add:
                self._connections.add(conn)
            else:
                self._connections.discard(conn)

    def transport(self) -> httpx.MockTransport:
        """This fake in process, without a socket (see the module docstring)."""

        def serve(request: httpx.Request) -> httpx.Response:
            exchange = _MockExchange(request)
            self.handle(exchange)
            return exchange.outcome()

        return httpx.MockTransport(serve)

    # --- faults and concurrency --------------------------------------------------------------

    @property
    def faults(self) -> Faults:
        return self._fault_state.faults

    @faults.setter
    def faults(self, faults: Faults) -> None:
        """Setting re-seeds the RNGs and loads ``faults.script`` as the script queue."""
        self._fault_state.faults = faults

    def push_script(self, *items: Fault | int | str | None) -> None:
        """Append outcomes for the next in-scope requests (see ``Fault.coerce``)."""
        self._fault_state.push(*items)

    @property
    def script_remaining(self) -> int:
        return self._fault_state.remaining

    def pause(self) -> None:
        """Hold in-scope requests (after they count as in flight) until ``resume()``."""
        self._gate.clear()

    def resume(self) -> None:
        self._gate.set()

    @property
    def in_flight(self) -> int:
        with self._lock:
            return self._in_flight

    @property
    def max_concurrent_seen(self) -> int:
        with self._lock:
            return self._max_concurrent_seen

    def wait_for_in_flight(self, n: int, timeout: float = 5.0) -> bool:
        """Wait until at least ``n`` requests are in flight."""
        with self._in_flight_cv:
            return self._in_flight_cv.wait_for(lambda: self._in_flight >= n, timeout)

    @property
    def requests(self) -> list[Any]:
        with self._lock:
            return list(self._log)

    def reset_counters(self) -> None:
        """Clear the request log and the fault counts; the concurrency peak restarts at the
        requests in flight now."""
        with self._lock:
            self._log.clear()
            self._fault_counts.clear()
            self._max_concurrent_seen = self._in_flight

    # --- building blocks for handle() ----------------------------------------------------------

    def handle(self, exchange: Exchange) -> None:
        raise NotImplementedError

    def on_record(self, rec: Any) -> None:
        """Count a finished request into the fake's stats (called once, under ``_lock``)."""

    def admit(self, kind: str) -> bool:
        """Count a request in flight, unless it is in scope and over ``max_concurrent``
        (counted as ``"over_cap"``); an admitted request must ``release()``."""
        faults = self.faults
        with self._lock:
            cap = faults.max_concurrent
            if cap is not None and faults.in_scope(kind) and self._in_flight >= cap:
                self._fault_counts["over_cap"] += 1
                return False
            self._in_flight += 1
            self._max_concurrent_seen = max(self._max_concurrent_seen, self._in_flight)
            self._in_flight_cv.notify_all()
            return True

    def release(self) -> None:
        with self._in_flight_cv:
            self._in_flight -= 1
            self._in_flight_cv.notify_all()

    def delay(self, kind: str) -> None:
        """The pause gate and the latency, for an in-scope request."""
        if not self.faults.in_scope(kind):
            return
        deadline = time.monotonic() + self.gate_timeout_s
        while not self._gate.wait(0.05):
            if self._stop_event.is_set() or time.monotonic() > deadline:
                break
        latency = self._fault_state.latency(kind)
        if latency > 0:
            self._stop_event.wait(latency)

    def draw(self, kind: str) -> Fault | None:
        """This request's outcome (``None``: serve normally), counted by its label."""
        fault = self._fault_state.draw(kind)
        if fault is not None:
            with self._lock:
                self._fault_counts[fault.label] += 1
        return fault

    def count_fault(self, label: str) -> None:
        with self._lock:
            self._fault_counts[label] += 1

    def record(self, rec: Record) -> None:
        """Count a request once, before its answer leaves."""
        if rec._recorded:
            return
        rec._recorded = True
        rec.duration_s = time.perf_counter() - rec.started
        with self._lock:
            self.on_record(rec)
            self._log.append(rec)

    def respond(
        self,
        exchange: Exchange,
        rec: Record,
        status: int,
        payload: bytes,
        *,
        content_type: str = "application/json",
        headers: Iterable[tuple[str, str]] = (),
    ) -> None:
        rec.status = status
        self.record(rec)
        exchange.send(status, payload, content_type=content_type, headers=headers)

    def drop(self, exchange: Exchange, rec: Record, fault: Fault, *, partial: bytes = b"") -> None:
        """A reset (after ``partial``), or a timeout: hold for ``hold_s``, then reset."""
        rec.status = None
        self.record(rec)
        if fault.timeout:
            exchange.hold(self.faults.hold_s, self._stop_event)
            partial = b""
        exchange.reset(partial)


# --- own process -----------------------------------------------------------------------------


def serve_until_signal(ready: str) -> None:
    """Print the ready line, then wait for SIGTERM / Ctrl-C (the server runs on its threads)."""
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    print(ready, flush=True)
    try:
        while not stop.wait(0.5):
            pass
    except KeyboardInterrupt:
        pass


@dataclass
class Spawned:
    """A fake in a child process: its ready line (parsed JSON) and the process."""

    ready: dict[str, Any]
    process: subprocess.Popen[str]


@contextlib.contextmanager
def spawn(
    module: str, args: Sequence[str] = (), *, ready_timeout_s: float = 30.0
) -> Iterator[Spawned]:
    """Run ``python -m <module> <args>`` with ``tests/`` on its path, wait for its JSON ready
    line and yield a ``Spawned``; the child is terminated on exit."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(TESTS_DIR), env.get("PYTHONPATH")]))
    cmd = [sys.executable, "-m", module, *args]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True, env=env)
    try:
        assert proc.stdout is not None
        readable, _, _ = select.select([proc.stdout], [], [], ready_timeout_s)
        line = proc.stdout.readline() if readable else ""
        if not line:
            raise RuntimeError(
                f"{module} did not start within {ready_timeout_s} s "
                f"(exit code {proc.poll()}): {' '.join(cmd)}"
            )
        yield Spawned(ready=json.loads(line), process=proc)
    finally:
        proc.terminate()
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)
        if proc.stdout is not None:
            proc.stdout.close()
