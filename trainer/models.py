"""Speaker CNNs: the paper's, and one that reads the encoding's descriptor cells."""

from __future__ import annotations

import keras
import numpy as np
from keras import layers, ops

from pipeline.spec import GRID, cell_size

MODELS = ("cells", "paper")


def compile_model(model: keras.Model, learning_rate: float, decay_steps: int | None = None
                  ) -> keras.Model:
  """Adam; with `decay_steps`, the rate follows a cosine from `learning_rate` to 0."""
  if decay_steps:
    learning_rate = keras.optimizers.schedules.CosineDecay(learning_rate, decay_steps)
  model.compile(optimizer=keras.optimizers.Adam(learning_rate),
                loss="sparse_categorical_crossentropy", metrics=["accuracy"])
  return model


@keras.saving.register_keras_serializable(package="a2i")
class CellPooling(layers.Layer):
  """Average of a feature map over each half of each cell of the descriptor grid.

  The red and blue planes hold track k in the cell of side p = N // 7 at row
  k // 7, column k % 7; a red cell holds the median in its left p // 2
  columns and the mean in the rest (docs/encoding.md). Output (7, 14, C):
  [i, 2j] averages the left half of cell (i, j), [i, 2j + 1] the right half,
  so a red plane comes back as its 94 statistics exactly, and a blue patch as
  two averages of learned functions of its time course. The margin is ignored.
  """

  def build(self, input_shape):
    n = input_shape[1]
    p, half = cell_size(n), cell_size(n) // 2
    rows = np.zeros((GRID, n), np.float32)
    cols = np.zeros((2 * GRID, n), np.float32)
    for i in range(GRID):
      rows[i, i * p:(i + 1) * p] = 1.0 / p
      cols[2 * i, i * p:i * p + half] = 1.0 / half
      cols[2 * i + 1, i * p + half:(i + 1) * p] = 1.0 / (p - half)
    self._rows, self._cols = rows, cols

  def call(self, x):
    rows = ops.cast(ops.convert_to_tensor(self._rows), x.dtype)
    cols = ops.cast(ops.convert_to_tensor(self._cols), x.dtype)
    return ops.einsum("ih,bhwc,jw->bijc", rows, x, cols)

  def compute_output_shape(self, input_shape):
    return (input_shape[0], GRID, 2 * GRID, input_shape[3])


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


def _conv_blocks(x, dropout: float, per_block: bool):
  """Four blocks of 3x3 conv (32, 64, 128, 256 filters), batch norm, ReLU, 2x2 max pool.

  `per_block=True` puts dropout in every block, as the paper does. Dropout in
  front of a batch normalisation makes it learn the variance of dropped-out
  activations, which inference never sees ("variance shift", Li et al. 2019):
  measured here, a log-mel CNN at 100 % training accuracy scored chance at
  inference. `per_block=False` drops out only after the last block.
  """
  for filters in (32, 64, 128, 256):
    x = layers.Conv2D(filters, 3, padding="same", use_bias=False)(x)
    # momentum 0.9, not Keras's 0.99: a few hundred steps must be enough for the
    # moving statistics used at inference to catch up on small corpora.
    x = layers.BatchNormalization(momentum=0.9)(x)
    x = layers.Activation("relu")(x)
    x = layers.MaxPooling2D(2)(x)
    if per_block:
      x = layers.Dropout(dropout)(x)
  if not per_block:
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
                dropout: float = 0.25, levels: int = 16) -> keras.Model:
  """`planes`: the input's planes in order, a subset of "rgb" (e.g. "rb").

  `paper`: four conv blocks (32, 64, 128, 256 filters, batch norm, dropout),
  flatten, dense 256, softmax, as the paper describes.

  `cells`: reads the image the way it was written. Red and blue: a 1x1
  convolution turns every pixel into `levels` ReLU responses, soft
  thresholds of its level; CellPooling averages them, and the pixels
  themselves, over each half-cell, giving per descriptor its value (red) and a
  learned soft histogram of its time course (blue), still in descriptor order.
  Green, the waveform: the paper's four conv blocks, then global average
  pooling (a voice is the same wherever in the clip it speaks). Then
  standardisation, dense 128, softmax.
  """
  if not planes or any(c not in "rgb" for c in planes):
    raise ValueError(f"planes must be letters of 'rgb', got {planes!r}")
  inputs = keras.Input((image_size, image_size, len(planes)), name="image")
  x = layers.Rescaling(1.0 / 255)(inputs)
  if name == "paper":
    x = _conv_blocks(x, dropout, per_block=True)
    x = layers.Flatten()(x)
    x = _standardise(x)
    x = layers.Dense(256, activation="relu", name="embedding")(x)
  elif name == "cells":
    parts = []
    stats = [i for i, c in enumerate(planes) if c in "rb"]
    if stats:
      s = x if len(stats) == len(planes) else Planes(stats, name="red_blue")(x)
      s = layers.Concatenate()([s, layers.Conv2D(levels, 1, activation="relu", name="levels")(s)])
      parts.append(layers.Flatten()(CellPooling(name="cell_pool")(s)))
    if "g" in planes:
      g = Planes([planes.index("g")], name="green")(x) if len(planes) > 1 else x
      parts.append(layers.GlobalAveragePooling2D()(_conv_blocks(g, dropout, per_block=False)))
    x = parts[0] if len(parts) == 1 else layers.Concatenate()(parts)
    x = _standardise(x)
    x = layers.Dropout(0.2)(x)
    x = layers.Dense(128, activation="relu", name="embedding")(x)
  else:
    raise ValueError(f"unknown model {name!r}; choose from {', '.join(MODELS)}")
  x = layers.Dropout(0.5)(x)
  # Softmax in float32 also under mixed precision, for stable probabilities.
  outputs = layers.Dense(num_classes, activation="softmax", dtype="float32",
                         name="speaker")(x)
  return keras.Model(inputs, outputs, name=f"a2i_{name}")


def build_logmel_model(n_mels: int, frames: int, num_classes: int,
                       dropout: float = 0.25) -> keras.Model:
  """Baseline: the same four conv blocks on a log-mel spectrogram, global
  average pooling over frequency and time, dense, softmax."""
  inputs = keras.Input((n_mels, frames, 1), name="log_mel")
  x = layers.Normalization(axis=None)(inputs)
  x = _conv_blocks(x, dropout, per_block=False)
  x = layers.GlobalAveragePooling2D()(x)
  x = layers.Dense(128, activation="relu", name="embedding")(x)
  x = layers.Dropout(0.5)(x)
  outputs = layers.Dense(num_classes, activation="softmax", dtype="float32", name="speaker")(x)
  return keras.Model(inputs, outputs, name="a2i_logmel")
