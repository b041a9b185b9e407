"""glibc's allocator takes the arena cap and gives freed memory back (voxgate/allocator.py, finding L8)."""

from __future__ import annotations

import platform
import subprocess
import sys

import pytest

from voxgate import allocator

glibc = pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="mallopt/malloc_trim are glibc's")


@glibc
def test_the_arena_cap_is_taken() -> None:
    assert allocator.limit_arenas(allocator.ARENAS)


@glibc
def test_freed_memory_goes_back_to_the_system() -> None:
    """Many small blocks freed below a live one stay mapped until trimmed: RSS drops only with trim()."""
    script = """
import ctypes, sys
from voxgate import allocator
def rss():
    return int(next(l for l in open('/proc/self/status') if l.startswith('VmRSS')).split()[1]) // 1024
blocks = [bytearray(1000) for _ in range(300_000)]  # ~300 MB in small blocks (below the mmap threshold)
keep = bytearray(1000)  # allocated last: the heap's top stays in use, so free() alone cannot shrink it
del blocks
before = rss()
allocator.trim()
print(before, rss())
"""
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True).stdout
    before, after = map(int, out.split())
    assert before > 200, before  # the freed blocks were still held
    assert after < before - 150, (before, after)


def test_trim_skips_when_one_is_running() -> None:
    with allocator._trimming:
        assert allocator.trim() is False
