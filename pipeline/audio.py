"""Decoding audio files into mono float32 waveforms at the working rate.

Everything that can be wrong with an input ends as an `AudioError` whose
`reason` is one of `REASONS`; callers report it and carry on.
"""

from __future__ import annotations

import os

import numpy as np
import soundfile as sf
import soxr

from pipeline.spec import DEFAULT_SPEC, EncodingSpec

# Reason code -> what a user reads in the build report.
REASONS = {
    "empty": "the file holds no audio samples",
    "corrupt": "looks like audio but cannot be decoded",
    "not_audio": "not an audio format libsndfile can decode",
    "unreadable": "the file cannot be opened (permissions or I/O error)",
    "zero_rate": "the header gives a sample rate of zero",
    "non_finite": "the samples contain NaN or infinity",
    "too_long": "longer than the per-file duration cap",
    "too_short": "less active speech than the minimum for one clip",
    "silent": "no frame rises above the silence floor",
    "outside_root": "resolves to a path outside the corpus root",
}

AUDIO_EXTENSIONS = frozenset(
    (".wav", ".flac", ".ogg", ".oga", ".opus", ".mp3", ".aif", ".aiff", ".au",
     ".caf", ".w64", ".rf64", ".sph", ".nist"))

DEFAULT_MAX_SECONDS = 3600.0

# Magic numbers of formats we consider "audio": a decode failure on these is
# corruption, on anything else the file simply is not audio.
_AUDIO_MAGIC = (b"RIFF", b"RIFX", b"RF64", b"fLaC", b"OggS", b"ID3", b"FORM",
                b".snd", b"caff", b"NIST", b"riff")


class AudioError(ValueError):
  """An input that cannot become a clip, with a machine-readable reason."""

  def __init__(self, reason: str, detail: str = ""):
    if reason not in REASONS:
      raise ValueError(f"unknown reason {reason!r}")
    self.reason = reason
    self.detail = detail
    super().__init__(f"{reason}: {detail or REASONS[reason]}")


def _looks_like_audio(path: str) -> bool:
  try:
    with open(path, "rb") as f:
      head = f.read(12)
  except OSError:
    return False
  if head.startswith(_AUDIO_MAGIC):
    return True
  return len(head) >= 2 and head[0] == 0xFF and (head[1] & 0xE0) == 0xE0  # MPEG


def check_waveform(waveform, sample_rate) -> np.ndarray:
  """Validates an in-memory waveform; returns it as float32 mono."""
  if not sample_rate or sample_rate <= 0:
    raise AudioError("zero_rate", f"sample rate {sample_rate}")
  x = np.asarray(waveform)
  if x.ndim == 2:  # (samples, channels), as soundfile returns
    x = x.mean(axis=1)
  elif x.ndim != 1:
    raise AudioError("corrupt", f"waveform of shape {x.shape}")
  if x.size == 0:
    raise AudioError("empty")
  if np.issubdtype(x.dtype, np.integer):
    x = x.astype(np.float32) / float(np.iinfo(x.dtype).max)
  x = x.astype(np.float32, copy=False)
  if not np.isfinite(x).all():
    raise AudioError("non_finite", f"{int((~np.isfinite(x)).sum())} samples")
  return x


def resample(x: np.ndarray, rate: float, target: float) -> np.ndarray:
  if rate == target:
    return x
  return soxr.resample(x, rate, target, quality="HQ").astype(np.float32, copy=False)


def to_working_rate(waveform, sample_rate, spec: EncodingSpec = DEFAULT_SPEC):
  return resample(check_waveform(waveform, sample_rate), sample_rate, spec.sample_rate)


def load_audio(path: str, spec: EncodingSpec = DEFAULT_SPEC,
               max_seconds: float = DEFAULT_MAX_SECONDS) -> np.ndarray:
  """Reads any libsndfile format, mixes to mono, resamples to the working rate.

  Reads in blocks so that a file over `max_seconds` (or a header that lies
  about its length) never allocates more than the cap.
  """
  try:
    size = os.path.getsize(path)
  except OSError as e:
    raise AudioError("unreadable", e.strerror or str(e)) from None
  if size == 0:
    raise AudioError("empty", "0 bytes")
  try:
    f = sf.SoundFile(path)
  except PermissionError as e:
    raise AudioError("unreadable", e.strerror or str(e)) from None
  except (sf.LibsndfileError, RuntimeError, TypeError, ValueError) as e:
    if not os.access(path, os.R_OK):
      raise AudioError("unreadable", "permission denied") from None
    msg = str(e).split("\n")[0][:160]
    if "sample rate" in msg.lower() and "0" in msg:
      raise AudioError("zero_rate", msg) from None
    raise AudioError("corrupt" if _looks_like_audio(path) else "not_audio", msg) from None
  with f:
    rate = f.samplerate
    if rate <= 0:
      raise AudioError("zero_rate", f"sample rate {rate}")
    cap = int(max_seconds * rate)
    blocks, n = [], 0
    try:
      for block in f.blocks(blocksize=rate * 30, dtype="float32", always_2d=True):
        blocks.append(block.mean(axis=1) if block.shape[1] > 1 else block[:, 0])
        n += len(block)
        if n > cap:
          raise AudioError("too_long", f"over the {max_seconds:g} s cap (--max_seconds)")
    except sf.LibsndfileError as e:
      if not blocks:
        raise AudioError("corrupt", str(e)[:160]) from None
      # A truncated file: keep what decoded.
  if n == 0:
    raise AudioError("empty", "0 frames")
  x = np.concatenate(blocks).astype(np.float32, copy=False)
  if not np.isfinite(x).all():
    raise AudioError("non_finite", f"{int((~np.isfinite(x)).sum())} samples")
  return resample(x, rate, spec.sample_rate)
