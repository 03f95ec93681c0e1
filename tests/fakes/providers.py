"""Loopback fakes of four remote embedding APIs (OpenAI, OpenRouter, Cohere, Jina), with faults.

The remote backends talk to hosted embedding APIs over HTTP.  Tests and benchmarks can use neither
the network nor real keys, so this module serves each provider's embedding endpoint on 127.0.0.1
with the field names, limits, response shapes and error bodies of its public API reference (one
module per flavour: ``fakes.provider_openai``, ``fakes.provider_cohere``, ``fakes.provider_jina``),
and answers with vectors a test can recompute (``expected_vector``, ``fakes.provider_apis``): a
client that puts an answer back on the wrong record, drops the ``dimensions`` it was asked for or
decodes base64 wrongly fails an exact comparison.  Faults are ``fakes.faults``' (the request kind
of an embeddings call is ``"embed"``), and the server counts what a client's retry logic must
keep right: no input that was already answered is sent again (``resent_after_success``).

Usage::

    with ProviderServer("openai", api_key="sk-test") as server:
        r = httpx.post(server.endpoint, json={"model": "text-embedding-3-small",
                                              "input": ["a", "b"], "dimensions": 256},
                       headers={"Authorization": "Bearer sk-test"})
        assert r.json()["data"][1]["embedding"] == server.expected(
            "text-embedding-3-small", "b", 256)
        server.faults = Faults(script=[429, 500, "timeout", None], retry_after_s="0")
        server.stats()["resent_after_success"]

    # in process, no socket (request shapes):
    RemoteClient(..., transport=ProviderServer("openai").transport())

API::

    FLAVORS = ("openai", "cohere", "jinaai", "openrouter")
    ProviderServer(flavor, *, api_key=None, faults=None, dims=None, wrong_dim=None,
                   default_dim=64, echo_key_in_errors=False, poison=None,
                   host="127.0.0.1", port=0, limits=None, request_log_size=10_000)
        .start() -> self   .stop()   with ProviderServer(...) as server: ...
        .base_url   what a client is configured with: http://127.0.0.1:PORT/v1 (openai, jinaai),
                    .../api/v1 (openrouter) or http://127.0.0.1:PORT (cohere)
        .url  (http://127.0.0.1:PORT)   .endpoint (the embeddings URL)   .port   .flavor
        .faults (get / set)   .push_script(*outcomes)   .script_remaining   .transport()
        .poison (settable)   .in_flight   .max_concurrent_seen   .pause()   .resume()
        .stats() -> Stats (a deep copy)   .requests -> list[RequestRecord]   .reset()
        .full_dim(model) -> int   .expected(model, identity, dim=None, *, normalized=True)
    expected_vector(flavor, model, input_identity, dim=None, full_dim=None, *, normalized=True)
    count_tokens(text) -> int        model_dim(flavor, model, default_dim=64) -> int
    spawn_server(flavor, *, latency_s=None, **ProviderServer kwargs)   context manager ->
        RemoteServer (.base_url .url .endpoint .port .stats() .reset() .process)

    python tests/provider_servers.py --flavor openai --port 0 --latency 0.05 [--dim 256]
        [--api-key K] [--seed N] [--dims JSON] [--wrong-dim JSON] [--faults JSON]
        [--poison TEXT] [--limits JSON] [--echo-key-in-errors] [--log-size N]
    (or ``python -m fakes.providers`` with ``tests/`` on the path) prints one JSON line
    {"base_url", "url", "endpoint", "port", "flavor"} when it is serving and runs until SIGTERM /
    Ctrl-C.  ``--latency`` and ``--seed`` set ``Faults.latency_s`` / ``Faults.seed``.  ``GET
    /_stats`` answers the stats as JSON and ``POST /_reset`` calls ``reset()``; these two paths
    are for the harness and exist in no provider's API (they are not counted, need no key and see
    no faults or latency).

Provider-specific settings (not network faults, so not in ``Faults``): ``dims={model: dim}``
and ``default_dim`` set full sizes; ``wrong_dim={model: dim}`` makes the server answer vectors of
that size instead, to exercise a client's dimension check; ``poison``: any text input containing
the substring fails the whole request with the provider's 400 naming the input's index, exactly
as an input over the token limit does (counted as the fault ``"poison"``);
``echo_key_in_errors`` puts a refused key into the 401 body, as some providers do.

Order of checks for an embeddings request: route (404 / 405), the concurrency cap (503),
the pause gate and latency, key (401), then one fault draw (script first, then the seeded RNG),
then validation (400 / 422), then the answer.  ``apply`` faults are answered like plain ones
(a provider keeps no state).  A ``reset`` closes at once with a TCP RST; a ``timeout`` holds
until the client hangs up (or ``hold_s``), then resets.

Stats: an input's key is (model, the request fields that change its vector, identity).
``resent_after_success`` counts inputs that arrive (with any outcome) after the same key was
already answered with a 2xx; ``inputs_succeeded`` counts inputs in 2xx answers and
``unique_inputs_succeeded`` distinct keys among them.  A request is counted, and its record
logged, before its answer is written, so a client that has its answer also sees it counted.

Strictness: unknown top-level request fields are rejected by all four flavors (OpenAI does so; the
others may ignore them, but a misspelt field silently ignored is what a client test must catch).
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import dataclasses
import hashlib
import hmac
import json
import time
import urllib.request
import uuid
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, TypedDict

import numpy as np
import pydantic_core

from .faults import Fault, Faults
from .http import Exchange, LoopbackServer, Record, serve_until_signal, spawn
from .provider_apis import (
    DEFAULT_LIMITS,
    MODEL_DIMS,
    Api,
    ApiError,
    Input,
    Parsed,
    count_tokens,
    expected_vector,
    model_dim,
    vector_of,
)
from .provider_cohere import CohereApi
from .provider_jina import JinaApi
from .provider_openai import OpenAIApi, OpenRouterApi

__all__ = [
    "DEFAULT_LIMITS",
    "FLAVORS",
    "MODEL_DIMS",
    "Fault",
    "Faults",
    "ProviderServer",
    "RemoteServer",
    "RequestRecord",
    "Stats",
    "count_tokens",
    "expected_vector",
    "model_dim",
    "spawn_server",
]

APIS: dict[str, type[Api]] = {
    "openai": OpenAIApi,
    "openrouter": OpenRouterApi,
    "cohere": CohereApi,
    "jinaai": JinaApi,
}
FLAVORS: tuple[str, ...] = ("openai", "cohere", "jinaai", "openrouter")
_SECRET_HEADERS = frozenset(
    {"authorization", "proxy-authorization", "cookie", "x-api-key", "api-key"}
)


class Stats(TypedDict):
    """A snapshot of a server's counters (``ProviderServer.stats()`` / ``GET /_stats``)."""

    requests: int  # embeddings-API requests received (any path but /_stats, /_reset)
    requests_by_status: dict[str, int]  # "200", "429", ..., "timeout", "reset"
    faults: dict[str, int]  # injected outcomes: "429", "500", "timeout", "reset", "poison"...
    inputs_received: int
    inputs_succeeded: int  # inputs in 2xx answers (a re-sent input counts again)
    unique_inputs_succeeded: int
    resent_after_success: int
    tokens_billed: int  # usage tokens of 2xx answers
    images_billed: int  # Cohere bills images, not tokens
    max_concurrent: int
    in_flight: int


def _new_stats() -> Stats:
    return Stats(
        requests=0,
        requests_by_status={},
        faults={},
        inputs_received=0,
        inputs_succeeded=0,
        unique_inputs_succeeded=0,
        resent_after_success=0,
        tokens_billed=0,
        images_billed=0,
        max_concurrent=0,
        in_flight=0,
    )


@dataclass(kw_only=True)
class RequestRecord(Record):
    """One request, as kept in ``ProviderServer.requests``."""

    body: Any = None  # the parsed JSON, or the raw text if it did not parse
    headers: dict[str, str] = field(default_factory=dict)  # lower-case; secrets "<redacted>"
    auth_ok: bool = False
    timestamp: float = 0.0  # time.time() at arrival
    model: str | None = None
    inputs: list[str] = field(default_factory=list)  # input identities, in request order
    _keys: list[tuple[str, str, bytes]] = field(default_factory=list, repr=False, compare=False)
    _tokens: int = field(default=0, repr=False, compare=False)
    _images: int = field(default=0, repr=False, compare=False)


class ProviderServer(LoopbackServer):
    """One provider's embedding API on 127.0.0.1, served from a background thread."""

    def __init__(
        self,
        flavor: str,
        *,
        api_key: str | None = None,
        faults: Faults | None = None,
        dims: Mapping[str, int] | None = None,
        wrong_dim: Mapping[str, int] | None = None,
        default_dim: int = 64,
        echo_key_in_errors: bool = False,
        poison: str | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        limits: Mapping[str, int | None] | None = None,
        request_log_size: int = 10_000,
    ) -> None:
        if flavor not in APIS:
            raise ValueError(f"unknown flavor {flavor!r}; use one of {', '.join(FLAVORS)}")
        unknown = set(limits or {}) - set(DEFAULT_LIMITS[flavor])
        if unknown:
            raise ValueError(f"unknown limits for {flavor}: {sorted(unknown)}")
        super().__init__(host=host, port=port, faults=faults, request_log_size=request_log_size)
        self.thread_name = f"provider-server:{flavor}"
        self.flavor = flavor
        self.api_key = api_key
        self.dims = dict(dims or {})
        self.wrong_dim = dict(wrong_dim or {})
        self.default_dim = default_dim
        self.echo_key_in_errors = echo_key_in_errors
        self.poison = poison
        self._limits: dict[str, int | None] = {**DEFAULT_LIMITS[flavor], **(limits or {})}
        self._api = APIS[flavor](self)
        self._stats = _new_stats()
        self._succeeded: set[tuple[str, str, bytes]] = set()

    @property
    def base_url(self) -> str:
        return self.url + self._api.base_path

    @property
    def endpoint(self) -> str:
        return self.url + self._api.endpoint_path

    # --- vectors ----------------------------------------------------------------------------

    def full_dim(self, model: str) -> int:
        """The model's full vector size on this server (``dims`` overrides, then the table)."""
        if model in self.dims:
            return self.dims[model]
        return model_dim(self.flavor, model, self.default_dim)

    def expected(
        self, model: str, identity: str, dim: int | None = None, *, normalized: bool = True
    ) -> list[float]:
        """``expected_vector`` with this server's sizes (ignores ``wrong_dim``)."""
        return expected_vector(
            self.flavor, model, identity, dim, self.full_dim(model), normalized=normalized
        )

    def _vectors(self, req: Parsed) -> np.ndarray:
        full = self.full_dim(req.model)
        dim = req.dims or full
        if req.model in self.wrong_dim:
            full = dim = self.wrong_dim[req.model]
        rows = [
            vector_of(self.flavor, req.model, inp.identity, dim, full, req.normalized)
            for inp in req.inputs
        ]
        return np.stack(rows) if rows else np.zeros((0, dim), np.float32)

    # --- introspection ----------------------------------------------------------------------

    def stats(self) -> Stats:
        with self._lock:
            stats = copy.deepcopy(self._stats)
            stats["faults"] = dict(self._fault_counts)
            stats["max_concurrent"] = self._max_concurrent_seen
            stats["in_flight"] = self._in_flight
            return stats

    def reset(self) -> None:
        """Zero the counters, the request log and the memory of answered inputs; re-seed the
        fault RNG and reload ``faults.script``, so a rerun sees the same faults."""
        with self._lock:
            self._stats = _new_stats()
            self._succeeded.clear()
        self.reset_counters()
        self._fault_state.reload()

    def on_record(self, rec: RequestRecord) -> None:
        key = str(rec.status) if rec.status is not None else str(rec.fault)
        s = self._stats
        s["requests_by_status"][key] = s["requests_by_status"].get(key, 0) + 1
        if rec.status is not None and 200 <= rec.status < 300:
            s["inputs_succeeded"] += len(rec._keys)
            s["tokens_billed"] += rec._tokens
            s["images_billed"] += rec._images
            self._succeeded.update(rec._keys)
            s["unique_inputs_succeeded"] = len(self._succeeded)

    # --- request handling -------------------------------------------------------------------

    def handle(self, ex: Exchange) -> None:
        if ex.path == "/_stats" and ex.method == "GET":
            ex.send(200, pydantic_core.to_json(self.stats()))
            return
        if ex.path == "/_reset" and ex.method == "POST":
            self.reset()
            ex.send(200, b'{"ok":true}')
            return
        headers = {
            k.lower(): ("<redacted>" if k.lower() in _SECRET_HEADERS else v)
            for k, v in ex.headers.items()
        }
        routed = ex.path.rstrip("/") == self._api.endpoint_path
        kind = "embed" if routed and ex.method == "POST" else "unknown"
        rec = RequestRecord(
            method=ex.method,
            path=ex.target,
            kind=kind,
            headers=headers,
            timestamp=time.time(),
            started=ex.started,
        )
        with self._lock:
            self._stats["requests"] += 1
        try:
            self._serve_api(ex, rec, routed)
        except Exception as e:  # a bug here must still answer, and show in the log
            if not rec._recorded:
                self._answer(ex, rec, self._api.error(500, f"emulator error: {e!r}"))

    def _serve_api(self, ex: Exchange, rec: RequestRecord, routed: bool) -> None:
        api = self._api
        doc: Any = None
        json_error: str | None = None
        try:
            doc = pydantic_core.from_json(ex.body) if ex.body else None
        except ValueError as e:
            json_error = str(e)
            doc = ex.body.decode("utf-8", "replace")
        rec.body = doc
        if isinstance(doc, dict) and isinstance(doc.get("model"), str):
            rec.model = doc["model"]
        if rec.kind != "embed":
            self._answer(ex, rec, api.route_error(ex.method, ex.path, known_path=routed))
            return
        if not self.admit(rec.kind):
            rec.fault = "over_cap"
            self._answer(ex, rec, self._fault_error(Fault(503), rec.model))
            return
        try:
            self._serve_embed(ex, rec, doc, json_error)
        finally:
            self.release()

    def _serve_embed(
        self, ex: Exchange, rec: RequestRecord, doc: Any, json_error: str | None
    ) -> None:
        api = self._api
        self.delay(rec.kind)
        found: list[Input] = []
        parsed: Parsed | None = None
        invalid: ApiError | None = None
        if json_error is not None:
            invalid = api.json_error(json_error)
        else:
            try:
                parsed = api.parse(doc, found)
            except ApiError as e:
                invalid = e
        self._arrived(rec, found, api.variant(doc))
        presented = self._presented_key(ex)
        rec.auth_ok = self.api_key is None or (
            presented is not None
            and hmac.compare_digest(presented.encode("utf-8"), self.api_key.encode("utf-8"))
        )
        if not rec.auth_ok:
            self._answer(ex, rec, api.auth_error(presented))
            return
        fault = self.draw(rec.kind)
        if fault is not None:
            rec.fault = fault.label
            if fault.status is None:
                self.drop(ex, rec, fault)
            else:
                self._answer(ex, rec, self._fault_error(fault, rec.model))
            return
        if invalid is not None:
            if invalid.fault is not None:
                rec.fault = invalid.fault
                self.count_fault(invalid.fault)
            self._answer(ex, rec, invalid)
            return
        assert parsed is not None
        doc_out = api.render(parsed, self._vectors(parsed))
        rec._tokens = parsed.tokens
        rec._images = parsed.images
        self._respond(ex, rec, 200, pydantic_core.to_json(doc_out))

    @staticmethod
    def _presented_key(ex: Exchange) -> str | None:
        header = ex.headers.get("Authorization")
        if header is None:
            return None
        scheme, _, token = header.strip().partition(" ")
        return token.strip() if scheme.lower() == "bearer" else header

    def _arrived(self, rec: RequestRecord, found: list[Input], variant: str) -> None:
        model = rec.model or ""
        rec.inputs = [inp.identity for inp in found]
        rec._keys = [
            (
                model,
                variant,
                hashlib.blake2b(inp.identity.encode("utf-8", "surrogatepass")).digest(),
            )
            for inp in found
        ]
        with self._lock:
            s = self._stats
            s["inputs_received"] += len(rec._keys)
            s["resent_after_success"] += sum(1 for key in rec._keys if key in self._succeeded)

    def _fault_error(self, fault: Fault, model: str | None) -> ApiError:
        assert fault.status is not None
        err = self._api.fault_error(fault.status, model)
        err.headers.extend(self.faults.headers_for(fault))
        return err

    def _answer(self, ex: Exchange, rec: RequestRecord, err: ApiError) -> None:
        rec.error = err.message
        self._respond(ex, rec, err.status, pydantic_core.to_json(err.body), err.headers)

    def _respond(
        self,
        ex: Exchange,
        rec: RequestRecord,
        status: int,
        payload: bytes,
        headers: Sequence[tuple[str, str]] = (),
    ) -> None:
        headers = [("x-request-id", uuid.uuid4().hex), *headers]
        self.respond(ex, rec, status, payload, headers=headers)


# --- own process, for benchmarks -----------------------------------------------------------------


@dataclass
class RemoteServer:
    """A ``ProviderServer`` running in a child process (see ``spawn_server``)."""

    flavor: str
    base_url: str
    url: str
    endpoint: str
    port: int
    process: Any  # subprocess.Popen[str]

    def stats(self) -> Stats:
        with urllib.request.urlopen(self.url + "/_stats", timeout=10) as resp:
            stats: Stats = json.loads(resp.read())
            return stats

    def reset(self) -> None:
        req = urllib.request.Request(self.url + "/_reset", data=b"", method="POST")
        with urllib.request.urlopen(req, timeout=10) as resp:
            resp.read()


def _cli_args(kwargs: Mapping[str, Any]) -> list[str]:
    """``spawn_server`` keyword arguments as the command-line flags of ``main``."""
    args: list[str] = []
    simple = {
        "api_key": "--api-key",
        "latency_s": "--latency",
        "default_dim": "--dim",
        "host": "--host",
        "port": "--port",
        "poison": "--poison",
        "request_log_size": "--log-size",
    }
    as_json = {"dims": "--dims", "wrong_dim": "--wrong-dim", "limits": "--limits"}
    for name, value in kwargs.items():
        if value is None:
            continue
        if name in simple:
            args += [simple[name], str(value)]
        elif name in as_json:
            args += [as_json[name], json.dumps(dict(value))]
        elif name == "faults":
            args += ["--faults", json.dumps(value.to_json())]
        elif name == "echo_key_in_errors":
            args += ["--echo-key-in-errors"] if value else []
        else:
            raise TypeError(f"spawn_server() got an unexpected keyword argument {name!r}")
    return args


@contextlib.contextmanager
def spawn_server(
    flavor: str, *, ready_timeout_s: float = 30.0, **kwargs: Any
) -> Iterator[RemoteServer]:
    """Run this fake in a child process (its own GIL, as a benchmark needs) and yield a handle
    once it prints its ready line; the child is terminated on exit.  ``latency_s`` sets the
    child's ``Faults.latency_s``; the other keywords are ``ProviderServer``'s."""
    args = ["--flavor", flavor, *_cli_args(kwargs)]
    if "--port" not in args:
        args += ["--port", "0"]
    with spawn("fakes.providers", args, ready_timeout_s=ready_timeout_s) as child:
        info = child.ready
        yield RemoteServer(
            flavor=info["flavor"],
            base_url=info["base_url"],
            url=info["url"],
            endpoint=info["endpoint"],
            port=info["port"],
            process=child.process,
        )


def main(argv: Sequence[str] | None = None) -> None:
    """Serve one flavor in the foreground until SIGTERM / Ctrl-C (see the module docstring)."""
    parser = argparse.ArgumentParser(description="Loopback embedding-provider fake.")
    parser.add_argument("--flavor", required=True, choices=FLAVORS)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--latency", type=float, default=None, help="seconds per request")
    parser.add_argument("--dim", type=int, default=64, help="size for models not in MODEL_DIMS")
    parser.add_argument("--api-key", default=None)
    parser.add_argument("--seed", type=int, default=None, help="the faults' seed")
    parser.add_argument("--dims", type=json.loads, default=None, help='{"model": dim}')
    parser.add_argument("--wrong-dim", type=json.loads, default=None, help='{"model": dim}')
    parser.add_argument("--faults", type=json.loads, default=None, help="Faults as JSON")
    parser.add_argument("--poison", default=None, help="inputs containing this fail with 400")
    parser.add_argument("--limits", type=json.loads, default=None, help="limit overrides")
    parser.add_argument("--echo-key-in-errors", action="store_true")
    parser.add_argument("--log-size", type=int, default=1000, help="requests kept in the log")
    args = parser.parse_args(argv)
    faults = Faults.from_json(args.faults) if args.faults else Faults()
    if args.latency is not None:
        faults = dataclasses.replace(faults, latency_s=args.latency)
    if args.seed is not None:
        faults = dataclasses.replace(faults, seed=args.seed)
    server = ProviderServer(
        args.flavor,
        api_key=args.api_key,
        faults=faults,
        dims=args.dims,
        wrong_dim=args.wrong_dim,
        default_dim=args.dim,
        echo_key_in_errors=args.echo_key_in_errors,
        poison=args.poison,
        host=args.host,
        port=args.port,
        limits=args.limits,
        request_log_size=args.log_size,
    ).start()
    ready = {
        "flavor": server.flavor,
        "base_url": server.base_url,
        "url": server.url,
        "endpoint": server.endpoint,
        "port": server.port,
    }
    try:
        serve_until_signal(json.dumps(ready))
    finally:
        server.stop()


if __name__ == "__main__":
    main()
