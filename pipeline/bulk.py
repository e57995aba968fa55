"""Settings for a process that encodes clip after clip (a Beam worker, the encode CLI).

* One BLAS thread: parallelism comes from running one such process per core,
  and a multi-threaded matrix product sums in another order, which would
  change descriptors in their last bits from one machine to the next.
* Freed memory kept for reuse: every clip allocates the same few hundred KB
  to MB temporaries (frames, spectra, the 512 x 512 planes). By default glibc
  hands blocks that large back to the kernel when freed and gets fresh,
  zero-filled pages (a page fault each) for the next clip. Raising the mmap
  and trim thresholds keeps up to 32 MB of freed heap in the process instead.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools

_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3   # glibc's mallopt parameters
KEEP_BYTES = 32 << 20


@functools.lru_cache(maxsize=1)
def prepare_process() -> None:
  from threadpoolctl import threadpool_limits

  threadpool_limits(1)
  try:
    libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
    libc.mallopt(_M_MMAP_THRESHOLD, KEEP_BYTES // 2)
    libc.mallopt(_M_TRIM_THRESHOLD, KEEP_BYTES)
  except (OSError, AttributeError):  # not glibc (macOS, musl): its own policy stands
    pass
