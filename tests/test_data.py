"""trainer.data: the input pipeline's memory budget, and its batches without
TensorFlow (trainer.sources) against the tf.data ones."""

import numpy as np
import pytest


@pytest.mark.slow
def test_splits_beyond_the_memory_budget_stream_the_same_batches(dataset):
  """Memory does not grow with the corpus: splits that do not fit the cache
  budget are read from disk every epoch, with the same content."""
  from trainer import data

  data_dir, _ = dataset
  image = 64 * 64 * 3
  streamed = data.load("a2i_speakers/three", str(data_dir), "rgb", 8, 0, budget=0)
  only_train = data.load("a2i_speakers/three", str(data_dir), "rgb", 8, 0, budget=84 * image)
  everything = data.load("a2i_speakers/three", str(data_dir), "rgb", 8, 0)
  assert (streamed.cached, only_train.cached) == ((), ("train",))
  assert everything.cached == ("train", "test", "validation")
  assert streamed.train_steps == everything.train_steps == 11          # 84 clips, batches of 8
  for a, b in zip(streamed.test, everything.test):                     # unshuffled: same order
    np.testing.assert_array_equal(a[0].numpy(), b[0].numpy())
    np.testing.assert_array_equal(a[1].numpy(), b[1].numpy())


@pytest.mark.slow
def test_array_record_batches_without_tensorflow_equal_the_tf_data_batches(
    dataset, dataset_array_record):
  """trainer.sources over an array_record build gives the tf.data pipeline's
  batches of the TFRecord build: evaluation splits in file order, image for
  image; a training split shuffled per epoch from the seed (the same
  examples, another order each epoch, the same orders again for the same
  seed); a subset of speakers relabelled 0..k-1 as tf.data relabels it."""
  from trainer import data
  from trainer.sources import Batches

  data_dir, _ = dataset
  tf_splits = data.load("a2i_speakers/three", str(data_dir), "gb", 8, 0)
  source = data.open_dataset("a2i_speakers/three", str(dataset_array_record))
  assert source.file_format == "array_record"
  planes = data.CHANNELS["gb"]
  test = Batches.of(source.builder, "test", planes, 8, training=False, seed=0)
  assert len(test) == int(tf_splits.test.cardinality()) == 3
  for (a, la), (b, lb) in zip(test, tf_splits.test):
    assert a.dtype == np.uint8 and a.shape[1:] == (64, 64, 2)
    np.testing.assert_array_equal(a, b.numpy())
    np.testing.assert_array_equal(la, lb.numpy())

  def epoch(batches):
    images, labels = zip(*batches)
    batches.on_epoch_end()
    return np.concatenate(images), np.concatenate(labels)

  train = Batches.of(source.builder, "train", planes, 8, training=True, seed=3)
  again = Batches.of(source.builder, "train", planes, 8, training=True, seed=3, cache=False)
  first, second = epoch(train), epoch(train)
  np.testing.assert_array_equal(first[0], epoch(again)[0])            # the seed decides
  assert not np.array_equal(first[1], second[1])                       # reshuffled
  tf_images = np.concatenate([x.numpy() for x, _ in tf_splits.train])
  key = lambda images: sorted(image.tobytes() for image in images)     # noqa: E731
  assert key(first[0]) == key(second[0]) == key(tf_images)             # the same clips
  subset = Batches.of(source.builder, "test", planes, 8, False, 0, speakers=[2, 0])
  tf_subset = data.load("a2i_speakers/three", str(data_dir), "gb", 8, 0, speakers=[2, 0])
  np.testing.assert_array_equal(np.concatenate([y for _, y in subset]),
                                np.concatenate([y.numpy() for _, y in tf_subset.test]))
  assert set(np.concatenate([y for _, y in subset]).tolist()) == {0, 1}
