"""Cutting a recording into the clips that one image each holds.

A clip is `spec.clip_samples` long (4.096 s at 16 kHz). Clips are cut back to
back from the start of the recording. A clip, including the last partial one
(the tail), is kept when it holds at least `spec.min_speech_seconds` of active
audio; a kept clip shorter than a full clip is zero-padded by the encoder.
So a 1.5 s utterance becomes one padded clip, while a 0.2 s cough does not.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from pipeline.audio import DEFAULT_MAX_SECONDS, AudioError, load_recording
from pipeline.spec import DEFAULT_SPEC, EncodingSpec


@dataclasses.dataclass(frozen=True)
class Clip:
  index: int
  start: int            # first sample in the recording, at the working rate
  samples: np.ndarray   # float32, at most spec.clip_samples long, unpadded
  band: float | None = None   # Hz: the spectral descriptors' upper edge (None: the
                              # working rate's Nyquist; EncodingSpec.analysis_band)

  def start_seconds(self, spec: EncodingSpec = DEFAULT_SPEC) -> float:
    return self.start / spec.sample_rate


def frame_rms_db(x: np.ndarray, spec: EncodingSpec = DEFAULT_SPEC) -> np.ndarray:
  """RMS level in dBFS of centred `win_length` frames every `hop_length`.

  Sums squares per hop, then adds the hops each window covers: O(len(x))
  for any recording, with no long running sum.
  """
  hop = spec.hop_length
  n_frames = 1 + len(x) // hop
  if spec.win_length % hop:
    raise ValueError("win_length must be a whole number of hops")
  span = spec.win_length // hop            # frame k covers hops k - span/2 .. k + span/2 - 1
  n_hops = n_frames + span
  squares = np.zeros(n_hops * hop)
  start = (span // 2) * hop
  np.square(x, out=squares[start:start + len(x)], dtype=np.float64)
  per_hop = squares.reshape(n_hops, hop).sum(axis=1)
  energy = sum(per_hop[k:k + n_frames] for k in range(span))
  return (10.0 * np.log10(np.maximum(energy / spec.win_length, 1e-12))).astype(np.float32)


def _percentile(x: np.ndarray, q: float) -> float:
  """np.percentile(x, q) (linear interpolation) by one partition: a tenth of its cost."""
  position = q / 100 * (len(x) - 1)
  lo = int(position)
  hi = min(lo + 1, len(x) - 1)
  part = np.partition(x, (lo, hi))
  return float(part[lo] + (part[hi] - part[lo]) * (position - lo))


def active_frames(level_db: np.ndarray, spec: EncodingSpec = DEFAULT_SPEC) -> np.ndarray:
  """Speech-activity mask: frames that rise above the absolute floor, come
  within 40 dB of the peak, and stand 6 dB clear of the background.

  The background is the noise floor, the 10th percentile of frame levels,
  when it lies at least two margins under the peak: a recording with pauses
  shows its room or line noise there, which the peak-relative rule alone
  lets through (noise at -61 dBFS under speech peaking at -24 dBFS is within
  40 dB). A steady sound (a sustained vowel, a tone) has no such floor and
  stays active; speech without pauses loses only its faintest frames.
  """
  if level_db.size == 0:
    return np.zeros(0, bool)
  peak = float(level_db.max())
  threshold = max(spec.silence_floor_db, peak - spec.silence_relative_db)
  noise = _percentile(level_db, spec.noise_percentile)
  if peak - noise >= 2 * spec.noise_margin_db:
    threshold = max(threshold, noise + spec.noise_margin_db)
  return level_db > threshold


def segment(x: np.ndarray, spec: EncodingSpec = DEFAULT_SPEC,
            band: float | None = None) -> list[Clip]:
  """Splits a working-rate recording into clips, which carry the recording's
  analysis `band`; raises AudioError if none is usable."""
  level = frame_rms_db(x, spec)
  active = active_frames(level, spec)
  if not active.any():
    raise AudioError("silent", f"peak frame level {float(level.max()):.1f} dBFS")
  frame_seconds = spec.hop_length / spec.sample_rate
  clip_of_frame = (np.arange(len(active)) * spec.hop_length) // spec.clip_samples
  speech_per_clip = np.bincount(clip_of_frame[active], minlength=int(clip_of_frame[-1]) + 1)
  clips = []
  for k, n_active in enumerate(speech_per_clip):
    start = k * spec.clip_samples
    if start >= len(x) or n_active * frame_seconds < spec.min_speech_seconds:
      continue
    clips.append(Clip(len(clips), start, x[start:start + spec.clip_samples], band))
  if not clips:
    speech = float(active.sum()) * frame_seconds
    raise AudioError(
        "too_short", f"{speech:.2f} s of speech, {spec.min_speech_seconds:g} s needed")
  return clips


def clips_of(path: str, spec: EncodingSpec = DEFAULT_SPEC,
             max_seconds: float = DEFAULT_MAX_SECONDS, opener=None) -> list[Clip]:
  """The clips of an audio file (pipeline.audio.load_recording, then
  `segment`), each with the band its rate holds; raises AudioError when it
  gives none."""
  x, rate = load_recording(path, spec, max_seconds, opener=opener)
  return segment(x, spec, spec.analysis_band(rate))
