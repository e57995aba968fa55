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
_SPAN = np.array([t.hi - t.lo for t in TRACKS])
_LOG_ROWS = np.array([k for k, t in enumerate(TRACKS) if t.scale == "log"])
_LOG_LO = np.log(_LO[_LOG_ROWS])
_LOG_SPAN = np.log(np.array([TRACKS[k].hi / TRACKS[k].lo for k in _LOG_ROWS]))


def to_unit(values: np.ndarray) -> np.ndarray:
  """Maps rows of physical track values (len(TRACKS), ...) to [0, 1]; NaN kept."""
  v = np.asarray(values, np.float64)
  shape = (len(TRACKS),) + (1,) * (v.ndim - 1)
  t = (v - _LO.reshape(shape)) / _SPAN.reshape(shape)
  log_shape = (len(_LOG_ROWS),) + shape[1:]
  with np.errstate(divide="ignore", invalid="ignore"):
    t[_LOG_ROWS] = ((np.log(np.maximum(v[_LOG_ROWS], 1e-30)) - _LOG_LO.reshape(log_shape))
                    / _LOG_SPAN.reshape(log_shape))
  return np.clip(t, 0.0, 1.0, out=t)  # NaN stays NaN


def quantize(unit: np.ndarray) -> np.ndarray:
  """[0, 1] -> 1..255; NaN -> 0."""
  q = np.rint(np.asarray(unit) * 254.0) + 1.0
  q[np.isnan(q)] = 0.0
  return q.astype(np.uint8)


def _grid_plane(cells: np.ndarray, image_size: int) -> np.ndarray:
  """Lays (len(TRACKS), p, p) cells row-major on the 7x7 grid of an N x N plane."""
  p = cells.shape[1]
  plane = np.zeros((image_size, image_size), np.uint8)
  grid = plane[:GRID * p, :GRID * p].reshape(GRID, p, GRID, p).transpose(0, 2, 1, 3)
  rows, last = divmod(len(cells), GRID)
  grid[:rows] = cells[:rows * GRID].reshape(rows, GRID, p, p)
  grid[rows, :last] = cells[rows * GRID:]
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
  """[-1, 1] -> 0..255 through the companding law (16-bit index, rounded half up)."""
  idx = np.multiply(y, np.float32(_LUT_STEPS), dtype=np.float32)
  idx += np.float32(_LUT_STEPS + 0.5)
  return _pixel_lut(spec.green_law, spec.mu).take(idx.astype(np.uint16))


def _from_pixels(q: np.ndarray, spec: EncodingSpec) -> np.ndarray:
  f = q.astype(np.float32) / np.float32(127.5) - np.float32(1.0)
  if spec.green_law == "mulaw":
    return np.sign(f) * np.expm1(np.abs(f) * np.log1p(spec.mu)) / spec.mu
  return f


def green_plane(x: np.ndarray, image_size: int, spec: EncodingSpec = DEFAULT_SPEC) -> np.ndarray:
  """The clip, peak-normalised, zero-padded to clip length, resampled to
  image_size**2 samples, companded and quantised to 0..255, row-major.

  Only the recorded part is resampled and companded: the padding is silence,
  one pixel value (the resampler's tail is flushed with zeros, as padding
  would have it)."""
  n = image_size * image_size
  clip = np.asarray(x[:spec.clip_samples], np.float32)
  peak = float(np.abs(clip).max()) if clip.size else 0.0
  if peak > 0:
    clip = clip / np.float32(peak)
  y = resample(clip, spec.sample_rate, spec.green_rate(image_size))[:n]
  plane = np.empty(n, np.uint8)
  plane[:len(y)] = _to_pixels(np.clip(y, -1.0, 1.0, out=y), spec)
  plane[len(y):] = _to_pixels(np.zeros(1, np.float32), spec)[0]
  return plane.reshape(image_size, image_size)


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
