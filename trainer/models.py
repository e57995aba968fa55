"""Speaker CNNs: the paper's, and a variant that pools onto the descriptor grid."""

from __future__ import annotations

import keras
import numpy as np
from keras import layers, ops

GRID = 7  # pipeline.spec.GRID: the red/blue planes are a 7 x 7 grid of cells
MODELS = ("paper", "grid")


def compile_model(model: keras.Model, learning_rate: float) -> keras.Model:
  model.compile(optimizer=keras.optimizers.Adam(learning_rate),
                loss="sparse_categorical_crossentropy", metrics=["accuracy"])
  return model


@keras.saving.register_keras_serializable(package="a2i")
class GridPooling(layers.Layer):
  """Adaptive average pooling of a feature map onto the grid x grid descriptor
  cells: output cell (i, j) averages rows [floor(i h / g), ceil((i + 1) h / g))
  and the same columns. Two constant averaging matrices, one einsum."""

  def __init__(self, grid: int = GRID, **kwargs):
    super().__init__(**kwargs)
    self.grid = grid

  def _bins(self, n: int) -> np.ndarray:
    m = np.zeros((self.grid, n), np.float32)
    for i in range(self.grid):
      lo, hi = (i * n) // self.grid, -(-((i + 1) * n) // self.grid)
      m[i, lo:hi] = 1.0 / (hi - lo)
    return m

  def build(self, input_shape):
    self._rows, self._cols = self._bins(input_shape[1]), self._bins(input_shape[2])

  def call(self, x):
    rows = ops.cast(ops.convert_to_tensor(self._rows), x.dtype)
    cols = ops.cast(ops.convert_to_tensor(self._cols), x.dtype)
    return ops.einsum("ih,bhwc,jw->bijc", rows, x, cols)

  def compute_output_shape(self, input_shape):
    return (input_shape[0], self.grid, self.grid, input_shape[3])

  def get_config(self):
    return {**super().get_config(), "grid": self.grid}


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


def build_model(name: str, image_size: int, channels: int, num_classes: int,
                dropout: float = 0.25) -> keras.Model:
  """`paper`: four conv blocks (32, 64, 128, 256 filters, batch norm, dropout),
  flatten, dense, softmax, as the paper describes.

  `grid`: the same blocks, then the feature maps are area-pooled to 7 x 7, one
  position per descriptor cell, before the dense head. Flattening keeps
  position (which descriptor a cell holds) but at 512 px feeds a 32x32x256
  map to the dense layer (67 M weights); global pooling would be small but
  would throw position away. Pooling to the grid keeps both.
  """
  inputs = keras.Input((image_size, image_size, channels), name="image")
  x = layers.Rescaling(1.0 / 255)(inputs)
  x = _conv_blocks(x, dropout, per_block=name == "paper")
  # Flattened ReLU features are all positive: Adam's near-constant steps on
  # thousands of them add up coherently and blow the logits up within a few
  # steps. Normalising the flat vector makes it zero-mean first.
  if name == "paper":
    x = layers.Flatten()(x)
    x = layers.LayerNormalization()(x)
    x = layers.Dense(256, activation="relu", name="embedding")(x)
  elif name == "grid":
    x = layers.Conv2D(64, 1, activation="relu")(x)   # fewer features per cell
    x = GridPooling(GRID, name="grid_pool")(x)
    x = layers.Flatten()(x)
    x = layers.LayerNormalization()(x)
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
