"""Is this the same recording as another? Fingerprints that ignore sample format.

The same recording stored twice (16-bit and 24-bit PCM, float WAV, FLAC)
decodes to samples that differ by the formats' quantisation, far below what
the encoding keeps (8-bit mu-law in green, descriptors in 254 levels), and
must be encoded once: twice, it would sit in two splits or under two
speakers. A hash of the samples cannot tell: any quantiser of the signal
has boundaries that a difference of one part in 10^7 crosses, and a
4-second clip crosses some. So a fingerprint holds numbers that move by
about the size of the difference, and two recordings are the same when
every number agrees within a tolerance set well above any format's
quantisation and far below the spread of different recordings:

* the length at the working rate (the same recording decodes to the same);
* per segment (SEGMENTS equal parts), its RMS level and its projection on a
  fixed pseudo-random +-1 sequence, normalised like an RMS. The levels tell
  loudness apart, the projections everything else (two tones of one level
  differ there): for different recordings each projection is a draw of the
  size of the segment's RMS, so agreeing in all of them by chance is out of
  reach.
"""

from __future__ import annotations

import bisect
import dataclasses
import functools

import numpy as np

SEGMENTS = 16
ABSOLUTE_TOLERANCE = 1e-4   # 16-bit PCM's rounding moves a projection by ~1e-5
RELATIVE_TOLERANCE = 1e-3   # of the larger of the two segment levels


@dataclasses.dataclass(frozen=True)
class Fingerprint:
  samples: int
  # SEGMENTS levels, then SEGMENTS projections, as float32 bytes: 128 bytes a
  # file, since the plan holds one per file of the corpus.
  packed: bytes

  @classmethod
  def of(cls, samples: int, values) -> "Fingerprint":
    return cls(int(samples), np.asarray(values, np.float32).tobytes())

  @property
  def values(self) -> np.ndarray:
    return np.frombuffer(self.packed, np.float32).astype(np.float64)

  def matches(self, other: "Fingerprint") -> bool:
    if self.samples != other.samples:
      return False
    a, b = self.values, other.values
    level = np.maximum(np.abs(a[:SEGMENTS]), np.abs(b[:SEGMENTS]))
    tolerance = ABSOLUTE_TOLERANCE + RELATIVE_TOLERANCE * np.concatenate([level, level])
    return bool((np.abs(a - b) <= tolerance).all())

@functools.lru_cache(maxsize=4)
def _signs(n: int) -> np.ndarray:
  return np.random.default_rng(0).choice(np.array([-1.0, 1.0], np.float32), n)


def fingerprint(x: np.ndarray) -> Fingerprint:
  """The fingerprint of a recording at the working rate (float32 samples)."""
  x = np.asarray(x, np.float32)
  edges = np.linspace(0, len(x), SEGMENTS + 1).astype(int)
  levels, projections = [], []
  longest = int(np.diff(edges).max()) if len(x) else 0
  signs = _signs(max(longest, 1))
  for lo, hi in zip(edges[:-1], edges[1:]):
    part = x[lo:hi].astype(np.float64)
    n = max(hi - lo, 1)
    levels.append(float(np.sqrt(np.dot(part, part) / n)))
    projections.append(float(np.dot(part, signs[:hi - lo]) / n ** 0.5))
  return Fingerprint.of(len(x), levels + projections)


def first_of_each(items) -> dict[str, str]:
  """items: (name, Fingerprint) pairs. Returns {name: the name it repeats}
  for every item whose recording an item earlier in sorted name order has;
  the first of each stays out of the answer. Compares only recordings of
  one length whose first projections are within tolerance of each other."""
  by_length: dict[int, list] = {}
  for name, fp in sorted(items, key=lambda item: item[0]):
    by_length.setdefault(fp.samples, []).append((name, fp))
  repeats = {}
  reach = ABSOLUTE_TOLERANCE + RELATIVE_TOLERANCE   # levels are at most 1: the widest tolerance
  for members in by_length.values():
    kept_keys, kept = [], []        # kept recordings, sorted by their first projection
    for name, fp in members:
      key = float(fp.values[SEGMENTS])
      lo, hi = (bisect.bisect_left(kept_keys, key - reach),
                bisect.bisect_right(kept_keys, key + reach))
      same = [other for other, other_fp in kept[lo:hi] if fp.matches(other_fp)]
      if same:
        repeats[name] = min(same)
        continue
      at = bisect.bisect_left(kept_keys, key)
      kept_keys.insert(at, key)
      kept.insert(at, (name, fp))
  return repeats
