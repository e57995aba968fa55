"""Decoding audio files into mono float32 waveforms at the working rate.

Everything that can be wrong with an input ends as an `AudioError` whose
`reason` is one of `REASONS`; callers report it and carry on.
"""

from __future__ import annotations

import math
import os
import stat
import threading
from typing import NamedTuple

import numpy as np
import soundfile as sf
import soxr

from pipeline.spec import DEFAULT_SPEC, EncodingSpec

# Reason code -> what a user reads in the build report.
REASONS = {
    "empty": "the file holds no audio samples",
    "corrupt": "looks like audio but cannot be decoded",
    "not_audio": "not an audio format libsndfile or FFmpeg (PyAV) can decode",
    "unreadable": "the file cannot be opened (permissions or I/O error)",
    "zero_rate": "the header gives a sample rate of zero",
    "non_finite": "the samples contain NaN or infinity",
    "too_long": "longer than the per-file duration cap",
    "too_short": "less active speech than the minimum for one clip",
    "silent": "no frame rises above the silence floor",
    "implausible_rate": "the header's sample rate is outside 4-768 kHz (a damaged or "
                        "forged header: read as it claims, the file would last hours)",
}

RATE_RANGE = (4000, 768000)   # telephone-band recordings to the fastest converters sold
BLOCK_BYTES = 16 << 20        # decoded at most this much at a time, whatever the header

AUDIO_EXTENSIONS = frozenset(
    (".wav", ".flac", ".ogg", ".oga", ".opus", ".mp3", ".aif", ".aiff", ".au",
     ".caf", ".w64", ".rf64", ".sph", ".nist",
     ".m4a", ".mp4", ".aac", ".webm", ".mka"))   # the last five through FFmpeg (PyAV)

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


def _container(head: bytes) -> str | None:
  """'mp4' (an ISO media file: .m4a, .mp4), 'matroska' (.webm, .mka) or
  'adts' (raw AAC), by their signatures; None for anything else."""
  if head[4:8] == b"ftyp":
    return "mp4"
  if head.startswith(b"\x1a\x45\xdf\xa3"):
    return "matroska"
  if len(head) >= 2 and head[0] == 0xFF and head[1] & 0xF6 == 0xF0:
    return "adts"
  return None


def _looks_like_audio(head: bytes) -> bool:
  if head.startswith(_AUDIO_MAGIC) or _container(head):
    return True
  return len(head) >= 2 and head[0] == 0xFF and (head[1] & 0xE0) == 0xE0  # MPEG


def check_waveform(waveform, sample_rate, notes: list | None = None) -> np.ndarray:
  """Validates an in-memory waveform; returns it as float32 mono, conditioned
  as decoded files are (`condition`)."""
  if not sample_rate or sample_rate <= 0:
    raise AudioError("zero_rate", f"sample rate {sample_rate}")
  if not RATE_RANGE[0] <= sample_rate <= RATE_RANGE[1]:
    raise AudioError("implausible_rate", f"{sample_rate:g} Hz")
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
  total = float(x.sum(dtype=np.float64))
  if not math.isfinite(total):   # the float64 sum of finite float32 samples is finite
    raise AudioError("non_finite", f"{int((~np.isfinite(x)).sum())} samples")
  top, bottom = float(x.max()), float(x.min())
  mean = total / len(x)
  # The variance is at least range^2 / 2n: a range this wide is no constant,
  # and the sum of squares is needed only for a narrower one.
  if (top - bottom) ** 2 / (2 * len(x)) <= 1e-13 * max(mean * mean, 1e-12):
    refuse_constant(total, float(np.square(x, dtype=np.float64).sum()), len(x))
  return condition(x, max(top, -bottom), notes, mean)


def condition(x: np.ndarray, peak: float, notes: list | None = None,
              mean: float | None = None) -> np.ndarray:
  """Removes the recording's DC offset (its mean: zero phase, nothing else
  touched), and brings float samples beyond full scale (`peak` > 1: integer
  PCM stored as float without scaling, or a broken writer) back to a peak of
  1, noting it: every level the descriptors read is then in dBFS of a real
  signal. `mean`: x's mean in float64, if the caller has summed x already."""
  x = np.asarray(x, np.float32)
  if peak > 1.0:
    x = x * np.float32(1.0 / peak)
    mean = None
    if notes is not None:
      notes.append(f"samples beyond full scale (peak {peak:.4g}): scaled to a peak of 1")
  if mean is None:
    mean = x.mean(dtype=np.float64)
  return x - np.float32(mean)


def refuse_constant(total: float, squares: float, n: int) -> None:
  """A recording that is one value throughout (a DC offset and no signal)
  is silence, however far from zero the value: say so."""
  mean = total / n
  if squares / n - mean * mean <= 1e-14 * max(mean * mean, 1e-12):
    raise AudioError("silent", f"a constant {mean:.4g} throughout: an offset, no signal")


def resample(x: np.ndarray, rate: float, target: float) -> np.ndarray:
  """x at `target` Hz (soxr, high quality), float32."""
  if rate == target:
    return x
  if x.dtype == np.float32 and x.ndim == 1:
    # A resampler kept per rate pair and cleared between signals gives
    # soxr.resample's output without designing its filter again each call.
    stream = _resamplers(rate, target)
    stream.clear()
    return stream.resample_chunk(x, last=True)
  return soxr.resample(x, rate, target, quality="HQ").astype(np.float32, copy=False)


_local = threading.local()


def _resamplers(rate: float, target: float) -> soxr.ResampleStream:
  """This thread's resampler from `rate` to `target` (a stream holds state)."""
  cache = _local.__dict__.setdefault("streams", {})
  if (rate, target) not in cache:
    if len(cache) >= 16:   # a corpus of many rates: drop the oldest
      cache.pop(next(iter(cache)))
    cache[rate, target] = soxr.ResampleStream(rate, target, 1, dtype="float32", quality="HQ")
  return cache[rate, target]


def to_working_rate(waveform, sample_rate, spec: EncodingSpec = DEFAULT_SPEC):
  return resample(check_waveform(waveform, sample_rate), sample_rate, spec.sample_rate)


def _wav_header(head: bytes):
  """(sample rate, bytes per frame, declared data bytes, data offset) of a
  RIFF/WAVE header, or None. libsndfile hides two things we want to report:
  a zero sample rate (it says only "SF_INFO struct incomplete") and a data
  size larger than the file (it silently reads what is there)."""
  if len(head) < 12 or head[:4] not in (b"RIFF", b"RIFX") or head[8:12] != b"WAVE":
    return None
  endian = "<" if head[:4] == b"RIFF" else ">"
  pos, rate, frame_bytes = 12, None, None
  while pos + 8 <= len(head):
    chunk, size = head[pos:pos + 4], int.from_bytes(head[pos + 4:pos + 8],
                                                    "little" if endian == "<" else "big")
    if chunk == b"fmt " and pos + 24 <= len(head):
      rate = int.from_bytes(head[pos + 12:pos + 16], "little" if endian == "<" else "big")
      frame_bytes = int.from_bytes(head[pos + 20:pos + 22], "little" if endian == "<" else "big")
    elif chunk == b"data":
      return rate, frame_bytes, size, pos + 8
    pos += 8 + size + (size & 1)
  return (rate, frame_bytes, None, None) if rate is not None else None


def _open_local(path: str):
  info = os.stat(path)
  if not stat.S_ISREG(info.st_mode):  # a FIFO would block open() forever
    raise AudioError("unreadable", "not a regular file")
  return open(path, "rb"), info.st_size


class Recording(NamedTuple):
  samples: np.ndarray   # float32, mono, at the working rate
  source_rate: int      # the file's own sample rate


def load_audio(path: str, spec: EncodingSpec = DEFAULT_SPEC,
               max_seconds: float = DEFAULT_MAX_SECONDS, notes: list | None = None,
               opener=None) -> np.ndarray:
  """The recording's samples at the working rate (`load_recording`)."""
  return load_recording(path, spec, max_seconds, notes, opener).samples


def load_recording(path: str, spec: EncodingSpec = DEFAULT_SPEC,
                   max_seconds: float = DEFAULT_MAX_SECONDS, notes: list | None = None,
                   opener=None) -> Recording:
  """Reads any libsndfile format, and AAC (.m4a, .mp4, .aac) and Opus or
  Vorbis in WebM/Matroska through FFmpeg (PyAV); mixes to mono, resamples
  to the working rate, and keeps the file's own rate: it bounds the band
  that holds anything (EncodingSpec.analysis_band).

  Reads in blocks so that a file over `max_seconds` (or a header that lies
  about its length) never allocates more than the cap. Repairs it made (a
  truncated file decoded as far as it goes) are appended to `notes`.
  The file is opened by Python and handed to the decoder as a file object,
  so any file name the OS accepts works, UTF-8 or not. `opener(path) ->
  (binary stream, size in bytes)` opens what the OS cannot (a bucket object,
  through the caller's filesystem layer); it raises OSError when it cannot.
  """
  try:
    stream, size = (opener or _open_local)(path)
  except OSError as e:
    raise AudioError("unreadable", e.strerror or str(e)) from None
  with stream:
    if size == 0:
      raise AudioError("empty", "0 bytes")
    head = stream.read(4096)
    stream.seek(0)
    if _container(head):
      return _load_with_ffmpeg(stream, spec, max_seconds, notes)
    wav = _wav_header(head)
    if wav and wav[0] == 0:
      raise AudioError("zero_rate", "the WAV header gives a sample rate of 0")
    try:
      f = sf.SoundFile(stream)
    except (sf.LibsndfileError, RuntimeError, TypeError, ValueError) as e:
      msg = str(e).split("\n")[0][:160]
      raise AudioError("corrupt" if _looks_like_audio(head) else "not_audio", msg) from None
    with f:
      rate = _checked_rate(f.samplerate)
      if wav and wav[1] and wav[2] is not None and notes is not None:
        declared = wav[2] / wav[1] / rate
        present = (size - wav[3]) / wav[1] / rate
        if declared > present + 0.01:
          notes.append(f"truncated: the header declares {declared:.1f} s, the file holds "
                       f"{present:.1f} s; decoded what is there")
      blocksize = max(1, min(rate * 30, BLOCK_BYTES // (4 * max(f.channels, 1))))
      blocks = (b.mean(axis=1) if b.shape[1] > 1 else b[:, 0]
                for b in f.blocks(blocksize=blocksize, dtype="float32", always_2d=True))
      return Recording(
          _decode_blocks(blocks, rate, spec, max_seconds, notes, sf.LibsndfileError), rate)


def _checked_rate(rate) -> int:
  if not rate or rate <= 0:
    raise AudioError("zero_rate", f"sample rate {rate}")
  if not RATE_RANGE[0] <= rate <= RATE_RANGE[1]:
    raise AudioError("implausible_rate", f"{rate} Hz")
  return int(rate)


def _load_with_ffmpeg(stream, spec: EncodingSpec, max_seconds: float, notes) -> Recording:
  """A compressed container (AAC in MP4, Opus or Vorbis in WebM/Matroska,
  raw AAC) decoded frame by frame by FFmpeg through PyAV, whose wheels ship
  FFmpeg's decoders: the same blocks, cap and checks as libsndfile's formats.
  The encoder's priming samples (AAC: about 1,024) are kept, as FFmpeg
  decodes them: tens of milliseconds of near-silence before the first clip."""
  import av

  try:
    container = av.open(stream, mode="r")
  except (av.error.FFmpegError, ValueError) as e:
    raise AudioError("corrupt", str(e).splitlines()[0][:160]) from None
  with container:
    if not container.streams.audio:
      raise AudioError("not_audio", "a media file without an audio stream")
    audio = container.streams.audio[0]
    rate = _checked_rate(audio.codec_context.sample_rate)

    def blocks():
      for frame in container.decode(audio):
        x = frame.to_ndarray()
        if not frame.format.is_planar:        # interleaved: (1, samples * channels)
          x = x.reshape(-1, len(frame.layout.channels)).T
        if np.issubdtype(x.dtype, np.integer):
          x = x.astype(np.float32) / float(np.iinfo(x.dtype).max)
        yield x.astype(np.float32, copy=False).mean(axis=0)

    return Recording(
        _decode_blocks(blocks(), rate, spec, max_seconds, notes, av.error.FFmpegError), rate)


def _decode_blocks(blocks, rate: int, spec: EncodingSpec, max_seconds: float, notes,
                   decoder_error) -> np.ndarray:
  """Mixes to mono, checks and resamples block by block (`blocks`: mono
  float32 arrays at `rate`, as a decoder yields them): memory holds one
  block and the output at the working rate, at most `max_seconds` of it.
  `decoder_error`: what the decoder raises on damaged data, which ends the
  file where it is damaged (noted) or, before any sample, refuses it."""
  cap = int(max_seconds * rate)
  stream = None if rate == spec.sample_rate else soxr.ResampleStream(
      rate, spec.sample_rate, 1, dtype="float32", quality="HQ")
  out, n, peak, total, squares = [], 0, 0.0, 0.0, 0.0
  try:
    for mono in blocks:
      n += len(mono)
      if n > cap:
        raise AudioError("too_long", f"over the {max_seconds:g} s cap (--max_seconds)")
      if not np.isfinite(mono).all():
        raise AudioError("non_finite", f"{int((~np.isfinite(mono)).sum())} samples in a block")
      peak = max(peak, float(np.abs(mono).max()) if len(mono) else 0.0)
      total += float(mono.sum(dtype=np.float64))
      squares += float(np.square(mono, dtype=np.float64).sum())
      out.append(stream.resample_chunk(mono) if stream else mono.copy())
  except decoder_error as e:
    if n == 0:
      raise AudioError("corrupt", str(e)[:160]) from None
    if notes is not None:
      notes.append(f"decoding stopped early ({str(e)[:80]}); kept what decoded")
  if n == 0:
    raise AudioError("empty", "0 frames")
  refuse_constant(total, squares, n)
  if stream:
    out.append(stream.resample_chunk(np.zeros(0, np.float32), last=True))
  return condition(np.concatenate(out), peak, notes)
