"""Hand the pages the engine wrote back to the kernel, so an ingest's RSS does not grow with
the store.

Edge writes its appendable segments and its WAL through shared memory maps. Every page it
writes stays mapped into the job's process until the shard closes, so the job's RSS grows with
the points stored (about 2 KB a point for 384 + 64 dense floats and a sparse vector), although
those pages are file data the kernel may drop at will. ``MADV_PAGEOUT`` (Linux 5.4+) asks the
kernel to reclaim them now: the data stays in the file (dirty pages are written back as
usual), and a later read faults a page back in. It is a hint, safe on any mapping; only the
shared (file-backed) maps under the store's folder are advised.

Elsewhere (no ``/proc/self/maps``, another OS, an older kernel) it does nothing.
"""

from __future__ import annotations

import ctypes
import errno
import os
import sys
import threading
from collections.abc import Callable
from pathlib import Path

__all__ = ["PageRelease"]

#: ``MADV_PAGEOUT`` from ``<asm-generic/mman-common.h>``; Python's ``mmap`` module names it
#: only when built against headers that have it.
_MADV_PAGEOUT = 21
_MAPS = "/proc/self/maps"


class PageRelease:
    """Every ``every`` points written under ``folder``, advise its mapped files out.

    ``every=0`` turns it off. Thread-safe: the sink's threads share one client.
    """

    def __init__(self, folder: Path, every: int = 4096) -> None:
        self.prefix = os.path.realpath(folder) + os.sep
        self.every = every
        self.released_bytes = 0
        self._written = 0
        self._lock = threading.Lock()
        self._madvise = _madvise() if every > 0 else None

    def wrote(self, points: int) -> None:
        """Count points written; past ``every`` since the last release, release."""
        if self._madvise is None:
            return
        with self._lock:
            self._written += points
            if self._written < self.every:
                return
            self._written = 0
        self.release()

    def release(self) -> int:
        """Advise out every shared map of a file under the folder; the bytes advised."""
        madvise = self._madvise
        if madvise is None:
            return 0
        advised = 0
        try:
            with open(_MAPS, encoding="utf-8", errors="replace") as maps:
                ranges = [r for r in map(self._range, maps) if r is not None]
        except OSError:
            return 0
        for start, end in ranges:
            if madvise(start, end - start, _MADV_PAGEOUT) == 0:
                advised += end - start
                continue
            code = ctypes.get_errno()
            if code == errno.EINVAL:  # a kernel before 5.4: no MADV_PAGEOUT
                self._madvise = None
                break
            # ENOMEM: the map went away since /proc was read (the shard closed a segment)
        with self._lock:
            self.released_bytes += advised
        return advised

    def _range(self, line: str) -> tuple[int, int] | None:
        """``start-end perms offset dev inode path`` of a shared map under the folder."""
        fields = line.split(None, 5)
        if len(fields) < 6 or not fields[5].startswith(self.prefix) or fields[1][3:4] != "s":
            return None
        start, _, end = fields[0].partition("-")
        return int(start, 16), int(end, 16)


def _madvise() -> Callable[[int, int, int], int] | None:
    """libc's ``madvise`` on Linux with ``/proc``, else None."""
    if not sys.platform.startswith("linux") or not os.path.exists(_MAPS):
        return None
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        madvise = libc.madvise
    except (OSError, AttributeError):
        return None
    madvise.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]
    madvise.restype = ctypes.c_int
    return madvise
