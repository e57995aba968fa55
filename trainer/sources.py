"""The input pipeline without TensorFlow: a split of an array_record build,
read through `tfds.data_source` (random access; the PNG bytes decoded to
uint8 by PIL, as TFDS's NumPy decoder does where OpenCV is absent) and batched by a `keras.utils.PyDataset`, which any
Keras 3 backend trains on. trainer.data uses it where TensorFlow is not
installed (a JAX or PyTorch machine); it makes the same batches as the
tf.data pipeline: uint8 images of the chosen planes, labels, seeded shuffles.

    batches = Batches.of(dataset, "train", channels="rgb", batch_size=32,
                         training=True, seed=0)
    for images, labels in batches: ...
"""

from __future__ import annotations

import io
import math
import os

import keras
import numpy as np
import tensorflow_datasets as tfds

# Threads decoding PNG for a split that streams (PIL releases the GIL while
# it inflates); a cached split is decoded once.
WORKERS = min(8, os.cpu_count() or 1)


def source_of(builder, split: str):
  """Random access to a split's examples, the image left as PNG bytes."""
  return builder.as_data_source(split=split, decoders={"image": tfds.decode.SkipDecoding()})


def decode_png(data: bytes) -> np.ndarray:
  from PIL import Image

  return np.asarray(Image.open(io.BytesIO(data)))


def labels_and_descriptors(builder, split: str) -> tuple[np.ndarray, np.ndarray]:
  """(labels, descriptors) of a split in file order, images not decoded."""
  source = source_of(builder, split)
  rows = [source[i] for i in range(len(source))]
  labels = np.array([r["speaker"] for r in rows], np.int64)
  descriptors = (np.stack([r["descriptors"] for r in rows]) if rows
                 else np.zeros((0, 0), np.float32))
  return labels, descriptors


class Batches(keras.utils.PyDataset):
  """(uint8 images (batch, side, side, planes), int64 labels) of one split.

  `indices` are the examples used (all, or those of some speakers), `labels`
  their labels (renumbered when a subset of speakers is kept). A training
  split is shuffled anew each epoch from (seed, epoch), so runs repeat.
  With `cache`, the split's images are decoded once and kept as uint8."""

  def __init__(self, source, indices, labels, planes: list[int], batch_size: int,
               training: bool, seed: int, cache: bool):
    super().__init__(workers=1 if cache else WORKERS, use_multiprocessing=False)
    self.source, self.planes = source, list(planes)
    self.indices, self.labels = np.asarray(indices), np.asarray(labels, np.int64)
    self.batch_size, self.training, self.seed = batch_size, training, seed
    self.epoch = 0
    self.images = self._decode(self.indices) if cache else None
    self.order = self._order()

  @classmethod
  def of(cls, builder, split: str, planes: list[int], batch_size: int, training: bool,
         seed: int, speakers: list[int] | None = None, cache: bool = True) -> "Batches":
    labels, _ = labels_and_descriptors(builder, split)
    indices = np.arange(len(labels))
    if speakers:
      renumber = {s: k for k, s in enumerate(speakers)}
      indices = indices[np.isin(labels, speakers)]
      labels = np.array([renumber[int(s)] for s in labels[indices]], np.int64)
    return cls(source_of(builder, split), indices, labels, planes, batch_size,
               training, seed, cache)

  def _decode(self, indices) -> np.ndarray:
    images = None
    for k, i in enumerate(indices):
      image = decode_png(self.source[int(i)]["image"])[..., self.planes]
      if images is None:
        images = np.empty((len(indices), *image.shape), np.uint8)
      images[k] = image
    return images if images is not None else np.zeros((0,), np.uint8)

  def _order(self) -> np.ndarray:
    if not self.training:
      return np.arange(len(self.indices))
    return np.random.default_rng([self.seed, self.epoch]).permutation(len(self.indices))

  def __len__(self) -> int:
    return math.ceil(len(self.indices) / self.batch_size)

  def __getitem__(self, k: int):
    if not 0 <= k < len(self):
      raise IndexError(k)
    rows = self.order[k * self.batch_size:(k + 1) * self.batch_size]
    images = self.images[rows] if self.images is not None else self._decode(self.indices[rows])
    return images, self.labels[rows]

  def __iter__(self):
    for k in range(len(self)):
      yield self[k]

  def on_epoch_end(self):
    self.epoch += 1
    self.order = self._order()

  @property
  def input_shape(self) -> tuple[int, ...]:
    return tuple(self[0][0].shape[1:])
