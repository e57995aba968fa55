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

from pipeline.audio import AudioError
from pipeline.spec import DEFAULT_SPEC, EncodingSpec


@dataclasses.dataclass(frozen=True)
class Clip:
  index: int
  start: int            # first sample in the recording, at the working rate
  samples: np.ndarray   # float32, at most spec.clip_samples long, unpadded

  def start_seconds(self, spec: EncodingSpec = DEFAULT_SPEC) -> float:
    return self.start / spec.sample_rate


def frame_rms_db(x: np.ndarray, spec: EncodingSpec = DEFAULT_SPEC) -> np.ndarray:
  """RMS level in dBFS of centred `win_length` frames every `hop_length`.

  Uses a running sum of squares, so it costs O(len(x)) for any recording.
  """
  half = spec.win_length // 2
  n_frames = 1 + len(x) // spec.hop_length
  c = np.concatenate(([0.0], np.cumsum(np.square(x, dtype=np.float64))))
  centres = np.arange(n_frames) * spec.hop_length
  lo = np.clip(centres - half, 0, len(x))
  hi = np.clip(centres + half, 0, len(x))
  ms = (c[hi] - c[lo]) / spec.win_length
  return (10.0 * np.log10(np.maximum(ms, 1e-12))).astype(np.float32)


def active_frames(level_db: np.ndarray, spec: EncodingSpec = DEFAULT_SPEC) -> np.ndarray:
  """Speech-activity mask: above the absolute floor and within 40 dB of the peak."""
  if level_db.size == 0:
    return np.zeros(0, bool)
  threshold = max(spec.silence_floor_db, float(level_db.max()) - spec.silence_relative_db)
  return level_db > threshold


def segment(x: np.ndarray, spec: EncodingSpec = DEFAULT_SPEC) -> list[Clip]:
  """Splits a working-rate recording into clips; raises AudioError if none is usable."""
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
    clips.append(Clip(len(clips), start, x[start:start + spec.clip_samples]))
  if not clips:
    speech = float(active.sum()) * frame_seconds
    raise AudioError(
        "too_short", f"{speech:.2f} s of speech, {spec.min_speech_seconds:g} s needed")
  return clips
