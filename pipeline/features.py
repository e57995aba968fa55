"""Frame-level voice descriptors from one shared framing and one FFT per clip.

Every track comes from the same centred 40 ms frames every 10 ms:
  * the raw frames give RMS level and zero-crossing rate;
  * one zero-padded FFT per frame (|X|^2) gives the spectrum for centroid,
    bandwidth, rolloff, flatness, contrast, MFCC and chroma, and, through the
    Wiener-Khinchin theorem (irfft of |X|^2), the autocorrelation from which
    pitch and harmonic-to-noise ratio are read (Boersma 1993).
Only active (non-silent) frames are analysed; the rest stay NaN, as do
unvoiced frames in the f0 and HNR tracks.
"""

from __future__ import annotations

import dataclasses
import functools
import math

import librosa
import numpy as np
import scipy.fft

from pipeline.clips import active_frames, frame_rms_db
from pipeline.spec import DEFAULT_SPEC, TRACK_INDEX, TRACKS, EncodingSpec

_I = TRACK_INDEX


@dataclasses.dataclass(frozen=True)
class Description:
  tracks: np.ndarray       # float32 (len(TRACKS), spec.clip_frames); NaN = undefined
  descriptors: np.ndarray  # float32 (2 * len(TRACKS),): median, mean per track


@dataclasses.dataclass(frozen=True)
class _Analysis:
  window: np.ndarray
  window_acf: np.ndarray   # normalised autocorrelation of the window
  freqs: np.ndarray
  mel: np.ndarray          # (n_mels, n_fft//2+1)
  chroma: np.ndarray       # (12, n_fft//2+1)
  lag_lo: int
  lag_hi: int


@functools.lru_cache(maxsize=8)
def _analysis(spec: EncodingSpec) -> _Analysis:
  window = np.hanning(spec.win_length + 1)[:-1].astype(np.float32)  # periodic Hann
  w = np.abs(scipy.fft.rfft(window, n=spec.n_fft)) ** 2
  acf = scipy.fft.irfft(w, n=spec.n_fft)
  lag_lo = math.ceil(spec.sample_rate / spec.f0_max)
  lag_hi = math.floor(spec.sample_rate / spec.f0_min)
  if spec.n_fft < spec.win_length + lag_hi + 1:
    raise ValueError("n_fft too small for an alias-free autocorrelation up to f0_min")
  return _Analysis(
      window=window,
      window_acf=(acf[:lag_hi + 2] / acf[0]).astype(np.float32),
      freqs=np.fft.rfftfreq(spec.n_fft, 1.0 / spec.sample_rate).astype(np.float32),
      mel=librosa.filters.mel(sr=spec.sample_rate, n_fft=spec.n_fft,
                              n_mels=spec.n_mels).astype(np.float32),
      chroma=librosa.filters.chroma(sr=spec.sample_rate, n_fft=spec.n_fft,
                                    tuning=0.0).astype(np.float32),
      lag_lo=lag_lo, lag_hi=lag_hi)


def pitch_and_hnr(power: np.ndarray, spec: EncodingSpec = DEFAULT_SPEC):
  """f0 (Hz) and HNR (dB) per frame from power spectra; NaN where unvoiced.

  Normalised autocorrelation r(t) = acf_x(t) / acf_window(t); the candidate
  period is the local maximum of r minus an octave cost, refined by a parabola.
  HNR = 10 log10(r / (1 - r)) at that peak.
  """
  a = _analysis(spec)
  # irfft of a real even spectrum is a DCT-I: real to real, no complex copy.
  acf = scipy.fft.dct(power, type=1, axis=1)[:, :a.lag_hi + 2]
  r = acf / np.maximum(acf[:, :1], 1e-20) / np.maximum(a.window_acf, 1e-6)
  left, mid, right = (r[:, a.lag_lo - 1:a.lag_hi], r[:, a.lag_lo:a.lag_hi + 1],
                      r[:, a.lag_lo + 1:a.lag_hi + 2])
  lags = np.arange(a.lag_lo, a.lag_hi + 1, dtype=np.float32)
  bonus = -spec.octave_cost * np.log2(lags / a.lag_hi)
  score = np.where((mid > left) & (mid >= right), mid + bonus, -np.inf)
  best = np.argmax(score, axis=1)
  rows = np.arange(len(best))
  y0, y1, y2 = left[rows, best], mid[rows, best], right[rows, best]
  denom = y0 - 2 * y1 + y2
  delta = np.where(denom < 0, 0.5 * (y0 - y2) / np.where(denom < 0, denom, -1), 0.0)
  delta = np.clip(delta, -0.5, 0.5)
  peak = y1 - 0.25 * (y0 - y2) * delta
  voiced = np.isfinite(score[rows, best]) & (peak > spec.voicing_threshold)
  f0 = np.where(voiced, spec.sample_rate / (lags[best] + delta), np.nan)
  p = np.clip(peak, 1e-6, 1 - 1e-4)
  hnr = np.where(voiced, 10 * np.log10(p / (1 - p)), np.nan)
  return f0.astype(np.float32), hnr.astype(np.float32)


def spectral_shape(mag: np.ndarray, freqs: np.ndarray):
  """Centroid, bandwidth, 85% rolloff (Hz) and flatness (dB) per frame.

  Same definitions as librosa.feature.spectral_* given S=mag.
  """
  total = np.maximum(mag.sum(axis=1, keepdims=True), 1e-12)
  norm = mag / total
  centroid = norm @ freqs
  # sum n (f - c)^2 = sum n f^2 - c^2, as the weights n sum to one.
  bandwidth = np.sqrt(np.maximum(norm @ (freqs * freqs) - centroid * centroid, 0.0))
  cum = np.cumsum(mag, axis=1)
  rolloff = freqs[np.argmax(cum >= 0.85 * cum[:, -1:], axis=1)]
  power = np.maximum(mag * mag, 1e-10)
  flatness = np.exp(np.log(power).mean(axis=1)) / power.mean(axis=1)
  return centroid, bandwidth, rolloff, 10 * np.log10(flatness)


def describe(x: np.ndarray, spec: EncodingSpec = DEFAULT_SPEC) -> Description:
  """Tracks and summary statistics of one clip (working rate, unpadded)."""
  a = _analysis(spec)
  x = np.asarray(x, np.float32)[:spec.clip_samples]
  tracks = np.full((len(TRACKS), spec.clip_frames), np.nan, np.float32)
  level = frame_rms_db(x, spec)
  idx = np.flatnonzero(active_frames(level, spec))
  if idx.size:
    half = spec.win_length // 2
    framed = np.lib.stride_tricks.sliding_window_view(
        np.pad(x, (half, half)), spec.win_length)[::spec.hop_length]
    frames = framed[idx]
    signs = np.signbit(frames)
    tracks[_I["zcr"], idx] = np.count_nonzero(
        signs[:, 1:] != signs[:, :-1], axis=1) / spec.win_length
    tracks[_I["rms"], idx] = level[idx]
    spectrum = scipy.fft.rfft(frames * a.window, n=spec.n_fft, axis=1)
    power = spectrum.real ** 2 + spectrum.imag ** 2
    mag = np.sqrt(power)
    f0, hnr = pitch_and_hnr(power, spec)
    tracks[_I["f0"], idx], tracks[_I["hnr"], idx] = f0, hnr
    shape = spectral_shape(mag, a.freqs)
    for name, values in zip(("centroid", "bandwidth", "rolloff", "flatness"), shape):
      tracks[_I[name], idx] = values
    log_mel = 10 * np.log10(np.maximum(power @ a.mel.T, 1e-10))
    m0 = _I["mfcc0"]
    tracks[m0:m0 + spec.n_mfcc, idx] = scipy.fft.dct(
        log_mel, type=2, norm="ortho", axis=1)[:, :spec.n_mfcc].T
    c0 = _I["contrast0"]
    tracks[c0:c0 + 7, idx] = librosa.feature.spectral_contrast(
        S=mag.T, sr=spec.sample_rate, n_fft=spec.n_fft, fmin=spec.contrast_fmin, n_bands=6)
    chroma = power @ a.chroma.T
    peak = chroma.max(axis=1, keepdims=True)
    tracks[_I["chroma_C"]:_I["chroma_C"] + 12, idx] = (
        chroma / np.where(peak > 0, peak, 1)).T
  return Description(tracks=tracks, descriptors=_statistics(tracks, idx))


def _statistics(tracks: np.ndarray, active: np.ndarray) -> np.ndarray:
  """Median and mean of each track over its defined frames, interleaved; NaN if none."""
  stats = np.full((len(TRACKS), 2), np.nan, np.float32)
  if active.size == 0:
    return stats.reshape(-1)
  sub = tracks[:, active]            # every track is defined on active frames ...
  stats[:, 0] = np.median(sub, axis=1)
  stats[:, 1] = sub.mean(axis=1)
  for k in (_I["f0"], _I["hnr"]):    # ... but pitch and HNR only on voiced ones
    voiced = sub[k][~np.isnan(sub[k])]
    stats[k] = (np.median(voiced), voiced.mean()) if voiced.size else (np.nan, np.nan)
  return stats.reshape(-1)
