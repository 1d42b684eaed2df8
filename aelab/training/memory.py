"""glibc malloc settings for training on a CPU.

glibc hands every allocation above its mmap threshold (128 KB, raised on the fly to at
most 32 MB) to ``mmap`` and unmaps it on ``free``, and gives the top of the heap back to the
OS past 128 KB of free space. A training step allocates and frees the same activation
buffers every time (a batch of 64 feature maps of 32x32x32 floats is 8 MB), so each step
would fault its pages in again (docs/performance.md has the count; a test checks that the
setting removes them). Raising both thresholds keeps
freed buffers in the heap for the next step; the process keeps its peak memory instead of
returning it between steps.
"""
from __future__ import annotations

import ctypes
import ctypes.util
import platform

M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3  # <malloc.h>
MMAP_THRESHOLD = 256 << 20  # allocations this large (the shapes pool) still get their own mmap
TRIM_THRESHOLD = 512 << 20


def keep_freed_memory() -> bool:
    """Ask glibc to keep freed memory in this process's heap (see module docstring); False,
    and nothing changed, where the C library is not glibc."""
    if platform.system() != "Linux" or platform.libc_ver()[0] != "glibc":
        return False
    libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
    return bool(libc.mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD)
                and libc.mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD))
