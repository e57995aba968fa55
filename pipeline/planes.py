"""The three image planes: red (statistics), green (waveform), blue (tracks).

Pixel value 0 in red and blue means "not defined" (no voiced frame, silence,
padding, spare cell); defined values use 1..255. See docs/encoding.md.
"""

from __future__ import annotations

import functools

import numpy as np

from pipeline.audio import resample
from pipeline.spec import DEFAULT_SPEC, GRID, TRACKS, EncodingSpec, cell_size

_LO = np.array([t.lo for t in TRACKS])
_HI = np.array([t.hi for t in TRACKS])
_LOG = np.array([t.scale == "log" for t in TRACKS])


def to_unit(values: np.ndarray) -> np.ndarray:
  """Maps rows of physical track values (len(TRACKS), ...) to [0, 1]; NaN kept."""
  v = np.asarray(values, np.float64)
  shape = (len(TRACKS),) + (1,) * (v.ndim - 1)
  lo, hi, log = _LO.reshape(shape), _HI.reshape(shape), _LOG.reshape(shape)
  with np.errstate(divide="ignore", invalid="ignore"):
    t = np.where(log, np.log(np.maximum(v, 1e-30) / lo) / np.log(hi / lo),
                 (v - lo) / (hi - lo))
  return np.where(np.isnan(v), np.nan, np.clip(t, 0.0, 1.0))


def quantize(unit: np.ndarray) -> np.ndarray:
  """[0, 1] -> 1..255; NaN -> 0."""
  return np.where(np.isnan(unit), 0, 1 + np.rint(254 * np.nan_to_num(unit))).astype(np.uint8)


def _grid_plane(cells: np.ndarray, image_size: int) -> np.ndarray:
  """Lays (len(TRACKS), p, p) cells row-major on the 7x7 grid of an N x N plane."""
  p = cells.shape[1]
  full = np.zeros((GRID * GRID, p, p), np.uint8)
  full[:len(cells)] = cells
  plane = np.zeros((image_size, image_size), np.uint8)
  plane[:GRID * p, :GRID * p] = full.reshape(GRID, GRID, p, p).transpose(0, 2, 1, 3).reshape(
      GRID * p, GRID * p)
  return plane


def red_plane(descriptors: np.ndarray, image_size: int) -> np.ndarray:
  """Each track's cell: median in the left half, mean in the right half."""
  p = cell_size(image_size)
  q = quantize(to_unit(np.asarray(descriptors).reshape(len(TRACKS), 2)))
  cells = np.empty((len(TRACKS), p, p), np.uint8)
  cells[:, :, :p // 2] = q[:, 0, None, None]
  cells[:, :, p // 2:] = q[:, 1, None, None]
  return _grid_plane(cells, image_size)


def blue_plane(tracks: np.ndarray, image_size: int) -> np.ndarray:
  """Each track's time course, resampled to p*p values, fills its cell row by row.

  Pixel i covers frames [floor(i*T/P), floor((i+1)*T/P)): one frame repeated
  when P >= T, the mean of the defined frames when P < T (small images).
  """
  p = cell_size(image_size)
  n_pixels, n_frames = p * p, tracks.shape[1]
  edges = (np.arange(n_pixels) * n_frames) // n_pixels
  unit = to_unit(tracks)
  if n_pixels >= n_frames:
    patch = quantize(unit)[:, edges]
  else:
    valid = ~np.isnan(unit)
    sums = np.add.reduceat(np.where(valid, unit, 0.0), edges, axis=1)
    counts = np.add.reduceat(valid, edges, axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
      patch = quantize(np.where(counts > 0, sums / counts, np.nan))
  return _grid_plane(patch.reshape(len(TRACKS), p, p), image_size)


_LUT_STEPS = 32767  # green input is pre-quantised to 16 bits, then looked up


@functools.lru_cache(maxsize=4)
def _pixel_lut(law: str, mu: int) -> np.ndarray:
  """16-bit linear sample -> 8-bit pixel through the companding law."""
  y = np.arange(-_LUT_STEPS, _LUT_STEPS + 1, dtype=np.float64) / _LUT_STEPS
  if law == "mulaw":
    y = np.sign(y) * np.log1p(mu * np.abs(y)) / np.log1p(mu)
  return np.rint((y + 1.0) * 127.5).astype(np.uint8)


def _to_pixels(y: np.ndarray, spec: EncodingSpec) -> np.ndarray:
  """[-1, 1] -> 0..255 through the companding law."""
  idx = np.rint(y * np.float32(_LUT_STEPS)).astype(np.int32)
  idx += _LUT_STEPS
  return _pixel_lut(spec.green_law, spec.mu)[idx]


def _from_pixels(q: np.ndarray, spec: EncodingSpec) -> np.ndarray:
  f = q.astype(np.float32) / np.float32(127.5) - np.float32(1.0)
  if spec.green_law == "mulaw":
    return np.sign(f) * np.expm1(np.abs(f) * np.log1p(spec.mu)) / spec.mu
  return f


def green_plane(x: np.ndarray, image_size: int, spec: EncodingSpec = DEFAULT_SPEC) -> np.ndarray:
  """The clip, peak-normalised, zero-padded to clip length, resampled to
  image_size**2 samples, companded and quantised to 0..255, row-major."""
  n = image_size * image_size
  clip = np.zeros(spec.clip_samples, np.float32)
  clip[:min(len(x), spec.clip_samples)] = x[:spec.clip_samples]
  peak = float(np.abs(clip).max())
  if peak > 0:
    clip /= peak
  y = resample(clip, spec.sample_rate, spec.green_rate(image_size))
  if len(y) != n:
    y = np.pad(y[:n], (0, max(0, n - len(y))))
  return _to_pixels(np.clip(y, -1.0, 1.0, out=y), spec).reshape(image_size, image_size)


def waveform_from_green(plane: np.ndarray, spec: EncodingSpec = DEFAULT_SPEC):
  """Inverse of green_plane up to gain: (waveform, rate). Oversampled planes
  (512 px) come back at the working rate, which also filters out 3/4 of the
  quantisation noise; smaller planes come back at their own, lower rate."""
  image_size = plane.shape[0]
  y = _from_pixels(plane.reshape(-1), spec).astype(np.float32)
  rate = spec.green_rate(image_size)
  if rate > spec.sample_rate:
    y, rate = resample(y, rate, spec.sample_rate), spec.sample_rate
  return y, rate
