"""The custom Keras layers of a2i's networks (trainer.networks): readers of
the encoding's planes, the pooling and statistics layers, score fusion.

Written in Keras 3 ops. Every number a layer takes from the encoding
(frames per clip, clip length, green law) comes from the dataset's
EncodingSpec through trainer.networks, and is saved in the layer's config.
"""

from __future__ import annotations

import keras
import numpy as np
from keras import layers, ops

from pipeline.planes import expand
from pipeline.spec import GRID, TRACKS, EncodingSpec, cell_size


@keras.saving.register_keras_serializable(package="a2i")
class CellReader(layers.Layer):
  """Reads the red and blue planes the way the encoder wrote them (pipeline.planes).

  Input (N, N, C) with red and blue among the planes ('planes' names them).
  Output (tracks, 2 + L): per descriptor track, its red median and mean
  (one pixel of each half-cell: the encoder's 94 quantised statistics, as
  stored), then its blue time course: the L values its cell holds, one per
  frame where the cell has a pixel for every frame (p * p >= `frames`, the
  spec's frames per clip: 410 for 4.096 s), all its pixels where pixels
  average several frames (L = p * p).
  Gathering ~19k values replaces convolving ~260k pixels per plane.
  """

  def __init__(self, planes: str, frames: int, **kwargs):
    super().__init__(**kwargs)
    self.planes, self.frames = planes, int(frames)

  def build(self, input_shape):
    n = input_shape[1]
    p = cell_size(n)
    tracks = np.arange(len(TRACKS))
    top, left = (tracks // GRID) * p, (tracks % GRID) * p
    self._red = np.stack([top * n + left, top * n + left + p // 2], axis=1)  # (47, 2)
    if p * p >= self.frames:    # pixel i holds frame floor(i T / p^2): its first pixel
      inside = -((-np.arange(self.frames) * p * p) // self.frames)
    else:                       # every pixel, each the mean of a few frames
      inside = np.arange(p * p)
    self._blue = (top[:, None] + inside // p) * n + left[:, None] + inside % p   # (47, L)

  def call(self, x):
    n = x.shape[1]
    flat = ops.reshape(x, (-1, n * n, x.shape[3]))
    parts = []
    for plane, where in (("r", self._red), ("b", self._blue)):
      if plane in self.planes:
        values = ops.take(flat[..., self.planes.index(plane)], where.reshape(-1), axis=1)
        parts.append(ops.reshape(values, (-1,) + where.shape))
    return parts[0] if len(parts) == 1 else ops.concatenate(parts, axis=-1)

  def compute_output_shape(self, input_shape):
    self.build(input_shape)
    width = (2 if "r" in self.planes else 0) + (self._blue.shape[1] if "b" in self.planes else 0)
    return (input_shape[0], len(TRACKS), width)

  def get_config(self):
    return {**super().get_config(), "planes": self.planes, "frames": self.frames}


@keras.saving.register_keras_serializable(package="a2i")
class Planes(layers.Layer):
  """Some of the input's planes, by index (a serialisable, Lambda-free slice)."""

  def __init__(self, indices, **kwargs):
    super().__init__(**kwargs)
    self.indices = [int(i) for i in indices]

  def call(self, x):
    return ops.take(x, self.indices, axis=-1)

  def compute_output_shape(self, input_shape):
    return (*input_shape[:-1], len(self.indices))

  def get_config(self):
    return {**super().get_config(), "indices": self.indices}


@keras.saving.register_keras_serializable(package="a2i")
class GreenWaveform(layers.Layer):
  """The green plane as the waveform it holds: (N, N, 1) pixels in [0, 1] ->
  (samples, 1), row-major as the encoder wrote them, the companding undone
  by the pipeline's own decoder (pipeline.planes.expand), averaged down to
  at most the working rate (a 512 px plane of a 4.096 s clip holds 16 kHz
  audio oversampled 4x). Built from the dataset's spec (`for_spec`)."""

  def __init__(self, mu: int, max_rate: float, clip_seconds: float, law: str = "mulaw",
               **kwargs):
    super().__init__(**kwargs)
    self.mu, self.max_rate, self.clip_seconds = int(mu), float(max_rate), float(clip_seconds)
    self.law = law

  @classmethod
  def for_spec(cls, spec: EncodingSpec, **kwargs) -> "GreenWaveform":
    return cls(spec.mu, spec.sample_rate, spec.clip_seconds, spec.green_law, **kwargs)

  def pool(self, image_size: int) -> int:
    rate = image_size * image_size / self.clip_seconds
    return max(1, int(rate // self.max_rate))

  def rate(self, image_size: int) -> float:
    return image_size * image_size / self.clip_seconds / self.pool(image_size)

  def call(self, x):
    n = x.shape[1]
    levels = ops.reshape(x, (-1, n * n // self.pool(n), self.pool(n))) * 2.0 - 1.0
    return ops.mean(expand(levels, self.law, self.mu, ops), axis=-1, keepdims=True)

  def compute_output_shape(self, input_shape):
    n = input_shape[1]
    return (input_shape[0], n * n // self.pool(n), 1)

  def get_config(self):
    return {**super().get_config(), "mu": self.mu, "max_rate": self.max_rate,
            "clip_seconds": self.clip_seconds, "law": self.law}


@keras.saving.register_keras_serializable(package="a2i")
class TrackLevels(layers.Layer):
  """mean over frames of relu(w * value + W @ red + b): `levels` soft
  thresholds of each track's time course, placed by the track's own red
  statistics. Inputs: [course (tracks, frames)] or [course, red (tracks, 2)].

  With `voiced_track` (the pitch track's index), each histogram is also
  pooled over the frames where that track is defined (non-zero: the encoder
  writes 0 where pitch is undefined), giving 2 * levels values per track:
  descriptors of voiced speech, not diluted by pauses, whose share differs
  from clip to clip. With `measured_only`, the histogram is pooled over the
  pixels where some track has a value (measured_pixels: the active frames),
  not over pauses and a short clip's padding."""

  def __init__(self, levels: int, voiced_track: int | None = None, measured_only: bool = False,
               **kwargs):
    super().__init__(**kwargs)
    self.levels = int(levels)
    self.voiced_track = None if voiced_track is None else int(voiced_track)
    self.measured_only = bool(measured_only)

  def build(self, input_shapes):
    self.w = self.add_weight(shape=(self.levels,), initializer="glorot_uniform", name="w")
    self.b = self.add_weight(shape=(self.levels,), initializer="zeros", name="b")
    self.red = None
    if len(input_shapes) > 1:
      self.red = self.add_weight(shape=(input_shapes[1][-1], self.levels),
                                 initializer="glorot_uniform", name="red")

  def call(self, inputs):
    course = inputs[0][..., None] * self.w + self.b                   # (B, 47, L, levels)
    if self.red is not None:
      course = course + ops.matmul(inputs[1], self.red)[:, :, None, :]
    active = ops.relu(course)
    if self.measured_only:
      pooled = masked_mean(active, measured_pixels(inputs[0])[..., None], axis=2)
    else:
      pooled = ops.mean(active, axis=2)
    if self.voiced_track is None:
      return pooled
    k = self.voiced_track
    voiced = ops.cast(inputs[0][:, k:k + 1, :] > 0, active.dtype)[..., None]   # (B, 1, L, 1)
    # +1 in the count: a clip without a voiced frame pools to 0, not 0/0.
    over_voiced = ops.sum(active * voiced, axis=2) / (ops.sum(voiced, axis=2) + 1.0)
    return ops.concatenate([pooled, over_voiced], axis=-1)

  def compute_output_shape(self, input_shapes):
    width = self.levels * (1 if self.voiced_track is None else 2)
    return (*input_shapes[0][:2], width)

  def get_config(self):
    return {**super().get_config(), "levels": self.levels, "voiced_track": self.voiced_track,
            "measured_only": self.measured_only}


def measured_pixels(course):
  """(B, tracks, L) blue time courses -> (B, 1, L): 1 where some track has
  a value, 0 elsewhere. The encoder measures the tracks on a clip's active
  frames and writes 0 for every track on the others: pauses, and all of a
  short clip's padding."""
  return ops.cast(ops.max(course, axis=1, keepdims=True) > 0, course.dtype)


def masked_mean(x, mask, axis: int):
  """Mean of x over `axis` where mask is 1 (mask broadcasts against x); 0
  where the mask is empty."""
  return ops.sum(x * mask, axis=axis) / ops.maximum(ops.sum(mask, axis=axis), 1.0)


@keras.saving.register_keras_serializable(package="a2i")
class MeasuredMean(layers.Layer):
  """Each blue time course's mean over the measured pixels only
  (measured_pixels): (B, tracks, L) -> (B, tracks, 1)."""

  def call(self, course):
    return masked_mean(course, measured_pixels(course), axis=2)[..., None]

  def compute_output_shape(self, input_shape):
    return (*input_shape[:2], 1)


@keras.saving.register_keras_serializable(package="a2i")
class RecordedSamples(layers.Layer):
  """The image as stored (N, N, C), pixel values 0..255 -> (samples, 1), the
  green plane (channel `channel`) as GreenWaveform unfolds it: 1 where the
  clip was recorded, 0 over the padding, whose pixels all hold the
  encoder's silence value (`silence`, pipeline.planes.silence_pixel). Read
  from the stored pixel values, in float32, so that the comparison is
  exact under any precision policy. A recorded stretch of digital silence
  reads as padding, which it is as far as a voice goes."""

  def __init__(self, silence: int, pool: int, channel: int, **kwargs):
    kwargs.setdefault("dtype", "float32")
    super().__init__(**kwargs)
    self.silence, self.pool, self.channel = int(silence), int(pool), int(channel)

  def call(self, x):
    n = x.shape[1]
    off = ops.cast(ops.not_equal(x[..., self.channel], float(self.silence)), "float32")
    return ops.max(ops.reshape(off, (-1, n * n // self.pool, self.pool)), axis=-1,
                   keepdims=True)

  def compute_output_shape(self, input_shape):
    n = input_shape[1]
    return (input_shape[0], n * n // self.pool, 1)

  def get_config(self):
    return {**super().get_config(), "silence": self.silence, "pool": self.pool,
            "channel": self.channel}


@keras.saving.register_keras_serializable(package="a2i")
class MaskedStatistics(layers.Layer):
  """Statistics pooling over the recorded frames: inputs [x (B, T, C),
  mask (B, T, 1)] -> (B, 2C), each channel's mean and standard deviation
  over the frames where the mask is 1 (epsilon under the root, as TimeStd)."""

  def call(self, inputs):
    x, mask = inputs
    mask = ops.cast(mask, x.dtype)
    mean = masked_mean(x, mask, axis=1)
    var = masked_mean(ops.square(x - mean[:, None, :]), mask, axis=1)
    return ops.concatenate([mean, ops.sqrt(var + 1e-5)], axis=-1)

  def compute_output_shape(self, input_shapes):
    return (input_shapes[0][0], 2 * input_shapes[0][2])


@keras.saving.register_keras_serializable(package="a2i")
class Columns(layers.Layer):
  """x[..., start:stop] (a serialisable slice of the last axis)."""

  def __init__(self, start: int, stop: int | None, **kwargs):
    super().__init__(**kwargs)
    self.start, self.stop = start, stop

  def call(self, x):
    return x[..., self.start:self.stop]

  def compute_output_shape(self, input_shape):
    width = (self.stop if self.stop is not None else input_shape[-1]) - self.start
    return (*input_shape[:-1], width)

  def get_config(self):
    return {**super().get_config(), "start": self.start, "stop": self.stop}


@keras.saving.register_keras_serializable(package="a2i")
class MeanOver(layers.Layer):
  """Mean over one axis."""

  def __init__(self, axis: int, keepdims: bool = False, **kwargs):
    super().__init__(**kwargs)
    self.axis, self.keepdims = axis, keepdims

  def call(self, x):
    return ops.mean(x, axis=self.axis, keepdims=self.keepdims)

  def get_config(self):
    return {**super().get_config(), "axis": self.axis, "keepdims": self.keepdims}


@keras.saving.register_keras_serializable(package="a2i")
class Magnitude(layers.Layer):
  """|x|: a filter's output amplitude, whatever its phase."""

  def call(self, x):
    return ops.abs(x)


@keras.saving.register_keras_serializable(package="a2i")
class LogCompress(layers.Layer):
  """log(1 + x): band energies spread over decades, as loudness does."""

  def call(self, x):
    return ops.log1p(x)


@keras.saving.register_keras_serializable(package="a2i")
class TimeStd(layers.Layer):
  """Standard deviation over time (axis 1) of each channel, with an epsilon
  under the root: a channel constant over time (a ReLU that stayed off)
  would otherwise have an infinite gradient."""

  def call(self, x):
    return ops.sqrt(ops.var(x, axis=1) + 1e-5)

  def compute_output_shape(self, input_shape):
    return (input_shape[0], input_shape[2])


@keras.saving.register_keras_serializable(package="a2i")
class Fusion(layers.Layer):
  """Weighted sum of each plane group's evidence (logits). The weights are
  not learnt by gradient descent: 1 while training, then fitted on held-out
  clips by `calibrate_fusion`, as speaker recognition fuses the scores of its
  subsystems (linear logistic-regression fusion on a development set)."""

  def build(self, input_shape):
    self.scale = self.add_weight(shape=(len(input_shape),), initializer="ones",
                                 trainable=False, name="group_weights")

  def call(self, evidence):
    return ops.sum(ops.stack(evidence, axis=1) * ops.reshape(self.scale, (1, -1, 1)), axis=1)

  def compute_output_shape(self, input_shape):
    return input_shape[0]
