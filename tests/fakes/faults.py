"""The one fault model of the loopback fakes: what to inject, and the seeded draw.

Every fake (the Qdrant REST fake, the four embedding-provider fakes) takes a ``Faults`` and asks
its ``FaultState`` for one outcome per in-scope request, so a test or a benchmark describes 429s,
5xx, resets, timeouts, latency and a concurrency cap the same way for either::

    server.faults = Faults(error_rate=0.2, error_statuses={429: 3, 500: 1}, seed=7)
    server.push_script(429, Fault(503, retry_after_s=2), "reset", None, Fault(500, apply=True))

API::

    Faults(kinds=frozenset({"upsert", "embed"}), error_rate=0.0,
           error_statuses=(429, 500, 502, 503), retry_after_s=1, retry_after_on={429},
           rate_limit_headers={}, reset_rate=0.0, timeout_rate=0.0, hold_s=5.0,
           apply_then_fail=False, latency_s=0.0, latency_jitter_s=0.0, max_concurrent=None,
           script=(), seed=0)
        .in_scope(kind)  .headers_for(fault)  .to_json()  Faults.from_json(doc)
    Fault(status=None, *, reset=False, timeout=False, apply=False, retry_after_s=<Faults'>)
        .label ("429", "reset", "timeout+apply", ...)   Fault.coerce(item)
    FaultState(faults)   thread-safe: .faults (get / set: re-seeds, loads the script)
        .reload()  .push(*items)  .remaining  .draw(kind) -> Fault | None  .latency(kind)

Semantics:

* ``kinds``: the request kinds faults apply to; ``None`` means every request the fake routes.
  The default covers the requests that carry data: Qdrant's ``upsert``, a provider's ``embed``.
  Out-of-scope requests see no latency, no cap, no script item and no draw.
* ``error_rate``, ``reset_rate`` and ``timeout_rate`` are a float, or a mapping ``{kind:
  rate}`` with ``"*"`` as the default entry.  ``error_statuses`` is a sequence (uniform; a status
  listed twice is twice as likely) or a mapping ``{status: weight}``: ``rate_429=0.3,
  rate_500=0.2`` is ``error_rate=0.5, error_statuses={429: 3, 500: 2}``.
* The draw: the script (``Faults.script`` / ``push_script``) first, one item per in-scope
  request; then one ``random.Random(seed)`` number per in-scope request, compared with
  ``error_rate``, then ``+ reset_rate``, then ``+ timeout_rate``; an error's status is picked
  from ``error_statuses`` by the same number.  A single-threaded client therefore sees the same
  sequence every run.  Latency jitter comes from a second RNG and does not shift the sequence.
* Script items: ``None`` or a 2xx int (serve normally), an int status, ``"reset"``,
  ``"timeout"`` or a ``Fault``.  Anything else raises ``ValueError``.
* ``Retry-After: <retry_after_s>`` (ints as ``"1"``, floats as ``"0.5"``, strings as given;
  ``None`` sends none) and ``rate_limit_headers`` (e.g. OpenAI's ``{"x-ratelimit-reset-requests":
  "6m0s"}``) go on answers whose status is in ``retry_after_on``.  ``Fault(retry_after_s=...)``
  overrides the value for that answer and adds the header whatever its status.
* ``reset``: the fake closes the connection with a TCP RST (``SO_LINGER`` 0), after whatever
  partial answer it sends first.  ``timeout``: the fake answers nothing until the client hangs
  up, ``hold_s`` passes or the server stops, then resets.  (In process, through
  ``server.transport()``, these raise ``httpx.ReadError`` / ``httpx.ReadTimeout`` at once.)
* ``apply`` / ``apply_then_fail``: the request is executed first (a Qdrant upsert is stored),
  then answered with the fault: the "did my write happen?" case.
* ``latency_s`` (+ uniform ``latency_jitter_s``) is slept before an in-scope request is served;
  with ``max_concurrent`` set, an in-scope request arriving while that many are in flight is
  answered 503 at once (counted as ``"over_cap"``).
"""

from __future__ import annotations

import random
import threading
from collections import deque
from collections.abc import Collection, Mapping, Sequence
from dataclasses import KW_ONLY, dataclass, field, fields
from typing import Any

__all__ = ["DEFAULT", "DEFAULT_KINDS", "Fault", "FaultState", "Faults", "format_retry_after"]

#: "use the Faults-level value" (``Fault.retry_after_s``)
DEFAULT: Any = type("_Default", (), {"__repr__": lambda self: "<default>"})()
#: The requests that carry data: Qdrant's upserts and a provider's embedding calls.
DEFAULT_KINDS: frozenset[str] = frozenset({"upsert", "embed"})

Rate = float | Mapping[str, float]


def _check_status(status: Any) -> int:
    if isinstance(status, bool) or not isinstance(status, int) or not 100 <= status <= 599:
        raise ValueError(f"not an HTTP status: {status!r}")
    return status


def format_retry_after(value: float | int | str) -> str:
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


@dataclass(frozen=True)
class Fault:
    """One injected outcome: an HTTP ``status``, a ``reset`` or a ``timeout`` (see the module
    docstring); ``apply=True`` executes the request first."""

    status: int | None = None
    _: KW_ONLY
    reset: bool = False
    timeout: bool = False
    apply: bool = False
    retry_after_s: Any = DEFAULT

    def __post_init__(self) -> None:
        if (self.status is not None) + self.reset + self.timeout != 1:
            raise ValueError("a Fault is exactly one of status=..., reset=True or timeout=True")
        if self.status is not None and 200 <= _check_status(self.status) < 300:
            raise ValueError(f"{self.status} is not a fault; script None to serve normally")

    @property
    def kind(self) -> str:
        return "status" if self.status is not None else ("reset" if self.reset else "timeout")

    @property
    def label(self) -> str:
        """How stats and request records name it: ``"429"``, ``"reset"``, ``"500+apply"``."""
        base = str(self.status) if self.status is not None else self.kind
        return base + ("+apply" if self.apply else "")

    @classmethod
    def coerce(cls, item: Fault | int | str | None) -> Fault | None:
        """``None`` / a 2xx int -> serve normally; another int -> that status; ``"reset"``,
        ``"timeout"``; a ``Fault`` as it is; a dict as written by ``to_json``."""
        if item is None or isinstance(item, Fault):
            return item
        if isinstance(item, Mapping):
            return cls(**item)
        if isinstance(item, int) and not isinstance(item, bool):
            return None if 200 <= _check_status(item) < 300 else cls(item)
        if item == "reset":
            return cls(reset=True)
        if item == "timeout":
            return cls(timeout=True)
        raise ValueError(
            f"not a scripted outcome: {item!r} (use None, an HTTP status, 'reset', 'timeout' "
            "or a Fault)"
        )

    def to_json(self) -> Any:
        """The shortest form ``coerce`` reads back: an int, ``"reset"``, ``"timeout"`` or a
        dict."""
        if not self.apply and self.retry_after_s is DEFAULT:
            return self.status if self.status is not None else self.kind
        doc: dict[str, Any] = {"apply": self.apply}
        if self.status is not None:
            doc["status"] = self.status
        else:
            doc[self.kind] = True
        if self.retry_after_s is not DEFAULT:
            doc["retry_after_s"] = self.retry_after_s
        return doc


@dataclass
class Faults:
    """Fault-injection settings; assign a new one to ``server.faults`` to change them."""

    kinds: frozenset[str] | None = DEFAULT_KINDS
    error_rate: Rate = 0.0
    error_statuses: Sequence[int] | Mapping[int, float] = (429, 500, 502, 503)
    retry_after_s: float | int | str | None = 1
    retry_after_on: Collection[int] = frozenset({429})
    rate_limit_headers: Mapping[str, str] = field(default_factory=dict)
    reset_rate: Rate = 0.0
    timeout_rate: Rate = 0.0
    hold_s: float = 5.0
    apply_then_fail: bool = False
    latency_s: float = 0.0
    latency_jitter_s: float = 0.0
    max_concurrent: int | None = None
    script: Sequence[Fault | int | str | None] = ()
    seed: int = 0

    def __post_init__(self) -> None:
        if isinstance(self.kinds, str):
            self.kinds = frozenset({self.kinds})
        elif self.kinds is not None:
            self.kinds = frozenset(self.kinds)
        self.retry_after_on = frozenset(_check_status(s) for s in self.retry_after_on)
        self.rate_limit_headers = dict(self.rate_limit_headers)
        self.script = tuple(Fault.coerce(item) for item in self.script)
        weights = self._status_weights()
        if not weights or any(w < 0 for _, w in weights) or sum(w for _, w in weights) <= 0:
            raise ValueError(f"error_statuses needs positive weights: {self.error_statuses!r}")

    def in_scope(self, kind: str) -> bool:
        return self.kinds is None or kind in self.kinds

    @staticmethod
    def rate(value: Rate, kind: str) -> float:
        if isinstance(value, Mapping):
            return float(value.get(kind, value.get("*", 0.0)))
        return float(value)

    def _status_weights(self) -> list[tuple[int, float]]:
        statuses = self.error_statuses
        if isinstance(statuses, Mapping):
            return [(_check_status(s), float(w)) for s, w in statuses.items()]
        return [(_check_status(s), 1.0) for s in statuses]

    def pick_status(self, u: float) -> int:
        """The status at ``u`` in [0, 1) along the cumulative weights of ``error_statuses``."""
        weights = self._status_weights()
        x = u * sum(w for _, w in weights)
        for status, weight in weights:
            if x < weight:
                return status
            x -= weight
        return weights[-1][0]

    def headers_for(self, fault: Fault) -> list[tuple[str, str]]:
        """``Retry-After`` and the rate-limit headers of an error answer."""
        assert fault.status is not None
        limited = fault.status in self.retry_after_on
        value = self.retry_after_s if limited else None
        if fault.retry_after_s is not DEFAULT:
            value = fault.retry_after_s
        headers = [] if value is None else [("Retry-After", format_retry_after(value))]
        if limited:
            headers.extend(self.rate_limit_headers.items())
        return headers

    def to_json(self) -> dict[str, Any]:
        """A JSON-able dict that ``from_json`` reads back (for a fake in a child process)."""
        doc = {f.name: getattr(self, f.name) for f in fields(self)}
        doc["kinds"] = None if self.kinds is None else sorted(self.kinds)
        doc["retry_after_on"] = sorted(self.retry_after_on)
        statuses = self.error_statuses
        if isinstance(statuses, Mapping):
            doc["error_statuses"] = [[s, w] for s, w in statuses.items()]
        else:
            doc["error_statuses"] = list(statuses)
        script = [Fault.coerce(item) for item in self.script]
        doc["script"] = [None if f is None else f.to_json() for f in script]
        return doc

    @classmethod
    def from_json(cls, doc: Mapping[str, Any]) -> Faults:
        values = dict(doc)
        statuses = values.get("error_statuses")
        if statuses and isinstance(statuses[0], list):
            values["error_statuses"] = {int(s): w for s, w in statuses}
        return cls(**values)


class FaultState:
    """A fake's current ``Faults``, its seeded RNGs and its script queue (thread-safe)."""

    def __init__(self, faults: Faults | None = None) -> None:
        self._lock = threading.Lock()
        self.faults = faults if faults is not None else Faults()

    @property
    def faults(self) -> Faults:
        return self._faults

    @faults.setter
    def faults(self, faults: Faults) -> None:
        with self._lock:
            self._faults = faults
            self._rng = random.Random(faults.seed)
            self._jitter = random.Random(f"jitter:{faults.seed}")
            self._script: deque[Fault | None] = deque(Fault.coerce(i) for i in faults.script)

    def reload(self) -> None:
        """Re-seed and reload the script: a rerun sees the same faults."""
        self.faults = self._faults

    def push(self, *items: Fault | int | str | None) -> None:
        script = [Fault.coerce(item) for item in items]
        with self._lock:
            self._script.extend(script)

    @property
    def remaining(self) -> int:
        with self._lock:
            return len(self._script)

    def draw(self, kind: str) -> Fault | None:
        """The outcome for one request of ``kind`` (``None``: serve it normally)."""
        with self._lock:
            f = self._faults
            if not f.in_scope(kind):
                return None
            if self._script:
                return self._script.popleft()
            error = f.rate(f.error_rate, kind)
            reset = f.rate(f.reset_rate, kind)
            timeout = f.rate(f.timeout_rate, kind)
            if error + reset + timeout <= 0:
                return None
            x = self._rng.random()
        if x < error:
            return Fault(f.pick_status(x / error), apply=f.apply_then_fail)
        if x < error + reset:
            return Fault(reset=True, apply=f.apply_then_fail)
        if x < error + reset + timeout:
            return Fault(timeout=True, apply=f.apply_then_fail)
        return None

    def latency(self, kind: str) -> float:
        """Seconds to wait before serving a request of ``kind``."""
        with self._lock:
            f = self._faults
            if not f.in_scope(kind):
                return 0.0
            jitter = self._jitter.uniform(0.0, f.latency_jitter_s) if f.latency_jitter_s else 0.0
        return f.latency_s + jitter
