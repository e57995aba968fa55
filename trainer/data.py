"""The input pipeline: tfds -> channel selection -> cache -> shuffle -> batch -> prefetch,
uint8 throughout (the model casts on its device).

Where TensorFlow is installed the batches are a tf.data pipeline; where it
is not (a JAX or PyTorch machine) they come from `tfds.data_source` over an
array_record build (trainer.sources), the same batches for any Keras
backend. Nothing here imports TensorFlow before it is used."""

from __future__ import annotations

import dataclasses
import functools
import importlib.util
import os
import sys

import numpy as np
import tensorflow_datasets as tfds

from pipeline.spec import EncodingSpec, SpecMismatch
from trainer.config import CHANNELS as _CHOICES

# The plane indices of each --channels choice.
CHANNELS = {choice: ["rgb".index(c) for c in choice] for choice in _CHOICES}


class DatasetUnusable(RuntimeError):
  """A dataset that cannot be trained on: the message says why and what to do."""


class DatasetMissing(DatasetUnusable):
  pass


def tensorflow_installed() -> bool:
  """Whether the batches can be a tf.data pipeline (else trainer.sources)."""
  return importlib.util.find_spec("tensorflow") is not None


@dataclasses.dataclass(frozen=True)
class Dataset:
  """A built dataset, opened: its TFDS builder and the encoding its images
  were written with, the one source of every spec-dependent layer."""

  builder: tfds.core.DatasetBuilder
  spec: EncodingSpec

  @property
  def info(self) -> tfds.core.DatasetInfo:
    return self.builder.info

  @property
  def image_size(self) -> int:
    return int(self.info.features["image"].shape[0])

  @property
  def speakers(self) -> list[str]:
    return list(self.info.features["speaker"].names)

  @property
  def file_format(self) -> str:
    return self.info.file_format.value


@dataclasses.dataclass
class Splits:
  """Batches of (input, label) per split, and what they were made from."""

  train: object         # tf.data.Dataset, or trainer.sources.Batches without TensorFlow
  validation: object | None
  test: object
  speakers: list[str]
  dataset: Dataset | None = None   # None for inputs made from audio (the log-mel baseline)
  cached: tuple[str, ...] = ()     # splits held in memory (the rest stream from disk)

  @property
  def train_steps(self) -> int:
    """Batches per training epoch (`load` gives every split a known length)."""
    if hasattr(self.train, "cardinality"):
      return int(self.train.cardinality())
    return len(self.train)

  @property
  def input_shape(self) -> tuple[int, ...]:
    if hasattr(self.train, "element_spec"):
      return tuple(self.train.element_spec[0].shape[1:])
    return self.train.input_shape


def open_dataset(name: str, data_dir: str | None) -> Dataset:
  """The prepared dataset and its encoding spec, read from its files; never
  builds one."""
  try:
    builder = tfds.builder(name, data_dir=data_dir)
  except (tfds.core.registered.DatasetNotFoundError, ValueError) as e:
    raise DatasetMissing(_how_to_build(name, data_dir)) from e
  if not builder.is_prepared():
    raise DatasetMissing(_how_to_build(name, data_dir))
  try:
    spec = EncodingSpec.from_dict(dict(builder.info.metadata["encoding"]))
  except SpecMismatch as e:
    raise DatasetUnusable(f"{name}: {e}") from None
  dataset = Dataset(builder, spec)
  if not tensorflow_installed():
    _readable_without_tensorflow(dataset)
  return dataset


@functools.lru_cache(maxsize=8)
def descriptor_arrays(dataset: Dataset, split: str):
  """(descriptors (clips, 94), labels) of a split, in file order, images not
  decoded: what the classical baselines, verification's study mode and the
  open-set profiles read."""
  if not tensorflow_installed():
    from trainer.sources import labels_and_descriptors

    labels, descriptors = labels_and_descriptors(dataset.builder, split)
    return descriptors, labels
  ds = dataset.builder.as_dataset(split=split, decoders={"image": tfds.decode.SkipDecoding()})
  rows = [(ex["descriptors"], ex["speaker"]) for ex in tfds.as_numpy(ds)]
  return np.stack([r[0] for r in rows]), np.array([r[1] for r in rows])


def clip_keys(dataset: Dataset, split: str) -> list[tuple[str, int, int]]:
  """(recording, clip index, label) of every clip of a split, in file order
  (the order `load` gives an unshuffled split), images not decoded."""
  if not tensorflow_installed():
    from trainer.sources import source_of

    source = source_of(dataset.builder, split)
    rows = (source[i] for i in range(len(source)))
  else:
    rows = tfds.as_numpy(dataset.builder.as_dataset(
        split=split, decoders={"image": tfds.decode.SkipDecoding()}))

  def text(value):
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)

  return [(text(r["recording"]), int(r["clip_index"]), int(r["speaker"])) for r in rows]


def open_or_exit(name: str, data_dir: str | None) -> tuple[Dataset, str | None]:
  """(the opened dataset, data dir) for a command, or exit 2 with one line
  naming the command that builds it."""
  data_dir = data_dir or os.environ.get("TFDS_DATA_DIR")
  try:
    return open_dataset(name, data_dir), data_dir
  except DatasetUnusable as e:
    print(f"error: {e}", file=sys.stderr)
    raise SystemExit(2) from None


def _how_to_build(name, data_dir):
  """The build command that makes `name`, as pipeline.build names configs:
  <demo>[_<size>] for the built-in corpora, <folder>[_<size>] otherwise."""
  from pipeline.demo import CORPORA

  where = f" in {data_dir}" if data_dir else ""
  config = name.split("/", 1)[1] if "/" in name else "demo"
  base, _, size = config.rpartition("_")
  if not (size.isdigit() and base):
    base, size = config, ""
  flags = f" --image_size {size}" if size else ""
  if base in CORPORA:
    hint = ("python -m pipeline.build --runner=DirectRunner" if base == "demo" and not size
            else f"python -m pipeline.build --demo {base}{flags}")
  else:
    hint = f"python -m pipeline.build --input YOUR_CORPUS/{base}{flags}"
  return f"dataset {name} is not built{where}; build it with: {hint}" + (
      f" --data_dir {data_dir}" if data_dir else "")


def _readable_without_tensorflow(dataset: Dataset) -> None:
  if dataset.file_format != "array_record":
    raise DatasetUnusable(
        f"{dataset.info.full_name} is stored as {dataset.file_format}, which only TensorFlow "
        "reads, and TensorFlow is not installed: install it, or rebuild the dataset with "
        "--file_format array_record")


def select_channels(image, channels: str):
  import tensorflow as tf

  return tf.gather(image, CHANNELS[channels], axis=-1)


def pipeline(ds, channels: str, batch_size: int, training: bool, seed: int,
             speakers: list[int] | None = None, cache: bool = True):
  """(uint8 image, label) batches of a tf.data dataset of examples; images
  are cached as uint8 (with `cache`).

  `speakers` keeps only those labels, renumbered 0..len(speakers)-1."""
  import tensorflow as tf

  if speakers:
    table = tf.lookup.StaticHashTable(tf.lookup.KeyValueTensorInitializer(
        tf.constant(speakers, tf.int64), tf.range(len(speakers), dtype=tf.int64)), -1)
    ds = ds.filter(lambda ex: table.lookup(ex["speaker"]) >= 0)
    ds = ds.map(lambda ex: {**ex, "speaker": table.lookup(ex["speaker"])})
  ds = ds.map(lambda ex: (select_channels(ex["image"], channels), ex["speaker"]),
              num_parallel_calls=tf.data.AUTOTUNE)
  if cache:
    ds = ds.cache()
  if training:
    ds = ds.shuffle(4096, seed=seed, reshuffle_each_iteration=True)
  # Batches stay uint8: the model's input casts them on the device, so the
  # host moves 4x fewer bytes (from the cache at 512 px on this CPU: 4,117
  # against 689 images/s, docs/performance.md).
  return ds.batch(batch_size).prefetch(tf.data.AUTOTUNE)


def with_cardinality(ds):
  """A dataset filtered by speaker has no static length; count its batches once
  (which fills its cache, read by the first epoch) and declare the count, so
  the schedule knows its steps and Keras knows where an epoch ends."""
  import tensorflow as tf

  if int(ds.cardinality()) >= 0:
    return ds
  n = int(ds.reduce(0, lambda count, _: count + 1))
  return ds.apply(tf.data.experimental.assert_cardinality(n))


def cache_budget() -> int:
  """Bytes of decoded images kept in memory: a quarter of this machine's
  memory, at most 8 GiB. A larger split is read from its TFRecords (PNG
  decoding, still faster than training: docs/performance.md) every epoch."""
  try:
    physical = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
  except (ValueError, OSError, AttributeError):
    physical = 8 << 30
  return min(physical // 4, 8 << 30)


def load(name: str, data_dir: str | None, channels: str, batch_size: int, seed: int,
         speakers: list[int] | None = None, budget: int | None = None) -> Splits:
  """The splits as batches. Splits are cached as uint8 in memory while they
  fit `budget` (default `cache_budget()`), training first: memory does not
  grow with the corpus. Without TensorFlow, from an array_record build
  through trainer.sources."""
  dataset = open_dataset(name, data_dir)
  with_tf = tensorflow_installed()
  if not with_tf:
    from trainer.sources import Batches
  builder = dataset.builder
  splits = builder.info.splits
  side = dataset.image_size
  left = [cache_budget() if budget is None else budget]
  cached = []

  def split(s, training=False):
    if s not in splits or splits[s].num_examples == 0:
      return None
    size = splits[s].num_examples * side * side * len(CHANNELS[channels])
    cache = size <= left[0]
    if cache:
      left[0] -= size
      cached.append(s)
    if not with_tf:
      return Batches.of(builder, s, CHANNELS[channels], batch_size, training, seed, speakers,
                        cache=cache)
    ds = builder.as_dataset(split=s, shuffle_files=training,
                            read_config=tfds.ReadConfig(shuffle_seed=seed))
    return with_cardinality(pipeline(ds, channels, batch_size, training, seed, speakers,
                                     cache=cache))

  train, test = split("train", training=True), split("test")
  if train is None or test is None:
    raise DatasetUnusable(f"dataset {name} needs non-empty train and test splits")
  validation = split("validation")
  return Splits(train=train, validation=validation, test=test, speakers=dataset.speakers,
                dataset=dataset, cached=tuple(cached))


def from_arrays(train, validation, test, speakers: list[str], batch_size: int,
                seed: int) -> Splits:
  """Splits of in-memory (inputs, labels) arrays (validation may be None),
  batched and shuffled as `pipeline` does images: for inputs computed from
  the audio rather than read from the dataset (the log-mel baseline)."""
  import tensorflow as tf

  # The shuffle's order follows the global seed as it stands when the
  # dataset is made, which the run sets only later: set it to this run's.
  tf.random.set_seed(seed)

  def split(arrays, training=False):
    if arrays is None:
      return None
    ds = tf.data.Dataset.from_tensor_slices(tuple(arrays))
    if training:
      ds = ds.shuffle(len(arrays[1]), seed=seed, reshuffle_each_iteration=True)
    return ds.batch(batch_size).prefetch(tf.data.AUTOTUNE)

  return Splits(train=split(train, True), validation=split(validation), test=split(test),
                speakers=list(speakers))
