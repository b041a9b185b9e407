"""Giving freed memory back to the system (glibc only; elsewhere both calls do nothing).

A server process that decodes, synthesizes and runs models on many threads keeps memory it has freed:
glibc gives each thread that allocates concurrently its own arena (up to 8 per core), and an arena's
freed pages stay mapped until its top is free. Across hours of sessions that looks like growth that
never comes back (reliability finding L8). Two standard remedies, through glibc's own interface
(`mallopt`, `malloc_trim`; no Python library wraps them, so ctypes is the shortest honest way):

- `limit_arenas()` at start-up, before the model threads exist: at most `ARENAS` arenas, so the
  freed memory of one is reused by the others instead of each keeping its own high-water mark.
- `trim()` when a session ends: what its buffers freed goes back to the system.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import threading

log = logging.getLogger("voxgate.allocator")

ARENAS = 2  # one per core on the reference machine; the model threads allocate little once loaded
M_ARENA_MAX = -8  # from glibc's malloc.h

_trimming = threading.Lock()


def _libc() -> ctypes.CDLL | None:
    name = ctypes.util.find_library("c")
    if name is None:
        return None
    try:
        libc = ctypes.CDLL(name)
        libc.mallopt, libc.malloc_trim  # noqa: B018 - glibc has both; musl and others may not
    except (OSError, AttributeError):
        return None
    return libc


_LIBC = _libc()


def limit_arenas(arenas: int = ARENAS) -> bool:
    """Cap glibc's malloc arenas; True when the allocator took it."""
    if _LIBC is None:
        return False
    ok = bool(_LIBC.mallopt(M_ARENA_MAX, arenas))
    log.debug("malloc arenas capped at %d: %s", arenas, ok)
    return ok


def trim() -> bool:
    """Return the free memory at the top of every arena to the system; True when some was released.
    Runs one at a time (a second caller meanwhile skips: the running trim covers it)."""
    if _LIBC is None or not _trimming.acquire(blocking=False):
        return False
    try:
        return bool(_LIBC.malloc_trim(0))
    finally:
        _trimming.release()
