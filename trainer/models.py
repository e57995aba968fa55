"""Speaker CNNs: the paper's, and one that reads the encoding's descriptor cells."""

from __future__ import annotations

import keras
import numpy as np
from keras import layers, ops

from pipeline.spec import DEFAULT_SPEC, GRID, TRACKS, cell_size
from trainer.config import MODELS, POOLINGS  # noqa: F401  (re-exported)

TRACK_NAMES = [t.name for t in TRACKS]


def compile_model(model: keras.Model, learning_rate: float, decay_steps: int | None = None,
                  jit_compile: bool = False) -> keras.Model:
  """Adam; with `decay_steps`, the rate follows a cosine from `learning_rate`
  to 0. `jit_compile` compiles the training step with XLA."""
  if decay_steps:
    learning_rate = keras.optimizers.schedules.CosineDecay(learning_rate, decay_steps)
  model.compile(optimizer=keras.optimizers.Adam(learning_rate),
                loss="sparse_categorical_crossentropy", metrics=["accuracy"],
                jit_compile=jit_compile)
  return model


@keras.saving.register_keras_serializable(package="a2i")
class CellReader(layers.Layer):
  """Reads the red and blue planes the way the encoder wrote them (pipeline.planes).

  Input (N, N, C) with red and blue among the planes ('planes' names them).
  Output (tracks, 2 + L): per descriptor track, its red median and mean
  (one pixel of each half-cell: the encoder's 94 quantised statistics, as
  stored), then its blue time course: the L values its cell holds, one per
  frame where the cell has a pixel for every frame (N >= 256: L = 410), all
  its pixels where pixels average several frames (N <= 128: L = p * p).
  Gathering ~19k values replaces convolving ~260k pixels per plane.
  """

  def __init__(self, planes: str = "rb", frames: int = 410, **kwargs):
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
  (samples, 1), row-major as the encoder wrote them, mu-law undone, averaged
  down to at most 16 kHz (a 512 px plane holds 16 kHz audio oversampled 4x)."""

  def __init__(self, mu: int = 255, max_rate: float = 16000.0, clip_seconds: float = 4.096,
               **kwargs):
    super().__init__(**kwargs)
    self.mu, self.max_rate, self.clip_seconds = int(mu), float(max_rate), float(clip_seconds)

  def pool(self, image_size: int) -> int:
    rate = image_size * image_size / self.clip_seconds
    return max(1, int(rate // self.max_rate))

  def rate(self, image_size: int) -> float:
    return image_size * image_size / self.clip_seconds / self.pool(image_size)

  def call(self, x):
    n = x.shape[1]
    y = ops.reshape(x, (-1, n * n // self.pool(n), self.pool(n))) * 2.0 - 1.0
    y = ops.sign(y) * (ops.power(1.0 + self.mu, ops.abs(y)) - 1.0) / self.mu
    return ops.mean(y, axis=-1, keepdims=True)

  def compute_output_shape(self, input_shape):
    n = input_shape[1]
    return (input_shape[0], n * n // self.pool(n), 1)

  def get_config(self):
    return {**super().get_config(), "mu": self.mu, "max_rate": self.max_rate,
            "clip_seconds": self.clip_seconds}


def _track_levels(tracks, red: int, levels: int, pooling: str = "all"):
  """Per descriptor track: its red statistics (if read), the mean of its blue
  time course, and a learned soft histogram of the course: the mean over
  frames of `levels` ReLU thresholds of each value, shifted by the track's
  red statistics (pixel 0, undefined, is included as itself: how much of a
  clip a track is defined on is information too). `pooling="voiced"` adds
  the same histogram over the frames where pitch is defined."""
  stats = Columns(0, red, name="red_stats")(tracks) if red else None
  course = Columns(red, None, name="blue_course")(tracks)                 # (47, L)
  voiced = TRACK_NAMES.index("f0") if pooling == "voiced" else None
  soft = TrackLevels(levels, voiced_track=voiced, name="soft_histogram")(
      [course, stats] if stats is not None else [course])                # (47, levels)
  mean = MeanOver(2, keepdims=True, name="course_mean")(course)
  return layers.Concatenate()([p for p in (stats, mean, soft) if p is not None])


@keras.saving.register_keras_serializable(package="a2i")
class TrackLevels(layers.Layer):
  """mean over frames of relu(w * value + W @ red + b): `levels` soft
  thresholds of each track's time course, placed by the track's own red
  statistics. Inputs: [course (tracks, frames)] or [course, red (tracks, 2)].

  With `voiced_track` (the pitch track's index), each histogram is also
  pooled over the frames where that track is defined (non-zero: the encoder
  writes 0 where pitch is undefined), giving 2 * levels values per track:
  descriptors of voiced speech, not diluted by pauses, whose share differs
  from clip to clip."""

  def __init__(self, levels: int, voiced_track: int | None = None, **kwargs):
    super().__init__(**kwargs)
    self.levels = int(levels)
    self.voiced_track = None if voiced_track is None else int(voiced_track)

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
    return {**super().get_config(), "levels": self.levels, "voiced_track": self.voiced_track}


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


def _waveform_branch(g, image_size: int, dropout: float, bands: int = 48):
  """Green as a 1-D signal: a learnable filterbank (4 ms kernels every 1 ms),
  its magnitudes averaged into 10 ms frames and log-compressed; two 1-D conv
  blocks over the frames; mean and standard deviation over time (a voice is
  the same wherever in the clip it speaks). ~100x fewer operations than 2-D
  convolutions over a plane that is a folded waveform."""
  unfold = GreenWaveform(name="green_waveform")
  rate = unfold.rate(image_size)
  x = unfold(g)
  x = layers.Conv1D(bands, max(4, round(0.004 * rate)), strides=max(1, round(0.001 * rate)),
                    padding="same", use_bias=False, name="filterbank")(x)
  x = Magnitude()(x)
  x = layers.AveragePooling1D(10, name="frames_10ms")(x)
  x = LogCompress()(layers.Rescaling(100.0)(x))
  for filters in (96, 128):
    x = layers.Conv1D(filters, 5, padding="same", use_bias=False)(x)
    x = layers.BatchNormalization(momentum=0.9)(x)
    x = layers.ReLU()(x)
    x = layers.MaxPooling1D(2)(x)
  x = layers.Dropout(dropout)(x)
  return layers.Concatenate(name="green_stats")([layers.GlobalAveragePooling1D()(x),
                                                 TimeStd()(x)])


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


def _conv_blocks(x, dropout: float):
  """The paper's four blocks: 3x3 conv (32, 64, 128, 256 filters), batch
  norm, ReLU, 2x2 max pool, dropout.

  Dropout in front of the next block's batch normalisation makes it learn the
  variance of dropped-out activations, which inference never sees ("variance
  shift", Li et al. 2019: measured here, a log-mel CNN built so reached 100 %
  training accuracy and scored chance at inference); the paper's network
  keeps it as published, the other networks drop out only after their last
  block.
  """
  for filters in (32, 64, 128, 256):
    x = layers.Conv2D(filters, 3, padding="same", use_bias=False)(x)
    # momentum 0.9, not Keras's 0.99: a few hundred steps must be enough for the
    # moving statistics used at inference to catch up on small corpora.
    x = layers.BatchNormalization(momentum=0.9)(x)
    x = layers.Activation("relu")(x)
    x = layers.MaxPooling2D(2)(x)
    x = layers.Dropout(dropout)(x)
  return x


def _standardise(x):
  """Per-feature standardisation over the batch (inference: over the training set).

  Speakers differ by a few pixel levels around each cell's population mean.
  On 20 voices the same cell features reached 30 % test accuracy normalised
  per clip (layer normalisation) and 94 % standardised per feature
  (docs/training.md)."""
  return layers.BatchNormalization(momentum=0.9, name="standardise")(x)


def build_model(name: str, image_size: int, planes: str, num_classes: int,
                dropout: float = 0.25, levels: int = 16, pooling: str = "all") -> keras.Model:
  """`planes`: the input's planes in order, a subset of "rgb" (e.g. "rb").

  `paper`: four conv blocks (32, 64, 128, 256 filters, batch norm, dropout),
  flatten, dense 256, softmax, as the paper describes.

  `cells`: reads the image the way it was written. Red and blue: the
  CellReader gathers per descriptor track its two red statistics and its
  blue time course; per track, a learned soft histogram of the course placed
  by its red statistics (`_track_levels`). Green, the waveform, read as the
  1-D signal it is (`_waveform_branch`). Each plane group is standardised
  and gets its own 128-unit embedding; the concatenated embeddings feed the
  softmax. `pooling="voiced"`: each track's histogram also over voiced
  frames (TrackLevels).
  """
  if pooling not in POOLINGS:
    raise ValueError(f"pooling must be one of {', '.join(POOLINGS)}, got {pooling!r}")
  if not planes or any(c not in "rgb" for c in planes):
    raise ValueError(f"planes must be letters of 'rgb', got {planes!r}")
  inputs = keras.Input((image_size, image_size, len(planes)), name="image")
  x = layers.Rescaling(1.0 / 255)(inputs)
  if name == "paper":
    x = _conv_blocks(x, dropout)
    x = layers.Flatten()(x)
    x = _standardise(x)
    x = layers.Dense(256, activation="relu", name="embedding")(x)
  elif name == "cells":
    parts = []
    stats = "".join(c for c in planes if c in "rb")
    if stats:
      s = x if len(stats) == len(planes) else Planes(
          [planes.index(c) for c in stats], name="red_blue")(x)
      tracks = CellReader(stats, DEFAULT_SPEC.clip_frames, name="cell_reader")(s)  # (47, W)
      parts.append(layers.Flatten()(tracks if "b" not in stats else _track_levels(
          tracks, red=2 if "r" in stats else 0, levels=levels, pooling=pooling)))
    if "g" in planes:
      g = Planes([planes.index("g")], name="green")(x) if len(planes) > 1 else x
      parts.append(_waveform_branch(g, image_size, dropout))
    if len(parts) == 1:
      x = _standardise(parts[0])
      x = layers.Dropout(0.2)(x)
      x = layers.Dense(128, activation="relu", name="embedding")(x)
    else:
      # Late fusion: each plane group its own embedding and evidence (logits),
      # added. Concatenated early, the waveform's weaker features diluted the
      # descriptors' (voices20, 128 px: 0.90 against 0.94 for red+blue alone).
      # (A dense layer over the concatenated embeddings is the sum of each
      # group's own evidence.)
      embeddings = [layers.Dense(128, activation="relu", name=f"embedding_{k}")(
          layers.Dropout(0.2)(layers.BatchNormalization(momentum=0.9,
                                                        name=f"standardise_{k}")(part)))
                    for k, part in enumerate(parts)]
      # Modality dropout: in training, half the clips go without their
      # waveform evidence, so the descriptors' are learnt in full rather than
      # left behind by the waveform's quick memorising of training clips.
      embeddings[-1] = layers.Dropout(0.5, noise_shape=(None, 1), name="drop_waveform")(
          embeddings[-1])
      x = layers.Dropout(0.5)(layers.Concatenate(name="embedding")(embeddings))
      # Each group's evidence (logits) from its own part of the embedding,
      # weighted and added (score-level fusion): the weights are 1 in training
      # and fitted on held-out clips afterwards (`calibrate_fusion`).
      evidence = [layers.Dense(num_classes, dtype="float32", name=f"evidence_{k}")(
          Columns(128 * k, 128 * (k + 1), name=f"embedding_part_{k}")(x))
                  for k in range(len(embeddings))]
      outputs = layers.Activation("softmax", dtype="float32", name="speaker")(
          Fusion(dtype="float32", name="fusion")(evidence))
      return keras.Model(inputs, outputs, name=f"a2i_{name}")
  else:
    raise ValueError(f"unknown model {name!r}; choose from {', '.join(MODELS)}")
  x = layers.Dropout(0.5)(x)
  # Softmax in float32 also under mixed precision, for stable probabilities.
  outputs = layers.Dense(num_classes, activation="softmax", dtype="float32",
                         name="speaker")(x)
  return keras.Model(inputs, outputs, name=f"a2i_{name}")


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


def fusion_layer(model: keras.Model) -> Fusion | None:
  return next((layer for layer in model.layers if isinstance(layer, Fusion)), None)


def calibrate_fusion(model: keras.Model, held_out) -> list[float] | None:
  """Fits the Fusion weights of `model` on a held-out tf.data split of
  (images, labels): the non-negative weights minimising the cross-entropy
  of the fused softmax. A group whose evidence does not generalise (a
  waveform branch that memorised its training clips) gets little weight;
  the overall scale is the fusion's temperature. Returns the weights (None
  for a model without fusion)."""
  import numpy as np
  import scipy.optimize

  fusion = fusion_layer(model)
  if fusion is None:
    return None
  evidence = keras.Model(model.input, fusion.input)
  parts, labels = [], []
  for x, y in held_out:
    # Called directly (eagerly): one network per training in a study, and a
    # traced predict function per network would be retraced every time.
    parts.append(np.stack([np.asarray(e, np.float64) for e in evidence(x, training=False)], 1))
    labels.append(np.asarray(y))
  e, y = np.concatenate(parts), np.concatenate(labels)       # (n, groups, classes), (n,)
  rows = np.arange(len(y))

  def loss(w):
    z = np.einsum("ngc,g->nc", e, w)
    z -= z.max(axis=1, keepdims=True)
    p = np.exp(z)
    total = p.sum(axis=1)
    grad_z = p / total[:, None]
    grad_z[rows, y] -= 1
    return (np.log(total) - z[rows, y]).mean(), np.einsum("nc,ngc->g", grad_z, e) / len(y)

  fit = scipy.optimize.minimize(loss, np.ones(e.shape[1]), jac=True, method="L-BFGS-B",
                                bounds=[(0.0, None)] * e.shape[1])
  fusion.scale.assign(fit.x.astype(np.float32))
  return [float(v) for v in fit.x]


def embeddings_of(model: keras.Model, split) -> tuple[np.ndarray, np.ndarray]:
  """(embeddings, labels) of a tf.data split of (images, labels): the
  output of the model's `embedding` layer, at inference (no dropout)."""
  embed = keras.Model(model.input, model.get_layer("embedding").output)
  parts, labels = [], []
  for x, y in split:
    # Called eagerly, as calibrate_fusion does: one network per training in a study.
    parts.append(np.asarray(embed(x, training=False), np.float64))
    labels.append(np.asarray(y))
  return np.concatenate(parts), np.concatenate(labels)


def with_lda_head(model: keras.Model, train, classes: int) -> keras.Model:
  """The trained network with its softmax replaced by LDA's (trainer.backend),
  fitted on the embeddings of the training split `train`: a model from the
  same input through the same embedding to a dense softmax layer named
  `speaker`, saved and loaded like any other."""
  from trainer.backend import fit_lda

  weights, biases = fit_lda(*embeddings_of(model, train), classes)
  head = layers.Dense(classes, activation="softmax", dtype="float32", name="speaker")
  outputs = head(model.get_layer("embedding").output)
  head.set_weights([weights.astype(np.float32), biases.astype(np.float32)])
  return keras.Model(model.input, outputs, name=model.name)


def build_logmel_model(n_mels: int, frames: int, num_classes: int,
                       dropout: float = 0.25, width: int = 128) -> keras.Model:
  """Baseline: the speech field's usual network on log-mel features, an
  x-vector-style TDNN (Snyder et al. 2018): 1-D convolutions over frames with
  the mel bands as channels (context 5, then dilated 3x3 and 3x3, then 1x1),
  statistics pooling (mean and standard deviation over time), a 128-unit
  embedding, softmax."""
  inputs = keras.Input((n_mels, frames, 1), name="log_mel")
  x = layers.Normalization(axis=None)(inputs)
  x = layers.Reshape((frames, n_mels))(layers.Permute((2, 1, 3))(x))
  for filters, kernel, dilation in ((width, 5, 1), (width, 3, 2), (width, 3, 3),
                                    (2 * width, 1, 1)):
    x = layers.Conv1D(filters, kernel, dilation_rate=dilation, padding="same",
                      use_bias=False)(x)
    x = layers.BatchNormalization(momentum=0.9)(x)
    x = layers.ReLU()(x)
  x = layers.Concatenate(name="statistics")([layers.GlobalAveragePooling1D()(x), TimeStd()(x)])
  x = layers.Dropout(dropout)(x)
  x = layers.Dense(128, activation="relu", name="embedding")(x)
  x = layers.Dropout(0.5)(x)
  outputs = layers.Dense(num_classes, activation="softmax", dtype="float32", name="speaker")(x)
  return keras.Model(inputs, outputs, name="a2i_logmel")
