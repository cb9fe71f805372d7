"""Keep the memory that tensors free inside the process, so the next request reuses it (glibc only).

glibc's malloc serves a block above its mmap threshold (128 KiB at first, raised to the largest block freed so
far, never past 32 MiB) with fresh pages from the kernel, and returns them when the block is freed. A model
thread allocates and frees the same large buffers every request, so each request then pays for thousands of
page faults, each a zeroed page. Whether the adaptive threshold has risen far enough depends on the order in
which the threads first freed their buffers, so the same request ran at one of two speeds from one start of the
service to the next. A fixed threshold above the service's buffers, and a heap kept up to twice that, take the
faults out of every start, for up to that much more resident memory.
"""

import ctypes
import platform

M_TRIM_THRESHOLD = -1  # glibc's malloc.h
M_MMAP_THRESHOLD = -3
MMAP_THRESHOLD = 64 << 20
TRIM_THRESHOLD = 2 * MMAP_THRESHOLD


def keep_freed_memory() -> bool:
    """Serve blocks up to 64 MiB from the heap and keep up to 128 MiB of it free; whether glibc took both."""
    if platform.libc_ver()[0] != "glibc":
        return False
    mallopt = ctypes.CDLL(None).mallopt
    return bool(mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD)) and bool(mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD))
