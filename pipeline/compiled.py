"""The few loops of the encoder that NumPy cannot vectorise, compiled.

Everything else is vectorised NumPy. What is compiled here is sequential by
nature (a recursion over frames, a running sum with a stopping point) or a
small per-candidate test with early exits, where NumPy would spend its time
in call overhead on arrays of a few hundred values. Each kernel does the
same float operations in the same order as the NumPy it replaces, so the
encoding is the same bit for bit (tests check each against NumPy).
"""

from __future__ import annotations

import functools


@functools.cache
def compiled(fn):
  """fn compiled by numba on first use, cached on disk beside its module:
  importing the encoder does not import numba."""
  import numba

  return numba.njit(cache=True, nogil=True)(fn)
