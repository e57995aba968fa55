"""Pitch and harmonicity per frame, chosen as one path through the clip (Boersma 1993).

Praat's autocorrelation method, on the power spectra the encoder already has:

1. Candidates. The normalised autocorrelation r(t) = acf_x(t) / acf_window(t)
   of each frame (the Wiener-Khinchin theorem: a DCT-I of |X|^2) has local
   maxima at lags between 1/f0_max and 1/f0_min. The strongest few, refined by
   a parabola, are the frame's voiced candidates, with strength
   r - octave_cost * log2(f0_min * lag) (a slight preference for the higher of
   two octaves). A peak above 1 (the window normalisation inflates long lags of
   noise) is reflected to 1/r, as Praat does.
2. The unvoiced candidate, whose strength grows as the frame gets quiet
   relative to the clip's peak: voicing_threshold + max(0, 2 - (local peak /
   global peak) / (silence_threshold / (1 + voicing_threshold))). So frames
   of low-level background noise cannot be voiced, whatever their
   autocorrelation.
3. The path. Viterbi over frames maximises the sum of strengths minus
   octave_jump_cost * |log2(f_prev / f)| between voiced frames and
   voiced_unvoiced_cost at every voicing change: an octave jump or a one-frame
   voiced blip must be paid for by the evidence.

HNR on a voiced frame is read as Praat's To Harmonicity (cc) reads it: the
cross-correlation of the signal with itself one chosen period later
(`harmonicity`).
"""

from __future__ import annotations

import dataclasses
import functools
import math

import numpy as np
import scipy.fft

from pipeline.compiled import compiled
from pipeline.spec import DEFAULT_SPEC, EncodingSpec

HARMONICS_READ = 20   # harmonics of a candidate the harmonic-series gate looks at


@dataclasses.dataclass(frozen=True)
class _Lags:
  window_acf: np.ndarray   # normalised autocorrelation of the analysis window
  lo: int                  # shortest lag searched (f0_max)
  hi: int                  # longest lag searched (f0_min)


@functools.lru_cache(maxsize=8)
def _lags(spec: EncodingSpec) -> _Lags:
  window = np.hanning(spec.win_length + 1)[:-1]  # periodic Hann, as the frames use
  acf = scipy.fft.irfft(np.abs(scipy.fft.rfft(window, n=spec.n_fft)) ** 2, n=spec.n_fft)
  lo = math.ceil(spec.sample_rate / spec.f0_max)
  hi = math.floor(spec.sample_rate / spec.f0_min)
  if spec.n_fft < spec.win_length + hi + 1:
    raise ValueError("n_fft too small for an alias-free autocorrelation up to f0_min")
  return _Lags((acf[:hi + 2] / acf[0]).astype(np.float32), lo, hi)


def candidate_count(spec: EncodingSpec = DEFAULT_SPEC) -> int:
  """Voiced candidates per frame: spec.pitch_candidates, or fewer if the lag range is short."""
  return min(spec.pitch_candidates, _lags(spec).hi - _lags(spec).lo + 1)


def candidates(power: np.ndarray, spec: EncodingSpec = DEFAULT_SPEC,
               unvoiced: np.ndarray | None = None):
  """(f0 Hz, peak r, strength) of the `spec.pitch_candidates` strongest
  autocorrelation peaks per frame, each (frames, K); absent candidates have
  strength -inf.

  Given the frames' `unvoiced` strengths, a frame whose every candidate
  loses to it by more than two voicing changes (`best_path` leaves it
  unvoiced whatever it holds) skips the harmonic gate: its candidates get
  strength -inf, as the gate would leave them or the path would ignore them."""
  a = _lags(spec)
  acf = scipy.fft.dct(power, type=1, axis=1)[:, :a.hi + 2]  # irfft of an even spectrum
  r = acf / np.maximum(acf[:, :1], 1e-20) / np.maximum(a.window_acf, 1e-6)
  left, mid, right = r[:, a.lo - 1:a.hi], r[:, a.lo:a.hi + 1], r[:, a.lo + 1:a.hi + 2]
  lags = np.arange(a.lo, a.hi + 1, dtype=np.float32)
  bonus = -spec.octave_cost * np.log2(lags * (spec.f0_min / spec.sample_rate))
  is_peak = (mid > left) & (mid >= right) & (mid > 0.5 * spec.voicing_threshold)
  score = np.where(is_peak, mid + bonus, -np.inf)
  rows = np.arange(len(r))
  best = np.empty((len(r), candidate_count(spec)), np.intp)
  remaining = score.copy()
  for j in range(best.shape[1]):   # k argmax passes: 10x faster than argpartition here
    best[:, j] = remaining.argmax(axis=1)
    remaining[rows, best[:, j]] = -np.inf
  rows = rows[:, None]
  y0, y1, y2 = left[rows, best], mid[rows, best], right[rows, best]
  denom = y0 - 2 * y1 + y2
  delta = np.where(denom < 0, 0.5 * (y0 - y2) / np.where(denom < 0, denom, -1), 0.0)
  delta = np.clip(delta, -0.5, 0.5)
  peak = y1 - 0.25 * (y0 - y2) * delta
  peak = np.where(peak > 1, 1 / np.maximum(peak, 1e-6), peak)
  lag = lags[best] + delta
  f0 = spec.sample_rate / lag
  strength = np.where(np.isfinite(score[rows, best]),
                      peak - spec.octave_cost * np.log2(lag * (spec.f0_min / spec.sample_rate)),
                      -np.inf)
  # A frame can be voiced only if one of its candidates is a voice's harmonic
  # series; which candidate wins stays the path's choice (a frame-level gate:
  # judged per candidate, band-limited speech would lose its fundamental's
  # candidate to the octave above, whose 'fundamental' is the 2nd harmonic).
  gated = rows[:, 0] if unvoiced is None else np.flatnonzero(
      strength.max(axis=1) + 2 * spec.voiced_unvoiced_cost >= unvoiced)
  voice = np.zeros(len(r), bool)
  if gated.size:
    voice[gated] = compiled(_voices)(
        power[gated], f0[gated], spec.sample_rate / spec.n_fft,
        np.float32(10 ** (-spec.harmonic_range_db / 10)), HARMONICS_READ,
        spec.harmonics_required)
  strength[~voice] = -np.inf
  return f0, peak, strength


def _voices(power, f0, bin_hz, floor_ratio, harmonics, required):
  """(frames,): whether any candidate f0 of a frame (power (frames, bins),
  f0 (frames, K)) is a voice's: its fundamental, or `required` of its first
  `harmonics` harmonics spanning an octave, within the frame's spectral
  peak times `floor_ratio`. Periodicity alone also fits a modem's, a
  keypad's or a telephone exchange's tones, read at a subharmonic (2100 Hz
  as a 525 Hz 'voice'), where the candidate's fundamental is empty and its
  spectrum holds one or two lines. A voice has its fundamental (a nasal
  murmur is little else) or, band-limited, many harmonics.

  A harmonic k*f0 is a line (a spectral peak above the floor, not a skirt:
  the bin at k*f0 or the next one at least its neighbours; bins 0 and
  bins-1 are never lines) standing 6 dB over the valleys half-way to the
  harmonics either side. A modem's data spectrum has peaks everywhere and
  no valleys. Without its fundamental, a voice (band-limited: a telephone
  line) still shows many harmonics spread over more than an octave (F1 to
  F2); a modem's data band is narrow.

  Compiled: a frame stops at its first voice-like candidate, a candidate
  at its fundamental."""
  frames, bins = power.shape
  voice = np.zeros(frames, np.bool_)
  for i in range(frames):
    row = power[i]
    floor = row.max() * floor_ratio
    for j in range(f0.shape[1]):
      f = f0[i, j]
      half = np.float32(0.5) * f / np.float32(bin_hz)
      count, lowest, highest = 0, 0, 0
      for k in range(1, harmonics + 1):
        at = np.float64(f) * (np.float64(k) / bin_hz)          # in bins
        b = int(min(at, bins - 2.0))
        here, after = row[b], row[b + 1]
        before = row[b - 1] if b >= 1 else np.inf
        beyond = row[b + 2] if b + 2 < bins else np.inf
        if not ((here >= before and here >= after and here > floor)
                or (after >= here and after >= beyond and after > floor)):
          continue
        below = int(min(max(np.rint(at - half), 0.0), bins - 1.0))
        above = int(min(max(np.rint(at + half), 0.0), bins - 1.0))
        if max(here, after) > np.float32(2) * (row[below] + row[above]):
          if k == 1:
            voice[i] = True
            break
          count += 1
          lowest = k if lowest == 0 else lowest
          highest = k
      if not voice[i] and count >= required and highest >= 2 * lowest:
        voice[i] = True
      if voice[i]:
        break
  return voice


def unvoiced_strength(local_peak: np.ndarray, global_peak: float,
                      spec: EncodingSpec = DEFAULT_SPEC) -> np.ndarray:
  """Praat's strength of 'no pitch here', from the frame's peak amplitude."""
  relative = local_peak / max(global_peak, 1e-12)
  scale = spec.silence_threshold / (1 + spec.voicing_threshold)
  return spec.voicing_threshold + np.maximum(0.0, 2.0 - relative / scale)


def best_path(f0: np.ndarray, strength: np.ndarray, unvoiced: np.ndarray,
              starts: np.ndarray, spec: EncodingSpec = DEFAULT_SPEC) -> np.ndarray:
  """Viterbi: index of the chosen candidate per frame, K meaning unvoiced.

  f0, strength: (frames, K) voiced candidates; unvoiced: (frames,);
  starts: (frames,) True where a frame does not follow its predecessor (a
  run of silent frames in between), which is entered as if from unvoiced.
  A frame whose unvoiced strength beats every voiced candidate by more than
  two voicing changes is unvoiced on the best path (making it unvoiced gains
  more than the changes around it can cost), so it splits the recursion,
  which then runs only over frames that could be voiced.
  """
  n, k = strength.shape
  path = np.full(n, k, np.int64)
  gain = np.concatenate([strength, unvoiced[:, None]], axis=1, dtype=np.float64)  # (n, k+1)
  free = np.flatnonzero(strength.max(axis=1, initial=-np.inf)
                        + 2 * spec.voiced_unvoiced_cost >= unvoiced)
  if free.size == 0:
    return path
  fresh = np.concatenate([[True], (np.diff(free) > 1) | starts[free[1:]]])
  gain = gain[free]
  log_f = np.log2(np.where(np.isfinite(strength[free]), f0[free], 1.0))
  cost = np.full((len(free) - 1, k + 1, k + 1), spec.voiced_unvoiced_cost)
  cost[:, :k, :k] = spec.octave_jump_cost * np.abs(log_f[:-1, :, None] - log_f[1:, None, :])
  cost[:, k, k] = 0.0
  enter = np.full(k + 1, spec.voiced_unvoiced_cost)   # from unvoiced (or silence) into each
  enter[k] = 0.0
  path[free] = compiled(_viterbi)(gain, cost, fresh, enter)
  return path


def _viterbi(gain, cost, fresh, enter):
  """The recursion of `best_path`, sequential by nature, compiled (as
  librosa compiles its own Viterbi): per frame, each state's best
  predecessor (the first of equals) and the score through it, then the path
  traced back. gain (m, S); cost (m-1, S, S) from state i to j; fresh (m,)
  frames entered from unvoiced; enter (S,) the cost of entering each state."""
  m, s = gain.shape
  back = np.zeros((m, s), np.int64)
  score = gain[0] - enter
  new = np.empty(s)
  for t in range(1, m):
    if fresh[t]:
      prev = 0
      for i in range(1, s):
        if score[i] - enter[i] > score[prev] - enter[prev]:
          prev = i
      base = score[prev] - enter[prev]
      for j in range(s):
        back[t, j] = prev
        new[j] = base - enter[j] + gain[t, j]
    else:
      for j in range(s):
        best, top = 0, score[0] - cost[t - 1, 0, j]
        for i in range(1, s):
          total = score[i] - cost[t - 1, i, j]
          if total > top:
            best, top = i, total
        back[t, j] = best
        new[j] = top + gain[t, j]
    score, new = new, score
  chosen = 0
  for j in range(1, s):
    if score[j] > score[chosen]:
      chosen = j
  path = np.empty(m, np.int64)
  for t in range(m - 1, -1, -1):
    path[t] = chosen
    chosen = back[t, chosen]
  return path


def windows(x: np.ndarray, starts: np.ndarray, length: int) -> np.ndarray:
  """x[s:s + length] for each of the ascending `starts`, (len(starts), length),
  zeros where a window runs past either end; x is padded only when one does."""
  if starts[0] < 0 or starts[-1] + length > len(x):
    x, starts = np.pad(x, (length, length)), starts + length
  return np.lib.stride_tricks.sliding_window_view(x, length)[starts]


@functools.lru_cache(maxsize=4)
def _box_spectrum(width: int, n_fft: int) -> np.ndarray:
  return np.conj(scipy.fft.rfft(np.ones(width, np.float32), n_fft)).astype(np.complex64)


def harmonicity(x: np.ndarray, centres: np.ndarray, voiced: np.ndarray,
                spec: EncodingSpec = DEFAULT_SPEC) -> np.ndarray:
  """HNR (dB) of voiced frames by Praat's cross-correlation method.

  The stretch of 1/f0_min seconds that ends at the frame centre is
  correlated with the same stretch shifted by every lag up to its length
  (normalised by both stretches' energies, so no window shrinks r); r is
  the highest local maximum, refined by a parabola, and HNR = 10 log10(r /
  (1 - r)), as Praat's To Harmonicity (cc) reads it. NaN where not voiced.
  """
  out = np.full(len(centres), np.nan, np.float32)
  rows = np.flatnonzero(voiced)
  if rows.size == 0:
    return out
  width = 2 * (int(spec.sample_rate / spec.f0_min) // 2 - 1)  # even, as Praat sizes it
  n_fft = 1 << int(np.ceil(np.log2(2 * width)))
  span = windows(np.asarray(x, np.float32), centres[rows] - width, 2 * width)  # (n, 2W) around c
  span -= span.mean(axis=1, keepdims=True)            # the local mean, a period each side
  # Correlations of the reference stretch with the span, and energies of the
  # shifted stretches (the span's squares against a box), for lags 0..W at once.
  spectra = scipy.fft.rfft(np.stack([span, span * span]), n_fft, axis=2)
  spectra[0] *= np.conj(scipy.fft.rfft(span[:, :width], n_fft, axis=1))
  spectra[1] *= _box_spectrum(width, n_fft)
  product, shifted = scipy.fft.irfft(spectra, n_fft, axis=2)[:, :, :width + 1]
  r = product / np.sqrt(np.maximum(shifted[:, :1] * shifted, 1e-20))
  mid = r[:, 2:-1]                                                      # lags 2..W-1
  is_peak = (mid > r[:, 1:-2]) & (mid >= r[:, 3:]) & (mid > 0)
  lag = np.argmax(np.where(is_peak, mid, -1.0), axis=1) + 2             # the highest peak
  n = np.arange(len(rows))
  y0, y1, y2 = r[n, lag - 1], r[n, lag], r[n, lag + 1]
  denom = y0 - 2 * y1 + y2
  delta = np.clip(np.where(denom < 0, 0.5 * (y0 - y2) / np.where(denom < 0, denom, -1), 0),
                  -0.5, 0.5)
  value = np.where(is_peak[n, lag - 2], y1 - 0.25 * (y0 - y2) * delta, 0.0)
  value = np.where(value > 1, 1 / np.maximum(value, 1e-6), value)
  best = np.clip(value, 1e-6, 1 - 1e-6)
  out[rows] = 10 * np.log10(best / (1 - best))
  return out


def strongest_voicing(spec: EncodingSpec = DEFAULT_SPEC) -> float:
  """An upper bound on any voiced candidate's strength: a peak r of at most 1
  plus the octave bonus of the shortest lag a parabola can reach."""
  shortest = (_lags(spec).lo - 0.5) * spec.f0_min / spec.sample_rate
  return 1.0 - spec.octave_cost * math.log2(shortest) + 1e-6


def pitch(power: np.ndarray, local_peak: np.ndarray, global_peak: float,
          starts: np.ndarray, spec: EncodingSpec = DEFAULT_SPEC) -> np.ndarray:
  """f0 (Hz) per frame from power spectra; NaN where unvoiced.

  Frames too quiet for any candidate to win (their unvoiced strength beats
  the strongest possible voiced one by two voicing changes: `best_path`
  leaves them unvoiced whatever their candidates) are not searched."""
  unvoiced = unvoiced_strength(local_peak, global_peak, spec)
  k = candidate_count(spec)
  searched = np.flatnonzero(unvoiced <= strongest_voicing(spec) + 2 * spec.voiced_unvoiced_cost)
  if searched.size == len(power):
    f0, _, strength = candidates(power, spec, unvoiced)
  else:   # the frames left out have no candidate
    f0 = np.ones((len(power), k), np.float32)
    strength = np.full((len(power), k), -np.inf, np.float32)
    if searched.size:
      f0[searched], _, strength[searched] = candidates(power[searched], spec, unvoiced[searched])
  path = best_path(f0, strength, unvoiced, starts, spec)
  rows = np.arange(len(path))
  return np.where(path < k, f0[rows, np.minimum(path, k - 1)], np.nan).astype(np.float32)
