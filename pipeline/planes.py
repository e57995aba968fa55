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


def _plane(image_size: int, out: np.ndarray | None) -> np.ndarray:
  """A zeroed N x N plane, or `out` (e.g. one channel of the image being
  written, so the plane is written once, in place)."""
  if out is None:
    return np.zeros((image_size, image_size), np.uint8)
  if out.shape != (image_size, image_size) or out.dtype != np.uint8:
    raise ValueError(f"out must be uint8 {image_size}x{image_size}, not {out.dtype} {out.shape}")
  return out


def _lay_out(cells, plane: np.ndarray, fresh: bool) -> None:
  """Writes `cells`, (len(TRACKS), p, p), row-major on the 7x7 grid of
  `plane` (any strides: a channel of an image will do); what lies outside
  the tracks' cells (spare cells, the margin right and below) is 0.
  `fresh`: the plane is all zeros already."""
  p = cells.shape[-1]
  s0, s1 = plane.strides
  grid = np.lib.stride_tricks.as_strided(plane, (GRID, GRID, p, p), (p * s0, p * s1, s0, s1))
  rows, last = divmod(len(TRACKS), GRID)
  grid[:rows] = cells[:rows * GRID].reshape((rows, GRID) + cells.shape[1:])
  grid[rows, :last] = cells[rows * GRID:]
  if not fresh:
    grid[rows, last:] = 0
    plane[GRID * p:] = 0
    plane[:, GRID * p:] = 0


def red_plane(descriptors: np.ndarray, image_size: int, out: np.ndarray | None = None) -> np.ndarray:
  """Each track's cell: median in the left half, mean in the right half."""
  p = cell_size(image_size)
  q = np.zeros((GRID * GRID, 2), np.uint8)   # spare cells: 0
  q[:len(TRACKS)] = quantize(to_unit(np.asarray(descriptors).reshape(len(TRACKS), 2)))
  # All p pixel rows through a row of cells are alike: one row per row of
  # cells (the margin on the right 0), repeated down its cells.
  rows = np.zeros((GRID, image_size), np.uint8)
  rows[:, :GRID * p] = np.repeat(q.reshape(GRID, 2 * GRID), (p // 2, p - p // 2) * GRID, axis=1)
  plane = _plane(image_size, out)
  s0, s1 = plane.strides
  cell_rows = np.lib.stride_tricks.as_strided(plane, (GRID, p, image_size), (p * s0, s0, s1))
  cell_rows[:] = rows[:, None, :]
  plane[GRID * p:] = 0
  return plane


@functools.lru_cache(maxsize=16)
def _pixels_per_frame(n_pixels: int, n_frames: int) -> np.ndarray:
  return np.bincount((np.arange(n_pixels) * n_frames) // n_pixels, minlength=n_frames)


def blue_plane(tracks: np.ndarray, image_size: int, out: np.ndarray | None = None) -> np.ndarray:
  """Each track's time course, resampled to p*p values, fills its cell row by row.

  Pixel i covers frames [floor(i*T/P), floor((i+1)*T/P)): one frame repeated
  when P >= T, the mean of the defined frames when P < T (small images).
  """
  p = cell_size(image_size)
  n_pixels, n_frames = p * p, tracks.shape[1]
  if n_pixels >= n_frames:
    q = np.zeros(tracks.shape, np.uint8)
    defined = np.flatnonzero(~np.isnan(tracks).all(axis=0))   # frames with a value: the rest stay 0
    q[:, defined] = quantize(to_unit(tracks[:, defined]))
    patch = np.repeat(q, _pixels_per_frame(n_pixels, n_frames), axis=1)
  else:
    unit = to_unit(tracks)
    edges = (np.arange(n_pixels) * n_frames) // n_pixels
    valid = ~np.isnan(unit)
    sums = np.add.reduceat(np.where(valid, unit, 0.0), edges, axis=1)
    counts = np.add.reduceat(valid, edges, axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
      patch = quantize(np.where(counts > 0, sums / counts, np.nan))
  plane = _plane(image_size, out)
  _lay_out(patch.reshape(len(TRACKS), p, p), plane, fresh=out is None)
  return plane


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


def silence_pixel(spec: EncodingSpec = DEFAULT_SPEC) -> int:
  """The green pixel of a zero sample: every pixel of a clip's padding."""
  return int(_to_pixels(np.zeros(1, np.float32), spec)[0])


def expand(levels, law: str, mu: int, xp=np):
  """Green levels in [-1, 1] (pixel / 127.5 - 1) -> samples in [-1, 1]: the
  companding law undone. The one decoder of the green plane: `xp` is numpy
  here and `keras.ops` inside a model (trainer.layers.GreenWaveform)."""
  if law == "mulaw":
    return xp.sign(levels) * xp.expm1(xp.abs(levels) * float(np.log1p(mu))) / mu
  return levels


def _from_pixels(q: np.ndarray, spec: EncodingSpec) -> np.ndarray:
  return expand(q.astype(np.float32) / np.float32(127.5) - np.float32(1.0), spec.green_law,
                spec.mu)


def green_plane(x: np.ndarray, image_size: int, spec: EncodingSpec = DEFAULT_SPEC,
                out: np.ndarray | None = None) -> np.ndarray:
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
  plane = np.empty((image_size, image_size), np.uint8) if out is None else out
  flat = plane.reshape(n)   # a view: a plane, or one channel of an image, has uniform strides
  # Looked up into a contiguous array, then copied into the plane: faster
  # than a lookup writing a channel's strided pixels one by one.
  flat[:len(y)] = _to_pixels(np.clip(y, -1.0, 1.0, out=y), spec)
  flat[len(y):] = silence_pixel(spec)
  return plane


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
